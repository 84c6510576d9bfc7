"""How far an answer is supported by the passages it was drawn from: citations and confidence.

```
answer ──sentences──> content tokens ─┐
passages ──────────────> content tokens ┴─ overlap >= support -> sentence supported by passage
grounding  = supported sentences / checked sentences
retrieval  = best relevance (cosine to the query, 0..1) among the passages cited
confidence = grounding * min(1, retrieval / relevant)          (relevant: 0.5 by default)
```

Full confidence needs every claim found in a passage, and that passage about the question:
an answer copied from an article on something else (the knowledge base's nearest miss for a
question it does not cover) is grounded but not confident.

Deliberately simple, so a person can redo it by hand from the handoff package:

* A *sentence* is text between ``.``, ``!``, ``?`` or a line break. Sentences with fewer
  than `ConfidencePolicy.min_tokens` content tokens ("Best regards") and lines ending in a
  comma or a colon (salutations: "Hello again Emma Wilson,", "Hola Carlos:") are not
  checked: they claim nothing.
* A *content token* is a word of three or more letters or digits, case-folded, not a common
  English, Spanish or German function word, a final "s" dropped, cut to its first six
  characters (a crude stem: "refunds" and "refunded" meet at "refund", "keys" and "key",
  "Rückerstattung" and "Rückerstattungen" too).
* A sentence is *supported* by a passage when at least `ConfidencePolicy.support` of its
  content tokens occur in the passage.
* A passage is *cited* when it supports a sentence, or when the answer names its reference
  (``[kb:12]``) explicitly.

Token overlap cannot tell "refunds take 5 days" from "refunds never take 5 days": it catches
answers made of words the passages never contained (an invented policy, a question the
knowledge base does not cover), not subtle contradictions. Pair it with a person reviewing
what is escalated, or plug in a stronger check (an NLI model, an LLM judge) in its place.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bosun.errors import UserError

__all__ = ["Assessment", "ConfidencePolicy", "Passage", "assess", "content_tokens"]

_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
_WORD = re.compile(r"\w{3,}")
_REF = re.compile(r"\[(kb:\d+)\]")
_STEM = 6
_ENGLISH = (
    "the and for are but not you your yours with this that these those have has had was were "
    "will would can could should may might our ours out all any from into onto about over "
    "than then them they their there here what when where which who whom why how its it's "
    "been being also just only very more most such some each per via yes please thanks "
    "thank hello dear regards best"
)
_SPANISH = (
    "los las una uno unos unas del por para con sin que como más pero sus suyo este esta "
    "estos estas ese esa eso hay muy ser son fue era está están usted ustedes nos nuestro "
    "nuestra hola gracias saludos"
)
_GERMAN = (
    "der die das den dem des ein eine einen einem einer und oder aber mit von für auf aus "
    "bei nach ist sind war wird werden kann können sie ihr ihre ihnen wir uns unser unsere "
    "nicht auch noch nur wie was wenn dass hallo danke grüße"
)
_STOPWORDS = frozenset(f"{_ENGLISH} {_SPANISH} {_GERMAN}".split())


@dataclass(frozen=True, kw_only=True)
class ConfidencePolicy:
    """When an agent's answer is confident enough to leave without a person.

    Give it to `Agent(confidence=...)`: a run whose final answer scores below `threshold`
    is escalated instead of completed, with the passages in the handoff package.
    """

    threshold: float = 0.6
    """Answers scoring below this escalate (0 to 1)."""
    tool: str = "search_knowledge"
    """The tool whose results are the passages (`bosun.memory.knowledge`)."""
    always: bool = False
    """Check runs that never called `tool` too (they then score 0 and escalate). By default
    only answers drawn from the knowledge base are checked."""
    support: float = 0.5
    """Share of a sentence's content tokens a passage must contain to support it."""
    min_tokens: int = 3
    """Sentences with fewer content tokens are not checked."""
    relevant: float = 0.5
    """Relevance (cosine to the query) from which a cited passage counts as fully about the
    question; below it the confidence shrinks in proportion (MiniLM scores a passage that
    answers a question about 0.5 to 0.8, one on a neighbouring topic 0.1 to 0.3)."""

    def __post_init__(self) -> None:
        for name in ("threshold", "support", "relevant"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise UserError(f"ConfidencePolicy.{name} must be between 0 and 1")
        if self.min_tokens < 1:
            raise UserError("ConfidencePolicy.min_tokens must be at least 1")


@dataclass(frozen=True, slots=True, kw_only=True)
class Passage:
    """One passage a knowledge search returned, as its tool result carries it."""

    ref: str
    """How an answer cites it: ``kb:<chunk id>``."""
    document_id: str
    """The document (stable across versions)."""
    title: str
    """The document's title."""
    version: int
    """The document version the span refers to."""
    start: int
    """Span start (characters) in that version's text."""
    end: int
    """Span end, exclusive."""
    text: str
    """The passage text."""
    relevance: float
    """Cosine similarity to the query, clipped to 0..1 (0 when only keywords found it)."""
    corpus_version: int = 0
    """The corpus version the search ran against."""

    @classmethod
    def from_json(cls, value: Mapping[str, Any], *, corpus_version: int = 0) -> Passage:
        """From a `search_knowledge` result's passage."""
        span = value.get("span") or (0, 0)
        return cls(
            ref=str(value["ref"]),
            document_id=str(value["document_id"]),
            title=str(value.get("title", "")),
            version=int(value.get("version", 0)),
            start=int(span[0]),
            end=int(span[1]),
            text=str(value.get("text", "")),
            relevance=min(max(float(value.get("relevance") or 0.0), 0.0), 1.0),
            corpus_version=corpus_version,
        )

    def citation(self) -> dict[str, Any]:
        """The journaled citation (no text)."""
        return {
            "ref": self.ref,
            "document_id": self.document_id,
            "title": self.title,
            "version": self.version,
            "span": [self.start, self.end],
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Assessment:
    """What `assess` found."""

    confidence: float
    """0 to 1; see the module docstring."""
    grounding: float
    """Share of the checked sentences supported by some passage."""
    retrieval: float
    """Best relevance among the cited passages (0 when none is cited)."""
    checked: int
    """Sentences checked."""
    supported: int
    """Of which supported."""
    unsupported: tuple[str, ...]
    """The checked sentences no passage supports (first 80 characters of each)."""
    cited: tuple[Passage, ...]
    """The passages the answer draws on, best relevance first."""

    def to_json(self) -> dict[str, Any]:
        """The journaled form (citations without their text)."""
        return {
            "confidence": round(self.confidence, 4),
            "grounding": round(self.grounding, 4),
            "retrieval": round(self.retrieval, 4),
            "checked": self.checked,
            "supported": self.supported,
            "unsupported": list(self.unsupported),
            "citations": [p.citation() for p in self.cited],
        }


def content_tokens(text: str) -> frozenset[str]:
    """The stemmed content tokens of `text` (see the module docstring)."""
    words = (w for w in _WORD.findall(text.casefold()) if w not in _STOPWORDS)
    # A plural's "s" goes before the cut: "keys" and "key", "days" and "day" meet.
    return frozenset((w[:-1] if len(w) > 3 and w[-1] == "s" else w)[:_STEM] for w in words)


def assess(answer: str, passages: Sequence[Passage], policy: ConfidencePolicy) -> Assessment:
    """Score `answer` against `passages` (see the module docstring)."""
    unique = list({p.ref: p for p in passages}.values())
    tokens = [content_tokens(p.text) for p in unique]
    cited = {m.group(1) for m in _REF.finditer(answer)} & {p.ref for p in unique}
    checked = supported = 0
    unsupported: list[str] = []
    for sentence in _SENTENCE.split(_REF.sub(" ", answer)):
        words = content_tokens(sentence)
        if len(words) < policy.min_tokens or sentence.rstrip().endswith((",", ":")):
            continue
        checked += 1
        backing = [
            p.ref
            for p, have in zip(unique, tokens, strict=True)
            if len(words & have) >= policy.support * len(words)
        ]
        if backing:
            supported += 1
            cited.update(backing)
        else:
            unsupported.append(sentence.strip()[:80])
    chosen = sorted((p for p in unique if p.ref in cited), key=lambda p: -p.relevance)
    grounding = supported / checked if checked else 0.0
    retrieval = chosen[0].relevance if chosen else 0.0
    on_topic = min(1.0, retrieval / policy.relevant) if policy.relevant else 1.0
    return Assessment(
        confidence=grounding * on_topic,
        grounding=grounding,
        retrieval=retrieval,
        checked=checked,
        supported=supported,
        unsupported=tuple(unsupported),
        cited=tuple(chosen),
    )
