"""Escalations: runs waiting for a person, the handoff package, and what the person does.

```
GET  /escalations                       escalated and waiting runs of the viewer's tenant
GET  /escalations/{run}                 the handoff (why, what was tried, the question, and
                                        confidence and passages when the run has them), the
                                        evidence with its trust labels
POST /escalations/{run}/claim           take it over: others cannot resolve it meanwhile
POST /escalations/{run}/resolve         hand back with an answer (the agent continues), or
                                        close it with the note as its outcome
```

Every action goes through the `Gateway` (scope, tenancy, the claim) and is audited with who
took it.
"""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

from fastapi import APIRouter, Query
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from bosun.data.runlist import RunCursor, RunFilter, RunList
from bosun.gateway.auth import APPROVALS_DECIDE
from bosun.gateway.people import ESCALATED
from bosun.runtime.state import HandoffPassage
from bosun.service.dashboard.context import Current, Dash, Poster
from bosun.service.dashboard.evidence import evidence_of
from bosun.service.dashboard.render import DashboardRoute, page
from bosun.service.dashboard.runs import RunId, revealer

__all__ = ["router"]

router = APIRouter(route_class=DashboardRoute, include_in_schema=False)

_PAGE = 50


def handoff_of(text: str | None) -> dict[str, Any]:
    """A handoff package as stored (its keys may grow: confidence, passages)."""
    try:
        value = json.loads(text) if text else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def passages_of(handoff: dict[str, Any]) -> list[HandoffPassage]:
    """The knowledge-base passages of a low-confidence handoff; an entry that is not one
    (a package written by another version) is left out rather than failing the page."""
    found = []
    for item in handoff.get("passages") or ():
        try:
            found.append(HandoffPassage.model_validate(item))
        except ValueError:
            continue
    return found


@router.get("/escalations")
async def escalations(
    request: Request,
    viewer: Current,
    dash: Dash,
    done: Annotated[str | None, Query(max_length=20)] = None,
    after: Annotated[str | None, Query(max_length=100)] = None,
) -> Response:
    """Runs waiting for a person in the viewer's tenant (what `Gateway.escalations` lists),
    newest first, a page at a time."""
    viewer.require(APPROVALS_DECIDE)
    where = RunFilter(tenant=viewer.principal.tenant, statuses=ESCALATED)
    cursor = RunCursor.parse(after) if after else None
    rows = await asyncio.to_thread(RunList(dash.store).page, where, after=cursor, limit=_PAGE + 1)
    items = [(row, handoff_of(row.handoff)) for row in rows[:_PAGE]]
    more = str(rows[_PAGE - 1].cursor) if len(rows) > _PAGE else None
    return page(
        request,
        "escalations.html",
        {"title": "Escalations", "items": items, "done": done, "next": more},
    )


@router.get("/escalations/{run_id}")
async def escalation(request: Request, run_id: RunId, viewer: Current, dash: Dash) -> Response:
    """One escalation: the handoff package and the forms to answer or take over."""
    viewer.require(APPROVALS_DECIDE)
    result = await dash.gateway.result(viewer.principal, run_id)
    reveal = await revealer(dash, viewer, run_id)
    handoff = handoff_of(result.row.handoff)
    shown = {
        key: reveal(value) if isinstance(value, str) else value for key, value in handoff.items()
    }
    return page(
        request,
        "escalation.html",
        {
            "title": f"Escalation {run_id}",
            "row": result.row,
            "waiting": result.row.status in ESCALATED,
            "handoff": shown,
            "run": result.run,
            "handoff_passages": passages_of(handoff),
            "evidence": evidence_of(result.steps, reveal),
        },
    )


@router.post("/escalations/{run_id}/claim")
async def claim(run_id: RunId, posted: Poster, dash: Dash) -> Response:
    """Take the escalation over."""
    viewer, _ = posted
    viewer.require(APPROVALS_DECIDE)
    await dash.gateway.claim(viewer.principal, run_id)
    return RedirectResponse(f"/escalations/{run_id}", status_code=303)


@router.post("/escalations/{run_id}/resolve")
async def resolve(run_id: RunId, posted: Poster, dash: Dash) -> Response:
    """Hand the run back with the note, or close it with the note as its outcome."""
    viewer, form = posted
    viewer.require(APPROVALS_DECIDE)
    action = form.choice("action", ("hand_back", "close"), label="the action")
    note = form.required("note", max_chars=4000, label="the note")
    if action == "hand_back":
        await dash.gateway.hand_back(viewer.principal, run_id, note, resume=False)
        dash.notify()
    else:
        await dash.gateway.close(viewer.principal, run_id, note)
    return RedirectResponse(f"/escalations?done={action}", status_code=303)
