"""Pipelines (`bosun.orchestration`): their rows, their journals, and the leases on them.

A pipeline row is claimed by workers exactly like a run (`bosun.data.queue`): a lease with an
owner and an expiry, renewed by heartbeats; a dead worker's pipelines become claimable when
their leases expire. The journal (``pipeline_steps``) is keyed by (pipeline, seq), so a
driver that lost its lease and writes anyway gets `JournalConflict` instead of forking it.
Entries after the first are `PipelineEntry` write operations committed by the store's
group-commit writer (`Runtime.write`), together with the runs' own entries.

```
claimable:  status = queued  and (no lease or lease expired)
            status = running and lease expired          (its worker died mid-pipeline)
```

Stage runs are ordinary runs whose ``parent_id`` names the pipeline; `descendants` walks
that link (stages, agents called as tools, reviewers) for traces and the audit trail.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from bosun.data._repo import Repository, values_of
from bosun.data.records import AuditEvent, PipelineEntry, PipelineUpdate
from bosun.data.schema import pipeline_steps, pipelines, runs
from bosun.data.store import Store
from bosun.errors import PipelineNotFound, StoreError

__all__ = [
    "NewPipeline",
    "PipelineClaim",
    "PipelineEntry",
    "PipelineRow",
    "PipelineRows",
    "PipelineUpdate",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class NewPipeline:
    """A pipeline row to insert."""

    id: str
    """Time-sortable id (as a run's)."""
    name: str
    """The pipeline's name: workers claim the pipelines they know by name."""
    status: str
    """``queued`` for a worker, ``running`` when the caller drives it at once."""
    input: str
    """The pipeline's input, JSON."""
    grants: str
    """JSON list of scopes: stage runs get these, narrowed to each stage agent's scopes."""
    principal: str | None = None
    """Who the pipeline acts for."""
    tenant: str | None = None
    """The principal's tenant."""
    idempotency_key: str | None = None
    """A repeated key returns the first pipeline."""
    created_at: float
    """Unix seconds."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PipelineRow:
    """A pipeline as stored."""

    id: str
    name: str
    status: str
    input: str
    output: str | None
    handoff: str | None
    error: str | None
    principal: str | None
    tenant: str | None
    grants: str
    idempotency_key: str | None
    created_at: float
    updated_at: float
    attempts: int
    """Claims by workers so far."""


@dataclass(frozen=True, slots=True)
class PipelineClaim:
    """A pipeline a worker now holds."""

    pipeline_id: str
    name: str
    attempts: int
    """Claims so far, this one included."""


_ROW_COLUMNS = [pipelines.c[name] for name in PipelineRow.__slots__]


class PipelineRows(Repository):
    """Pipeline rows, journals and leases. Synchronous: call from a thread."""

    def __init__(self, store: Store, *, clock: Callable[[], float] = time.time) -> None:
        super().__init__(store)
        self._clock = clock

    # --- rows and journal -------------------------------------------------------------------

    def create(
        self, row: NewPipeline, first: PipelineEntry, audit: Sequence[AuditEvent] = ()
    ) -> PipelineRow | None:
        """Insert the row with its first entry (and audit rows) in one transaction. Returns
        None when stored, or the pipeline that already holds `row`'s idempotency key."""
        if row.idempotency_key is not None:
            existing = self.find(tenant=row.tenant, idempotency_key=row.idempotency_key)
            if existing is not None:
                return existing
        try:
            with self.transaction() as conn:
                conn.execute(pipelines.insert().values(**values_of(row), updated_at=row.created_at))
                conn.execute(pipeline_steps.insert().values(**values_of(first)))
                if audit:
                    self.store.audit_in(conn, audit)
        except sa.exc.IntegrityError as exc:
            if row.idempotency_key is not None:  # another submission with the key won
                winner = self.find(tenant=row.tenant, idempotency_key=row.idempotency_key)
                if winner is not None:
                    return winner
            raise StoreError(f"the store refused pipeline {row.id}: {exc}") from exc
        return None

    def find(self, *, tenant: str | None, idempotency_key: str) -> PipelineRow | None:
        """The pipeline submitted earlier under this key, if any."""
        query = sa.select(*_ROW_COLUMNS).where(
            sa.func.coalesce(pipelines.c.tenant, "") == (tenant or ""),
            pipelines.c.idempotency_key == idempotency_key,
        )
        with self._read() as conn:
            found = conn.execute(query).first()
        return None if found is None else PipelineRow(**found._mapping)

    def get(self, pipeline_id: str) -> PipelineRow:
        """The row; raises `PipelineNotFound`."""
        with self._read() as conn:
            found = conn.execute(
                sa.select(*_ROW_COLUMNS).where(pipelines.c.id == pipeline_id)
            ).first()
        if found is None:
            raise PipelineNotFound(f"no pipeline with id {pipeline_id!r}")
        return PipelineRow(**found._mapping)

    def load(self, pipeline_id: str) -> tuple[PipelineRow, list[PipelineEntry]]:
        """The row and its whole journal, read on one connection."""
        with self._read() as conn:
            found = conn.execute(
                sa.select(*_ROW_COLUMNS).where(pipelines.c.id == pipeline_id)
            ).first()
            if found is None:
                raise PipelineNotFound(f"no pipeline with id {pipeline_id!r}")
            entries = conn.execute(
                sa.select(pipeline_steps)
                .where(pipeline_steps.c.pipeline_id == pipeline_id)
                .order_by(pipeline_steps.c.seq)
            ).all()
        return PipelineRow(**found._mapping), [PipelineEntry(**e._mapping) for e in entries]

    def recent(self, *, status: str | None = None, limit: int = 100) -> list[PipelineRow]:
        """Newest first."""
        query = sa.select(*_ROW_COLUMNS).order_by(pipelines.c.id.desc()).limit(limit)
        if status is not None:
            query = query.where(pipelines.c.status == status)
        with self._read() as conn:
            return [PipelineRow(**r._mapping) for r in conn.execute(query)]

    # --- the run tree -----------------------------------------------------------------------

    def descendants(self, root_id: str) -> list[str]:
        """Every run started under `root_id` (a pipeline or a run), at any depth, oldest
        first within each level."""
        found: list[str] = []
        level = [root_id]
        with self._read() as conn:
            while level and len(found) < 10_000:
                level = [
                    row.id
                    for row in conn.execute(
                        sa.select(runs.c.id)
                        .where(runs.c.parent_id.in_(level))
                        .order_by(runs.c.created_at, runs.c.id)
                    )
                ]
                found.extend(level)
        return found

    # --- leases -----------------------------------------------------------------------------

    def claim(
        self, owner: str, *, limit: int, lease_s: float, names: Collection[str] | None = None
    ) -> list[PipelineClaim]:
        """Lease up to `limit` claimable pipelines (of the `names` this worker can drive),
        oldest first; on PostgreSQL ``FOR UPDATE SKIP LOCKED`` lets workers claim at once."""
        if limit <= 0 or (names is not None and not names):
            return []
        now = self._clock()
        query = (
            sa.select(pipelines.c.id)
            .where(_claimable(now))
            .order_by(pipelines.c.created_at)
            .limit(limit)
        )
        if names is not None:
            query = query.where(pipelines.c.name.in_(sorted(names)))
        if self._postgres:
            query = query.with_for_update(skip_locked=True)
        with self.transaction() as conn:
            chosen = [row.id for row in conn.execute(query)]
            if not chosen:
                return []
            claimed = conn.execute(
                pipelines.update()
                .where(pipelines.c.id.in_(chosen))
                .values(
                    lease_owner=owner,
                    lease_expires_at=now + lease_s,
                    attempts=pipelines.c.attempts + 1,
                )
                .returning(pipelines.c.id, pipelines.c.name, pipelines.c.attempts)
            ).all()
        order = {pid: i for i, pid in enumerate(chosen)}
        return sorted(
            (PipelineClaim(r.id, r.name, r.attempts) for r in claimed),
            key=lambda c: order[c.pipeline_id],
        )

    def heartbeat(self, owner: str, ids: Collection[str], *, lease_s: float) -> frozenset[str]:
        """Renew `owner`'s leases on `ids`; returns the ones it lost."""
        if not ids:
            return frozenset()
        with self.transaction() as conn:
            kept = conn.execute(
                pipelines.update()
                .where(pipelines.c.id.in_(sorted(ids)), pipelines.c.lease_owner == owner)
                .values(lease_expires_at=self._clock() + lease_s)
                .returning(pipelines.c.id)
            ).all()
        return frozenset(ids) - {r.id for r in kept}

    def release(self, owner: str, pipeline_id: str) -> bool:
        """Drop `owner`'s lease; a pipeline left ``running`` (interrupted) is queued again."""
        requeue = sa.case((pipelines.c.status == "running", "queued"), else_=pipelines.c.status)
        with self.transaction() as conn:
            result = conn.execute(
                pipelines.update()
                .where(pipelines.c.id == pipeline_id, pipelines.c.lease_owner == owner)
                .values(lease_owner=None, lease_expires_at=None, status=requeue)
            )
        return bool(result.rowcount)

    def unfinished(self) -> int:
        """Pipelines not yet completed, failed, escalated or cancelled."""
        query = sa.select(sa.func.count()).where(pipelines.c.status.in_(("queued", "running")))
        with self._read() as conn:
            return int(conn.execute(query).scalar_one())


def _claimable(now: float) -> sa.ColumnElement[bool]:
    return sa.or_(
        sa.and_(
            pipelines.c.status == "queued",
            sa.or_(pipelines.c.lease_owner.is_(None), pipelines.c.lease_expires_at < now),
        ),
        sa.and_(
            pipelines.c.status == "running",
            pipelines.c.lease_owner.is_not(None),
            pipelines.c.lease_expires_at < now,
        ),
    )
