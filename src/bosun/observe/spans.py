"""What a trace is made of: spans, their events, and the ids derived for them.

Ids are derived, not stored: the trace id from the run id (a sub-agent's from its root
ancestor's, so the whole tree is one trace), each span id from the run id and what the span
stands for. Deriving the same trace twice gives the same ids, so an export can be repeated.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "AttributeValue",
    "Span",
    "SpanEvent",
    "SpanKind",
    "SpanStatus",
    "Trace",
    "span_id_for",
    "trace_id_for",
]

AttributeValue = str | bool | int | float | tuple[str, ...]
"""What a span attribute holds (the OpenTelemetry primitive types bosun uses)."""

SpanKind = Literal["internal", "client"]
SpanStatus = Literal["unset", "error"]


@dataclass(frozen=True, slots=True)
class SpanEvent:
    """Something that happened at one instant inside a span (a deadline passing, say)."""

    name: str
    """What happened."""
    time: float
    """When (unix seconds)."""
    attributes: Mapping[str, AttributeValue] = field(default_factory=dict)
    """Its details."""


@dataclass(frozen=True, slots=True)
class Span:
    """One operation of a run: the run itself, a model call, a tool call, a wait, a check."""

    span_id: str
    """16 hex digits, derived from the run id and the step."""
    parent_id: str | None
    """The enclosing span; None for a top-level run's root span."""
    name: str
    """``chat gpt-4o``, ``execute_tool lookup``, ``invoke_agent support``, ..."""
    kind: SpanKind
    """``client`` for calls to a model provider, ``internal`` for everything else."""
    start: float
    """Unix seconds."""
    end: float | None
    """Unix seconds; None while the span is still open (a run waiting for a person)."""
    attributes: Mapping[str, AttributeValue]
    """``gen_ai.*`` and ``bosun.*`` attributes."""
    status: SpanStatus = "unset"
    """``error`` when the operation failed; success is left ``unset``, as OpenTelemetry
    recommends for instrumentation."""
    status_message: str | None = None
    """What went wrong, when `status` is ``error``."""
    events: tuple[SpanEvent, ...] = ()
    """Instants inside the span."""

    @property
    def duration(self) -> float | None:
        """Seconds from start to end; None while open."""
        return None if self.end is None else max(self.end - self.start, 0.0)


@dataclass(frozen=True, slots=True)
class Trace:
    """The spans of one run. The root span comes first, the others in start order."""

    trace_id: str
    """32 hex digits. A sub-agent's run shares its root ancestor's trace id."""
    run_id: str
    """The run."""
    spans: tuple[Span, ...]
    """Root first."""

    @property
    def root(self) -> Span:
        """The run's ``invoke_agent`` span."""
        return self.spans[0]

    def children(self, span_id: str) -> list[Span]:
        """Spans directly under `span_id`, in start order."""
        return [s for s in self.spans if s.parent_id == span_id]

    def walk(self) -> Iterator[tuple[int, Span]]:
        """Every span with its depth below the root, depth first."""

        def visit(span: Span, depth: int) -> Iterator[tuple[int, Span]]:
            yield depth, span
            for child in self.children(span.span_id):
                yield from visit(child, depth + 1)

        return visit(self.root, 0)

    def to_json(self) -> dict[str, Any]:
        """The trace as JSON-ready data: spans nested under their parents, with offsets from
        the run's start (what ``bosun trace --json`` prints)."""
        t0 = self.root.start

        def node(span: Span) -> dict[str, Any]:
            return {
                "span_id": span.span_id,
                "parent_span_id": span.parent_id,
                "name": span.name,
                "kind": span.kind,
                "start": span.start,
                "end": span.end,
                "offset_s": round(span.start - t0, 6),
                "duration_s": None if span.duration is None else round(span.duration, 6),
                "status": span.status,
                "status_message": span.status_message,
                "attributes": {k: _plain(v) for k, v in span.attributes.items()},
                "events": [
                    {
                        "name": e.name,
                        "time": e.time,
                        "attributes": {k: _plain(v) for k, v in e.attributes.items()},
                    }
                    for e in span.events
                ],
                "children": [node(child) for child in self.children(span.span_id)],
            }

        return {"trace_id": self.trace_id, "run_id": self.run_id, "root": node(self.root)}


def trace_id_for(run_id: str) -> str:
    """The trace id of a top-level run: 32 hex digits derived from its id."""
    return _hex(f"bosun.trace\x1f{run_id}", 32)


def span_id_for(run_id: str, key: str) -> str:
    """A span id derived from the run and what the span stands for (``run``, ``tool:<call
    id>``, ``seq:<n>``): the same run always gets the same ids."""
    return _hex(f"bosun.span\x1f{run_id}\x1f{key}", 16)


def _hex(text: str, digits: int) -> str:
    value = hashlib.sha256(text.encode()).hexdigest()[:digits]
    # All zeros is an invalid id in OpenTelemetry; a sha256 prefix is that with odds of 2^-64.
    return value if value.strip("0") else "1".zfill(digits)


def _plain(value: AttributeValue) -> Any:
    return list(value) if isinstance(value, tuple) else value
