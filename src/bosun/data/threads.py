"""Threads: the runs of one conversation, in order, and the thread's running summary.

A thread is named by its caller (``Runtime.start(thread=...)``, ``thread_id`` in the API, an
email conversation's root Message-ID) and lives inside a tenant: two tenants using the same
thread id never see each other's turns or summary. Its turns are its finished runs (the
``runs`` rows carry ``thread_id``); its summary is one row here, replaced under a
compare-and-set on ``version`` so two runs folding the same turns at once cannot both win.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from bosun.data._repo import Repository
from bosun.data.schema import runs, threads

__all__ = ["FINISHED", "ThreadRow", "ThreadRows"]

FINISHED = ("completed", "escalated", "failed", "cancelled")
"""Run statuses that make a turn: the run said (or gave up saying) all it will."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ThreadRow:
    """A thread's running summary as stored."""

    tenant: str
    """The tenant ("" for runs without one)."""
    id: str
    """The thread id."""
    version: int
    """Bumped at each fold; a run journals the version it started from."""
    summary: str
    """The summary text (PII placeholders of `source_run`)."""
    kept: str
    """JSON: the items the summary keeps word for word."""
    trust: str
    """The lowest label of the turns folded in: a summary of untrusted text is untrusted."""
    turns: int
    """Turns folded in so far."""
    through: str
    """The last run folded in: later runs of the thread are not in the summary."""
    source_run: str
    """The run whose PII key encrypts `vault`."""
    vault: str
    """JSON: the vault entries of the placeholders in `summary` and `kept`."""
    updated_at: float
    """When the summary was last written."""


class ThreadRows(Repository):
    """Reads a thread's turns and reads and replaces its summary."""

    def get(self, *, tenant: str | None, thread: str) -> ThreadRow | None:
        """The thread's summary row, if any turn was folded yet."""
        query = sa.select(threads).where(threads.c.tenant == (tenant or ""), threads.c.id == thread)
        with self._read() as conn:
            row = conn.execute(query).first()
        return None if row is None else ThreadRow(**row._mapping)

    def turn_runs(
        self,
        *,
        tenant: str | None,
        thread: str,
        before: str,
        after: str | None = None,
        statuses: Sequence[str] = FINISHED,
    ) -> list[str]:
        """Ids of the thread's finished runs created before run `before` (and after run
        `after`), oldest first. Run ids sort by creation time."""
        query = (
            sa.select(runs.c.id)
            .where(
                runs.c.thread_id == thread,
                sa.func.coalesce(runs.c.tenant, "") == (tenant or ""),
                runs.c.id < before,
                runs.c.status.in_(list(statuses)),
            )
            .order_by(runs.c.id)
        )
        if after is not None:
            query = query.where(runs.c.id > after)
        with self._read() as conn:
            return [r.id for r in conn.execute(query).all()]

    def replace_summary(self, row: ThreadRow, *, expected_version: int | None) -> bool:
        """Store `row` as the thread's summary if the stored one is still at
        `expected_version` (None: no summary yet). False when another run folded first."""
        values = {
            "version": row.version,
            "summary": row.summary,
            "kept": row.kept,
            "trust": row.trust,
            "turns": row.turns,
            "through": row.through,
            "source_run": row.source_run,
            "vault": row.vault,
            "updated_at": row.updated_at or time.time(),
        }
        if expected_version is None:
            try:
                with self.transaction() as conn:
                    conn.execute(threads.insert().values(tenant=row.tenant, id=row.id, **values))
            except sa.exc.IntegrityError:  # another run's first fold won
                return False
            return True
        with self.transaction() as conn:
            result = conn.execute(
                threads.update()
                .where(
                    threads.c.tenant == row.tenant,
                    threads.c.id == row.id,
                    threads.c.version == expected_version,
                )
                .values(**values)
            )
            return bool(result.rowcount)
