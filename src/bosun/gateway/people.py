"""`People`: what a person decides for a run, without the perimeter in front of it.

```
approvals   runs waiting_approval -> their held calls, each with an id: <run id>.<digest>
decide      an approval -> Runtime.decide (approve, edit, reject) -> queued for a worker
escalations runs escalated or waiting_human
hand_back   Runtime.hand_back (the note answers the agent) -> queued for a worker
close       an escalated run ends completed, the person's note its outcome
```

The `Gateway` puts authentication, scopes, tenancy and claims in front of these for the REST
API; ``bosun approvals`` and ``bosun escalations`` use them directly as the operator of the
local store. Both record who decided as the approver, in the journal and the audit log.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from typing import Any

from bosun.data.store import RunRow
from bosun.errors import RunNotFound, RunStateConflict
from bosun.models.base import ToolCall
from bosun.runtime.runtime import RunResult, Runtime
from bosun.runtime.state import RunState, RunStatus

__all__ = ["ESCALATED", "Approval", "People", "approval_id", "held_in"]

ESCALATED = ("escalated", "waiting_human")
"""The statuses of a run waiting for a person (not for an approval)."""


@dataclass(frozen=True, slots=True)
class Approval:
    """A call held for a person's decision."""

    id: str
    """``<run id>.<digest of the call id>``: URL-safe whatever the model named its call."""
    run_id: str
    agent: str
    call_id: str
    tool: str
    arguments: str
    """As the model wrote them (JSON text)."""
    reasons: Any
    """Why the call is held (approval policy, taint, ungrounded values)."""
    requested_at: float

    @classmethod
    def of(cls, row: RunRow, call: ToolCall, reasons: Any) -> Approval:
        """The approval for `call` of the run `row`."""
        return cls(
            id=approval_id(row.id, call.id),
            run_id=row.id,
            agent=row.agent,
            call_id=call.id,
            tool=call.name,
            arguments=call.arguments,
            reasons=reasons,
            requested_at=row.updated_at,
        )


@dataclass(frozen=True)
class People:
    """Held calls and escalated runs of `runtime`'s store, and the decisions people take on
    them. Who may see or decide what is the caller's business (the gateway checks it)."""

    runtime: Runtime
    """Records the decisions; its store holds the runs."""

    async def approvals(
        self, *, tenant: str | None = None, all_tenants: bool = True, limit: int = 50
    ) -> list[Approval]:
        """Calls held for a decision, oldest run first; ``all_tenants=False`` keeps
        `tenant`'s runs only."""
        rows = await asyncio.to_thread(
            self.runtime.store.list_runs,
            status=RunStatus.WAITING_APPROVAL.value,
            tenant=tenant,
            all_tenants=all_tenants,
            limit=limit,
        )
        held: list[Approval] = []
        for row in reversed(rows):
            held.extend(await self.held(row))
        return held

    async def approval(self, id: str, *, row: RunRow | None = None) -> Approval:
        """One held call, by the id `approvals` gave it. `row` is its run, when the caller
        has read it already (to check tenancy)."""
        if row is None:
            try:
                row = await asyncio.to_thread(self.runtime.store.get_run, id.partition(".")[0])
            except RunNotFound:
                raise RunNotFound(f"no approval {id[:100]!r} is waiting") from None
        for held in await self.held(row):
            if held.id == id:
                return held
        raise RunNotFound(f"no approval {id[:100]!r} is waiting")

    async def held(self, row: RunRow) -> list[Approval]:
        """The calls of the run `row` waiting for a decision (none unless it is
        waiting_approval)."""
        return held_in(row, await self.runtime.state(row.id))

    async def decide(
        self,
        run_id: str,
        call_id: str,
        *,
        approved: bool,
        by: str,
        reason: str | None = None,
        arguments: dict[str, Any] | None = None,
        resume: bool = False,
    ) -> RunResult:
        """Approve (with `arguments` instead of the model's, when edited) or reject a held
        call as `by`. The run goes back to the queue for a worker, or with ``resume=True``
        is driven here (the runtime must then have its agent)."""
        return await self.runtime.decide(
            run_id,
            call_id,
            approved=approved,
            decided_by=by,
            reason=reason,
            arguments=arguments,
            resume=resume,
        )

    async def escalations(
        self, *, tenant: str | None = None, all_tenants: bool = True, limit: int = 50
    ) -> list[RunRow]:
        """Runs waiting for a person, newest first; ``all_tenants=False`` keeps `tenant`'s
        runs only."""
        return await asyncio.to_thread(
            self.runtime.store.list_runs,
            status=ESCALATED,
            tenant=tenant,
            all_tenants=all_tenants,
            limit=limit,
        )

    async def hand_back(
        self, run_id: str, note: str, *, by: str, resume: bool = False
    ) -> RunResult:
        """Answer an escalated or waiting run as `by`: the agent continues with the note, on
        a worker, or with ``resume=True`` here."""
        return await self.runtime.hand_back(run_id, note, by=by, resume=resume)

    async def close(self, row: RunRow, note: str, *, by: str) -> RunResult:
        """Resolve the escalated run `row` without the agent: it completes with the person's
        note as its outcome."""
        if row.status not in ESCALATED:
            raise RunStateConflict(f"run {row.id} is {row.status}, not escalated")
        return await self.runtime.finish(
            row.id, RunStatus.COMPLETED, by=by, audit="escalation_closed", output=note
        )


def held_in(row: RunRow, state: RunState) -> list[Approval]:
    """The calls of the run `row`, as `state` (its journal folded) has it, waiting for a
    decision: for callers that read many runs' journals at once."""
    return [
        Approval.of(row, call, state.approval_reasons.get(call.id))
        for call in state.pending
        if call.id in state.awaiting_approval
    ]


def approval_id(run_id: str, call_id: str) -> str:
    """The id of the approval of call `call_id` of run `run_id`: ``<run id>.<16 hex digits
    of the call id's SHA-256>``, URL-safe whatever the model named its call."""
    digest = hashlib.sha256(call_id.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return f"{run_id}.{digest}"
