"""PII detection: Presidio's recognizers, plus bosun's recognizer for secrets.

The recognizers are Presidio's (``presidio-analyzer``): e-mail (domain checked against the
public suffix list), credit card (Luhn), IBAN (mod-97 checksum and per-country format), US SSN
(with Presidio's invalidation rules), IP address (checked by `ipaddress`) and phone numbers
(Google's ``phonenumbers``). bosun adds one Presidio `PatternRecognizer`, ``SECRET``, for API
keys, tokens, private keys and ``password=``-style assignments, and three small pieces of glue,
each for a measured reason:

* **Candidates first.** Presidio's phone recognizer runs ``phonenumbers``' matcher over the
  whole text once per region: ~50 ms for a 10 KB e-mail. bosun finds the runs of at least seven
  digits (with phone punctuation between them) and runs Presidio's recognizer on windows around
  them only: the same numbers in under a millisecond (on the 750 labelled texts it finds every
  number the whole-text run finds, and skips two 6-digit false positives in street addresses).
  Likewise Presidio's e-mail pattern only runs around an ``@`` (2.2 ms → ~0.1 ms).
* **The public suffix list is the bundled snapshot.** Presidio's e-mail check calls
  ``tldextract.extract``, whose default instance downloads the list on first use (and, with no
  network, logs tracebacks and waits on DNS). The e-mail recognizer here uses an instance that
  never fetches and never writes a cache.
* **Overlaps are resolved across types** (higher score, then longer span), because a placeholder
  replaces one span: Presidio's own de-duplication only merges spans of the same type.

bosun's own pattern recognizers (`pii_patterns`) add cards of every length that pass Luhn,
phone numbers after a phone word, and street addresses. This pattern layer is always on.

Names, places and organisations (`NER_ENTITIES`) need spaCy's ``en_core_web_sm`` (the ``ner``
extra, `bosun.gateway.ner`): a detector asked for them loads it with the recognizers, and one
built without the extra installed raises `MissingDependency`. `PiiDetector.SUPPORTED` lists
every type.

Presidio's import takes ~0.6 s (it imports spaCy), so it is imported on first use, or when
`PiiDetector.load` is called at start-up, never when ``bosun`` is imported.
"""

from __future__ import annotations

import bisect
import re
import threading
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Final

from bosun.errors import ConfigError, MissingDependency
from bosun.gateway import ner, pii_patterns

if TYPE_CHECKING:
    from presidio_analyzer import EntityRecognizer, RecognizerResult
    from presidio_analyzer.nlp_engine import SpacyNlpEngine

__all__ = [
    "DEFAULT_ENTITIES",
    "NER_ENTITIES",
    "PLACEHOLDER_NAMES",
    "WITH_NER",
    "PiiDetector",
    "PiiSpan",
]

DEFAULT_ENTITIES: Final[tuple[str, ...]] = (
    "EMAIL_ADDRESS",
    "PHONE_NUMBER",
    "CREDIT_CARD",
    "IBAN_CODE",
    "US_SSN",
    "IP_ADDRESS",
    "SECRET",
    "STREET_ADDRESS",
)
"""Every entity type this module can detect without an NLP model, in Presidio's names."""

NER_ENTITIES: Final[tuple[str, ...]] = ner.NER_ENTITIES
"""Names, places and organisations: the ``ner`` extra's spaCy model finds them."""

WITH_NER: Final[tuple[str, ...]] = DEFAULT_ENTITIES + NER_ENTITIES
"""Every type, the NER layer's included."""

PLACEHOLDER_NAMES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "EMAIL_ADDRESS": "EMAIL",
        "PHONE_NUMBER": "PHONE",
        "CREDIT_CARD": "CARD",
        "IBAN_CODE": "IBAN",
        "US_SSN": "SSN",
        "IP_ADDRESS": "IP",
        "SECRET": "SECRET",
        "PERSON": "PERSON",
        "LOCATION": "LOCATION",
        "ORGANIZATION": "ORG",
        "STREET_ADDRESS": "ADDRESS",
    }
)
"""The short name in a placeholder for each entity type: ``EMAIL_ADDRESS`` → ``<EMAIL_1>``."""

DEFAULT_PHONE_REGIONS: Final[tuple[str, ...]] = (
    "US",
    "GB",
    "DE",
    "FR",
    "ES",
    "IN",
    "IL",
    "CA",
    "BR",
)
"""A number without a ``+country`` prefix must be valid in one of these (Presidio's defaults
plus Spain). Each region is one more pass of `phonenumbers` over every candidate window, the
detector's largest cost; a number written with its ``+country`` prefix is found in any."""

# What can start a secret. Scores: a vendor prefix with the right length is near-certain; a
# ``password=`` assignment or a bearer token is likely; both beat a phone or an SSN pattern
# found inside the same characters.
_SECRET_PATTERNS: Final[tuple[tuple[str, str, float], ...]] = (
    ("anthropic key", r"\bsk-ant-[A-Za-z0-9]+-[A-Za-z0-9_\-]{20,}", 1.0),
    ("openai key", r"\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{20,}", 0.95),
    ("aws access key id", r"\b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b", 0.95),
    ("github token", r"\bgh[pousr]_[A-Za-z0-9]{36,255}\b", 1.0),
    ("github fine-grained token", r"\bgithub_pat_[A-Za-z0-9_]{22,255}\b", 1.0),
    ("slack token", r"\bxox[abposr]-[A-Za-z0-9\-]{10,}", 1.0),
    ("stripe key", r"\b[rs]k_(?:live|test)_[A-Za-z0-9]{16,}\b", 1.0),
    ("google api key", r"\bAIza[0-9A-Za-z_\-]{35}(?![0-9A-Za-z_\-])", 0.95),
    ("jwt", r"\beyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]*", 0.9),
    (
        "pem private key",
        r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----"
        r"(?:.*?-----END [A-Z0-9 ]*PRIVATE KEY-----|[A-Za-z0-9+/=\s]*)",
        1.0,
    ),
    # The key name stays visible (the model may need to know a password was given); only the
    # value is masked: ``\K`` (supported by the `regex` module Presidio uses) starts the match
    # there. A look-behind would do the same at four times the cost.
    (
        "assignment",
        r"(?i:\b(?:password|passwd|pwd|secret|client[_\-]?secret|api[_\-]?key|apikey"
        r"|access[_\-]?key|secret[_\-]?key|access[_\-]?token|auth[_\-]?token|private[_\-]?key)"
        r")\s*[:=]\s*[\"']?\K[^\s\"',;]{6,}",
        0.7,
    ),
    ("bearer token", r"\b[Bb]earer\s+\K[A-Za-z0-9._~+/\-]{20,}=*", 0.8),
)

# Seven or more digits with phone punctuation between them: the only places a phone number
# can be, so the only places `phonenumbers` needs to look.
_PHONE_CANDIDATE: Final = re.compile(r"[+(]?\d(?:[ \t().\-/]{0,3}\d){6,}")
_WINDOW_MARGINS: Final[Mapping[str, int]] = MappingProxyType(
    {"PHONE_NUMBER": 8, "EMAIL_ADDRESS": 256}
)
"""Characters searched around a candidate. A phone number's neighbours matter (`phonenumbers`
refuses one glued to letters); an address is at most 64 characters before its ``@`` and 255
after (RFC 5321)."""

_AT: Final = re.compile("@")

# A dotted quad inside a longer dotted number (``1.2.3.4.5``, a version string) is not an IP.
_IP_CONTINUES: Final = re.compile(r"\.\d")


@dataclass(frozen=True, slots=True)
class PiiSpan:
    """One detected value: ``text[start:end]`` is of type `entity`."""

    entity: str
    """Presidio's entity name, e.g. ``EMAIL_ADDRESS``."""
    start: int
    """Offset of the first character, in code points."""
    end: int
    """Offset one past the last character."""
    score: float
    """The recognizer's confidence, 0..1 (1.0 after a checksum or validity check passed)."""
    text: str
    """The detected value itself."""


class PiiDetector:
    """Finds PII in text with Presidio's recognizers. Thread-safe; build one per process."""

    SUPPORTED: Final[frozenset[str]] = frozenset(WITH_NER)
    """The entity types a detector can be asked for; `NER_ENTITIES` need the ``ner`` extra."""

    def __init__(
        self,
        *,
        entities: Collection[str] = DEFAULT_ENTITIES,
        min_score: float = 0.4,
        phone_regions: Sequence[str] = DEFAULT_PHONE_REGIONS,
    ) -> None:
        unknown = sorted(set(entities) - self.SUPPORTED)
        if unknown:
            raise ConfigError(
                f"PII entity types {unknown} are not supported. Supported: {sorted(self.SUPPORTED)}"
            )
        wanted_ner = sorted(set(entities) & set(NER_ENTITIES))
        if wanted_ner and not ner.installed():
            raise MissingDependency(
                f"PII entity types {wanted_ner} need spaCy's en_core_web_sm: "
                "pip install 'bosun[ner]'"
            )
        if not 0.0 <= min_score <= 1.0:
            raise ConfigError(f"min_score must be between 0 and 1, got {min_score}")
        self.entities: frozenset[str] = frozenset(entities)
        """The entity types this detector reports."""
        self.min_score = min_score
        """Spans scored below this are dropped (Presidio scores a phone number 0.4)."""
        self.phone_regions: tuple[str, ...] = tuple(phone_regions)
        """Regions in which a number without a country prefix is tried."""
        self._lock = threading.Lock()
        self._recognizers: list[EntityRecognizer] | None = None
        self._ner: tuple[SpacyNlpEngine, EntityRecognizer] | None = None

    def load(self) -> None:
        """Import Presidio and build the recognizers now rather than on the first `detect`."""
        self._loaded()

    def detect(self, text: str) -> list[PiiSpan]:
        """Non-overlapping PII spans in `text`, sorted by start."""
        if not text:
            return []
        candidates: list[PiiSpan] = []
        for recognizer in self._loaded():
            entity = recognizer.supported_entities[0]
            name: str = getattr(recognizer, "name", "")  # Presidio leaves it untyped
            candidates_of_entity = _candidates(name, text)
            if candidates_of_entity is None:
                found = [(r.start, r.end, r.score) for r in _analyze(recognizer, text)]
            else:
                margin = _WINDOW_MARGINS[entity]
                found = _windowed(recognizer, text, candidates_of_entity, margin)
            candidates.extend(
                PiiSpan(entity, start, end, score, text[start:end])
                for start, end, score in found
                if score >= self.min_score and start < end
            )
        if self._ner is not None:
            candidates.extend(
                span for span in _named(*self._ner, text) if span.score >= self.min_score
            )
        candidates = [s for s in candidates if s.entity != "IP_ADDRESS" or _is_lone_ip(text, s)]
        return _without_overlaps(candidates)

    def _loaded(self) -> list[EntityRecognizer]:
        with self._lock:
            if self._recognizers is None:
                wanted_ner = self.entities & set(NER_ENTITIES)
                if wanted_ner:
                    self._ner = ner.build(set(wanted_ner))
                self._recognizers = _build_recognizers(self.entities, self.phone_regions)
            return self._recognizers


def _analyze(recognizer: EntityRecognizer, text: str) -> list[RecognizerResult]:
    # Presidio types `nlp_artifacts` as required on the base class; the pattern and phone
    # recognizers used here accept None and never read it (there is no NLP engine).
    results: list[RecognizerResult] = recognizer.analyze(
        text,
        recognizer.supported_entities,
        None,  # type: ignore[arg-type]
    )
    return results


def _is_lone_ip(text: str, span: PiiSpan) -> bool:
    """False for a dotted quad that is part of a longer dotted number such as ``1.2.3.4.5``."""
    before = text[max(0, span.start - 2) : span.start]
    continued_before = before[-1:] == "." and before[:1].isdigit()
    return not (continued_before or _IP_CONTINUES.match(text, span.end))


def _windowed(
    recognizer: EntityRecognizer, text: str, candidates: Iterable[tuple[int, int]], margin: int
) -> list[tuple[int, int, float]]:
    """Run `recognizer` only on the (merged) windows around `candidates` (see module doc)."""
    windows: list[list[int]] = []
    for first, last in candidates:
        start, end = max(0, first - margin), min(len(text), last + margin)
        if windows and start <= windows[-1][1]:
            windows[-1][1] = end
        else:
            windows.append([start, end])
    spans: set[tuple[int, int, float]] = set()
    for start, end in windows:
        for r in _analyze(recognizer, text[start:end]):
            spans.add((start + r.start, start + r.end, r.score))
    return sorted(spans)


_NER_PIECE: Final = 20_000
"""spaCy reads a long text in pieces of about this many characters, cut at whitespace (its
own limit is 1,000,000 characters, and memory grows with the piece)."""


def _named(engine: SpacyNlpEngine, recognizer: EntityRecognizer, text: str) -> list[PiiSpan]:
    """Names, places and organisations found by Presidio's spaCy recognizer."""
    out: list[PiiSpan] = []
    start = 0
    while start < len(text):
        end = min(len(text), start + _NER_PIECE)
        if end < len(text):
            cut = text.rfind(" ", start + _NER_PIECE // 2, end)
            end = cut if cut > 0 else end
        piece = text[start:end]
        artifacts = engine.process_text(piece, "en")
        for r in recognizer.analyze(piece, recognizer.supported_entities, artifacts):
            if r.start < r.end:
                s, e = start + r.start, start + r.end
                out.append(PiiSpan(r.entity_type, s, e, r.score, text[s:e]))
        start = end
    return out


def _candidates(recognizer: str, text: str) -> Iterator[tuple[int, int]] | None:
    """Where `recognizer` can find anything in `text`, or None to search all of it."""
    if recognizer == _PHONE_NAME:
        return (m.span() for m in _PHONE_CANDIDATE.finditer(text))
    if recognizer == _EMAIL_NAME:
        return (m.span() for m in _AT.finditer(text))
    return None


_PHONE_NAME: Final = "PresidioPhoneRecognizer"
_EMAIL_NAME: Final = "PresidioEmailRecognizer"


def _without_overlaps(spans: list[PiiSpan]) -> list[PiiSpan]:
    """Keep the best of overlapping spans: the higher score, then the longer, then the first."""
    ranked = sorted(spans, key=lambda s: (-s.score, -(s.end - s.start), s.start, s.entity))
    starts: list[int] = []
    kept: list[PiiSpan] = []
    for span in ranked:
        i = bisect.bisect_left(starts, span.start)
        if i > 0 and kept[i - 1].end > span.start:
            continue
        if i < len(kept) and kept[i].start < span.end:
            continue
        starts.insert(i, span.start)
        kept.insert(i, span)
    return kept


def _build_recognizers(
    entities: Collection[str], phone_regions: Sequence[str]
) -> list[EntityRecognizer]:
    """Presidio's recognizers for `entities` (imported here: the import costs ~0.6 s)."""
    import tldextract
    from presidio_analyzer import Pattern, PatternRecognizer
    from presidio_analyzer.predefined_recognizers import (
        CreditCardRecognizer,
        EmailRecognizer,
        IbanRecognizer,
        IpRecognizer,
        PhoneRecognizer,
        UsSsnRecognizer,
    )

    # No URLs and no cache directory: the bundled snapshot of the public suffix list, always.
    offline_suffixes = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)

    class OfflineEmailRecognizer(EmailRecognizer):
        def validate_result(self, pattern_text: str) -> bool:
            return offline_suffixes(pattern_text).fqdn != ""

    secrets = PatternRecognizer(
        supported_entity="SECRET",
        name="BosunSecretRecognizer",
        patterns=[Pattern(name, regex, score) for name, regex, score in _SECRET_PATTERNS],
        # Case matters for vendor prefixes (AKIA, ghp_); the assignment pattern opts in to
        # ignoring case itself.
        global_regex_flags=re.DOTALL | re.MULTILINE,
    )
    available: list[EntityRecognizer] = [
        OfflineEmailRecognizer(name=_EMAIL_NAME),
        PhoneRecognizer(supported_regions=tuple(phone_regions), name=_PHONE_NAME),
        CreditCardRecognizer(),
        IbanRecognizer(),
        UsSsnRecognizer(),
        IpRecognizer(),
        secrets,
        *pii_patterns.build(),
    ]
    return [r for r in available if r.supported_entities[0] in entities]
