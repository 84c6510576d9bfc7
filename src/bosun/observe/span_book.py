"""The bookkeeping under `bosun.observe.span_builder.SpanBuilder`: a run's spans while they are
built (finished spans, waits still open, the root's totals) and how they are frozen.

`SpanBook` holds the state and the primitives the per-entry handlers use: a span, an instant
guardrail span, a failure status, closing a wait, usage and attempt counting; `spans` freezes
everything, open waits as pending spans, under the run's root span.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from bosun.data.store import StepRow
from bosun.observe.spans import (
    AttributeValue,
    Span,
    SpanEvent,
    SpanKind,
    SpanStatus,
    span_id_for,
)

__all__ = ["OpenWait", "SpanBook", "named"]


@dataclass
class OpenWait:
    """A wait that has started and not yet ended."""

    key: str
    name: str
    start: float
    attributes: dict[str, AttributeValue]
    events: list[SpanEvent] = field(default_factory=list)


class SpanBook:
    """A run's spans while they are built; `SpanBuilder` adds a handler per journal entry kind."""

    def __init__(self, *, run_id: str, agent: str, parent_span: str | None) -> None:
        self.run_id = run_id
        self.agent = agent
        self.root_id = span_id_for(run_id, "run")
        self.parent_span = parent_span
        self.start = 0.0
        self.last = 0.0
        self.end: float | None = None
        self.root_attributes: dict[str, AttributeValue] = {
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.agent.name": agent,
        }
        self.prompt: dict[str, AttributeValue] = {}
        self.root_events: list[SpanEvent] = []
        self.error: str | None = None
        self.done: list[_Built] = []
        self.approvals: dict[str, OpenWait] = {}
        self.human: OpenWait | None = None
        self.started: dict[str, float] = {}
        self.tool_names: dict[str, str] = {}
        self.failures = 0  # consecutive failed model attempts before the next success
        self.totals = {"input": 0, "output": 0, "model_calls": 0, "tool_calls": 0, "retries": 0}
        self.cost = Decimal(0)

    def _usage(self, step: StepRow) -> dict[str, AttributeValue]:
        attrs: dict[str, AttributeValue] = {
            "gen_ai.usage.input_tokens": step.input_tokens or 0,
            "gen_ai.usage.output_tokens": step.output_tokens or 0,
        }
        self.totals["input"] += step.input_tokens or 0
        self.totals["output"] += step.output_tokens or 0
        if step.cost_usd is not None:
            attrs["bosun.cost_usd"] = float(step.cost_usd)
            self.cost += Decimal(step.cost_usd)
        return attrs

    def _attempt(self) -> dict[str, AttributeValue]:
        attempt, self.failures = self.failures + 1, 0
        return {"bosun.attempt": attempt}

    def _span(
        self,
        key: str,
        name: str,
        start: float,
        end: float,
        attributes: dict[str, AttributeValue],
        kind: SpanKind = "internal",
        *,
        parent: str | None = None,
    ) -> _Built:
        span = _Built(
            span_id=span_id_for(self.run_id, key),
            parent_id=parent or self.root_id,
            name=name,
            kind=kind,
            start=min(start, end),
            end=end,
            attributes=attributes,
        )
        self.done.append(span)
        return span

    def _instant(
        self,
        key: str,
        name: str,
        step: StepRow,
        attributes: dict[str, AttributeValue],
        *,
        parent: str | None = None,
    ) -> None:
        attrs: dict[str, AttributeValue] = {
            "bosun.operation": "guardrail",
            "bosun.guardrail.name": name.removeprefix("guardrail "),
            **attributes,
        }
        self._span(key, name, step.created_at, step.created_at, attrs, parent=parent)

    @staticmethod
    def _fail(span: _Built, message: str) -> None:
        span.status = "error"
        span.message = message

    def _close(self, wait: OpenWait, end: float) -> None:
        span = self._span(wait.key, wait.name, wait.start, end, wait.attributes)
        span.events = wait.events

    def spans(self, run_status: str) -> tuple[Span, ...]:
        """The root span and every other span, frozen, in start order."""
        open_waits = [*self.approvals.values(), *([self.human] if self.human else [])]
        children = [s.freeze() for s in self.done]
        for wait in open_waits:
            children.append(
                Span(
                    span_id=span_id_for(self.run_id, wait.key),
                    parent_id=self.root_id,
                    name=wait.name,
                    kind="internal",
                    start=wait.start,
                    end=None,
                    attributes={**wait.attributes, "bosun.wait.outcome": "pending"},
                    events=tuple(wait.events),
                )
            )
        children.sort(key=lambda s: (s.start, s.end is None, s.end or 0.0))
        attrs: dict[str, AttributeValue] = {
            **self.root_attributes,
            **self.prompt,
            "bosun.run.status": run_status,
            "gen_ai.usage.input_tokens": self.totals["input"],
            "gen_ai.usage.output_tokens": self.totals["output"],
            "bosun.cost_usd": float(self.cost),
            "bosun.model_calls": self.totals["model_calls"],
            "bosun.tool_calls": self.totals["tool_calls"],
            "bosun.retries": self.totals["retries"],
        }
        if self.error is not None:
            attrs["error.type"] = "run_failed"
        root = Span(
            span_id=self.root_id,
            parent_id=self.parent_span,
            name=named("invoke_agent", self.agent),
            kind="internal",
            start=self.start,
            end=self.end,
            attributes=attrs,
            status="error" if self.error is not None else "unset",
            status_message=self.error,
            events=tuple(self.root_events),
        )
        return (root, *children)


@dataclass
class _Built:
    """A span being built: attributes and status can still change."""

    span_id: str
    parent_id: str
    name: str
    kind: SpanKind
    start: float
    end: float
    attributes: dict[str, AttributeValue]
    status: SpanStatus = "unset"
    message: str | None = None
    events: Sequence[SpanEvent] = ()

    def freeze(self) -> Span:
        return Span(
            span_id=self.span_id,
            parent_id=self.parent_id,
            name=self.name,
            kind=self.kind,
            start=self.start,
            end=self.end,
            attributes=dict(self.attributes),
            status=self.status,
            status_message=self.message,
            events=tuple(self.events),
        )


def named(operation: str, subject: str | None) -> str:
    """A span name: ``chat gpt-4.1``, or the operation alone when there is no subject."""
    return f"{operation} {subject}" if subject else operation
