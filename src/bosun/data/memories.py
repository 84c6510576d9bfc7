"""Long-term memory rows: facts, preferences and past resolutions an agent chose to remember.

Every row is scoped tenant -> customer -> agent (a NULL customer or agent is shared across
them), carries the trust label of the run that wrote it, the run itself, when it was created
and last recalled, how often, and when it expires. Every read and write names its tenant:
no method here can return another tenant's memory.

Keyword search uses the database's own full text, with English stemming ("refunds" finds
"refund"): FTS5 with the porter tokenizer (``bm25``) on SQLite, a GIN
``to_tsvector('english', text)`` index with ``ts_rank`` on PostgreSQL. Terms are OR-ed: a
memory matching any word of the query is a candidate, the rank orders them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from bosun.data._repo import Repository, values_of
from bosun.data.schema import memories
from bosun.trust import Trust

__all__ = ["MemoryRow", "MemoryRows", "NewMemory"]

_TERM = re.compile(r"\w+", re.UNICODE)
_MAX_TERMS = 24
_ENGLISH: sa.ColumnElement[str] = sa.literal_column("'english'::regconfig")
_SCOPE_COLUMNS = (memories.c.tenant, memories.c.customer, memories.c.agent)


@dataclass(frozen=True, slots=True, kw_only=True)
class NewMemory:
    """A memory to store."""

    tenant: str
    """The tenant ("" for runs without one)."""
    customer: str | None
    """The customer it is about (None: any of the tenant's)."""
    agent: str | None
    """The agent that may recall it (None: any of the tenant's)."""
    kind: str
    """``fact``, ``preference`` or ``resolution``."""
    text: str
    """What to remember."""
    trust: str
    """The label of the run that wrote it: untrusted if untrusted content was in context."""
    source_run: str | None
    """The run that wrote it."""
    created_at: float
    """When it was written."""
    expires_at: float | None
    """When it stops being recalled and is pruned (None: never)."""
    content_hash: str
    """SHA-256 of the normalised text: one row per text and scope."""


@dataclass(frozen=True, slots=True, kw_only=True)
class MemoryRow(NewMemory):
    """A memory as stored."""

    id: int
    """Its row id."""
    last_used_at: float | None = None
    """When it was last recalled (None: never)."""
    use_count: int = 0
    """How often it was recalled."""


class MemoryRows(Repository):
    """Stores, searches and prunes long-term memories, always within one tenant."""

    def add(self, memory: NewMemory) -> tuple[MemoryRow, bool]:
        """Store `memory`, or fold it into the row with the same text in the same scope: the
        label drops to the lower of the two (never laundered upward) and the later expiry
        wins. Returns the row and whether it is new."""
        with self.transaction() as conn:
            existing = conn.execute(
                sa.select(memories).where(
                    *_same(memory), memories.c.content_hash == memory.content_hash
                )
            ).first()
            if existing is None:
                new_id = conn.execute(
                    memories.insert().values(values_of(memory)).returning(memories.c.id)
                ).scalar_one()
                return MemoryRow(**values_of(memory), id=new_id), True
            row = MemoryRow(**existing._mapping)
            trust = Trust.lowest([row.trust, memory.trust]).value
            expires = (
                None
                if row.expires_at is None or memory.expires_at is None
                else max(row.expires_at, memory.expires_at)
            )
            conn.execute(
                memories.update()
                .where(memories.c.id == row.id)
                .values(trust=trust, expires_at=expires)
            )
        return MemoryRow(**{**values_of(row), "trust": trust, "expires_at": expires}), False

    def search(
        self,
        *,
        tenant: str,
        customer: str | None,
        agent: str | None,
        query: str,
        limit: int,
        now: float,
    ) -> list[MemoryRow]:
        """The tenant's unexpired memories visible to (`customer`, `agent`) that match any
        word of `query`, best first."""
        terms = list(dict.fromkeys(t.lower() for t in _TERM.findall(query)))[:_MAX_TERMS]
        if not terms:
            return []
        visible = _visible(tenant=tenant, customer=customer, agent=agent, now=now)
        if self._postgres:
            # The configuration is literal SQL, not a parameter: the expression index
            # (migration 0006) only matches the same expression.
            tsquery = sa.func.to_tsquery(_ENGLISH, " | ".join(terms))
            vector = sa.func.to_tsvector(_ENGLISH, memories.c.text)
            query_ = (
                sa.select(memories)
                .where(*visible, vector.op("@@")(tsquery))
                .order_by(sa.func.ts_rank(vector, tsquery).desc(), memories.c.id.desc())
                .limit(limit)
            )
        else:
            fts = sa.table("memories_fts", sa.column("rowid"), sa.column("memories_fts"))
            match = " OR ".join(f'"{t}"' for t in terms)
            query_ = (
                sa.select(memories)
                .join(fts, fts.c.rowid == memories.c.id)
                .where(*visible, sa.text("memories_fts MATCH :match").bindparams(match=match))
                .order_by(sa.text("bm25(memories_fts)"), memories.c.id.desc())
                .limit(limit)
            )
        with self._read() as conn:
            rows = conn.execute(query_).all()
        return [MemoryRow(**r._mapping) for r in rows]

    def touch(self, ids: Sequence[int], *, now: float) -> None:
        """Record that `ids` were recalled: last used now, one more use."""
        if not ids:
            return
        with self.transaction() as conn:
            conn.execute(
                memories.update()
                .where(memories.c.id.in_(list(ids)))
                .values(last_used_at=now, use_count=memories.c.use_count + 1)
            )

    def recent(
        self,
        *,
        tenant: str,
        customer: str | None = None,
        agent: str | None = None,
        limit: int = 100,
    ) -> list[MemoryRow]:
        """The tenant's memories, newest first (only `customer`'s and `agent`'s when given)."""
        query = sa.select(memories).where(memories.c.tenant == tenant)
        if customer is not None:
            query = query.where(memories.c.customer == customer)
        if agent is not None:
            query = query.where(memories.c.agent == agent)
        with self._read() as conn:
            rows = conn.execute(query.order_by(memories.c.id.desc()).limit(limit)).all()
        return [MemoryRow(**r._mapping) for r in rows]

    def forget(self, *, tenant: str, memory_id: int) -> bool:
        """Delete one of the tenant's memories; False when it has none with that id."""
        with self.transaction() as conn:
            result = conn.execute(
                memories.delete().where(memories.c.id == memory_id, memories.c.tenant == tenant)
            )
        return bool(result.rowcount)

    # --- pruning ------------------------------------------------------------------------

    def expire(self, *, now: float) -> int:
        """Delete memories past their expiry; how many."""
        with self.transaction() as conn:
            result = conn.execute(
                memories.delete().where(
                    memories.c.expires_at.is_not(None), memories.c.expires_at <= now
                )
            )
        return int(result.rowcount)

    def drop_unused(self, *, created_before: float) -> int:
        """Delete memories never recalled and written before `created_before`; how many."""
        with self.transaction() as conn:
            result = conn.execute(
                memories.delete().where(
                    memories.c.use_count == 0, memories.c.created_at < created_before
                )
            )
        return int(result.rowcount)

    def by_scope(self) -> Iterator[list[MemoryRow]]:
        """Every memory, grouped by (tenant, customer, agent), oldest first in each group:
        what near-duplicate merging compares."""
        query = sa.select(memories).order_by(*_SCOPE_COLUMNS, memories.c.id)
        group: list[MemoryRow] = []
        with self._read() as conn:
            for r in conn.execute(query):
                row = MemoryRow(**r._mapping)
                if group and _scope(group[0]) != _scope(row):
                    yield group
                    group = []
                group.append(row)
        if group:
            yield group

    def merge(self, keep: MemoryRow, drop: Sequence[MemoryRow]) -> None:
        """Fold `drop` into `keep` (same scope): uses add up, the latest use and expiry win,
        and the label is the lowest of them all."""
        rows = [keep, *drop]
        expiries = [r.expires_at for r in rows]
        used = [r.last_used_at for r in rows if r.last_used_at is not None]
        with self.transaction() as conn:
            conn.execute(memories.delete().where(memories.c.id.in_([r.id for r in drop])))
            conn.execute(
                memories.update()
                .where(memories.c.id == keep.id)
                .values(
                    trust=Trust.lowest(r.trust for r in rows).value,
                    use_count=sum(r.use_count for r in rows),
                    last_used_at=max(used) if used else None,
                    expires_at=None if None in expiries else max(e for e in expiries if e),
                )
            )


def _same(memory: NewMemory) -> list[sa.ColumnElement[bool]]:
    return [
        memories.c.tenant == memory.tenant,
        _equal(memories.c.customer, memory.customer),
        _equal(memories.c.agent, memory.agent),
    ]


def _equal(column: sa.ColumnElement[str | None], value: str | None) -> sa.ColumnElement[bool]:
    return column.is_(None) if value is None else column == value


def _visible(
    *, tenant: str, customer: str | None, agent: str | None, now: float
) -> list[sa.ColumnElement[bool]]:
    # Shared rows (NULL customer or agent) are visible to every customer or agent of the
    # tenant; a customer's rows only to runs about that customer.
    return [
        memories.c.tenant == tenant,
        sa.or_(memories.c.customer.is_(None), memories.c.customer == customer)
        if customer is not None
        else memories.c.customer.is_(None),
        sa.or_(memories.c.agent.is_(None), memories.c.agent == agent)
        if agent is not None
        else memories.c.agent.is_(None),
        sa.or_(memories.c.expires_at.is_(None), memories.c.expires_at > now),
    ]


def _scope(row: MemoryRow) -> tuple[str, str | None, str | None]:
    return (row.tenant, row.customer, row.agent)
