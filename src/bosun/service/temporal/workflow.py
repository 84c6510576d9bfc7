"""`RunWorkflow`: one bosun run on Temporal, as a deterministic loop over its steps.

```
loop:  step = activity(run, seq)      model_call | tool_calls | step, by what comes next
       next step?            -> schedule it
       finished?             -> return the status
       waiting for a person? -> wait for a `wake` signal (or recheck_parked_s), then step
```

The workflow decides nothing about the run: the activities drive it with bosun's own code
and journal each step in bosun's store before they return, so what comes next is read from
the journal, not from Temporal's history. A parked run's workflow holds no worker slot
while it waits: it is a timer and a signal handler on the Temporal server.
"""

from __future__ import annotations

import contextlib
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

from bosun.service.temporal.messages import (
    RUN_WORKFLOW,
    STEP,
    WAKE,
    RunPlan,
    StepIn,
    StepOut,
    activity_for,
)

__all__ = ["RunWorkflow"]

_TERMINAL = ("completed", "failed", "cancelled")


@workflow.defn(name=RUN_WORKFLOW)
class RunWorkflow:
    """Drives one run step by step; waits for a signal while a person has the run."""

    def __init__(self) -> None:
        self._wakes = 0

    @workflow.signal(name=WAKE)
    def wake(self) -> None:
        """The run was queued: a decision, a hand-back or a submission is in its journal."""
        self._wakes += 1

    @workflow.run
    async def run(self, plan: RunPlan) -> str:
        """Step the run until it finishes; returns its final status."""
        # Temporal retries a step for as long as it takes: the step itself gives the run up
        # after `max_attempts` attempts that got as far as driving it (an attempt waiting
        # for the store or for a lease does not count), as the built-in queue does.
        retry = RetryPolicy(
            initial_interval=timedelta(seconds=1),
            maximum_interval=timedelta(seconds=plan.retry_max_s),
            maximum_attempts=0,
        )
        seq: int | None = None
        activity = STEP
        while True:
            # Wakes counted from before the step: one that arrives while the step parks the
            # run is not lost (a spurious one costs a step that finds the run still parked).
            wakes = self._wakes
            out: StepOut = await workflow.execute_activity(
                activity,
                StepIn(run_id=plan.run_id, seq=seq),
                result_type=StepOut,
                start_to_close_timeout=timedelta(seconds=plan.step_timeout_s),
                heartbeat_timeout=timedelta(seconds=plan.heartbeat_s),
                retry_policy=retry,
                summary=f"{activity} at {seq if seq is not None else 'the journal end'}",
            )
            if out.next is not None:
                seq, activity = out.seq, activity_for(out.next)
            elif out.status in _TERMINAL:
                return out.status
            else:
                await self._wait(wakes, plan.recheck_parked_s)
                seq, activity = None, STEP  # a person wrote to the journal: read it back
            if workflow.info().is_continue_as_new_suggested():
                # A long run's history is cut here; the journal holds everything that matters.
                workflow.continue_as_new(plan)

    async def _wait(self, wakes: int, recheck_s: float) -> None:
        # On timeout, look anyway: a run cancelled or closed while it waited is not queued.
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(
                lambda: self._wakes > wakes, timeout=timedelta(seconds=recheck_s)
            )
