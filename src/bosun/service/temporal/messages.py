"""What bosun's workflow and activities pass each other through Temporal: plain dataclasses,
serialised by Temporal's default JSON converter and kept in its history.

Only the run's id and its journal position travel; the run itself (input, messages, results)
stays in bosun's store, which is the system of record whichever engine drives a run.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "MODEL_CALL",
    "RUN_WORKFLOW",
    "STEP",
    "TOOL_CALLS",
    "WAKE",
    "RunPlan",
    "StepIn",
    "StepOut",
    "activity_for",
]

RUN_WORKFLOW = "bosun.run"
"""The workflow type: one bosun run (its workflow id is the run id)."""
WAKE = "wake"
"""The signal that wakes a run's workflow: the run was queued again (a person approved or
rejected a held call, answered or handed back an escalation) or first submitted."""
MODEL_CALL = "bosun.model_call"
"""The activity that calls the model once (budgets and spend caps checked first)."""
TOOL_CALLS = "bosun.tool_calls"
"""The activity that runs the tool calls of one model response."""
STEP = "bosun.step"
"""The activity for any other step: the first one, finishing, a plan, a thread's context."""


def activity_for(step: str | None) -> str:
    """The activity type that takes `step` (a `bosun.runtime.driver.Step`)."""
    if step == "model":
        return MODEL_CALL
    if step == "tools":
        return TOOL_CALLS
    return STEP


@dataclass(frozen=True)
class RunPlan:
    """A run's workflow input: which run, and the timeouts its steps get (fixed when the
    workflow starts, so a replay schedules exactly what the first execution did)."""

    run_id: str
    """The bosun run (and the workflow id)."""
    heartbeat_s: float
    """A step that has not heartbeated for this long is retried elsewhere (`lease_s`)."""
    step_timeout_s: float
    """The longest one step may run (`TemporalSettings.step_timeout_s`)."""
    retry_max_s: float
    """The longest wait between two attempts of a step."""
    recheck_parked_s: float
    """How often a parked run is looked at without being woken."""


@dataclass(frozen=True)
class StepIn:
    """One step of a run: the activities' input."""

    run_id: str
    """The run to drive."""
    seq: int | None
    """The journal position the previous step left; None after a wait (read it back)."""


@dataclass(frozen=True)
class StepOut:
    """How the run stands after a step: the activities' result."""

    status: str
    """The run's status (a `bosun.runtime.RunStatus` value)."""
    next: str | None
    """The step that comes next; None when the run finished or waits for a person."""
    seq: int
    """The journal position after the step."""
