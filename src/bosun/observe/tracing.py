"""Traces of runs, derived from the journal: nothing is recorded twice.

The journal already holds every step with its time, latency, tokens, cost and outcome, so a
run's trace is a read of it (plus the audit rows of decisions taken outside the loop, such as
output guardrails), and the hot path does no tracing work at all. `trace_of` builds the
spans; `bosun.observe.export` hands them to an OpenTelemetry exporter and `bosun trace`
prints them.

Spans follow the OpenTelemetry GenAI semantic conventions (``invoke_agent {agent}`` for the
run, ``chat {model}`` per model call, ``execute_tool {tool}`` per tool call, ``plan {agent}``)
with bosun's own facts under ``bosun.*``: cost, prompt version, attempts, and the spans the
conventions have no name for (``await_approval {tool}``, ``await_human``, ``guardrail
{name}``). A tool's own retries happen inside one journal entry, so they show as
``bosun.tool.attempts`` on its span, not as spans of their own; a failed model attempt is
journaled and is its own ``chat`` span with an error status.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bosun.data.store import Store
from bosun.data.traces import TraceRows
from bosun.observe.span_builder import SpanBuilder, payload_of
from bosun.observe.spans import (
    AttributeValue,
    Span,
    SpanEvent,
    Trace,
    span_id_for,
    trace_id_for,
)

__all__ = [
    "AttributeValue",
    "Span",
    "SpanEvent",
    "Trace",
    "span_id_for",
    "trace_id_for",
    "trace_of",
]

_MAX_ANCESTORS = 32


def trace_of(store: Store, run_id: str) -> Trace:
    """Derive the trace of run `run_id` from its journal and audit rows.

    A run whose ``run_started`` entry names a parent (``parent_run_id`` and optionally
    ``parent_call_id``, top level or under ``gateway``) joins its parent's trace, its root
    span hanging under the parent's ``execute_tool`` span for that call (or under the
    parent's root span when the call is not named). Raises `RunNotFound` for an unknown run.
    """
    row = store.get_run(run_id)
    journal = store.journal(run_id)
    guardrails = [r for r in store.audit_rows(run_id=run_id) if r["action"] == "output_guardrail"]
    started = payload_of(journal[0].payload) if journal and journal[0].kind == "run_started" else {}
    trace_id, parent_span = _lineage(store, run_id, started)
    builder = SpanBuilder(run_id=run_id, agent=row.agent, parent_span=parent_span)
    builder.root_attributes.update(
        {
            "bosun.run.id": run_id,
            **({"bosun.tenant": row.tenant} if row.tenant else {}),
            **({"bosun.principal": row.principal} if row.principal else {}),
        }
    )
    if not journal:  # a run row without entries: a trace of its root alone
        builder.start = builder.last = row.created_at
    for step in journal:
        builder.add(step, payload_of(step.payload))
    for audit in guardrails:
        builder.output_guardrail(audit)
    return Trace(trace_id=trace_id, run_id=run_id, spans=builder.spans(row.status))


def _first_payload(store: Store, run_id: str) -> dict[str, Any]:
    """An ancestor's ``run_started`` payload, without reading the rest of its journal."""
    return payload_of(TraceRows(store).started_payload(run_id))


def _parent_of(started: Mapping[str, Any]) -> tuple[str | None, str | None]:
    gateway = started.get("gateway")
    sources = [started, gateway] if isinstance(gateway, Mapping) else [started]
    for source in sources:
        parent = source.get("parent_run_id")
        if isinstance(parent, str) and parent:
            call = source.get("parent_call_id")
            return parent, call if isinstance(call, str) and call else None
    return None, None


def _lineage(store: Store, run_id: str, started: Mapping[str, Any]) -> tuple[str, str | None]:
    """The trace id (the root ancestor's) and the span the run's root hangs under."""
    parent, call = _parent_of(started)
    if parent is None:
        return trace_id_for(run_id), None
    parent_span = span_id_for(parent, f"tool:{call}" if call else "run")
    seen = {run_id}
    top = parent
    while len(seen) < _MAX_ANCESTORS and top not in seen:
        seen.add(top)
        above, _ = _parent_of(_first_payload(store, top))
        if above is None:
            break
        top = above
    return trace_id_for(top), parent_span
