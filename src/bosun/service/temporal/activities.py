"""`RunSteps`: the activities of bosun's workflow, each one step of a run driven by bosun's
own `Runtime.step` and journaled in bosun's store before it returns.

```
take the run's lease     RunQueue.claim_run (waits while another process holds it: a step
                         of a killed worker whose lease has not lapsed, a zombie still busy)
every lease/3 s          renew it; Temporal heartbeat; a cancel requested -> cancel the run;
                         the lease lost -> stop without writing
Runtime.step(run, seq)   one model call, or one response's tool calls, or the bookkeeping
                         between them: the same driver, journal and budgets as the queue
release the lease        the run stays "running": Temporal schedules its next step
```

Retries: the model's (`ModelPolicy.retry`, Retry-After) and the tools' (`ToolPolicy`) are
bosun's, inside the step, journaled attempt by attempt exactly as on the built-in queue.
Temporal retries the *step* when it did not finish: its worker died (heartbeat timeout), the
store failed, another process appended first. The retry reads the journal back, so finished
steps are never repeated, and a tool call interrupted mid-flight is handled as after any
crash: the same idempotency key (run, step, call), or the tool's reconcile hook. After
`max_attempts` attempts that got as far as driving the run, the run is failed, as the queue
fails a run that keeps killing its workers.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from temporalio import activity
from temporalio.exceptions import ApplicationError

from bosun.config import ServiceSettings
from bosun.data.queue import Claim, RunQueue
from bosun.runtime.runtime import Runtime
from bosun.runtime.state import RunStatus
from bosun.service.temporal.messages import MODEL_CALL, STEP, TOOL_CALLS, StepIn, StepOut

if TYPE_CHECKING:
    from bosun.observe.export import TraceExporter

__all__ = ["DISPATCHER", "RunSteps"]

_PARKED = frozenset(s.value for s in RunStatus if s.parked)

logger = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

DISPATCHER = "temporal:dispatcher"
"""The lease owner of runs the dispatcher is handing to Temporal; a step takes such a lease
over at once (see `RunQueue.claim_run`)."""


class RunSteps:
    """The step activities over `runtime` (register `activities()` with a Temporal worker)."""

    def __init__(
        self,
        runtime: Runtime,
        *,
        settings: ServiceSettings,
        owner: str,
        tracer: TraceExporter | None = None,
    ) -> None:
        self.runtime = runtime
        self.settings = settings
        self.owner = owner
        self.tracer = tracer
        self.queue = RunQueue(runtime.store)
        self.stopped = 0
        """Runs whose step here finished them or handed them to a person."""
        self._pool: ThreadPoolExecutor | None = None

    def activities(self) -> list[Callable[..., Any]]:
        """The activity functions, for `temporalio.worker.Worker(activities=...)`."""
        return [self.model_call, self.tool_calls, self.step]

    def close(self) -> None:
        """Let go of the lease threads."""
        if self._pool is not None:
            self._pool.shutdown(wait=False)
            self._pool = None

    # Three names for one step, so Temporal's history and UI say what each one did and an
    # operator can give them their own limits; the journal decides what a step does.

    @activity.defn(name=MODEL_CALL)
    async def model_call(self, step: StepIn) -> StepOut:
        """Call the model once (budgets and spend caps checked first), journaled."""
        return await self._step(step)

    @activity.defn(name=TOOL_CALLS)
    async def tool_calls(self, step: StepIn) -> StepOut:
        """Run the tool calls of the latest model response, journaled."""
        return await self._step(step)

    @activity.defn(name=STEP)
    async def step(self, step: StepIn) -> StepOut:
        """Any other step (the first, a plan, a thread's context, finishing), journaled."""
        return await self._step(step)

    async def _step(self, step: StepIn) -> StepOut:
        run_id = step.run_id
        attempt = activity.info().attempt
        # One owner per attempt: a retry landing in the process whose earlier attempt is
        # still busy (a zombie Temporal gave up on) must wait for it like any other.
        owner = f"{self.owner}:{attempt}"[:100]
        claim = await self._take_lease(run_id, owner)
        try:
            if claim.cancel_requested_by:  # asked while no step held the run
                result = await self.runtime.cancel(run_id, by=claim.cancel_requested_by)
                return await self._stopped(run_id, StepOut(result.status.value, None, -1))
            if attempt > self.settings.max_attempts:
                result = await self.runtime.finish(
                    run_id,
                    RunStatus.FAILED,
                    by=self.owner,
                    audit="run_abandoned",
                    error=f"gave up after {attempt - 1} attempts: every worker that drove this "
                    "run died or lost it",
                )
                return await self._stopped(run_id, StepOut(result.status.value, None, -1))
            outcome = await self._drive(run_id, owner, step.seq)
        finally:
            with contextlib.suppress(Exception):  # an unreleased lease expires on its own
                await asyncio.shield(self._queue(self.queue.release, owner, run_id, requeue=False))
        if outcome.next is None and outcome.status in _PARKED:
            outcome = await self._cancel_if_asked(run_id, owner, outcome)
        return await self._stopped(run_id, outcome) if outcome.next is None else outcome

    async def _cancel_if_asked(self, run_id: str, owner: str, parked: StepOut) -> StepOut:
        """A cancel asked for while this step held the run, too late for its heartbeat (the
        run parked meanwhile): the API left it to this step, so cancel it now. Asked after
        the release, the API cancels it itself (whoever takes the lease first does it)."""
        claim = await self._queue(self.queue.take, run_id, owner, lease_s=self.settings.lease_s)
        if claim is None:  # the API holds it (and cancels it: the dispatcher wakes the workflow)
            return parked
        try:
            if not claim.cancel_requested_by:
                return parked
            result = await self.runtime.cancel(run_id, by=claim.cancel_requested_by)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._queue(self.queue.release, owner, run_id, requeue=False))
        return StepOut(result.status.value, None, -1)

    async def _drive(self, run_id: str, owner: str, seq: int | None) -> StepOut:
        stopped: list[str] = []
        task = asyncio.create_task(self.runtime.step(run_id, seq=seq))
        keeper = asyncio.create_task(self._keep(run_id, owner, task, stopped))
        try:
            stepped = await task
        except asyncio.CancelledError:
            if stopped == ["cancelled"]:  # through bosun: the driver journaled it
                result = await self.runtime.result(run_id)
                return StepOut(result.status.value, None, -1)
            if stopped == ["lost"]:  # another process writes this run now
                raise ApplicationError(f"lost the lease on run {run_id}") from None
            # Temporal cancelled the step (this worker shuts down): stop, write nothing; the
            # retry elsewhere continues from the journal.
            await self.runtime.abandon(run_id)
            raise
        finally:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper
        return StepOut(stepped.result.status.value, stepped.next, stepped.seq)

    async def _keep(
        self, run_id: str, owner: str, task: asyncio.Task[Any], stopped: list[str]
    ) -> None:
        """Heartbeat while the step runs: renew the lease, tell Temporal, act on a cancel."""
        while not task.done():
            await asyncio.sleep(self.settings.lease_s / 3)
            activity.heartbeat()
            try:
                beat = await self._queue(
                    self.queue.heartbeat, owner, {run_id}, lease_s=self.settings.lease_s
                )
            except Exception:  # the store blinked: the journal's key still fences this step
                logger.warning("run %s: renewing its lease failed", run_id, exc_info=True)
                continue
            if run_id in beat.lost:
                logger.warning("%s lost the lease on run %s", owner, run_id)
                stopped.append("lost")
                await self.runtime.abandon(run_id)
                return
            by = beat.cancels.get(run_id)
            if by is not None:
                stopped.append("cancelled")
                await self.runtime.cancel(run_id, by=by)
                return

    async def _take_lease(self, run_id: str, owner: str) -> Claim:
        """Lease the run, waiting (and heartbeating) while another process holds it or the
        store does not answer: neither counts as an attempt."""
        pause = self.settings.lease_s / 6
        while True:
            try:
                claim = await self._queue(
                    self.queue.take,
                    run_id,
                    owner,
                    lease_s=self.settings.lease_s,
                    take_over=DISPATCHER,
                )
                if claim is not None:
                    return claim
            except Exception:
                logger.warning("run %s: taking its lease failed", run_id, exc_info=True)
            activity.heartbeat()
            await asyncio.sleep(pause)

    async def _stopped(self, run_id: str, out: StepOut) -> StepOut:
        """The run finished or waits for a person: export its trace, as the queue does."""
        self.stopped += 1
        if self.tracer is not None:
            try:
                await self.tracer.export_async(run_id)
            except Exception:  # the trace is derived from the journal: export it later
                logger.exception("run %s: exporting its trace failed", run_id)
        return out

    async def _queue(self, call: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Lease operations on their own threads (as the queue's `Worker` does): sync tools
        filling the default pool must not hold back a lease renewal."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="bosun-lease")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, functools.partial(call, *args, **kwargs))
