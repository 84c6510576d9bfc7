"""How `recall` finds memories: a small protocol, and keyword search as its default.

`MemorySearch` is the seam for other retrieval (vector search from `bosun.knowledge`, say):
an implementation returns hits within one `MemoryScope`. `recall` does not take that on
trust: it drops any hit of another tenant before the model can see it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from bosun.data.memories import MemoryRow, MemoryRows
from bosun.trust import Trust

__all__ = ["KeywordSearch", "MemoryHit", "MemoryScope", "MemorySearch"]


@dataclass(frozen=True, slots=True, kw_only=True)
class MemoryScope:
    """Whose memories a search may return: the tenant's shared ones, plus the customer's
    and the agent's own when given."""

    tenant: str
    """The tenant ("" for runs without one). Never crossed."""
    customer: str | None = None
    """The customer the run is about, if known."""
    agent: str | None = None
    """The agent recalling."""


@dataclass(frozen=True, slots=True, kw_only=True)
class MemoryHit:
    """One memory found."""

    id: int
    """Its row id (what `bosun memory forget` takes)."""
    tenant: str
    """Its tenant: checked against the scope searched."""
    kind: str
    """``fact``, ``preference`` or ``resolution``."""
    text: str
    """What was remembered."""
    trust: Trust
    """The label it was stored with."""
    created_at: float
    """When it was written."""
    source_run: str | None = None
    """The run that wrote it."""

    @classmethod
    def of(cls, row: MemoryRow) -> MemoryHit:
        """A hit for a stored row."""
        return cls(
            id=row.id,
            tenant=row.tenant,
            kind=row.kind,
            text=row.text,
            trust=Trust(row.trust),
            created_at=row.created_at,
            source_run=row.source_run,
        )


class MemorySearch(Protocol):
    """Finds the memories of one scope that bear on a query, best first."""

    def search(self, scope: MemoryScope, query: str, *, limit: int, now: float) -> list[MemoryHit]:
        """At most `limit` unexpired memories of `scope` (never another tenant's)."""
        ...


class KeywordSearch:
    """Full-text keyword search in the store (FTS5 on SQLite, tsvector on PostgreSQL)."""

    def __init__(self, rows: MemoryRows) -> None:
        self.rows = rows

    def search(self, scope: MemoryScope, query: str, *, limit: int, now: float) -> list[MemoryHit]:
        """Memories matching any word of `query`, ranked by the database."""
        rows = self.rows.search(
            tenant=scope.tenant,
            customer=scope.customer,
            agent=scope.agent,
            query=query,
            limit=limit,
            now=now,
        )
        return [MemoryHit.of(row) for row in rows]
