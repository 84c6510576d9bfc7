"""Operations: charts over time of what the store records about runs.

```
GET /ops?hours=24|72|168   runs per hour, p50/p95 run latency, cost per run, escalation rate,
                           injections caught, tool error rate; tool errors by tool; recent
                           drift alerts
```

Counted by `bosun.data.operations.OpsRows` from the runs and their journals (at most every 30
seconds per window: a week's window reads every run's first entry), bucketed by the hour a
run was submitted, across every tenant like ``/metrics`` (the page needs the
``metrics:read`` scope of the ``monitor`` role). Run latency is from submission to the run's
last status change, for runs that stopped (completed, failed, cancelled, escalated), time
waiting for people included. A tool error is a tool failing (timeout, transient or permanent
failure, open breaker, rate limit, invalid result, unknown outcome), not a call bosun refused.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Query
from starlette.requests import Request
from starlette.responses import Response

from bosun.data.alerts import AlertRow, AlertRows
from bosun.data.operations import HOUR, OpsRows, OpsWindow
from bosun.errors import UserError
from bosun.gateway.auth import METRICS_READ
from bosun.service.dashboard.charts import Chart, line_chart, percentile
from bosun.service.dashboard.context import Current, Dash
from bosun.service.dashboard.render import DashboardRoute, page
from bosun.tools.base import ErrorKind

__all__ = ["router"]

router = APIRouter(route_class=DashboardRoute, include_in_schema=False)

STOPPED = ("completed", "failed", "cancelled", "escalated")
TOOL_ERRORS = frozenset(
    k.value
    for k in (
        ErrorKind.TIMEOUT,
        ErrorKind.TRANSIENT,
        ErrorKind.FAILED,
        ErrorKind.CIRCUIT_OPEN,
        ErrorKind.RATE_LIMITED,
        ErrorKind.INVALID_RESULT,
        ErrorKind.OUTCOME_UNKNOWN,
    )
)
_DRIFT_DAYS = 7
_WINDOWS = (24, 72, 168)


@dataclass(frozen=True, slots=True)
class ToolTotal:
    """A tool over the whole window."""

    tool: str
    calls: int
    errors: int
    refused: int

    @property
    def error_rate(self) -> float:
        """Errors per call."""
        return self.errors / self.calls if self.calls else 0.0


def _read(ops: OpsRows, window: OpsWindow) -> tuple[list, list, list, list]:  # type: ignore[type-arg]
    return (
        ops.statuses(window),
        ops.durations(window, statuses=STOPPED),
        ops.tools(window),
        ops.flags(window),
    )


def charts(ops: OpsRows, window: OpsWindow) -> tuple[list[Chart], list[ToolTotal]]:
    """The page's charts and the per-tool table, from four reads of the window."""
    statuses, durations, tools, flags = _read(ops, window)
    first = window.since - window.since % HOUR
    hours = [first + i * HOUR for i in range(int((window.until - first) // HOUR) + 1)]
    runs: dict[float, int] = defaultdict(int)
    cost: dict[float, Decimal] = defaultdict(Decimal)
    priced: dict[float, int] = defaultdict(int)
    for s in statuses:
        runs[s.hour] += s.runs
        cost[s.hour] += s.cost_usd
        priced[s.hour] += s.priced
    waits: dict[float, list[float]] = defaultdict(list)
    for hour, seconds in durations:
        waits[hour].append(seconds)
    calls: dict[float, int] = defaultdict(int)
    errors: dict[float, int] = defaultdict(int)
    blocked: dict[float, int] = defaultdict(int)
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for t in tools:
        calls[t.hour] += t.calls
        totals[t.tool][0] += t.calls
        if t.status in TOOL_ERRORS:
            errors[t.hour] += t.calls
            totals[t.tool][1] += t.calls
        elif t.status != "ok":
            totals[t.tool][2] += t.calls
        if t.status == ErrorKind.BLOCKED_BY_POLICY.value:
            blocked[t.hour] += t.calls
    handed = {f.hour: f.handed_over for f in flags}
    flagged = {f.hour: f.inputs_flagged for f in flags}

    def rate(part: dict[float, int], whole: dict[float, int], h: float) -> float | None:
        return part.get(h, 0) / whole[h] * 100 if whole.get(h) else None

    made = [
        line_chart(
            "runs",
            "Runs per hour",
            hours,
            [("runs", [float(runs.get(h, 0)) for h in hours])],
            _count,
        ),
        line_chart(
            "latency",
            "Run latency (submission to outcome)",
            hours,
            [
                ("p50", [percentile(waits.get(h, []), 0.5) for h in hours]),
                ("p95", [percentile(waits.get(h, []), 0.95) for h in hours]),
            ],
            _secs,
        ),
        line_chart(
            "cost",
            "Cost per run",
            hours,
            [
                (
                    "USD per priced run",
                    [float(cost[h] / priced[h]) if priced.get(h) else None for h in hours],
                )
            ],
            _usd,
        ),
        line_chart(
            "escalations",
            "Escalation rate",
            hours,
            [("runs handed to a person", [rate(handed, runs, h) for h in hours])],
            _pct,
        ),
        line_chart(
            "injections",
            "Injections caught",
            hours,
            [
                ("inputs flagged by the screen", [float(flagged.get(h, 0)) for h in hours]),
                ("actions blocked by policy", [float(blocked.get(h, 0)) for h in hours]),
            ],
            _count,
        ),
        line_chart(
            "tool-errors",
            "Tool error rate",
            hours,
            [("failed tool calls", [rate(errors, calls, h) for h in hours])],
            _pct,
        ),
    ]
    table = sorted(
        (ToolTotal(tool, *counts) for tool, counts in totals.items()),
        key=lambda t: (-t.error_rate, t.tool),
    )
    return made, table


def _count(v: float) -> str:
    return f"{v:,.0f}" if v >= 10 or v == int(v) else f"{v:.1f}"


def _secs(v: float) -> str:
    return f"{v * 1000:.0f} ms" if v < 1 else f"{v:.1f} s"


def _usd(v: float) -> str:
    return f"${v:.4f}"


def _pct(v: float) -> str:
    return f"{v:.0f}%" if v >= 10 or v == int(v) else f"{v:.1f}%"


@router.get("/ops")
async def operations(
    request: Request,
    viewer: Current,
    dash: Dash,
    hours: Annotated[int, Query()] = 24,
) -> Response:
    """Charts over the last `hours`, tool errors by tool, recent drift alerts."""
    viewer.require(METRICS_READ)
    if hours not in _WINDOWS:
        raise UserError(f"hours must be one of {', '.join(map(str, _WINDOWS))}")

    async def count() -> tuple[list[Chart], list[ToolTotal], list[AlertRow]]:
        now = time.time()
        window = OpsWindow(since=now - hours * HOUR, until=now, all_tenants=True)
        made, tools = await asyncio.to_thread(charts, OpsRows(dash.store), window)
        drift = await asyncio.to_thread(AlertRows(dash.store).newest, kind="drift", limit=20)
        return made, tools, [a for a in drift if a.created_at >= now - _DRIFT_DAYS * 86400]

    counted_at, (made, tools, recent) = await dash.recent.get(("ops", hours), count)
    return page(
        request,
        "ops.html",
        {
            "title": "Operations",
            "charts": made,
            "tools": tools,
            "drift": recent,
            "hours": hours,
            "choices": _WINDOWS,
            "counted_at": counted_at,
        },
    )
