"""`InjectionScreen`: the linear model over windows of segments, hidden and encoded content,
and the verdict; `Screening` is what it returns."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from functools import lru_cache
from itertools import repeat
from pathlib import Path
from typing import Any, Literal

from bosun.errors import ConfigError, UserError
from bosun.gateway.injection.decoding import MAX_BLOBS, decoded_views
from bosun.gateway.injection.embedding import Embedder, EmbeddingHead, chunks
from bosun.gateway.injection.features import normalize, segments, token_features
from bosun.gateway.injection.rules import RULES, rule_hits

__all__ = ["MIN_NORM", "MODEL_PATH", "WINDOW_WORDS", "InjectionScreen", "Screening"]

MODEL_PATH = Path(__file__).with_name("model.json")
"""The shipped weights and thresholds, written by ``scripts/train_injection.py``."""

WINDOW_WORDS = 40
"""A window grows segment by segment until it holds this many words."""

MIN_NORM = 16
"""Windows with fewer features are scaled as if they had this many: three words are weak
evidence either way."""

_HIDDEN_BOOST = 1.5
_ENCODED_BOOST = 1.0
_TAG_CHARS_LOGIT = 3.0

Verdict = Literal["clean", "suspicious", "injection"]


@dataclass(frozen=True)
class Screening:
    """What a screen found in one text."""

    score: float
    """Estimated chance (0..1) that the text carries an injection."""
    verdict: Verdict
    """``score`` against the screen's thresholds."""
    signals: tuple[str, ...]
    """Human-readable reasons, e.g. ``"hidden text: zero-width characters"``."""


_HIDDEN_HTML = re.compile(
    r"<(\w+)[^>]*?style\s*=\s*[\"'][^\"']*?(?:display\s*:\s*none|visibility\s*:\s*hidden"
    r"|font-size\s*:\s*0(?![.\d]*[1-9])|opacity\s*:\s*0(?![.\d]*[1-9])|color\s*:\s*(?:#fff"
    r"(?:fff)?|white|transparent)\b)[^>]*>(.{0,4000}?)</\1\s*>"
    r"|<!--(.{0,4000}?)-->",
    re.IGNORECASE | re.DOTALL,
)
_TAG = re.compile(r"<[^>]{0,200}>")


@dataclass(frozen=True)
class _Model:
    bias: float
    weights: dict[str, float]
    rules: dict[str, float]
    suspicious_at: float
    injection_at: float
    head: EmbeddingHead | None
    """The embedding layer's head, with its own thresholds (a blended score is another scale)."""
    head_suspicious_at: float
    head_injection_at: float


def _load(path: Path) -> _Model:
    """The model in `path`, parsed once per version of the file."""
    try:
        stat = path.stat()
    except OSError as exc:
        raise UserError(f"cannot read the injection model {path}: {exc}") from exc
    return _parse(path, stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=4)
def _parse(path: Path, mtime_ns: int, size: int) -> _Model:
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        learned: dict[str, float] = data["rules"]
        embedding: dict[str, Any] | None = data.get("embedding")
        head = None if embedding is None else EmbeddingHead.from_json(embedding)
        with_head = (embedding or {}).get("thresholds", data["thresholds"])
        return _Model(
            bias=float(data["bias"]),
            weights={k: float(v) for k, v in data["weights"].items()},
            rules={r.name: max(float(learned.get(r.name, 0.0)), r.prior) for r in RULES},
            suspicious_at=float(data["thresholds"]["suspicious_at"]),
            injection_at=float(data["thresholds"]["injection_at"]),
            head=head,
            head_suspicious_at=float(with_head["suspicious_at"]),
            head_injection_at=float(with_head["injection_at"]),
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UserError(f"cannot read the injection model {path}: {exc}") from exc


@dataclass(frozen=True)
class _Best:
    logit: float
    snippet: str
    hits: tuple[tuple[str, str], ...]


class InjectionScreen:
    """Scores text for prompt injection. Thread-safe; construct once and reuse."""

    def __init__(
        self,
        *,
        suspicious_at: float | None = None,
        injection_at: float | None = None,
        model_path: Path | None = None,
        embedder: Embedder | None = None,
    ) -> None:
        """Thresholds default to the calibrated ones shipped with the model (those calibrated
        for the blended score when an `embedder` is given)."""
        self._model = model = _load(model_path or MODEL_PATH)
        self.embedder = embedder
        """Turns on the embedding layer (`bosun.gateway.injection.embedding`); None: off."""
        if embedder is not None:
            if model.head is None:
                raise ConfigError(
                    f"the injection model {model_path or MODEL_PATH} has no embedding head; "
                    "refit it with scripts/train_injection.py --embed"
                )
            model.head.check(embedder)
        default_susp, default_inj = (
            (model.head_suspicious_at, model.head_injection_at)
            if embedder is not None
            else (model.suspicious_at, model.injection_at)
        )
        self.suspicious_at = default_susp if suspicious_at is None else suspicious_at
        """A score at or above this is ``suspicious``: flag it, tighten taint."""
        self.injection_at = default_inj if injection_at is None else injection_at
        """A score at or above this is ``injection``: block or escalate."""
        if not 0.0 < self.suspicious_at <= self.injection_at <= 1.0:
            raise UserError(
                "InjectionScreen needs 0 < suspicious_at <= injection_at <= 1, got "
                f"suspicious_at={self.suspicious_at}, injection_at={self.injection_at}"
            )

    def screen(self, text: str | bytes) -> Screening:
        """Score one text: an input, an email body, a retrieved document, a tool result.
        Bytes are read as UTF-8, invalid sequences replaced."""
        if isinstance(text, bytes):
            text = text.decode("utf-8", errors="replace")
        norm, signals, smuggled = normalize(text)
        best = self._score(norm)
        logit = best.logit
        if smuggled:
            logit = max(
                logit, _TAG_CHARS_LOGIT, self._score(normalize(" ".join(smuggled))[0]).logit
            )
        hidden = self._hidden(text, signals)
        encoded = self._encoded(text, norm, signals)
        logit = max(logit, hidden, encoded)
        from_words = logit == best.logit
        if self.embedder is not None and self._model.head is not None:
            semantic = self.embedding_logit(norm)
            if semantic > 0.0 and semantic > logit:
                signals.append("meaning close to known injections (embedding)")
            logit = self._model.head.join(logit, semantic)
        score = 1.0 / (1.0 + math.exp(-min(max(logit, -50.0), 50.0)))
        reasons = [f"{_REASONS[name]}: '{_clip(snippet)}'" for name, snippet in best.hits]
        if not best.hits and score >= self.suspicious_at and from_words:
            reasons.append(f"phrasing like known injections: '{_clip(best.snippet)}'")
        verdict: Verdict = "clean"
        if score >= self.injection_at:
            verdict = "injection"
        elif score >= self.suspicious_at:
            verdict = "suspicious"
        return Screening(score=score, verdict=verdict, signals=tuple(_dedupe(reasons + signals)))

    def embedding_logit(self, norm: str) -> float:
        """The embedding head's logit for the most suspicious chunk of normalised text."""
        head, embedder = self._model.head, self.embedder
        assert head is not None and embedder is not None
        pieces = chunks(segments(norm), norm)
        if not pieces:
            return head.bias
        return float(head.logits(embedder.embed(pieces)).max())

    def _score(self, norm: str) -> _Best:
        """The best window's logit, over every run of segments up to `WINDOW_WORDS` words."""
        model = self._model
        segs = segments(norm)
        if not segs:
            return _Best(model.bias, "", ())
        get = model.weights.get
        sums: list[float] = []
        counts: list[int] = []
        for _, _, tokens in segs:
            feats = token_features(tokens)
            sums.append(sum(map(get, feats, repeat(0.0))))
            counts.append(len(feats))
        hits = rule_hits(norm, segs)
        lengths = [len(tokens) for _, _, tokens in segs]
        weight = model.rules
        bias, sqrt, count = model.bias, math.sqrt, len(segs)
        best_logit, best_i, best_j = -math.inf, 0, 0
        # The hot loop of the screen (every window of every text): rule weights are added as
        # rules first appear in the window, and windows without rules skip that bookkeeping.
        for i in range(count):
            total, n, words, ruled = 0.0, 0, 0, 0.0
            seen: set[str] = set()
            for j in range(i, count):
                words += lengths[j]
                if words > WINDOW_WORDS and j > i:
                    break
                total += sums[j]
                n += counts[j]
                if hits[j]:
                    for name, _ in hits[j]:
                        if name not in seen:
                            seen.add(name)
                            ruled += weight[name]
                logit = bias + total / sqrt(n if n > MIN_NORM else MIN_NORM) + ruled
                if logit > best_logit:
                    best_logit, best_i, best_j = logit, i, j
        best = (best_logit, best_i, best_j)
        logit, i, j = best
        window_hits = tuple(h for k in range(i, j + 1) for h in hits[k])
        return _Best(logit, norm[segs[i][0] : segs[j][1]], window_hits)

    def _hidden(self, text: str, signals: list[str]) -> float:
        """Score CSS-hidden HTML and comments, boosted; -inf when there is none."""
        found = [m.group(2) or m.group(3) or "" for m in _HIDDEN_HTML.finditer(text)]
        if not found:
            return -math.inf
        signals.append("hidden text: HTML hidden by style or comment")
        content = _TAG.sub(" ", " \n".join(found[:MAX_BLOBS]))
        return self._score(normalize(content)[0]).logit + _HIDDEN_BOOST

    def _encoded(self, text: str, norm: str, signals: list[str]) -> float:
        """Score what encoded payloads decode to, boosted; -inf when there is none."""
        best = -math.inf
        for kind, plain in decoded_views(text, norm):
            logit = self._score(normalize(plain)[0]).logit
            prob = 1.0 / (1.0 + math.exp(-logit))
            what = "instructions" if prob >= self.suspicious_at else "text"
            signals.append(f"encoded payload: {kind} decodes to {what}")
            best = max(best, logit + _ENCODED_BOOST)
        return best


_REASONS = {r.name: r.reason for r in RULES}


def _clip(snippet: str, limit: int = 60) -> str:
    snippet = snippet.replace("\n", " ").strip()
    return snippet if len(snippet) <= limit else snippet[: limit - 1] + "…"


def _dedupe(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))
