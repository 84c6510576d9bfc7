"""Output guardrails: what a run's answer must pass before it leaves bosun.

A guardrail is any object with a ``name`` and ``check(output, ctx) -> GuardrailVerdict``; it
returns data and never raises for bad content. `Guardrails` folds several into one object with
the same interface, so the gateway wraps the runtime with one guardrail whatever it holds:

```
guard           finds                                          default action
--------------  ---------------------------------------------  --------------
SecretsGuard    API keys, tokens, private keys, passwords        block
PiiGuard        raw PII (placeholders such as <EMAIL_1> pass)    redact
GroundingGuard  order ids, tickets, amounts found in no source   escalate
SchemaGuard     structured output that is not JSON of ctx.schema block
```

Decisions a reader would otherwise have to reverse-engineer:

* **Severity.** allow < redact < escalate < block; the composite takes the most severe action
  and keeps every verdict (`results`) for the trace and the audit log. Every guard accepts
  ``action="allow"`` too: it then only reports (a dry run before enforcing).
* **Redactions chain.** Each guard sees the text as the guards before it left it, and the
  composite's `text` is the output with every redaction applied, whatever the final action, so
  an escalation hands a person the redacted text. Put `SecretsGuard` before `PiiGuard`: a
  detector that also reports ``SECRET`` would otherwise redact the key and turn a block into a
  redaction (the key still never leaves, but the audit shows the weaker action).
* **Fail closed.** A guard that raises (a broken detector) yields a block in the composite; a
  misconfiguration (`UserError`) propagates.
* **Raw PII is judged by recipient, not by provenance.** The gateway masks PII as it enters a
  run, so raw PII in an answer has leaked past masking (an unmasked tool result, say). That it
  also appears in a source says nothing about who may read it: a CRM lookup returns other
  customers' e-mails too. So there is no "allow what the sources contain" switch; the entity
  types this answer's recipient may read in clear are `OutputContext.allowed_pii`.
* **Reasons never repeat what they guard.** A secret or PII value appears as a preview such as
  ``sk-…f3a9``; schema errors give paths and expectations, never the offending value.
  Fabricated identifiers are quoted whole: by definition they came from no source.
"""

from __future__ import annotations

import bisect
import json
import logging
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import cached_property, lru_cache
from itertools import islice
from types import MappingProxyType
from typing import Any, Final, Literal, Protocol

import jsonschema
from jsonschema.exceptions import SchemaError
from jsonschema.protocols import Validator
from pydantic import BaseModel, ValidationError

from bosun.errors import UserError
from bosun.tools.privacy import PLACEHOLDER

__all__ = [
    "Action",
    "DEFAULT_IDENTIFIERS",
    "Detector",
    "Finding",
    "GroundingGuard",
    "Guardrail",
    "GuardrailVerdict",
    "Guardrails",
    "OutputContext",
    "PiiGuard",
    "SchemaGuard",
    "SecretsGuard",
    "SpanLike",
]

logger = logging.getLogger(__name__)

Action = Literal["allow", "redact", "escalate", "block"]
"""What to do with an output, least severe first."""

_SEVERITY: Final[dict[str, int]] = {"allow": 0, "redact": 1, "escalate": 2, "block": 3}
_MAX_REASONS: Final = 20
"""Reasons listed per verdict; a hostile output with 10,000 findings gets a count, not a wall."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Finding:
    """One thing a guard found in the output."""

    kind: str
    """``EMAIL_ADDRESS``, ``AWS_ACCESS_KEY``, ``order_id``... the detector's or pattern's name."""
    preview: str
    """A masked preview for secrets and PII (``sk-…f3a9``); the value itself for identifiers."""
    start: int
    """Offset in the text this guard checked (earlier redactions shift later offsets)."""
    end: int
    """End offset, exclusive."""


@dataclass(frozen=True, kw_only=True)
class GuardrailVerdict:
    """One guard's decision on one output."""

    guardrail: str
    """The guard's name."""
    action: Action
    """allow: send it; redact: send `text` instead; escalate: hand to a person; block: refuse."""
    reasons: tuple[str, ...] = ()
    """Why, one line per finding; safe to log (no secret or PII in full)."""
    text: str | None = None
    """The output with redactions applied; None when nothing was redacted."""
    findings: tuple[Finding, ...] = ()
    """What was found, with spans; empty on the composite (see `results`)."""
    results: tuple[GuardrailVerdict, ...] = ()
    """The composite's member verdicts, in order; empty on a single guard."""


@dataclass(frozen=True, kw_only=True)
class OutputContext:
    """What a guard may check an output against."""

    sources: tuple[str, ...] = ()
    """Texts the output may draw on: the run's input and its tool results (JSON dumps are fine)."""
    schema: type[BaseModel] | Mapping[str, Any] | None = None
    """For a structured output: a pydantic model or a JSON schema. None: free text."""
    allowed_pii: frozenset[str] = frozenset()
    """PII entity types this output's recipient may read in clear (e.g. their own e-mail)."""

    @cached_property
    def _haystack(self) -> str:
        return "\n".join(self.sources).casefold()

    @cached_property
    def _compact_haystack(self) -> str:
        return _WHITESPACE.sub("", self._haystack)

    @cached_property
    def _numbers(self) -> frozenset[Decimal]:
        numbers: set[Decimal | None] = set()
        for token in set(_NUMBER.findall(self._haystack)):
            if "," in token:  # "1,234.5", or a list printed without spaces: "[1,2,3]"
                numbers.update(map(_to_decimal, token.split(",")))
            numbers.add(_to_decimal(token))
        numbers.discard(None)
        return frozenset(n for n in numbers if n is not None)


class Guardrail(Protocol):
    """Checks one output before it leaves."""

    @property
    def name(self) -> str:
        """Names the guard in verdicts, traces and the audit log."""
        ...

    def check(self, output: str, ctx: OutputContext) -> GuardrailVerdict:
        """Decide on `output`; return data, never raise for bad content."""
        ...


class SpanLike(Protocol):
    """A detected span, as `bosun.gateway.pii.PiiSpan` has it."""

    @property
    def entity(self) -> str: ...
    @property
    def start(self) -> int: ...
    @property
    def end(self) -> int: ...


class Detector(Protocol):
    """Finds PII or secrets in text (e.g. `bosun.gateway.pii.PiiDetector`)."""

    def detect(self, text: str) -> Sequence[SpanLike]:
        """Every span found in `text`."""
        ...


class Guardrails:
    """Several guards as one: runs each in order, redactions chained, most severe action wins."""

    def __init__(self, guardrails: Sequence[Guardrail], *, name: str = "guardrails") -> None:
        self.name = name
        self.guardrails = tuple(guardrails)
        """The guards, in the order they run."""

    def check(self, output: str, ctx: OutputContext) -> GuardrailVerdict:
        text, redacted = output, False
        results: list[GuardrailVerdict] = []
        for guard in self.guardrails:
            try:
                verdict = guard.check(text, ctx)
            except UserError:
                raise
            except Exception as exc:  # a broken guard must not wave the output through
                logger.exception("guardrail %s failed", guard.name)
                reason = f"guardrail failed ({type(exc).__name__}); output held"
                verdict = GuardrailVerdict(guardrail=guard.name, action="block", reasons=(reason,))
            results.append(verdict)
            if verdict.action == "redact" and verdict.text is not None:
                text, redacted = verdict.text, True
        action: Action = max(
            (v.action for v in results), key=_SEVERITY.__getitem__, default="allow"
        )
        return GuardrailVerdict(
            guardrail=self.name,
            action=action,
            reasons=tuple(f"{v.guardrail}: {r}" for v in results for r in v.reasons),
            text=text if redacted else None,
            results=tuple(results),
        )


# --- PII and secrets --------------------------------------------------------------------------


class PiiGuard:
    """Raw PII in the output; placeholders (``<EMAIL_1>``) pass, they reveal nothing.

    `entities` limits the guard to some entity types (None: all the detector reports). A redacted
    value becomes ``[REDACTED:EMAIL_ADDRESS]``.
    """

    def __init__(
        self,
        detector: Detector,
        *,
        action: Action = "redact",
        entities: Collection[str] | None = None,
        name: str = "pii",
    ) -> None:
        self.name = name
        self.detector = detector
        self.action: Action = action
        """What raw PII gets."""
        self.entities = None if entities is None else frozenset(entities)
        """The entity types this guard acts on; None: every type the detector reports."""

    def check(self, output: str, ctx: OutputContext) -> GuardrailVerdict:
        held = _placeholder_spans(output)
        spans = [
            (s.start, s.end, s.entity)
            for s in self.detector.detect(output)
            if (self.entities is None or s.entity in self.entities)
            and s.entity not in ctx.allowed_pii
            and not _inside(held, s.start, s.end)
        ]
        return _span_verdict(self.name, self.action, output, spans)


class SecretsGuard:
    """API keys, tokens, private keys and passwords in the output.

    A built-in table of well-known formats runs unless ``builtin=False``; a `detector` adds its
    spans of the `entities` types (``SECRET`` for `bosun.gateway.pii.PiiDetector`).
    """

    def __init__(
        self,
        detector: Detector | None = None,
        *,
        action: Action = "block",
        entities: Collection[str] = ("SECRET",),
        builtin: bool = True,
        name: str = "secrets",
    ) -> None:
        self.name = name
        self.detector = detector
        self.action: Action = action
        """What a secret gets."""
        self.entities = frozenset(entities)
        """The detector's entity types that count as secrets."""
        self.builtin = builtin
        """Whether the built-in table of well-known formats runs."""

    def check(self, output: str, ctx: OutputContext) -> GuardrailVerdict:
        spans: list[tuple[int, int, str]] = []
        if self.builtin:
            spans.extend(_builtin_secrets(output))
        if self.detector is not None:
            spans.extend(
                (s.start, s.end, s.entity)
                for s in self.detector.detect(output)
                if s.entity in self.entities
            )
        return _span_verdict(self.name, self.action, output, spans)


_SECRET_PATTERNS: Final[tuple[tuple[str, tuple[str, ...], re.Pattern[str]], ...]] = tuple(
    (kind, hints, re.compile(pattern))
    for kind, hints, pattern in (
        (
            "PRIVATE_KEY",
            ("private key-----",),
            r"-----BEGIN[A-Z ]{0,30}PRIVATE KEY-----"
            r"[\s\S]*?(?:-----END[A-Z ]{0,30}PRIVATE KEY-----|\Z)",
        ),
        (
            "AWS_ACCESS_KEY",
            ("akia", "asia", "abia", "acca"),
            r"\b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b",
        ),
        (
            "GITHUB_TOKEN",
            ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
            r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})",
        ),
        ("ANTHROPIC_API_KEY", ("sk-ant-",), r"\bsk-ant-[A-Za-z0-9_-]{20,}"),
        ("OPENAI_API_KEY", ("sk-",), r"\bsk-(?!ant-)(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}"),
        ("STRIPE_KEY", ("k_live_", "k_test_"), r"\b[rs]k_(?:live|test)_[A-Za-z0-9]{16,}"),
        ("SLACK_TOKEN", ("xox",), r"\bxox[abposr]-[A-Za-z0-9-]{10,}"),
        ("GOOGLE_API_KEY", ("aiza",), r"\bAIza[0-9A-Za-z_-]{35}"),
        ("JWT", ("eyj",), r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
        ("BEARER_TOKEN", ("bearer",), r"(?i)\bbearer\s+(?P<value>[A-Za-z0-9._~+/-]{20,}=*)"),
        (
            "URL_PASSWORD",
            ("://",),
            r"\b[a-z][a-z0-9+.-]{1,20}://[^\s:/@]{1,100}:(?P<value>[^\s@/]{3,})@",
        ),
        (
            "PASSWORD",
            ("key", "secret", "token", "passw", "pwd"),
            r"(?i)(?:api[_-]?key|secret|token|passw(?:or)?d|pwd)[\w-]{0,20}"
            r"[\"']?\s{0,5}[:=]\s{0,5}[\"']?(?P<value>[^\s\"'`,;<>]{8,})",
        ),
    )
)
"""Formats with a fixed prefix or shape (after gitleaks' rules), so false positives stay rare.
Where a pattern has a ``value`` group, only that part is a secret (``password: [REDACTED…]``).
A pattern runs only when one of its hints is in the casefolded text: a substring test costs a
microsecond, a regex that starts with ``\b`` over 10 KB a hundred."""


def _builtin_secrets(text: str) -> list[tuple[int, int, str]]:
    folded = text.casefold()
    spans = []
    for kind, hints, pattern in _SECRET_PATTERNS:
        if not any(hint in folded for hint in hints):
            continue
        for match in pattern.finditer(text):
            if "value" not in pattern.groupindex:
                spans.append((match.start(), match.end(), kind))
            elif _looks_secret(match.group("value")):
                spans.append((match.start("value"), match.end("value"), kind))
    return spans


def _looks_secret(value: str) -> bool:
    """A value after ``password:`` is taken for a secret when it has letters and digits, or is
    long and mixes cases: that rules out prose (``secret: confidential``), counts (``tokens:
    12345678``), masks (``********``) and earlier redactions (``[REDACTED:PASSWORD]``).
    Placeholders (``<PASSWORD_1>``) never match: the value may not contain ``<``."""
    letters, digits = any(c.isalpha() for c in value), any(c.isdigit() for c in value)
    mixed_case = any(c.islower() for c in value) and any(c.isupper() for c in value)
    return (letters and digits) or (len(value) >= 16 and mixed_case)


def _span_verdict(
    name: str, action: Action, text: str, spans: list[tuple[int, int, str]]
) -> GuardrailVerdict:
    """The verdict of a span-finding guard: findings, reasons with previews, redacted text."""
    merged = _merge(spans)
    if not merged:
        return GuardrailVerdict(guardrail=name, action="allow")
    findings = tuple(
        Finding(kind=kind, preview=_preview(text[start:end]), start=start, end=end)
        for start, end, kind in merged
    )
    redacted = None
    if action == "redact":
        parts: list[str] = []
        last = 0
        for start, end, kind in merged:
            parts += (text[last:start], f"[REDACTED:{kind}]")
            last = end
        redacted = "".join([*parts, text[last:]])
    reasons = _capped([f"{f.kind} in output ({f.preview})" for f in findings])
    return GuardrailVerdict(
        guardrail=name, action=action, reasons=reasons, text=redacted, findings=findings
    )


def _merge(spans: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """Overlapping spans as one, named by the span that starts first (the longest on a tie)."""
    merged: list[tuple[int, int, str]] = []
    for start, end, kind in sorted(spans, key=lambda s: (s[0], -s[1])):
        if end <= start:
            continue
        if merged and start < merged[-1][1]:
            prev = merged[-1]
            merged[-1] = (prev[0], max(prev[1], end), prev[2])
        else:
            merged.append((start, end, kind))
    return merged


def _placeholder_spans(text: str) -> list[tuple[int, int]]:
    if "<" not in text:
        return []
    return [m.span() for m in PLACEHOLDER.finditer(text)]


def _inside(spans: list[tuple[int, int]], start: int, end: int) -> bool:
    """`start:end` lies within one of `spans` (sorted, disjoint)."""
    at = bisect.bisect_right(spans, start, key=lambda span: span[0]) - 1
    return at >= 0 and spans[at][0] <= start and end <= spans[at][1]


def _preview(value: str) -> str:
    """Enough of a value to recognise it in a log, too little to use it."""
    if len(value) < 8:
        shown = "…"
    elif len(value) < 16:
        shown = f"{value[:2]}…"
    else:
        shown = f"{value[:3]}…{value[-4:]}"
    return "".join(c if c.isprintable() else "?" for c in shown)


def _capped(reasons: list[str]) -> tuple[str, ...]:
    if len(reasons) <= _MAX_REASONS:
        return tuple(reasons)
    return (*reasons[:_MAX_REASONS], f"… and {len(reasons) - _MAX_REASONS} more")


# --- grounding --------------------------------------------------------------------------------

_WHITESPACE: Final = re.compile(r"\s+")
_NUMBER: Final = re.compile(r"\d+(?:[.,]\d+)*")
_AMOUNT: Final = r"\d+(?:[.,]\d+)*"
_LABEL: Final = r"\s*(?:#|no\.?|number|id)?\s*:?\s*"

# Each pattern starts with a literal or a small character class and checks the word boundary
# with a look-behind after it: a pattern that starts with \b or (?i) cannot use re's fast scan
# for its first character and costs 2-4 times more on a long output.
DEFAULT_IDENTIFIERS: Final[Mapping[str, tuple[str, ...]]] = MappingProxyType(
    {
        "order_id": (r"#(?P<id>[A-Z]{1,3}\d{5,})\b",),
        "reference": (r"\b(?:ORD|ORDER|TKT|TICKET|INV|CASE|REF|RMA)-\d{3,}\b",),
        "order_number": (rf"[Oo](?<![^\W_][Oo])rder{_LABEL}(?P<id>\d{{5,}})\b",),
        "ticket": (rf"[Tt](?<![^\W_][Tt])icket{_LABEL}(?P<id>\d{{3,}})\b",),
        "account": (rf"[Aa](?<![^\W_][Aa])ccount{_LABEL}(?P<id>\d{{6,}})\b",),
        "iban": (r"[A-Z]{2}(?<![^\W_][A-Z]{2})\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b",),
        "amount": (
            rf"[$€£¥]\s?(?P<amount>{_AMOUNT})",
            r"(?P<amount>\d(?<![\d.,]\d)[\d.,]*)(?<=\d)\s?"
            r"(?:USD|EUR|GBP|CHF|JPY|CAD|AUD|dollars?|euros?|pounds?)\b",
            rf"(?:USD|EUR|GBP|CHF)(?<![^\W_]...)\s?(?P<amount>{_AMOUNT})",
        ),
    }
)
"""The identifiers `GroundingGuard` looks for unless given others."""


class GroundingGuard:
    """Identifiers in the output (order ids, tickets, amounts) that appear in no source.

    `patterns` maps a kind to one regex or several. The first named group that matched is the
    identifier: a group named ``amount…`` is compared as a number (``$1,234.50`` equals
    ``1234.5``), any other as a case-insensitive token (``w1234567`` equals ``#W1234567`` in a
    source). A pattern without named groups compares its whole match.
    """

    def __init__(
        self,
        patterns: Mapping[str, str | Sequence[str]] | None = None,
        *,
        action: Action = "escalate",
        name: str = "grounding",
    ) -> None:
        if action == "redact":
            raise UserError("GroundingGuard cannot redact; use allow, escalate or block")
        self.name = name
        self.action: Action = action
        """What an output with an ungrounded identifier gets."""
        chosen = DEFAULT_IDENTIFIERS if patterns is None else patterns
        self.patterns = [
            (kind, re.compile(pattern))
            for kind, some in chosen.items()
            for pattern in ((some,) if isinstance(some, str) else some)
        ]
        """(kind, compiled pattern) pairs, in the order they run."""

    def check(self, output: str, ctx: OutputContext) -> GuardrailVerdict:
        seen: set[tuple[str, str | Decimal]] = set()
        findings: list[Finding] = []
        for kind, pattern in self.patterns:
            for match in pattern.finditer(output):
                group = next((g for g, v in match.groupdict().items() if v is not None), None)
                value = match.group(group or 0)
                key: str | Decimal | None = (
                    _to_decimal(value) if group and group.startswith("amount") else value
                )
                if key is None or (kind, key) in seen:
                    continue
                seen.add((kind, key))
                if not _grounded(key, ctx):
                    start, end = match.span(group or 0)
                    findings.append(Finding(kind=kind, preview=value[:64], start=start, end=end))
        if not findings:
            return GuardrailVerdict(guardrail=self.name, action="allow")
        findings.sort(key=lambda f: f.start)
        reasons = _capped(
            [f"{f.kind} {f.preview!r} appears in no tool result or input" for f in findings]
        )
        return GuardrailVerdict(
            guardrail=self.name, action=self.action, reasons=reasons, findings=tuple(findings)
        )


def _grounded(key: str | Decimal, ctx: OutputContext) -> bool:
    if isinstance(key, Decimal):
        return abs(key) in ctx._numbers
    needle = _WHITESPACE.sub(" ", key).casefold()
    if _has_token(ctx._haystack, needle):
        return True
    # IBANs and long account numbers are written with and without spaces
    compact = _WHITESPACE.sub("", needle)
    return (" " in needle or len(compact) >= 12) and compact in ctx._compact_haystack


def _has_token(haystack: str, needle: str) -> bool:
    """`needle` occurs in `haystack` with no letter or digit glued to either side."""
    at = haystack.find(needle)
    while at != -1:
        end = at + len(needle)
        before = haystack[at - 1] if at else " "
        after = haystack[end] if end < len(haystack) else " "
        if not before.isalnum() and not after.isalnum():
            return True
        at = haystack.find(needle, at + 1)
    return False


def _to_decimal(token: str) -> Decimal | None:
    """``1,234.50``, ``1.234,50``, ``20,00`` and ``1234.5`` as numbers; None if it is none.
    The separator written last is the decimal one when both appear; a lone comma is decimal
    before one or two digits (``20,50``), a thousands separator before three (``1,234``)."""
    if "," in token and "." in token:
        decimal_sep = "," if token.rfind(",") > token.rfind(".") else "."
        thousands = "." if decimal_sep == "," else ","
        token = token.replace(thousands, "").replace(decimal_sep, ".")
    elif "," in token:
        head, _, tail = token.rpartition(",")
        token = f"{head.replace(',', '')}.{tail}" if len(tail) <= 2 else token.replace(",", "")
    elif token.count(".") > 1:
        token = token.replace(".", "")
    try:
        return abs(Decimal(token))
    except InvalidOperation:
        return None


# --- schema -----------------------------------------------------------------------------------


class SchemaGuard:
    """A structured output must be JSON that validates against `OutputContext.schema`.

    No schema: allow. Outputs over `max_chars` are refused unparsed. Reasons give the JSON paths
    and what was expected, never the values.
    """

    def __init__(
        self, *, action: Action = "block", max_chars: int = 1_000_000, name: str = "schema"
    ) -> None:
        if action == "redact":
            raise UserError("SchemaGuard cannot redact; use allow, escalate or block")
        self.name = name
        self.action: Action = action
        """What an invalid output gets."""
        self.max_chars = max_chars
        """Longer outputs are refused without parsing."""

    def check(self, output: str, ctx: OutputContext) -> GuardrailVerdict:
        if ctx.schema is None:
            return GuardrailVerdict(guardrail=self.name, action="allow")
        if len(output) > self.max_chars:
            errors = [f"output is {len(output)} characters, over the limit of {self.max_chars}"]
        elif isinstance(ctx.schema, type):
            errors = _pydantic_errors(ctx.schema, output)
        else:
            errors = _jsonschema_errors(ctx.schema, output)
        if not errors:
            return GuardrailVerdict(guardrail=self.name, action="allow")
        return GuardrailVerdict(guardrail=self.name, action=self.action, reasons=_capped(errors))


def _pydantic_errors(model: type[BaseModel], output: str) -> list[str]:
    try:
        model.model_validate_json(output)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False, include_context=False)
        # an extra property's name came from the output: name its parent, as jsonschema does
        return [
            f"{_path(e['loc'][:-1])}: unexpected property"
            if e["type"] == "extra_forbidden"
            else f"{_path(e['loc'])}: {e['msg']}"
            for e in errors
        ]
    return []


def _jsonschema_errors(schema: Mapping[str, Any], output: str) -> list[str]:
    validator = _validator(json.dumps(schema, sort_keys=True, default=str))
    try:
        instance = json.loads(output)
    except json.JSONDecodeError as exc:
        return [f"output is not JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"]
    except RecursionError:
        return ["output is not JSON bosun will read: nested too deeply"]
    try:
        # a hostile output can fail a million times; the first hundred say enough
        errors = list(islice(validator.iter_errors(instance), 100))
    except RecursionError:
        return ["output is nested too deeply to validate"]
    errors.sort(key=lambda e: [str(p) for p in e.absolute_path])
    return [f"{_path(e.absolute_path)}: {_expected(e)}" for e in errors]


@lru_cache(maxsize=64)
def _validator(schema_json: str) -> Validator:
    """A validator per distinct schema: checking a schema costs more than most validations."""
    schema = json.loads(schema_json)
    validator_class = jsonschema.validators.validator_for(schema)
    try:
        validator_class.check_schema(schema)
    except SchemaError as exc:
        raise UserError(f"OutputContext.schema is not a valid JSON schema: {exc.message}") from exc
    return validator_class(schema)


def _expected(error: jsonschema.ValidationError) -> str:
    """What the schema wanted, said from the schema's side so that no output value is echoed."""
    keyword, wanted = error.validator, error.validator_value
    if keyword == "type":
        return f"expected {' or '.join(wanted) if isinstance(wanted, list) else wanted}"
    if keyword == "required" and isinstance(error.instance, dict):
        missing = [p for p in wanted if p not in error.instance] if isinstance(wanted, list) else []
        return f"missing required {', '.join(map(repr, missing))}"
    if keyword in ("enum", "const", "additionalProperties", "oneOf", "anyOf", "not"):
        return f"does not satisfy {keyword}"
    shown = json.dumps(wanted, default=str)
    return f"does not satisfy {keyword}={shown if len(shown) <= 60 else shown[:57] + '...'}"


def _path(loc: Sequence[Any]) -> str:
    """``$.items[0].qty``; a key that is not a short plain name (a ``dict`` key from the output,
    say) shows as ``[…]``: it may be anything, a secret included."""
    return "$" + "".join(
        f"[{p}]"
        if isinstance(p, int)
        else f".{p}"
        if str(p).isidentifier() and len(str(p)) <= 32
        else "[…]"
        for p in loc
    )
