"""`PiiGuard`: raw PII in an output, judged by who reads it (see the package docstring)."""

from __future__ import annotations

import bisect
from collections.abc import Collection

from bosun.gateway.guardrails.base import Action, Detector, GuardrailVerdict, OutputContext
from bosun.gateway.guardrails.redaction import span_verdict
from bosun.tools.privacy import PLACEHOLDER

__all__ = ["PiiGuard"]


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
        return span_verdict(self.name, self.action, output, spans)


def _placeholder_spans(text: str) -> list[tuple[int, int]]:
    if "<" not in text:
        return []
    return [m.span() for m in PLACEHOLDER.finditer(text)]


def _inside(spans: list[tuple[int, int]], start: int, end: int) -> bool:
    """`start:end` lies within one of `spans` (sorted, disjoint)."""
    at = bisect.bisect_right(spans, start, key=lambda span: span[0]) - 1
    return at >= 0 and spans[at][0] <= start and end <= spans[at][1]
