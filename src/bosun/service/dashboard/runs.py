"""Runs: a filtered list, and one run's trace as a waterfall, its journal replayed entry by
entry, and feedback on it.

```
GET  /runs                   the viewer's tenant's runs: agent, status, time; keyset pages
GET  /runs/{id}?at=N         outcome, waterfall (bosun.observe.tracing.trace_of), the state
                             folded from the journal up to entry N (RunState.apply, as the
                             runtime resumes), the evidence with its trust labels, feedback
POST /runs/{id}/feedback     thumbs and a comment: Gateway.feedback (stored for the evals,
                             audited)
```
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from bosun.data.runlist import RunCursor, RunFilter, RunList
from bosun.data.scores import ScoreRows
from bosun.data.store import StepRow
from bosun.errors import UserError
from bosun.gateway.auth import RUNS_READ
from bosun.models.base import AssistantMessage, SystemMessage, ToolMessage
from bosun.observe.tracing import Trace, trace_of
from bosun.runtime.state import RunStatus
from bosun.service.dashboard.context import Current, Dash, Dashboard, Poster, Viewer
from bosun.service.dashboard.evidence import evidence_of, fold
from bosun.service.dashboard.render import DashboardRoute, page

__all__ = ["revealer", "router"]

router = APIRouter(route_class=DashboardRoute, include_in_schema=False)

RunId = Annotated[str, Path(max_length=40, pattern=r"^[0-9a-f]{1,40}$")]
_PAGE = 50
_STATUSES = [s.value for s in RunStatus]


async def revealer(dash: Dashboard, viewer: Viewer, run_id: str) -> Callable[[str], str]:
    """How to show text of run `run_id` to `viewer`: PII resolved only for a role holding
    ``pii:read``, otherwise the placeholders the runtime journaled."""
    if not viewer.sees_pii:
        return lambda text: text
    state = await dash.gateway.runtime.state(run_id)
    return lambda text: dash.gateway.reveal(viewer.principal, state, text)


def _time(value: str | None, label: str) -> float | None:
    if not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise UserError(f"{label} must be a date and time like 2026-11-16T08:30") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)  # the page says times are UTC
    return parsed.timestamp()


@router.get("/runs")
async def runs(
    request: Request,
    viewer: Current,
    dash: Dash,
    agent: Annotated[str | None, Query(max_length=200)] = None,
    status: Annotated[str | None, Query(max_length=32)] = None,
    since: Annotated[str | None, Query(max_length=40)] = None,
    until: Annotated[str | None, Query(max_length=40)] = None,
    after: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = _PAGE,
) -> Response:
    """The viewer's tenant's runs, newest first, filtered; `limit` a page."""
    viewer.require(RUNS_READ)
    if status and status not in _STATUSES:
        raise UserError(f"status must be one of: {', '.join(_STATUSES)}")
    where = RunFilter(
        tenant=viewer.principal.tenant,
        agent=agent or None,
        statuses=(status,) if status else (),
        since=_time(since, "since"),
        until=_time(until, "until"),
    )
    cursor = RunCursor.parse(after) if after else None
    listing = RunList(dash.store)
    rows = await asyncio.to_thread(listing.page, where, after=cursor, limit=limit + 1)
    agents = sorted(dash.gateway.agents)
    filters = {
        "agent": agent or "",
        "status": status or "",
        "since": since or "",
        "until": until or "",
    }
    more = len(rows) > limit
    return page(
        request,
        "runs.html",
        {
            "title": "Runs",
            "rows": rows[:limit],
            "next": str(rows[limit - 1].cursor) if more else None,
            "limit": limit,
            "filters": filters,
            "agents": agents,
            "statuses": _STATUSES,
            "tenant": viewer.principal.tenant,
        },
    )


@dataclass(frozen=True, slots=True)
class Bar:
    """One span of the waterfall."""

    depth: int
    name: str
    kind: str
    offset_s: float
    duration_s: float | None
    left: float
    """Where its bar starts, 0 to 1000 (the SVG's width)."""
    width: float
    """Its bar's width, at least 2 so an instant shows."""
    error: str | None
    tokens: str
    cost: str | None
    detail: str


def waterfall(trace: Trace) -> list[Bar]:
    """The trace's spans, depth first, placed on one time axis."""
    t0 = trace.root.start
    ends = [s.end if s.end is not None else s.start for s in trace.spans]
    total = max(max(ends) - t0, 1e-6)
    bars = []
    for depth, span in trace.walk():
        attrs = span.attributes
        tokens_in, tokens_out = (
            attrs.get("gen_ai.usage.input_tokens"),
            attrs.get("gen_ai.usage.output_tokens"),
        )
        offset = span.start - t0
        duration = span.duration
        shown = duration if duration is not None else total - offset
        detail = ", ".join(
            f"{k.removeprefix('bosun.')}={v}"
            for k, v in attrs.items()
            if k.startswith(("bosun.guardrail", "bosun.tool.status", "bosun.wait", "bosun.human"))
        )
        bars.append(
            Bar(
                depth=depth,
                name=span.name,
                kind=span.kind,
                offset_s=offset,
                duration_s=duration,
                left=round(offset / total * 1000, 1),
                width=round(max(shown / total * 1000, 2.0), 1),
                error=(span.status_message or "error") if span.status == "error" else None,
                tokens="" if tokens_in is None else f"{tokens_in} in / {tokens_out} out",
                cost=str(attrs["bosun.cost_usd"]) if "bosun.cost_usd" in attrs else None,
                detail=detail,
            )
        )
    return bars


@dataclass(frozen=True, slots=True)
class Replayed:
    """The run as the journal had it after one entry."""

    step: StepRow
    """That entry."""
    payload: str
    """Its payload, pretty-printed (vault ciphertexts left out)."""
    status: str
    """The run's status after it."""
    messages: list[tuple[str, str, str]]
    """(role, label, text) of the conversation so far."""
    pending: list[str]
    """Calls proposed and not yet answered."""


def replay(
    run_id: str, agent: str, steps: list[StepRow], at: int, reveal: Callable[[str], str]
) -> Replayed:
    """Fold the journal up to entry `at` the way the runtime does when it resumes a run."""
    state = fold(run_id, agent, steps[: at + 1])
    messages: list[tuple[str, str, str]] = []
    for message in state.messages:
        if isinstance(message, SystemMessage):
            continue  # the instructions: the prompt console shows them
        label, text = "", message.content or ""
        if isinstance(message, AssistantMessage) and message.tool_calls:
            calls = "; ".join(f"{c.name}({c.arguments})" for c in message.tool_calls)
            text = f"{text}\n-> {calls}".strip()
        if isinstance(message, ToolMessage):
            label = f"{message.name}, {message.trust.value}"
        messages.append((message.role, label, reveal(text)))
    payload: dict[str, Any] = json.loads(steps[at].payload)
    payload.pop("vault", None)
    payload.pop("instructions", None)
    shown = reveal(json.dumps(payload, indent=2, ensure_ascii=False, sort_keys=True))
    return Replayed(
        step=steps[at],
        payload=shown,
        status=state.status.value,
        messages=messages,
        pending=[f"{c.name}({c.arguments})" for c in state.pending],
    )


@router.get("/runs/{run_id}")
async def run(
    request: Request,
    run_id: RunId,
    viewer: Current,
    dash: Dash,
    at: Annotated[int | None, Query(ge=0, le=1_000_000)] = None,
    done: Annotated[str | None, Query(max_length=20)] = None,
) -> Response:
    """One run: outcome, waterfall, journal replay, evidence, feedback."""
    viewer.require(RUNS_READ)
    result = await dash.gateway.result(viewer.principal, run_id)
    reveal = await revealer(dash, viewer, run_id)
    steps = result.steps
    trace, feedback = await asyncio.gather(
        asyncio.to_thread(trace_of, dash.store, run_id),
        asyncio.to_thread(ScoreRows(dash.store).feedback, run_id),
    )
    position = min(at if at is not None else len(steps) - 1, len(steps) - 1)
    replayed = replay(run_id, result.row.agent, steps, position, reveal) if steps else None
    handoff = result.run.handoff
    return page(
        request,
        "run.html",
        {
            "title": f"Run {run_id}",
            "result": result,
            "row": result.row,
            "output": result.output,
            "handoff": handoff,
            "bars": waterfall(trace),
            "steps": steps,
            "replayed": replayed,
            "position": position,
            "evidence": evidence_of(steps, reveal),
            "feedback": feedback,
            "done": done,
        },
    )


@router.post("/runs/{run_id}/feedback")
async def feedback(run_id: RunId, posted: Poster, dash: Dash) -> Response:
    """Thumbs up or down and a comment on a run."""
    viewer, form = posted
    viewer.require(RUNS_READ)
    rating = {"up": 1, "down": -1, "": None}[
        form.choice("rating", ("up", "down", ""), label="the rating")
    ]
    comment = form.text("comment", max_chars=4000, label="the comment").strip() or None
    correction = form.text("correction", max_chars=20_000, label="the correction").strip() or None
    await dash.gateway.feedback(
        viewer.principal, run_id, rating=rating, correction=correction, comment=comment
    )
    return RedirectResponse(f"/runs/{run_id}?done=feedback#feedback", status_code=303)
