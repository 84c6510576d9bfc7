"""What a summary must keep word for word, found by code rather than asked of a model.

A summary may paraphrase anything except what someone will act on: decisions, commitments,
amounts, ids, dates, contact details and open questions. `extract` finds them in text;
`missing` says which of them a summary lost, so `bosun.memory.summary` can put them back
verbatim. The same atoms (ids, amounts, dates, contacts) survive the pruning of stale tool
output (`bosun.memory.pruning`).

The patterns are deliberately plain (this is not NLP): a sentence is a commitment when it
says "we will" / "I'll" / "we promise", a decision when it says decided / agreed / approved
/ refused, a question when it ends with "?". They over-keep rather than under-keep.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["ATOMS", "Kept", "extract", "kept_section", "missing"]

Kind = Literal["decision", "commitment", "question", "amount", "id", "date", "contact"]

ATOMS: tuple[Kind, ...] = ("amount", "id", "date", "contact")
"""Kinds that are single tokens rather than sentences."""

_NUMBER = r"\d{1,3}(?:[,.\u202f ]\d{3})*(?:[.,]\d{1,2})?|\d+(?:[.,]\d{1,2})?"
_CODES = r"EUR|USD|GBP|CHF|JPY|CAD|AUD|SEK|NOK|DKK|PLN"
_MONTHS = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)[a-z]*\.?"
_ATOM_SOURCES: tuple[tuple[Kind, str], ...] = (
    (
        "amount",
        rf"(?:[€$£¥]\s?(?:{_NUMBER})"
        rf"|(?<![\w.])(?:{_NUMBER})\s?(?:[€$£¥]|(?:{_CODES})\b)"
        rf"|\b(?:{_CODES})\s?(?:{_NUMBER}))",
    ),
    # Letters, a dash, then letters/digits with at least one digit: A-1001, INV-2024-17.
    ("id", r"\b[A-Z]{1,8}(?:-[A-Z0-9]+)*-(?=[A-Z0-9]*\d)[A-Z0-9]+\b|#\d{3,}\b"),
    (
        "date",
        rf"\b\d{{4}}-\d{{2}}-\d{{2}}\b|\b\d{{1,2}}/\d{{1,2}}/\d{{2,4}}\b"
        rf"|\b\d{{1,2}}(?:st|nd|rd|th)? {_MONTHS},? \d{{4}}\b"
        rf"|\b{_MONTHS} \d{{1,2}}(?:st|nd|rd|th)?,? \d{{4}}\b",
    ),
    # An address starts where a run of address characters starts (the look-behind keeps
    # the engine from retrying inside every word); a PII placeholder stands for one.
    (
        "contact",
        r"(?<![A-Za-z0-9._%+'-])[A-Za-z0-9._%+'-]{1,64}@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
        r"\.[A-Za-z]{2,}|<[A-Z][A-Z_]*_\d{1,6}>",
    ),
)

# Sentence ends, paragraph breaks, and header-like lines ("Subject: ..."); a single line
# break is not an end: mail is wrapped mid-sentence.
_SENTENCE_END = r"(?<=[.!?])\s+(?=[\"'(\[A-Z0-9<€$£])|\n\s*\n|\n(?=[A-Z][\w-]{0,30}: )"
_COMMITMENT = (
    r"\b(?:we|i)(?:'ll| will| shall| are going to| am going to| promise| commit| guarantee)\b"
)
_DECISION = r"\b(?:decided|agreed|approved|refused|rejected|declined|denied|confirmed|cancelled)\b"
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class _Patterns:
    atoms: tuple[tuple[Kind, re.Pattern[str]], ...]
    sentence_end: re.Pattern[str]
    commitment: re.Pattern[str]
    decision: re.Pattern[str]


@functools.cache
def _patterns() -> _Patterns:
    # Compiled on first use, not at import: the runtime imports this module in every
    # process (workers restart often), most of which never summarise anything.
    return _Patterns(
        atoms=tuple((kind, re.compile(source)) for kind, source in _ATOM_SOURCES),
        sentence_end=re.compile(_SENTENCE_END),
        commitment=re.compile(_COMMITMENT, re.IGNORECASE),
        decision=re.compile(_DECISION, re.IGNORECASE),
    )


_MAX_SENTENCE = 400


@dataclass(frozen=True, slots=True)
class Kept:
    """One item a summary must keep word for word."""

    kind: Kind
    """What it is: a decision, commitment, question (sentences) or an atom."""
    text: str
    """The exact text, whitespace collapsed."""

    def to_json(self) -> dict[str, str]:
        """The stored form."""
        return {"kind": self.kind, "text": self.text}

    @classmethod
    def from_json(cls, data: Any) -> Kept:
        """Read back a stored item."""
        return cls(kind=data["kind"], text=str(data["text"]))


def extract(text: str, *, atoms_only: bool = False) -> list[Kept]:
    """Every item of `text` to keep, in order of kind then position, without repeats."""
    found: list[Kept] = []
    patterns = _patterns()
    if not atoms_only:
        for sentence in _sentences(text, patterns.sentence_end):
            if sentence.endswith("?"):
                found.append(Kept("question", sentence))
            elif patterns.commitment.search(sentence):
                found.append(Kept("commitment", sentence))
            elif patterns.decision.search(sentence):
                found.append(Kept("decision", sentence))
    digits = any(c in text for c in "0123456789")
    for kind, pattern in patterns.atoms:
        if kind == "contact" and "@" not in text and "<" not in text:
            continue
        if kind != "contact" and not digits:
            continue
        found += [Kept(kind, _SPACE.sub(" ", m.group(0)).strip()) for m in pattern.finditer(text)]
    order = {"decision": 0, "commitment": 1, "question": 2, "amount": 3, "id": 4, "date": 5}
    unique = dict.fromkeys(found)
    return sorted(unique, key=lambda k: order.get(k.kind, 6))


def missing(items: Iterable[Kept], summary: str) -> list[Kept]:
    """The `items` whose text does not occur in `summary` (whitespace-insensitively)."""
    haystack = _SPACE.sub(" ", summary)
    return [item for item in dict.fromkeys(items) if item.text not in haystack]


def kept_section(items: Sequence[Kept]) -> str:
    """The structured block appended to a summary for the items it lost."""
    lines = [f"- {item.kind}: {item.text}" for item in items]
    return "Kept verbatim:\n" + "\n".join(lines)


def _sentences(text: str, end: re.Pattern[str]) -> list[str]:
    out = []
    for raw in end.split(text):
        sentence = _SPACE.sub(" ", raw).strip(" -*>\t")
        if 3 <= len(sentence) <= _MAX_SENTENCE:
            out.append(sentence)
    return out
