"""The approvals queue: calls held for a person, the evidence behind each, and the decision.

```
GET  /approvals        held calls of the viewer's tenant, oldest run first
GET  /approvals/{id}   the proposed action, its arguments as a form within the tool's schema,
                       why it is held, and what the run saw (inputs, tool results, labels)
POST /approvals/{id}   approve (with edited arguments) or reject, with a reason: through
                       Gateway.decide (audited, the approver recorded), the run queued and the
                       embedded worker woken at once
```

A decision on a call already decided is a 409 that says who decided it; of two reviewers
deciding at once, the journal takes exactly one (the other's write finds its position taken)
and the other is told the same way.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from bosun.data.runlist import RunCursor, RunFilter, RunList
from bosun.errors import JournalConflict, RunNotFound, RunStateConflict
from bosun.gateway.auth import APPROVALS_DECIDE
from bosun.gateway.gateway import GatewayResult
from bosun.gateway.people import Approval, held_in
from bosun.runtime.state import RunStatus
from bosun.service.dashboard.context import Current, Dash, Dashboard, Poster, Viewer
from bosun.service.dashboard.evidence import (
    HeldCall,
    arg_fields,
    edited_arguments,
    evidence_of,
    fold,
    held_calls,
    parse_arguments,
)
from bosun.service.dashboard.forms import Form, FormRejected
from bosun.service.dashboard.render import DashboardRoute, page
from bosun.service.dashboard.runs import revealer
from bosun.tools.decorator import Tool

__all__ = ["router"]

router = APIRouter(route_class=DashboardRoute, include_in_schema=False)

ApprovalId = Annotated[str, Path(max_length=100, pattern=r"^[0-9a-f]{1,40}\.[0-9a-f]{16}$")]
_MAX_ARG_CHARS = 20_000
_QUEUE = 20


@router.get("/approvals")
async def approvals(
    request: Request,
    viewer: Current,
    dash: Dash,
    done: Annotated[str | None, Query(max_length=20)] = None,
    after: Annotated[str | None, Query(max_length=100)] = None,
) -> Response:
    """Calls held for a decision in the viewer's tenant, oldest run first, a page at a time.

    What `Gateway.approvals` lists (the scope, the tenant, `held_in` of each waiting run),
    read for a page of runs in two queries rather than two per run."""
    viewer.require(APPROVALS_DECIDE)
    where = RunFilter(tenant=viewer.principal.tenant, statuses=(RunStatus.WAITING_APPROVAL.value,))
    cursor = RunCursor.parse(after) if after else None
    listing = RunList(dash.store)

    def read() -> tuple[list[Approval], str | None]:
        runs = listing.page(where, after=cursor, limit=_QUEUE + 1, oldest_first=True)
        shown = runs[:_QUEUE]
        held = [
            call
            for row, steps in listing.loads([r.id for r in shown])
            for call in held_in(row, fold(row.id, row.agent, steps))
        ]
        return held, str(shown[-1].cursor) if len(runs) > _QUEUE else None

    held, more = await asyncio.to_thread(read)
    return page(
        request,
        "approvals.html",
        {"title": "Approvals", "held": held, "done": done, "next": more},
    )


async def _read(
    dash: Dashboard, viewer: Viewer, approval_id: str
) -> tuple[GatewayResult, HeldCall]:
    """The run (read through the gateway: tenancy) and the held call `approval_id` names."""
    run_id = approval_id.partition(".")[0]
    result = await dash.gateway.result(viewer.principal, run_id)
    call = held_calls(run_id, result.steps).get(approval_id)
    if call is None:
        raise RunNotFound(f"no approval {approval_id!r}")
    return result, call


def _tool(dash: Dashboard, agent: str, name: str) -> Tool[Any, Any] | None:
    served = dash.gateway.agents.get(agent)
    return next((t for t in served.tools if t.name == name), None) if served else None


def _decided(call: HeldCall) -> str:
    decision = call.decision or {}
    verdict = "approved" if decision.get("approved") else "rejected"
    return f"This call was already {verdict} by {decision.get('decided_by')}. Nothing was changed."


@router.get("/approvals/{approval_id}")
async def approval(
    request: Request, approval_id: ApprovalId, viewer: Current, dash: Dash
) -> Response:
    """One held call with its evidence and the decision form."""
    viewer.require(APPROVALS_DECIDE)
    result, call = await _read(dash, viewer, approval_id)
    reveal = await revealer(dash, viewer, result.run_id)
    tool = _tool(dash, result.row.agent, call.tool)
    arguments = parse_arguments(call.arguments)
    fields = arg_fields(tool.definition().parameters, arguments) if tool is not None else []
    return page(
        request,
        "approval.html",
        {
            "title": f"Approve {call.tool}?",
            "call": call,
            "run": result.row,
            "tool": tool,
            "fields": fields,
            "arguments": arguments,
            "evidence": evidence_of(result.steps, reveal),
            "decided": _decided(call) if call.decision is not None else None,
        },
    )


def _edited(tool: Tool[Any, Any] | None, call: HeldCall, form: Form) -> dict[str, Any] | None:
    """The reviewer's arguments when they differ from the model's, checked against the tool's
    schema; None when unchanged."""
    if tool is None or not any(name.startswith("arg.") for name in form.names()):
        return None
    schema = tool.definition().parameters
    original = parse_arguments(call.arguments)
    posted: Mapping[str, str | None] = {
        name: form.text(f"arg.{name}", max_chars=_MAX_ARG_CHARS, label=f"argument {name!r}")
        if f"arg.{name}" in form
        else None
        for name in schema.get("properties") or {}
    }
    try:
        edited = edited_arguments(schema, original, posted)
    except ValueError as exc:
        raise FormRejected(f"{exc}. Nothing was changed.") from exc
    if edited == original:
        return None
    try:
        tool.validate_arguments(edited)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'arguments'}: {e['msg']}"
            for e in exc.errors()[:5]
        )
        raise FormRejected(
            f"The edited arguments do not fit {tool.name}'s schema ({problems}). "
            "Nothing was changed."
        ) from exc
    return edited


@router.post("/approvals/{approval_id}")
async def decide(approval_id: ApprovalId, posted: Poster, dash: Dash) -> Response:
    """Approve or reject the held call; the run goes back to the queue at once."""
    viewer, form = posted
    viewer.require(APPROVALS_DECIDE)
    result, call = await _read(dash, viewer, approval_id)
    if call.decision is not None:
        raise RunStateConflict(_decided(call))
    decision = form.choice("decision", ("approve", "reject"), label="the decision")
    reason = form.text("reason", max_chars=2000, label="the reason").strip() or None
    tool = _tool(dash, result.row.agent, call.tool)
    arguments = _edited(tool, call, form) if decision == "approve" else None
    try:
        await dash.gateway.decide(
            viewer.principal,
            result.run_id,
            call.call_id,
            approved=decision == "approve",
            reason=reason,
            arguments=arguments,
            resume=False,
        )
    except (RunStateConflict, JournalConflict):
        # Someone decided first (before this read, or at the same moment): say who.
        _, now = await _read(dash, viewer, approval_id)
        if now.decision is not None and now.decision.get("decided_by") != viewer.id:
            raise RunStateConflict(_decided(now)) from None
        raise
    dash.notify()
    done = (
        "edited"
        if arguments is not None
        else {"approve": "approved", "reject": "rejected"}[decision]
    )
    return RedirectResponse(f"/approvals?done={done}", status_code=303)
