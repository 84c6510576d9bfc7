"""A pipeline's trace and audit trail: one tree, derived from journals, nothing recorded twice.

```
invoke_workflow {pipeline}                 the pipeline (trace id derived from its id)
├── execute_stage {stage}                  one per stage execution (fan-out: per item)
│   └── invoke_agent {agent}               the stage's run: chat / execute_tool spans ...
│       └── invoke_agent {reviewer}        a reviewer's or a called agent's run
└── execute_stage {function stage}
```

Stage runs name the pipeline as their parent and the stage execution as the parent call in
their ``run_started`` entry, so `bosun.observe.tracing.trace_of` already gives each of them
the pipeline's trace id and hangs its root under the stage's span, whose id is derived here
the same way (`span_id_for(pipeline, "tool:stage:...")`).
"""

from __future__ import annotations

import json
from typing import Any

from bosun.data.pipelines import PipelineRows
from bosun.data.store import Store
from bosun.data.traces import TraceRows
from bosun.observe.spans import AttributeValue, Span, Trace, span_id_for, trace_id_for
from bosun.observe.tracing import trace_of
from bosun.orchestration.execute import stage_call_id

__all__ = ["pipeline_audit", "pipeline_trace"]


def pipeline_trace(store: Store, pipeline_id: str) -> Trace:
    """The whole pipeline as one trace: its stages, their runs and everything under them."""
    rows = PipelineRows(store)
    row, entries = rows.load(pipeline_id)
    root_id = span_id_for(pipeline_id, "run")
    stages: dict[str, dict[str, Any]] = {}
    end: float | None = None
    status_message = None
    for entry in entries:
        payload = json.loads(entry.payload)
        if entry.kind == "pipeline_finished":
            end = entry.created_at
            if payload.get("status") != "completed":
                status_message = payload.get("error") or payload.get("status")
            continue
        if entry.stage is None:
            continue
        call = stage_call_id(entry.stage, entry.item)
        span = stages.setdefault(
            call,
            {
                "stage": entry.stage,
                "item": entry.item,
                "start": entry.created_at,
                "end": None,
                "failed": 0,
                "done": False,
                "by": None,
                "error": None,
            },
        )
        span["start"] = min(span["start"], payload.get("started_at") or entry.created_at)
        if entry.kind == "stage_failed":
            span["failed"] += 1
            span["error"] = payload.get("error")
            span["end"] = entry.created_at
        elif entry.kind in ("stage_finished", "handed_back"):
            span.update(done=True, end=entry.created_at, by=payload.get("by", "stage"))
    runs = [trace_of(store, run_id) for run_id in rows.descendants(pipeline_id)]
    traces = TraceRows(store)
    for run in runs:  # a stage whose run is still in flight has no journal entry yet
        started = json.loads(traces.started_payload(run.run_id) or "{}")
        call = started.get("parent_call_id")
        if started.get("parent_run_id") == pipeline_id and isinstance(call, str):
            stage, _, item = call.removeprefix("stage:").rpartition(":")
            span = stages.setdefault(
                call,
                {
                    "stage": stage,
                    "item": None if item == "-" else int(item),
                    "start": run.root.start,
                    "end": None,
                    "failed": 0,
                    "done": False,
                    "by": None,
                    "error": None,
                },
            )
            span["start"] = min(span["start"], run.root.start)
    spans = [_stage_span(pipeline_id, root_id, call, s) for call, s in stages.items()]
    for run in runs:
        spans.extend(run.spans)
    root = Span(
        span_id=root_id,
        parent_id=None,
        name=f"invoke_workflow {row.name}",
        kind="internal",
        start=row.created_at,
        end=end,
        attributes={
            "gen_ai.operation.name": "invoke_workflow",
            "bosun.pipeline.id": pipeline_id,
            "bosun.pipeline.name": row.name,
            "bosun.pipeline.status": row.status,
        },
        status="error" if status_message else "unset",
        status_message=status_message,
    )
    ordered = sorted(spans, key=lambda s: (s.start, s.span_id))
    return Trace(trace_id=trace_id_for(pipeline_id), run_id=pipeline_id, spans=(root, *ordered))


def _stage_span(pipeline_id: str, root_id: str, call: str, s: dict[str, Any]) -> Span:
    attributes: dict[str, AttributeValue] = {
        "bosun.pipeline.stage": s["stage"],
        "bosun.stage.failed_attempts": s["failed"],
    }
    if s["item"] is not None:
        attributes["bosun.stage.item"] = s["item"]
    if s["by"] is not None:
        attributes["bosun.stage.finished_by"] = s["by"]
    failed = not s["done"] and s["failed"] > 0
    return Span(
        span_id=span_id_for(pipeline_id, f"tool:{call}"),
        parent_id=root_id,
        name=f"execute_stage {s['stage']}",
        kind="internal",
        start=s["start"],
        end=s["end"],
        attributes=attributes,
        status="error" if failed else "unset",
        status_message=s["error"] if failed else None,
    )


def pipeline_audit(store: Store, pipeline_id: str) -> list[dict[str, Any]]:
    """The pipeline's audit rows and those of every run under it, in chain order."""
    ids = [pipeline_id, *PipelineRows(store).descendants(pipeline_id)]
    found = [row for run_id in ids for row in store.audit_rows(run_id=run_id)]
    return sorted(found, key=lambda row: row["id"])
