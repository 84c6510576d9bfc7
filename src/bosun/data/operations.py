"""Operations over time, counted from what the store already holds: runs per hour by status,
their cost and duration, tool results by outcome, hand-overs to people and inputs the
injection screen flagged (the dashboard's operations page).

Everything is bucketed by the hour a run was *submitted* (``floor(created_at / 3600)``), so
the runs of one window are selected through the ``(created_at, tenant)`` index (or
``(tenant, created_at)``), and their journal entries are reached by primary key: the cost grows with
the runs in the window, not with the size of the store. What counts as an error or a stop is
the caller's business: rows come back by status.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from bosun.data._repo import Repository
from bosun.data.schema import runs, steps

__all__ = ["HourFlags", "HourStatus", "HourTool", "OpsRows", "OpsWindow"]

HOUR = 3600.0


@dataclass(frozen=True, slots=True, kw_only=True)
class OpsWindow:
    """Which runs the counts cover."""

    since: float
    """Runs submitted at or after this time (unix seconds)."""
    until: float
    """... and before this one."""
    tenant: str | None = None
    """Only this tenant's runs, unless `all_tenants`."""
    all_tenants: bool = False
    """Count every tenant's runs (an operator's view, like ``/metrics``)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class HourStatus:
    """Runs submitted in one hour that now stand in one status."""

    hour: float
    """Start of the hour (unix seconds)."""
    status: str
    """Their status."""
    runs: int
    """How many."""
    cost_usd: Decimal
    """Their summed spend (unpriced runs count as zero)."""
    priced: int
    """How many of them have a known cost."""


@dataclass(frozen=True, slots=True, kw_only=True)
class HourTool:
    """Tool results of the runs submitted in one hour, for one tool and outcome."""

    hour: float
    """Start of the hour."""
    tool: str
    """The tool."""
    status: str
    """``ok`` or the error kind."""
    calls: int
    """How many results."""


@dataclass(frozen=True, slots=True, kw_only=True)
class HourFlags:
    """People and the injection screen, for the runs submitted in one hour."""

    hour: float
    """Start of the hour."""
    handed_over: int
    """Runs that asked a person or were escalated to one (at least once)."""
    inputs_flagged: int
    """Runs with an input part the injection screen flagged at the gateway."""


class OpsRows(Repository):
    """Counts runs and their journals per hour."""

    def statuses(self, window: OpsWindow) -> list[HourStatus]:
        """Runs per hour and status, with their spend."""
        hour = self._hour(runs.c.created_at)
        query = (
            sa.select(
                hour.label("hour"),
                runs.c.status,
                sa.func.count().label("runs"),
                sa.func.coalesce(sa.func.sum(runs.c.cost_usd), 0).label("cost_usd"),
                sa.func.count(runs.c.cost_usd).label("priced"),
            )
            .where(*self._runs_in(window))
            .group_by(hour, runs.c.status)
        )
        with self._read() as conn:
            rows = conn.execute(query).all()
        return [
            HourStatus(
                hour=float(r.hour) * HOUR,
                status=r.status,
                runs=int(r.runs),
                cost_usd=Decimal(str(r.cost_usd)),
                priced=int(r.priced),
            )
            for r in rows
        ]

    def durations(self, window: OpsWindow, *, statuses: Sequence[str]) -> list[tuple[float, float]]:
        """(hour, seconds from submission to the last status change) of each run in one of
        `statuses`: percentiles are the caller's (SQLite has no percentile function)."""
        hour = self._hour(runs.c.created_at)
        query = sa.select(hour, runs.c.updated_at - runs.c.created_at).where(
            *self._runs_in(window), runs.c.status.in_(list(statuses))
        )
        with self._read() as conn:
            return [(float(h) * HOUR, float(d)) for h, d in conn.execute(query).all()]

    def tools(self, window: OpsWindow) -> list[HourTool]:
        """Tool results per hour, tool and outcome."""
        picked = self._picked(window)
        query = (
            sa.select(picked.c.hour, steps.c.tool, steps.c.status, sa.func.count().label("n"))
            .select_from(picked.join(steps, steps.c.run_id == picked.c.id))
            .where(steps.c.kind == "tool_result")
            .group_by(picked.c.hour, steps.c.tool, steps.c.status)
        )
        with self._read() as conn:
            rows = conn.execute(query).all()
        return [
            HourTool(
                hour=float(r.hour) * HOUR,
                tool=str(r.tool),
                status=str(r.status or "ok"),
                calls=int(r.n),
            )
            for r in rows
        ]

    def flags(self, window: OpsWindow) -> list[HourFlags]:
        """Per hour: runs handed to a person, runs whose input the screen flagged."""
        picked = self._picked(window)
        handed = sa.or_(
            steps.c.kind == "human_requested",
            sa.and_(steps.c.kind == "run_finished", steps.c.status == "escalated"),
        )
        flagged = sa.and_(steps.c.kind == "run_started", self._screened(steps.c.payload))
        query = (
            sa.select(
                picked.c.hour,
                sa.func.count(sa.distinct(sa.case((handed, steps.c.run_id)))).label("handed"),
                sa.func.count(sa.distinct(sa.case((flagged, steps.c.run_id)))).label("flagged"),
            )
            .select_from(picked.join(steps, steps.c.run_id == picked.c.id))
            .where(steps.c.kind.in_(("human_requested", "run_finished", "run_started")))
            .group_by(picked.c.hour)
        )
        with self._read() as conn:
            rows = conn.execute(query).all()
        return [
            HourFlags(
                hour=float(r.hour) * HOUR, handed_over=int(r.handed), inputs_flagged=int(r.flagged)
            )
            for r in rows
        ]

    # --- plumbing ---------------------------------------------------------------------------

    def _runs_in(self, window: OpsWindow) -> list[Any]:
        conditions: list[Any] = [
            runs.c.created_at >= window.since,
            runs.c.created_at < window.until,
        ]
        if not window.all_tenants:
            tenant = window.tenant
            conditions.append(
                runs.c.tenant.is_(None) if tenant is None else runs.c.tenant == tenant
            )
        return conditions

    def _picked(self, window: OpsWindow) -> Any:
        """The window's runs with their hour, as a subquery to join journals to."""
        return (
            sa.select(runs.c.id, self._hour(runs.c.created_at).label("hour"))
            .where(*self._runs_in(window))
            .subquery("picked")
        )

    def _hour(self, column: Any) -> Any:
        """The hour number of a unix time (times are positive: truncation is floor)."""
        if self._postgres:
            return sa.cast(sa.func.floor(column / HOUR), sa.BigInteger)
        return sa.cast(column / HOUR, sa.Integer)

    def _screened(self, payload: Any) -> Any:
        """A ``run_started`` payload whose gateway note lists screening findings.

        A substring test, not a JSON parse (which cost ~0.1 ms per run of a week's window,
        the instructions being in the same payload): in JSON text the quote that ends a key
        can only be followed by its colon where it *is* a key (a quote inside a string is
        escaped as \\"), and of a run_started payload only the gateway's note has a key
        named "screening", and only when the screen flagged a part."""
        key = '"screening":'
        if self._postgres:
            return sa.func.strpos(payload, key) > 0
        return sa.func.instr(payload, key) > 0  # memcmp, where LIKE folds case as it goes
