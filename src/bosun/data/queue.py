"""The run queue: runs waiting for a worker, and the leases workers hold on them.

A run the service accepts is stored ``queued``. Workers claim runs by writing a lease (owner,
expiry) on the run row and renew it with heartbeats while they drive the run; a worker that
dies stops renewing, its leases expire and any other worker claims those runs and resumes
them from their journals.

```
claimable:  status = queued  and (no lease or lease expired)
            status = running and lease expired           (its worker died mid-run)
claim:      SELECT ... FOR UPDATE SKIP LOCKED  (PostgreSQL; SQLite: BEGIN IMMEDIATE)
            -> lease_owner, lease_expires_at, attempts + 1
heartbeat:  lease_expires_at pushed forward for the runs the owner still holds;
            returns the ones it lost and any cancel requested meanwhile
release:    lease cleared; a run left ``running`` (interrupted) goes back to ``queued``
```

Runs driven in-process (`Runtime.run`, the CLI) are written ``running`` with no lease, so
no worker ever claims a run that a process is already driving. The journal's primary key
(run, seq) fences a worker that lost its lease but has not noticed yet: its next entry
conflicts and it stops.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from bosun.data.schema import runs
from bosun.data.store import Store

__all__ = ["Claim", "Heartbeat", "RunQueue"]

_CLAIM_LOCK_KEY = 0x6B6F7377  # pg_advisory_xact_lock key serialising claims under agent limits


@dataclass(frozen=True, slots=True)
class Claim:
    """A run a worker now holds."""

    run_id: str
    agent: str
    attempts: int
    """Claims so far, this one included (a run that keeps killing workers climbs)."""
    cancel_requested_by: str | None
    """Someone asked to cancel the run before this worker got it."""


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """What a heartbeat learned."""

    lost: frozenset[str]
    """Runs whose lease another worker holds now: stop driving them, write nothing."""
    cancels: Mapping[str, str]
    """Runs someone asked to cancel, with who asked."""


class RunQueue:
    """Claims, heartbeats and releases over a `Store`. Synchronous: call from a thread."""

    def __init__(self, store: Store, *, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self._clock = clock

    def claim(
        self,
        owner: str,
        *,
        limit: int,
        lease_s: float,
        agents: Collection[str] | None = None,
        agent_limits: Mapping[str, int] | None = None,
        running: bool = False,
    ) -> list[Claim]:
        """Lease up to `limit` claimable runs to `owner`, oldest first.

        `agents` restricts the claim to agents this worker can drive; `agent_limits` caps the
        runs of an agent leased across all workers at once (claims then serialise on a lock,
        so two workers cannot both take the last slot). ``running=True`` also marks the runs
        ``running``, for a claimer that hands them on (the Temporal dispatcher): should it die
        before letting go, they are claimable again once the lease expires.
        """
        if limit <= 0 or (agents is not None and not agents):
            return []
        now = self._clock()
        query = sa.select(runs.c.id, runs.c.agent).where(_claimable(now))
        if agents is not None:
            query = query.where(runs.c.agent.in_(sorted(agents)))
        with self.store.transaction() as conn:
            if agent_limits:
                if self.store.dialect == "postgresql":
                    conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_CLAIM_LOCK_KEY})")
                chosen = self._within_limits(conn, query, limit, agent_limits, now)
            else:
                chosen = [row.id for row in conn.execute(self._oldest(query, limit))]
            if not chosen:
                return []
            result = conn.execute(
                runs.update()
                .where(runs.c.id.in_(chosen))
                .values(
                    lease_owner=owner,
                    lease_expires_at=now + lease_s,
                    attempts=runs.c.attempts + 1,
                    **({"status": "running"} if running else {}),
                )
                .returning(runs.c.id, runs.c.agent, runs.c.attempts, runs.c.cancel_requested_by)
            ).all()
        order = {run_id: i for i, run_id in enumerate(chosen)}
        claims = [Claim(r.id, r.agent, r.attempts, r.cancel_requested_by) for r in result]
        return sorted(claims, key=lambda c: order[c.run_id])

    def _oldest(self, query: sa.Select[Any], limit: int) -> sa.Select[Any]:
        query = query.order_by(runs.c.created_at).limit(limit)
        if self.store.dialect == "postgresql":
            query = query.with_for_update(skip_locked=True, of=runs)
        return query

    def _within_limits(
        self,
        conn: sa.Connection,
        query: sa.Select[Any],
        limit: int,
        agent_limits: Mapping[str, int],
        now: float,
    ) -> list[str]:
        """The oldest claimable runs whose agents have a free slot. Agents at their cap are
        left out of the query itself: skipping their runs after a plain ``LIMIT`` would let a
        capped agent's backlog hide every other agent's runs behind it."""
        held: dict[str, int] = dict(
            conn.execute(  # type: ignore[arg-type]
                sa.select(runs.c.agent, sa.func.count())
                .where(
                    runs.c.lease_owner.is_not(None),
                    runs.c.lease_expires_at >= now,
                    runs.c.agent.in_(sorted(agent_limits)),
                )
                .group_by(runs.c.agent)
            ).all()
        )
        chosen: list[str] = []
        # Each pass either fills the claim or fills an agent's last slot: few passes.
        while len(chosen) < limit:
            full = sorted(a for a, cap in agent_limits.items() if held.get(a, 0) >= cap)
            wanted = limit - len(chosen)
            page = query.where(runs.c.agent.not_in(full), runs.c.id.not_in(chosen))
            rows = conn.execute(self._oldest(page, wanted)).all()
            for row in rows:
                if row.agent in agent_limits:
                    if held.get(row.agent, 0) >= agent_limits[row.agent]:
                        continue
                    held[row.agent] = held.get(row.agent, 0) + 1
                chosen.append(row.id)
            if len(rows) < wanted:
                break  # nothing more is claimable
        return chosen

    def claim_run(
        self, run_id: str, owner: str, *, lease_s: float, take_over: str | None = None
    ) -> bool:
        """Lease one run whatever its status, if no live lease is on it (an API process
        writing to a parked or queued run, say a cancel, takes the lease for that write)."""
        return self.take(run_id, owner, lease_s=lease_s, take_over=take_over) is not None

    def take(
        self, run_id: str, owner: str, *, lease_s: float, take_over: str | None = None
    ) -> Claim | None:
        """`claim_run`, answering the claim (with any cancel requested) or None. A live lease
        held by `take_over` counts as free: the Temporal dispatcher holds a run only until
        the step its workflow schedules takes it."""
        now = self._clock()
        free = [runs.c.lease_owner.is_(None), runs.c.lease_expires_at < now]
        if take_over is not None:
            free.append(runs.c.lease_owner == take_over)
        with self.store.transaction() as conn:
            row = conn.execute(
                runs.update()
                .where(runs.c.id == run_id, sa.or_(*free))
                .values(lease_owner=owner, lease_expires_at=now + lease_s)
                .returning(runs.c.id, runs.c.agent, runs.c.attempts, runs.c.cancel_requested_by)
            ).first()
        return (
            None if row is None else Claim(row.id, row.agent, row.attempts, row.cancel_requested_by)
        )

    def heartbeat(self, owner: str, run_ids: Collection[str], *, lease_s: float) -> Heartbeat:
        """Renew `owner`'s leases on `run_ids`; report the lost ones and cancel requests."""
        if not run_ids:
            return Heartbeat(lost=frozenset(), cancels={})
        with self.store.transaction() as conn:
            kept = conn.execute(
                runs.update()
                .where(runs.c.id.in_(sorted(run_ids)), runs.c.lease_owner == owner)
                .values(lease_expires_at=self._clock() + lease_s)
                .returning(runs.c.id, runs.c.cancel_requested_by)
            ).all()
        return Heartbeat(
            lost=frozenset(run_ids) - {r.id for r in kept},
            cancels={r.id: r.cancel_requested_by for r in kept if r.cancel_requested_by},
        )

    def release(self, owner: str, run_id: str, *, requeue: bool = True) -> bool:
        """Drop `owner`'s lease on a run; an interrupted (still ``running``) run is queued
        again so another worker picks it up at once. ``requeue=False`` leaves the status as
        it is: a run that Temporal drives stays ``running`` between its steps."""
        values: dict[str, Any] = {"lease_owner": None, "lease_expires_at": None}
        if requeue:
            values["status"] = sa.case((runs.c.status == "running", "queued"), else_=runs.c.status)
        with self.store.transaction() as conn:
            result = conn.execute(
                runs.update().where(runs.c.id == run_id, runs.c.lease_owner == owner).values(values)
            )
        return bool(result.rowcount)

    def request_cancel(self, run_id: str, by: str) -> bool:
        """Ask whoever holds the run to cancel it. True when a live lease is on it (its
        worker will cancel it at its next heartbeat); False when nobody holds it."""
        now = self._clock()
        with self.store.transaction() as conn:
            conn.execute(runs.update().where(runs.c.id == run_id).values(cancel_requested_by=by))
            leased = conn.execute(
                sa.select(runs.c.id).where(
                    runs.c.id == run_id,
                    runs.c.lease_owner.is_not(None),
                    runs.c.lease_expires_at >= now,
                )
            ).first()
        return leased is not None

    def depth(self, *, tenant: str | None = None) -> int:
        """Runs waiting for a worker: claimable now (queued, or left running by a worker
        whose lease expired)."""
        query = sa.select(sa.func.count()).where(_claimable(self._clock()))
        if tenant is not None:
            query = query.where(runs.c.tenant == tenant)
        with self.store.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def counts(self) -> dict[str, int]:
        """Runs by status (for metrics and readiness)."""
        with self.store.engine.connect() as conn:
            rows = conn.execute(
                sa.select(runs.c.status, sa.func.count()).group_by(runs.c.status)
            ).all()
        return {status: int(n) for status, n in rows}

    def cancelled_since(self, since: float, *, limit: int = 500) -> list[tuple[str, float]]:
        """Runs cancelled on request whose last change is at or after `since`, oldest first,
        with that time: for an engine whose parked runs wait outside the store (Temporal) to
        tell their waits that they are over."""
        query = (
            sa.select(runs.c.id, runs.c.updated_at)
            .where(
                runs.c.status == "cancelled",
                runs.c.cancel_requested_by.is_not(None),
                runs.c.updated_at >= since,
            )
            .order_by(runs.c.updated_at)
            .limit(limit)
        )
        with self.store.engine.connect() as conn:
            return [(row.id, row.updated_at) for row in conn.execute(query)]

    def parked_since(self, status: str, before: float, *, limit: int = 100) -> list[str]:
        """Runs in a parked `status` whose last change is older than `before` (for timeouts),
        oldest first."""
        query = (
            sa.select(runs.c.id)
            .where(
                runs.c.status == status,
                runs.c.updated_at < before,
                sa.or_(runs.c.lease_owner.is_(None), runs.c.lease_expires_at < self._clock()),
            )
            .order_by(runs.c.updated_at)
            .limit(limit)
        )
        with self.store.engine.connect() as conn:
            return [row.id for row in conn.execute(query)]


def _claimable(now: float) -> sa.ColumnElement[bool]:
    return sa.or_(
        sa.and_(
            runs.c.status == "queued",
            sa.or_(runs.c.lease_owner.is_(None), runs.c.lease_expires_at < now),
        ),
        sa.and_(
            runs.c.status == "running",
            runs.c.lease_owner.is_not(None),
            runs.c.lease_expires_at < now,
        ),
    )
