"""Pages of runs for people to browse (the dashboard's lists): filtered by tenant, agent,
status and creation time, newest (or oldest) first, without the runs' inputs and outputs;
and the rows and journals of one page's runs in two queries.

Pages are keyset-paginated on ``(created_at, id)``: a page starts past the last row of the
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
from bosun.data.records import RunRow, StepRow
from bosun.data.schema import runs, steps
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
    handoff: str | None
    """JSON: its escalation package, while it has one."""

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
    runs.c.handoff,
]
_ROW = [c for c in runs.c if c.name in RunRow.__slots__]


class RunList(Repository):
    """Reads pages of runs."""

    def page(
        self,
        where: RunFilter,
        *,
        after: RunCursor | None = None,
        limit: int = 50,
        oldest_first: bool = False,
    ) -> list[RunBrief]:
        """Up to `limit` runs matching `where`, newest first (or oldest first), starting past
        `after`."""
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
        order = [runs.c.created_at, runs.c.id]
        if after is not None:
            # The first condition alone bounds the index range; the second drops the runs of
            # the cursor's own instant that the previous page already showed.
            at, run_id = after.created_at, after.id
            if oldest_first:
                conditions.append(runs.c.created_at >= at)
                conditions.append(sa.or_(runs.c.created_at > at, runs.c.id > run_id))
            else:
                conditions.append(runs.c.created_at <= at)
                conditions.append(sa.or_(runs.c.created_at < at, runs.c.id < run_id))
        query = (
            sa.select(*_BRIEF)
            .where(*conditions)
            .order_by(*(order if oldest_first else [c.desc() for c in order]))
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

    def loads(self, run_ids: Sequence[str]) -> list[tuple[RunRow, list[StepRow]]]:
        """The rows and whole journals of `run_ids` (those that exist), in the order given:
        two queries for a page of runs, where `Store.load` takes two per run."""
        if not run_ids:
            return []
        ids = list(run_ids)
        journal = sa.select(steps).where(steps.c.run_id.in_(ids))
        with self._read() as conn:
            rows = conn.execute(sa.select(*_ROW).where(runs.c.id.in_(ids))).all()
            entries = conn.execute(journal.order_by(steps.c.run_id, steps.c.seq)).all()
        journals: dict[str, list[StepRow]] = {}
        for entry in entries:
            journals.setdefault(entry.run_id, []).append(StepRow(**entry._mapping))
        found = {r.id: RunRow(**r._mapping) for r in rows}
        return [(found[i], journals.get(i, [])) for i in ids if i in found]
