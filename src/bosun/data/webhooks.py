"""The webhook outbox (``webhook_deliveries``) and the scan of ``runs`` that fills it.

Every step that takes work locks what it takes on PostgreSQL (``FOR UPDATE SKIP LOCKED``), so
several workers sweeping together take different runs and deliveries; SQLite has one writer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields

import sqlalchemy as sa

from bosun.data._repo import Repository, values_of
from bosun.data.schema import runs, webhook_deliveries

__all__ = ["ChangedRun", "DeliveryUpdate", "DueDelivery", "NewDelivery", "WebhookOutbox"]

_WD = webhook_deliveries


@dataclass(frozen=True, slots=True, kw_only=True)
class ChangedRun:
    """A run whose status webhooks have not seen yet: what its event tells."""

    id: str
    """The run."""
    agent: str
    """Its agent."""
    tenant: str | None
    """Its tenant."""
    status: str
    """Its status now."""
    output: str | None
    """Its output (PII masked, as stored)."""
    error: str | None
    """Why it failed."""
    handoff: str | None
    """JSON: its escalation package."""
    updated_at: float
    """When its status last changed."""


@dataclass(frozen=True, slots=True, kw_only=True)
class NewDelivery:
    """An event to send to one receiver, stored pending until delivered."""

    id: str
    """The event id (sent as ``webhook-id``)."""
    run_id: str
    """The run it is about."""
    url: str
    """The receiver."""
    event: str
    """``run.completed``, ...."""
    payload: str
    """The JSON body, exactly as it will be signed."""
    next_attempt_at: float
    """When to send it first."""
    created_at: float
    """When it was recorded."""


@dataclass(frozen=True, slots=True)
class DueDelivery:
    """A delivery leased for sending."""

    id: str
    """The event id."""
    url: str
    """The receiver."""
    payload: str
    """The body."""
    attempts: int
    """Attempts before this one."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliveryUpdate:
    """The outcome of one attempt. Fields left None are left as they are."""

    id: str
    """The event id."""
    attempts: int
    """Attempts so far, this one included."""
    last_error: str | None
    """What went wrong (None: nothing)."""
    status: str | None = None
    """``delivered`` or ``failed``; None while it stays pending."""
    delivered_at: float | None = None
    """When it was delivered."""
    next_attempt_at: float | None = None
    """When to try again."""


class WebhookOutbox(Repository):
    """Fills the outbox from run status changes, leases due deliveries, records outcomes."""

    def enqueue(
        self,
        *,
        statuses: Sequence[str],
        limit: int,
        deliveries: Callable[[ChangedRun], Sequence[NewDelivery]],
    ) -> tuple[int, int]:
        """In one transaction: take up to `limit` runs in `statuses` whose status webhooks
        have not seen (oldest change first), store the `deliveries` each gives unless stored
        already, and mark the runs seen. Returns (deliveries created, runs taken)."""
        # Not `notified_at < updated_at`: updated_at comes from the clocks of many machines,
        # and a status change stamped by a clock behind ours must still be seen.
        changed = sa.or_(runs.c.notified_at.is_(None), runs.c.notified_at != runs.c.updated_at)
        query = (
            sa.select(*(runs.c[f.name] for f in fields(ChangedRun)))
            .where(runs.c.status.in_(statuses), changed)
            .order_by(runs.c.updated_at)
            .limit(limit)
        )
        if self._postgres:  # another worker's sweep takes other runs
            query = query.with_for_update(skip_locked=True)
        with self.transaction() as conn:
            found = [ChangedRun(**r._mapping) for r in conn.execute(query)]
            if not found:
                return 0, 0
            created = _insert_absent(conn, [d for run in found for d in deliveries(run)])
            # The updated_at read here, not the current one: a change since is seen next time.
            conn.execute(
                runs.update()
                .where(runs.c.id == sa.bindparam("run"))
                .values(notified_at=sa.bindparam("seen")),
                [{"run": run.id, "seen": run.updated_at} for run in found],
            )
        return created, len(found)

    def lease(
        self, *, now: float, limit: int, per_url: int, until: Callable[[int], float]
    ) -> list[DueDelivery]:
        """Lease up to `limit` pending deliveries due at `now`, at most `per_url` per
        receiver, oldest first: each one's next attempt moves to ``until(n)``, n being its
        place (from 1) among its receiver's leased deliveries."""
        due = sa.and_(_WD.c.status == "pending", _WD.c.next_attempt_at <= now)
        # At most per_url per receiver, picked without locks (PostgreSQL refuses FOR UPDATE
        # beside a window function), then locked and re-checked.
        ranked = (
            sa.select(
                _WD.c.id,
                _WD.c.next_attempt_at,
                sa.func.row_number()
                .over(partition_by=_WD.c.url, order_by=(_WD.c.next_attempt_at, _WD.c.id))
                .label("rank"),
            )
            .where(due)
            .subquery()
        )
        picked = (
            sa.select(ranked.c.id)
            .where(ranked.c.rank <= per_url)
            .order_by(ranked.c.next_attempt_at, ranked.c.id)
            .limit(limit)
        )
        query = (
            sa.select(_WD.c.id, _WD.c.url, _WD.c.payload, _WD.c.attempts)
            .where(_WD.c.id.in_(picked), due)
            .order_by(_WD.c.next_attempt_at, _WD.c.id)
        )
        if self._postgres:
            query = query.with_for_update(skip_locked=True)
        with self.transaction() as conn:
            batch = [DueDelivery(r.id, r.url, r.payload, r.attempts) for r in conn.execute(query)]
            if not batch:
                return []
            place: dict[str, int] = {}
            leases = []
            for d in batch:
                place[d.url] = place.get(d.url, 0) + 1
                leases.append({"row": d.id, "until": until(place[d.url])})
            conn.execute(
                _WD.update()
                .where(_WD.c.id == sa.bindparam("row"))
                .values(next_attempt_at=sa.bindparam("until")),
                leases,
            )
        return batch

    def record(self, updates: Sequence[DeliveryUpdate]) -> None:
        """Record attempts' outcomes in one transaction (on deliveries still pending)."""
        with self.transaction() as conn:
            for update in updates:
                values: dict[str, object] = {
                    "attempts": update.attempts,
                    "last_error": update.last_error,
                }
                for name in ("status", "delivered_at", "next_attempt_at"):
                    if getattr(update, name) is not None:
                        values[name] = getattr(update, name)
                conn.execute(
                    _WD.update()
                    .where(_WD.c.id == update.id, _WD.c.status == "pending")
                    .values(values)
                )


def _insert_absent(conn: sa.Connection, rows: list[NewDelivery]) -> int:
    if not rows:
        return 0
    ids = [r.id for r in rows]
    taken = set(conn.execute(sa.select(_WD.c.id).where(_WD.c.id.in_(ids))).scalars())
    fresh = [
        {**values_of(r), "status": "pending", "attempts": 0} for r in rows if r.id not in taken
    ]
    if fresh:
        conn.execute(_WD.insert(), fresh)
    return len(fresh)
