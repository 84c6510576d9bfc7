"""What people do to runs: decide a held call, hand a run back, cancel, finish, escalate,
note. Each loads the run's journal, checks the run is where the operation applies, appends
one entry (journaled and audited with the person), and, when asked, resumes the run here.

`Runtime` takes these from `PeopleOperations`; they rest on its journal plumbing (`_load`,
`_append`, `resume`, `result`, the runs driven here), declared below for the type checker.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import TYPE_CHECKING, Any

from bosun.errors import RunStateConflict, UserError
from bosun.runtime.driver import RunDriver, handoff_for
from bosun.runtime.results import RunResult
from bosun.runtime.state import RunState, RunStatus

__all__ = ["PeopleOperations"]


class PeopleOperations:
    """The operations a person (or a worker acting for one) performs on a run."""

    _drivers: dict[str, RunDriver]
    _active: dict[str, asyncio.Task[RunState]]

    if TYPE_CHECKING:

        async def _load(self, run_id: str) -> RunState: ...

        async def _append(
            self,
            state: RunState,
            kind: str,
            payload: dict[str, Any],
            *,
            status: RunStatus,
            audit: str,
            approver: str | None = None,
            extra: dict[str, Any] | None = None,
        ) -> None: ...

        async def resume(self, run_id: str) -> RunResult: ...

        async def result(self, run_id: str) -> RunResult: ...

    async def decide(
        self,
        run_id: str,
        call_id: str,
        *,
        approved: bool,
        decided_by: str,
        reason: str | None = None,
        arguments: dict[str, Any] | None = None,
        resume: bool = True,
    ) -> RunResult:
        """Record a decision on a call held for approval, then resume the run here, or with
        ``resume=False`` queue it for a worker."""
        state = await self._load(run_id)
        if state.status is not RunStatus.WAITING_APPROVAL or call_id not in state.awaiting_approval:
            raise RunStateConflict(f"run {run_id} has no call {call_id!r} waiting for approval")
        payload = {
            "call_id": call_id,
            "approved": approved,
            "decided_by": decided_by,
            "reason": reason,
            "arguments": arguments,
        }
        await self._append(
            state,
            "approval_decided",
            payload,
            status=_next_status(resume),
            audit="approval",
            approver=decided_by,
        )
        if not resume:
            state.status = RunStatus.QUEUED
            return RunResult.of(state)
        return await self.resume(run_id)

    async def hand_back(self, run_id: str, note: str, *, by: str, resume: bool = True) -> RunResult:
        """Give a run waiting for a person back to the agent, then resume it here, or with
        ``resume=False`` queue it for a worker.

        For a run that asked a question (``waiting_human``) the note is the answer to its
        ``ask_human`` call; for an escalated run it is added to the context as a note.
        """
        state = await self._load(run_id)
        if state.status is RunStatus.WAITING_HUMAN and state.asked:
            call_id = next(iter(state.asked))
            kind, payload = "human_answer", {"call_id": call_id, "text": note, "by": by}
        elif state.status in (RunStatus.ESCALATED, RunStatus.WAITING_HUMAN):
            kind, payload = "human_note", {"text": note, "by": by}
        else:
            raise RunStateConflict(
                f"run {run_id} is {state.status.value}, not waiting for a person"
            )
        await self._append(
            state,
            kind,
            payload,
            status=_next_status(resume),
            audit="hand_back",
            approver=by,
            extra={"handoff": None, "assignee": None},
        )
        if not resume:
            state.status = RunStatus.QUEUED
            return RunResult.of(state)
        return await self.resume(run_id)

    async def cancel(self, run_id: str, *, by: str) -> RunResult:
        """Stop a run for good. A run being driven here is interrupted at its next await."""
        driver = self._drivers.get(run_id)
        task = self._active.get(run_id)
        if driver is not None and task is not None:
            driver.cancelled_by = by
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            return await self.result(run_id)
        return await self.finish(
            run_id, RunStatus.CANCELLED, by=by, error=f"cancelled by {by}", audit="run_cancelled"
        )

    async def finish(
        self,
        run_id: str,
        status: RunStatus,
        *,
        by: str,
        audit: str,
        output: str | None = None,
        error: str | None = None,
    ) -> RunResult:
        """End a run that nothing drives in this process (cancelled, closed by a person,
        given up on by a worker). The caller makes sure no other process drives it (a worker
        holds its lease); a finished run is returned as it is."""
        if not status.terminal:
            raise UserError(f"finish takes a terminal status, not {status.value}")
        state = await self._load(run_id)
        if not state.status.terminal:
            payload = {"status": status.value, "output": output, "handoff": None, "error": error}
            await self._append(
                state,
                "run_finished",
                payload,
                status=status,
                audit=audit,
                approver=by,
                extra={"output": output, "error": error},
            )
        return RunResult.of(state)

    async def escalate(
        self, run_id: str, reason: str, *, by: str, audit: str, question: str | None = None
    ) -> RunResult:
        """Hand a run that nothing drives in this process to a person (a worker giving up on
        a run whose side effects already happened: failing it would hide them). The caller
        holds its lease; a finished or parked run is returned as it is."""
        state = await self._load(run_id)
        if state.status.terminal or state.status.parked:
            return RunResult.of(state)
        handoff = handoff_for(
            state, reason, question or "What is left to do for this request, if anything?"
        )
        handoff_json = handoff.model_dump(mode="json")
        payload = {
            "status": RunStatus.ESCALATED.value,
            "output": None,
            "handoff": handoff_json,
            "error": None,
        }
        await self._append(
            state,
            "run_finished",
            payload,
            status=RunStatus.ESCALATED,
            audit=audit,
            approver=by,
            extra={"handoff": json.dumps(handoff_json)},
        )
        return RunResult.of(state)

    async def note(self, run_id: str, kind: str, payload: dict[str, Any], *, by: str) -> None:
        """Journal and audit an event about a parked run that changes nothing in its state (an
        approval deadline passed and the run was escalated further, say)."""
        state = await self._load(run_id)
        await self._append(state, kind, payload, status=state.status, audit=kind, approver=by)


def _next_status(resume: bool) -> RunStatus:
    # Driven here: "running" with no lease, so no worker claims it meanwhile. Else queued.
    return RunStatus.RUNNING if resume else RunStatus.QUEUED
