"""What every output guard shares, and the composite that runs them as one.

The types a guard speaks (`Action`, `Finding`, `GuardrailVerdict`, `OutputContext`), the
protocols of a guard and of a PII or secret detector, `Guardrails` (the composite: severity,
chained redactions, fail closed; see the package docstring), and two helpers every guard's
verdicts use: a cap on the reasons listed, and numbers read the same way from an output as
from its sources (`to_decimal`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import cached_property
from typing import Any, Final, Literal, Protocol

from pydantic import BaseModel

from bosun.errors import UserError

__all__ = [
    "Action",
    "Detector",
    "Finding",
    "Guardrail",
    "GuardrailVerdict",
    "Guardrails",
    "OutputContext",
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
        return WHITESPACE.sub("", self._haystack)

    @cached_property
    def _numbers(self) -> frozenset[Decimal]:
        numbers: set[Decimal | None] = set()
        for token in set(_NUMBER.findall(self._haystack)):
            if "," in token:  # "1,234.5", or a list printed without spaces: "[1,2,3]"
                numbers.update(map(to_decimal, token.split(",")))
            numbers.add(to_decimal(token))
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


def capped(reasons: list[str]) -> tuple[str, ...]:
    if len(reasons) <= _MAX_REASONS:
        return tuple(reasons)
    return (*reasons[:_MAX_REASONS], f"… and {len(reasons) - _MAX_REASONS} more")


WHITESPACE: Final = re.compile(r"\s+")
_NUMBER: Final = re.compile(r"\d+(?:[.,]\d+)*")


def to_decimal(token: str) -> Decimal | None:
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
