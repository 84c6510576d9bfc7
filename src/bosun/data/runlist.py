"""Pages of runs for people to browse (the dashboard's runs list): filtered by tenant, agent,
status and creation time, newest first, without the runs' inputs and outputs.

Pages are keyset-paginated on ``(created_at, id)``: a page starts below the last row of the
one before, so a page costs the same on the first page as on the hundredth and stays stable
while new runs arrive. The order matches the ``(tenant, created_at)`` and ``(status,
created_at)`` indexes, so a page reads its rows off an index instead of sorting the table.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

import sqlalchemy as sa

from bosun.data._repo import Repository
from bosun.data.schema import runs
from bosun.errors import UserError

__all__ = ["RunBrief", "RunCursor", "RunFilter", "RunList"]

_CURSOR = re.compile(r"([0-9]+(?:\.[0-9]+)?(?:e[+-]?[0-9]+)?)~([0-9a-f]{1,40})")


@dataclass(frozen=True, slots=True, kw_only=True)
class RunBrief:
    """A run as a list shows it: no input, output or journal."""

    id: str
    """The run."""
    agent: str
    """Its agent."""
    status: str
    """Where it stands."""
    tenant: str | None
    """Whose it is."""
    principal: str | None
    """Who submitted it."""
    created_at: float
    """When it was submitted (unix seconds)."""
    updated_at: float
    """When its status last changed."""
    input_tokens: int
    """Model input tokens so far."""
    output_tokens: int
    """Model output tokens so far."""
    cost_usd: Decimal | None
    """Spend so far; None when no call was priced."""
    assignee: str | None
    """Who claimed its escalation."""

    @property
    def cursor(self) -> RunCursor:
        """Where the page after this run starts."""
        return RunCursor(created_at=self.created_at, id=self.id)


@dataclass(frozen=True, slots=True, kw_only=True)
class RunCursor:
    """A position in the newest-first order: the last run of a page."""

    created_at: float
    """That run's creation time."""
    id: str
    """That run's id (breaks ties between runs created at the same instant)."""

    def __str__(self) -> str:
        # repr of a float round-trips exactly, so the next page starts exactly below it.
        return f"{self.created_at!r}~{self.id}"

    @classmethod
    def parse(cls, text: str) -> RunCursor:
        """The cursor `str` made; `UserError` for anything else."""
        match = _CURSOR.fullmatch(text)
        if match is None:
            raise UserError("that page cursor is not one this list gave out")
        return cls(created_at=float(match.group(1)), id=match.group(2))


@dataclass(frozen=True, slots=True, kw_only=True)
class RunFilter:
    """Which runs a list shows."""

    tenant: str | None
    """Only this tenant's runs (None: runs without a tenant); always applied."""
    agent: str | None = None
    """Only this agent's runs."""
    statuses: Sequence[str] = ()
    """Only runs in one of these statuses (empty: any)."""
    since: float | None = None
    """Only runs created at or after this time (unix seconds)."""
    until: float | None = None
    """Only runs created before this time."""


_BRIEF = [
    runs.c.id,
    runs.c.agent,
    runs.c.status,
    runs.c.tenant,
    runs.c.principal,
    runs.c.created_at,
    runs.c.updated_at,
    runs.c.input_tokens,
    runs.c.output_tokens,
    runs.c.cost_usd,
    runs.c.assignee,
]


class RunList(Repository):
    """Reads pages of runs."""

    def page(
        self, where: RunFilter, *, after: RunCursor | None = None, limit: int = 50
    ) -> list[RunBrief]:
        """Up to `limit` runs matching `where`, newest first, starting below `after`."""
        conditions = [
            runs.c.tenant.is_(None) if where.tenant is None else runs.c.tenant == where.tenant
        ]
        if where.agent is not None:
            conditions.append(runs.c.agent == where.agent)
        if where.statuses:
            conditions.append(runs.c.status.in_(list(where.statuses)))
        if where.since is not None:
            conditions.append(runs.c.created_at >= where.since)
        if where.until is not None:
            conditions.append(runs.c.created_at < where.until)
        if after is not None:
            # The first condition alone bounds the index range; the second drops the runs of
            # the cursor's own instant that the previous page already showed.
            conditions.append(runs.c.created_at <= after.created_at)
            conditions.append(sa.or_(runs.c.created_at < after.created_at, runs.c.id < after.id))
        query = (
            sa.select(*_BRIEF)
            .where(*conditions)
            .order_by(runs.c.created_at.desc(), runs.c.id.desc())
            .limit(limit)
        )
        with self._read() as conn:
            rows = conn.execute(query).all()
        return [RunBrief(**r._mapping) for r in rows]

    def agents(self, *, tenant: str | None) -> list[str]:
        """The agents with runs of `tenant`, sorted (for a filter's choices)."""
        query = (
            sa.select(runs.c.agent)
            .where(runs.c.tenant.is_(None) if tenant is None else runs.c.tenant == tenant)
            .group_by(runs.c.agent)
            .order_by(runs.c.agent)
        )
        with self._read() as conn:
            return list(conn.execute(query).scalars())
