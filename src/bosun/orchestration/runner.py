"""`Pipelines`: starts, drives, resumes and hands back pipelines over a `Runtime`.

```python
pipelines = Pipelines(runtime, [order_pipeline])
result = await pipelines.run(order_pipeline, OrderRequest(...))       # drive here, now
pipeline_id = await pipelines.start(order_pipeline, request)          # queued for a worker
await pipelines.hand_back(pipeline_id, stage="payment", output=..., by="ops@example.com")
```

A pipeline is journaled like a run (`bosun.data.pipelines`): its row and first entry are one
commit, every stage result is durable before anything downstream starts, and `resume` (or
another worker, once the lease of a dead one expires) folds the journal and carries on from
the finished stages, resuming the runs of unfinished agent stages where their own journals
end. Registering a pipeline registers its agents with the runtime and binds the reviewers
and agent tools they use to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel

from bosun.data.pipelines import NewPipeline, PipelineEntry, PipelineRows
from bosun.data.records import AuditEvent
from bosun.errors import IdempotencyConflict, PipelineNotFound, RunStateConflict, UserError
from bosun.orchestration.agent_tool import bind_agent_tools
from bosun.orchestration.driver import PipelineDriver, journal
from bosun.orchestration.pipeline import Pipeline
from bosun.orchestration.state import PipelineState, PipelineStatus
from bosun.orchestration.view import PipelineView, view_of
from bosun.runtime.agent import Agent
from bosun.runtime.runtime import Runtime, new_run_id
from bosun.trust import Trust

__all__ = ["PipelineResult", "Pipelines"]


@dataclass(frozen=True, slots=True)
class PipelineResult:
    """How a pipeline stands after this process stopped driving it."""

    pipeline_id: str
    """The pipeline."""
    name: str
    """Its definition's name."""
    status: PipelineStatus
    """Completed, escalated, running elsewhere, ..."""
    output: Any
    """The output stage's output (JSON data), when completed."""
    handoff: Mapping[str, Any] | None
    """The package for a person, when escalated: which stage failed, why, its run."""
    error: str | None
    """The reason, when escalated or failed."""
    trust: Trust | None
    """The output's label (untrusted when anything untrusted went into it)."""
    runs: tuple[str, ...]
    """The stage and exception-handler runs, in journal order."""

    def output_as(self, model: type[BaseModel]) -> BaseModel:
        """The output validated as `model`."""
        return model.model_validate(self.output)

    @classmethod
    def of(cls, state: PipelineState, pipeline: Pipeline) -> PipelineResult:
        """Snapshot a state."""
        out = [o for (stage, _), o in state.outputs.items() if stage == pipeline.output]
        trust = None
        if state.status is PipelineStatus.COMPLETED and out:
            from bosun.orchestration.state import lowest

            trust = lowest(o.trust for o in out)
        return cls(
            pipeline_id=state.pipeline_id,
            name=state.name,
            status=state.status,
            output=state.output,
            handoff=state.handoff,
            error=state.error,
            trust=trust,
            runs=tuple(state.runs),
        )


class Pipelines:
    """Runs pipelines durably over a runtime's store."""

    def __init__(
        self,
        runtime: Runtime,
        pipelines: Sequence[Pipeline] = (),
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.runtime = runtime
        self._clock = clock
        self._pipelines: dict[str, Pipeline] = {}
        self._active: dict[str, asyncio.Task[PipelineState]] = {}
        self._rows: PipelineRows | None = None
        self._fresh: dict[str, PipelineState] = {}
        for pipeline in pipelines:
            self.register(pipeline)

    @property
    def rows(self) -> PipelineRows:
        """The pipelines repository over the runtime's store."""
        if self._rows is None:
            self._rows = PipelineRows(self.runtime.store, clock=self._clock)
        return self._rows

    @property
    def pipelines(self) -> Mapping[str, Pipeline]:
        """Registered pipelines by name."""
        return dict(self._pipelines)

    def register(self, pipeline: Pipeline) -> None:
        """Make `pipeline` drivable here: its agents join the runtime; the reviewers and the
        agents called as tools that they use are bound to it."""
        known = self._pipelines.get(pipeline.name)
        if known is pipeline:
            return
        if known is not None:
            raise UserError(f"another pipeline named {pipeline.name!r} is already registered")
        self._pipelines[pipeline.name] = pipeline
        for agent in pipeline.agents:
            bind(self.runtime, agent)

    # --- starting and driving -----------------------------------------------------------------

    async def start(
        self,
        pipeline: Pipeline,
        input: BaseModel | Mapping[str, Any],
        *,
        trust: Trust = Trust.USER,
        grants: Iterable[str] | Literal["agents"] = "agents",
        principal: str | None = None,
        tenant: str | None = None,
        idempotency_key: str | None = None,
        queued: bool = True,
    ) -> str:
        """Record a pipeline, queued for a `PipelineWorker` (or ``queued=False`` for a caller
        that drives it at once), and return its id; a repeated idempotency key returns the
        first (another pipeline or input under it is an `IdempotencyConflict`). `trust`
        labels the input (``untrusted`` for an email, a web form). ``grants="agents"``
        grants every scope the pipeline's agents declare; each stage run gets these narrowed
        to its own agent's scopes."""
        self.register(pipeline)
        data = pipeline.input.model_validate(input).model_dump(mode="json")
        scopes = sorted(pipeline.scopes if grants == "agents" else set(grants))
        pipeline_id, now = new_run_id(), self._clock()
        payload = {
            "name": pipeline.name,
            "input": data,
            "trust": trust.value,
            "grants": scopes,
            "principal": principal,
            "tenant": tenant,
        }
        text = json.dumps(payload, ensure_ascii=False)
        row = NewPipeline(
            id=pipeline_id,
            name=pipeline.name,
            status="queued" if queued else "running",
            input=json.dumps(data, ensure_ascii=False),
            grants=json.dumps(scopes),
            principal=principal,
            tenant=tenant,
            idempotency_key=idempotency_key,
            created_at=now,
        )
        first = PipelineEntry(
            pipeline_id=pipeline_id, seq=0, kind="pipeline_started", payload=text, created_at=now
        )
        audit = AuditEvent(
            action="pipeline:pipeline_started",
            payload=text,
            created_at=now,
            run_id=pipeline_id,
            seq=0,
            actor=principal,
        )
        existing = await asyncio.to_thread(self.rows.create, row, first, [audit])
        if existing is not None:
            # The key names one request: answering another pipeline or input with the first
            # one would hide that the new request was never run (as for runs).
            if existing.name != pipeline.name or json.loads(existing.input) != data:
                raise IdempotencyConflict(
                    f"idempotency key {idempotency_key!r} was used for a different request "
                    f"(pipeline {existing.id}): send a new key with a new request",
                    run_id=existing.id,
                )
            return existing.id
        if not queued:  # driven here at once: the resume that follows needs no read back
            fresh = PipelineState(pipeline_id=pipeline_id, name=pipeline.name)
            fresh.apply(first)
            self._fresh[pipeline_id] = fresh
        return pipeline_id

    async def run(
        self, pipeline: Pipeline, input: BaseModel | Mapping[str, Any], **options: Any
    ) -> PipelineResult:
        """Start a pipeline and drive it here until it finishes or escalates."""
        pipeline_id = await self.start(pipeline, input, queued=False, **options)
        return await self.resume(pipeline_id)

    async def resume(self, pipeline_id: str) -> PipelineResult:
        """Drive a pipeline from where its journal ends: finished stages are read back,
        never run again; an unfinished agent stage's run is resumed, not restarted."""
        task = self._active.get(pipeline_id)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._drive(pipeline_id))
            self._active[pipeline_id] = task
            task.add_done_callback(lambda done: self._forget(pipeline_id, done))
        state = await asyncio.shield(task)
        return PipelineResult.of(state, self._pipelines[state.name])

    async def _drive(self, pipeline_id: str) -> PipelineState:
        fresh = self._fresh.pop(pipeline_id, None)
        if fresh is not None and fresh.name in self._pipelines:
            state, pipeline = fresh, self._pipelines[fresh.name]
        else:
            state, pipeline = await self._load(pipeline_id)
        driver = PipelineDriver(
            pipeline=pipeline, state=state, runtime=self.runtime, clock=self._clock
        )
        return await driver.drive()

    def _forget(self, pipeline_id: str, task: asyncio.Task[PipelineState]) -> None:
        if self._active.get(pipeline_id) is task:
            del self._active[pipeline_id]

    async def abandon(self, pipeline_id: str) -> None:
        """Stop driving a pipeline here without writing (another worker owns it now). Its
        stage runs in flight stop too; their journals say where they were."""
        task = self._active.get(pipeline_id)
        if task is not None:
            task.cancel()
            with contextlib.suppress(BaseException):  # cancelled or failed: stopped either way
                await task

    def driving(self, pipeline_id: str) -> bool:
        """Whether this process drives the pipeline now."""
        return pipeline_id in self._active

    # --- people ---------------------------------------------------------------------------------

    async def hand_back(
        self,
        pipeline_id: str,
        *,
        by: str,
        stage: str | None = None,
        item: int | None = None,
        output: BaseModel | Mapping[str, Any] | None = None,
        resume: bool = True,
    ) -> PipelineResult:
        """Carry on with an escalated pipeline: with `stage` and `output`, a person's output
        stands for that stage's (labelled trusted); without, the failed stages are tried
        again (a stage run a person has decided on meanwhile is picked up where it is).
        Finished stages are never run again."""
        state, pipeline = await self._load(pipeline_id)
        if state.status is not PipelineStatus.ESCALATED:
            raise RunStateConflict(f"pipeline {pipeline_id} is {state.status.value}, not escalated")
        payload: dict[str, Any] = {"by": by}
        key = None
        if stage is not None:
            if stage not in pipeline.stages or output is None:
                raise UserError(f"hand back a stage of {pipeline.name!r} with its output")
            model = pipeline.stages[stage].output
            payload["output"] = model.model_validate(output).model_dump(mode="json")
            key = (stage, item)
        status = "running" if resume else "queued"
        await journal(
            self.runtime,
            state,
            "handed_back",
            key,
            payload,
            by=by,
            values={"status": status, "handoff": None, "error": None},
            clock=self._clock,
        )
        if not resume:
            return await self.result(pipeline_id)
        return await self.resume(pipeline_id)

    # --- reads --------------------------------------------------------------------------------

    async def result(self, pipeline_id: str) -> PipelineResult:
        """The pipeline as its journal says now."""
        row, entries = await asyncio.to_thread(self.rows.load, pipeline_id)
        state = _fold(row.id, row.name, entries)
        pipeline = self._pipelines.get(row.name)
        if pipeline is None:
            raise PipelineNotFound(f"pipeline {row.name!r} is not registered here")
        if row.status == "queued" and state.status is PipelineStatus.RUNNING:
            state.status = PipelineStatus.QUEUED
        return PipelineResult.of(state, pipeline)

    async def view(self, pipeline_id: str) -> PipelineView:
        """The pipeline, stage by stage, as its journal says now (readable where the
        pipeline is not registered, with only the stages it reached)."""
        row, entries = await asyncio.to_thread(self.rows.load, pipeline_id)
        return view_of(row, entries, self._pipelines.get(row.name))

    async def state(self, pipeline_id: str) -> PipelineState:
        """The pipeline's state folded from its journal."""
        state, _ = await self._load(pipeline_id)
        return state

    async def _load(self, pipeline_id: str) -> tuple[PipelineState, Pipeline]:
        row, entries = await asyncio.to_thread(self.rows.load, pipeline_id)
        pipeline = self._pipelines.get(row.name)
        if pipeline is None:
            raise PipelineNotFound(
                f"pipeline {pipeline_id} is a {row.name!r}, which was not registered here"
            )
        return _fold(row.id, row.name, entries), pipeline


def _fold(pipeline_id: str, name: str, entries: Iterable[PipelineEntry]) -> PipelineState:
    state = PipelineState(pipeline_id=pipeline_id, name=name)
    for entry in entries:
        state.apply(entry)
    return state


def bind(runtime: Runtime, agent: Agent) -> None:
    """Register `agent` with `runtime`, with the reviewer runs and agent tools it uses."""
    from bosun.orchestration.reviewer import ReviewerCritic

    runtime.register(agent)
    if isinstance(agent.critic, ReviewerCritic):
        agent.critic.bind(runtime)
    bind_agent_tools(runtime, agent)
