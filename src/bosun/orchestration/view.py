"""A pipeline as people read it: each stage's status, outputs and runs, the final output,
and why it escalated. What ``GET /v1/pipelines/runs/{id}`` and ``bosun pipeline show`` print.

```
stage status   completed   every execution of the stage finished (by it, the exception
                           handler or a person)
               failed      an execution failed and is not finished: the pipeline escalated,
                           or the stage is being retried
               running     its inputs are ready and the pipeline is being driven
               pending     waiting for an upstream stage (or for a person, downstream of a
                           failure)
```

Built from the pipeline's row and journal alone, so a process that does not serve the
pipeline (an API process in front of other workers) can still show it: the definition,
when registered, adds the stage order and kinds and the stages not reached yet.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from bosun.data.pipelines import PipelineEntry, PipelineRow
from bosun.orchestration.hops import fan_out_size
from bosun.orchestration.pipeline import Pipeline
from bosun.orchestration.stages import INPUT
from bosun.orchestration.state import PipelineState, PipelineStatus, lowest
from bosun.trust import Trust

__all__ = ["ItemView", "PipelineView", "StageStatus", "StageView", "view_of"]

StageStatus = Literal["completed", "failed", "running", "pending"]


@dataclass(frozen=True, slots=True)
class ItemView:
    """One finished execution of a stage (fan-out stages have one per element)."""

    item: int | None
    """The fan-out index; None for a stage that is not a fan-out."""
    output: Any
    """What it produced (JSON data)."""
    trust: Trust
    """The output's label."""
    by: str
    """``stage``, ``exception`` (the handler resolved it) or the person who handed it in."""
    run_id: str | None
    """The run that produced it (agent stages, the exception handler's run)."""


@dataclass(frozen=True, slots=True)
class StageView:
    """One stage of a pipeline, as far as it got."""

    name: str
    kind: str | None
    """``agent`` or ``function``; None when the definition is not registered here."""
    status: StageStatus
    outputs: tuple[ItemView, ...]
    """Its finished executions."""
    runs: tuple[str, ...]
    """Every run journaled for it: attempts, the exception handler's, in order."""
    failures: int
    """Failed attempts so far."""
    error: str | None
    """The last failure's message, while the stage is not finished."""


@dataclass(frozen=True, slots=True)
class PipelineView:
    """A pipeline and its stages."""

    pipeline_id: str
    name: str
    status: PipelineStatus
    tenant: str | None
    principal: str | None
    input: Any
    output: Any
    """The output stage's output, when completed."""
    trust: Trust | None
    """The output's label, when completed."""
    error: str | None
    """Why it escalated or failed."""
    handoff: Mapping[str, Any] | None
    """The package for a person, when escalated."""
    stages: tuple[StageView, ...]
    runs: tuple[str, ...]
    """Every stage and exception-handler run, in journal order."""
    model_calls: int
    tokens: int
    cost_usd: Decimal
    created_at: float
    updated_at: float


def view_of(
    row: PipelineRow, entries: Sequence[PipelineEntry], pipeline: Pipeline | None
) -> PipelineView:
    """The view of a stored pipeline; `pipeline` is its definition when registered here."""
    state = PipelineState(pipeline_id=row.id, name=row.name)
    runs: dict[str, list[str]] = {}
    for entry in entries:
        state.apply(entry)
        if entry.stage is not None and entry.run_id is not None:
            stage_runs = runs.setdefault(entry.stage, [])
            if entry.run_id not in stage_runs:
                stage_runs.append(entry.run_id)
    status = state.status
    if row.status == "queued" and status is PipelineStatus.RUNNING:
        status = PipelineStatus.QUEUED  # recorded, not claimed by a worker yet
    if pipeline is not None:
        names = list(pipeline.order)
    else:
        names = list(dict.fromkeys(k[0] for k in (*state.outputs, *state.last_failure)))
    stages = tuple(_stage(name, pipeline, state, status, runs.get(name, [])) for name in names)
    trust = None
    if status is PipelineStatus.COMPLETED:
        final = [
            o.trust for (s, _), o in state.outputs.items() if pipeline and s == pipeline.output
        ]
        trust = lowest(final) if final else None
    return PipelineView(
        pipeline_id=row.id,
        name=row.name,
        status=status,
        tenant=row.tenant,
        principal=row.principal,
        input=state.input,
        output=state.output,
        trust=trust,
        error=state.error,
        handoff=state.handoff,
        stages=stages,
        runs=tuple(state.runs),
        model_calls=state.model_calls,
        tokens=state.tokens,
        cost_usd=state.cost_usd,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _stage(
    name: str,
    pipeline: Pipeline | None,
    state: PipelineState,
    status: PipelineStatus,
    runs: list[str],
) -> StageView:
    outputs = tuple(
        ItemView(item, out.value, out.trust, out.by, out.run_id)
        for (stage, item), out in sorted(
            state.outputs.items(), key=lambda kv: -1 if kv[0][1] is None else kv[0][1]
        )
        if stage == name
    )
    failed = [
        (key, failure)
        for key, failure in state.last_failure.items()
        if key[0] == name and key not in state.outputs
    ]
    failures = sum(n for (stage, _), n in state.failures.items() if stage == name)
    stage = None if pipeline is None else pipeline.stages[name]
    done: bool
    if stage is not None and pipeline is not None:
        done = state.stage_done(name, fan_out_size(pipeline, state, stage))
    else:
        done = bool(outputs) and not failed
    result: StageStatus
    if done:
        result = "completed"
    elif failed:
        result = "failed"
    elif (
        status is PipelineStatus.RUNNING
        and stage is not None
        and pipeline is not None
        and all(_done(pipeline, state, upstream) for upstream in stage.after)
    ):
        result = "running"
    else:
        result = "pending"
    error = None if done or not failed else str(failed[-1][1].get("error") or "")
    return StageView(
        name=name,
        kind=None if stage is None else stage.kind,
        status=result,
        outputs=outputs,
        runs=tuple(runs),
        failures=failures,
        error=error,
    )


def _done(pipeline: Pipeline, state: PipelineState, name: str) -> bool:
    if name == INPUT:
        return True
    return state.stage_done(name, fan_out_size(pipeline, state, pipeline.stages[name]))
