"""`PipelineDriver`: runs a pipeline's ready stages concurrently until it finishes or escalates.

```
loop:   start every stage whose upstreams finished (independent stages run at once; a
        fan-out's executions run at once) -> wait for any to end
attempt (per execution): pipeline budget -> function or agent run, within the timeout
        ok     -> stage_finished (journaled before anything downstream starts)
        failed -> stage_failed; retry per policy; then the exception handler: retry with a
                  fixed input | resolve with an output | escalate
end:    every stage finished -> pipeline_finished completed, with the output stage's output
        something failed     -> the branches that do not depend on it still run to their end
                                (they are never run again), then pipeline_finished escalated
                                with a handoff package
```

Journal entries of one pipeline are appended under a lock, each durable before the state
moves on, and audited: the pipeline's audit trail is its own rows plus its runs'.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bosun.data.records import AuditEvent, PipelineEntry, PipelineUpdate, WriteOp
from bosun.orchestration.execute import Produced, handle_failure, run_attempt
from bosun.orchestration.failures import StageError
from bosun.orchestration.hops import StageInput, fan_out_size, stage_inputs
from bosun.orchestration.pipeline import Pipeline
from bosun.orchestration.stages import Stage
from bosun.orchestration.state import Key, PipelineState, PipelineStatus, lowest
from bosun.runtime.runtime import Runtime

__all__ = ["PipelineDriver"]


@dataclass(frozen=True, slots=True)
class _Failed:
    """A stage execution that could not be finished: the pipeline escalates."""

    stage: str
    item: int | None
    kind: str
    reason: str
    run_id: str | None = None
    run_handoff: dict[str, Any] | None = None


class PipelineDriver:
    """Drives one pipeline from where its journal ends."""

    def __init__(
        self,
        *,
        pipeline: Pipeline,
        state: PipelineState,
        runtime: Runtime,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.pipeline = pipeline
        self.state = state
        self.runtime = runtime
        self._clock = clock
        self._lock = asyncio.Lock()

    async def drive(self) -> PipelineState:
        """Run stages until the pipeline completes or escalates; returns its state."""
        state = self.state
        if state.status.terminal or state.status is PipelineStatus.ESCALATED:
            return state
        running: dict[str, asyncio.Task[list[_Failed]]] = {}
        failed: list[_Failed] = []
        blocked: set[str] = set()
        try:
            while True:
                self._start_ready(running, blocked)
                if not running:
                    break
                done, _ = await asyncio.wait(running.values(), return_when=asyncio.FIRST_COMPLETED)
                for name, task in list(running.items()):
                    if task in done:
                        del running[name]
                        failures = task.result()  # a store error propagates: resumable
                        if failures:
                            failed.extend(failures)
                            blocked.add(name)
        finally:
            for task in running.values():
                task.cancel()
            if running:
                await asyncio.gather(*running.values(), return_exceptions=True)
        if failed:
            await self._escalate(failed)
        else:
            await self._complete()
        return state

    def _start_ready(
        self, running: dict[str, asyncio.Task[list[_Failed]]], blocked: set[str]
    ) -> None:
        for name in self.pipeline.order:
            if name in running or name in blocked:
                continue
            stage = self.pipeline.stages[name]
            if any(u in blocked for u in stage.after):
                blocked.add(name)  # downstream of a failure: waits for a person
                continue
            if self.state.stage_done(name, fan_out_size(self.pipeline, self.state, stage)):
                continue
            inputs = stage_inputs(self.pipeline, self.state, stage)
            if inputs is not None:
                running[name] = asyncio.create_task(self._run_stage(stage, inputs))

    async def _run_stage(self, stage: Stage, inputs: list[StageInput]) -> list[_Failed]:
        todo = [i for i in inputs if (stage.name, i.item) not in self.state.outputs]
        if len(todo) == 1:
            outcome = await self._run_item(stage, todo[0])
            return [] if outcome is None else [outcome]
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(self._run_item(stage, given)) for given in todo]
        return [o for t in tasks if (o := t.result()) is not None]

    async def _run_item(self, stage: Stage, given: StageInput) -> _Failed | None:
        state, key = self.state, (stage.name, given.item)
        while True:
            reason = self._over_budget()
            if reason is not None:
                return _Failed(stage.name, given.item, "budget", reason)
            fixed = state.inputs.get(key)
            if fixed is not None:
                given = StageInput(given.item, stage.input.model_validate(fixed), given.trust)
            started = self._clock()
            try:
                produced = await run_attempt(
                    self.runtime, self.pipeline, state, stage, given, state.failures.get(key, 0)
                )
            except StageError as error:
                outcome = await self._failed(stage, given, error, started)
                if isinstance(outcome, str):  # "retry"
                    continue
                return outcome
            await self._finished(key, produced, started)
            return None

    async def _failed(
        self, stage: Stage, given: StageInput, error: StageError, started: float
    ) -> _Failed | None | str:
        """Journal a failed attempt; "retry", None (resolved) or why the pipeline stops."""
        state, key = self.state, (stage.name, given.item)
        await self._journal(
            "stage_failed",
            key,
            {
                "attempt": state.failures.get(key, 0),
                "kind": error.kind,
                "error": error.message,
                "started_at": started,
                "usage": error.usage,
            },
            run_id=error.run_id,
        )
        if error.kind == "escalated":
            return _Failed(*key, error.kind, error.message, error.run_id, error.handoff)
        if state.since_round.get(key, 0) < stage.policy.attempts:
            return "retry"
        handler = self.pipeline.exception_handler
        rounds = state.rounds.get(key, 0)
        if handler is None or not stage.policy.handle_exceptions:
            return _Failed(*key, error.kind, error.message, error.run_id)
        if rounds >= self.pipeline.max_exception_rounds:
            reason = f"{error.message} (still failing after {rounds} exception round(s))"
            return _Failed(*key, error.kind, reason, error.run_id)
        resolution, run_id, trust = await handle_failure(
            self.runtime, self.pipeline, state, stage, given, error
        )
        await self._journal(
            "exception_resolved",
            key,
            {
                "round": rounds,
                "action": resolution.action,
                "input": resolution.input,
                "reason": resolution.reason,
                "failure": error.kind,
            },
            run_id=run_id,
        )
        if resolution.action == "retry":
            return "retry"
        if resolution.action == "resolve":
            produced = Produced(resolution.output, lowest([trust, given.trust]), run_id)
            await self._finished(key, produced, started, by="exception")
            return None
        return _Failed(*key, "escalated", f"exception handler: {resolution.reason}", run_id)

    def _over_budget(self) -> str | None:
        budget, state = self.pipeline.budget, self.state
        if budget.max_model_calls is not None and state.model_calls >= budget.max_model_calls:
            return f"pipeline budget: {state.model_calls} of {budget.max_model_calls} model calls"
        if budget.max_tokens is not None and state.tokens >= budget.max_tokens:
            return f"pipeline budget: {state.tokens} of {budget.max_tokens} tokens"
        if budget.max_cost_usd is not None and state.cost_usd >= budget.max_cost_usd:
            return f"pipeline budget: ${state.cost_usd} of ${budget.max_cost_usd}"
        elapsed = self._clock() - state.created_at
        if budget.max_wall_s is not None and elapsed >= budget.max_wall_s:
            return f"pipeline budget: {elapsed:.1f} s of {budget.max_wall_s} s"
        return None

    # --- journal and endings ------------------------------------------------------------------

    async def _finished(
        self, key: Key, produced: Produced, started: float, by: str = "stage"
    ) -> None:
        await self._journal(
            "stage_finished",
            key,
            {
                "output": produced.value,
                "trust": produced.trust.value,
                "started_at": started,
                "usage": produced.usage,
                "by": by,
            },
            run_id=produced.run_id,
        )

    async def _complete(self) -> None:
        state, name = self.state, self.pipeline.output
        size = fan_out_size(self.pipeline, state, self.pipeline.stages[name])
        if size is None:
            output: Any = state.outputs[(name, None)].value
        else:
            output = [state.outputs[(name, i)].value for i in range(size)]
        status = PipelineStatus.COMPLETED.value
        await self._journal(
            "pipeline_finished",
            None,
            {"status": status, "output": output},
            values={"status": status, "output": json.dumps(output)},
        )

    async def _escalate(self, failed: list[_Failed]) -> None:
        state = self.state
        first = failed[0]
        finished = sorted({stage for stage, _ in state.outputs})
        handoff = {
            "reason": f"stage {first.stage!r} failed ({first.kind}): {first.reason}",
            "failures": [
                {
                    "stage": f.stage,
                    "item": f.item,
                    "kind": f.kind,
                    "reason": f.reason,
                    "run_id": f.run_id,
                    "run_handoff": f.run_handoff,
                }
                for f in failed
            ],
            "finished_stages": finished,
            "pending_question": (
                "Decide on the stage runs named here, or hand back the failed stage's output; "
                "finished stages are not run again."
            ),
        }
        status = PipelineStatus.ESCALATED.value
        await self._journal(
            "pipeline_finished",
            None,
            {"status": status, "handoff": handoff, "error": handoff["reason"]},
            values={"status": status, "handoff": json.dumps(handoff), "error": handoff["reason"]},
        )

    async def _journal(
        self,
        kind: str,
        key: Key | None,
        payload: dict[str, Any],
        *,
        run_id: str | None = None,
        values: dict[str, Any] | None = None,
    ) -> None:
        await journal(
            self.runtime,
            self.state,
            kind,
            key,
            payload,
            run_id=run_id,
            values=values,
            lock=self._lock,
            clock=self._clock,
        )


async def journal(
    runtime: Runtime,
    state: PipelineState,
    kind: str,
    key: Key | None,
    payload: dict[str, Any],
    *,
    run_id: str | None = None,
    values: dict[str, Any] | None = None,
    by: str | None = None,
    lock: asyncio.Lock | None = None,
    clock: Callable[[], float] = time.time,
) -> None:
    """Append one entry (with its audit row, and the row's new `values`) to a pipeline's
    journal through the runtime's group-commit writer: it shares a commit with whatever runs
    are writing, and is durable before the state applies it."""
    async with lock or asyncio.Lock():
        now = clock()
        text = json.dumps(payload, ensure_ascii=False, default=str)
        entry = PipelineEntry(
            pipeline_id=state.pipeline_id,
            seq=state.next_seq,
            kind=kind,
            payload=text,
            created_at=now,
            stage=None if key is None else key[0],
            item=None if key is None else key[1],
            run_id=run_id,
        )
        event = AuditEvent(
            action=f"pipeline:{kind}",
            payload=text,
            created_at=now,
            run_id=state.pipeline_id,
            seq=entry.seq,
            actor=state.principal,
            approver=by,
        )
        ops: list[WriteOp] = [entry, event]
        if values:
            ops.append(PipelineUpdate(pipeline_id=state.pipeline_id, values=values))
        await runtime.write(ops)
        state.apply(entry)
