"""The semantic cache's rows: answers by (scope, exact digest), with their embeddings.

`bosun.economy.cache` decides what may be cached and matches by similarity in memory; this
repository only stores and finds rows. A scope is a digest of (tenant, agent, prompt
version, tier, corpus version): rows of one scope never answer another's requests, so an
answer never crosses tenants, and a new prompt or corpus version starts an empty scope.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from bosun.data._repo import Repository, values_of
from bosun.data.schema import cache_entries

__all__ = ["CacheRow", "CacheRows"]


@dataclass(frozen=True, slots=True, kw_only=True)
class CacheRow:
    """One cached answer."""

    scope: str
    """Digest of (tenant, agent, prompt version, tier, corpus version)."""
    digest: str
    """Digest of the exact request (messages, tools, settings)."""
    tenant: str
    """The tenant ("" for runs without one)."""
    agent: str
    """The agent."""
    prompt_version: str
    """The prompt version the answer was written under."""
    tier: str
    """The tier that answered ("" without a router)."""
    corpus_version: str
    """The knowledge base version ("" when the agent reads none)."""
    vector: bytes | None
    """The request's embedding (float32), None for an exact-only entry."""
    response: str
    """The `ModelResponse` as JSON."""
    created_at: float
    """When it was stored."""
    expires_at: float
    """When it stops being served."""


class CacheRows(Repository):
    """Stores, finds and invalidates cached answers."""

    def put(self, row: CacheRow) -> None:
        """Store `row`, replacing an entry with the same scope and digest."""
        key = (cache_entries.c.scope == row.scope) & (cache_entries.c.digest == row.digest)
        with self.transaction() as conn:
            conn.execute(sa.delete(cache_entries).where(key))
            conn.execute(sa.insert(cache_entries).values(**values_of(row)))

    def get(self, scope: str, digest: str, *, now: float) -> CacheRow | None:
        """The unexpired entry of `scope` with `digest`, if any."""
        query = sa.select(cache_entries).where(
            cache_entries.c.scope == scope,
            cache_entries.c.digest == digest,
            cache_entries.c.expires_at > now,
        )
        with self._read() as conn:
            row = conn.execute(query).first()
        return None if row is None else CacheRow(**row._mapping)

    def vectors(self, scope: str, *, now: float, since: float = 0.0) -> list[tuple[str, bytes]]:
        """(digest, embedding) of every unexpired entry of `scope` that has one, stored at
        or after `since`."""
        query = sa.select(cache_entries.c.digest, cache_entries.c.vector).where(
            cache_entries.c.scope == scope,
            cache_entries.c.expires_at > now,
            cache_entries.c.created_at >= since,
            cache_entries.c.vector.is_not(None),
        )
        with self._read() as conn:
            return [(r.digest, bytes(r.vector)) for r in conn.execute(query)]

    def invalidate(
        self,
        *,
        tenant: str | None = None,
        agent: str | None = None,
        keep_prompt_version: str | None = None,
        keep_corpus_version: str | None = None,
    ) -> int:
        """Delete the entries of `tenant` (None: every tenant) and `agent` (None: every
        agent) except those of the versions to keep; returns how many."""
        query = sa.delete(cache_entries)
        if tenant is not None:
            query = query.where(cache_entries.c.tenant == tenant)
        if agent is not None:
            query = query.where(cache_entries.c.agent == agent)
        if keep_prompt_version is not None:
            query = query.where(cache_entries.c.prompt_version != keep_prompt_version)
        if keep_corpus_version is not None:
            query = query.where(cache_entries.c.corpus_version != keep_corpus_version)
        with self.transaction() as conn:
            return conn.execute(query).rowcount or 0

    def purge_expired(self, *, now: float) -> int:
        """Delete expired entries; returns how many."""
        query = sa.delete(cache_entries).where(cache_entries.c.expires_at <= now)
        with self.transaction() as conn:
            return conn.execute(query).rowcount or 0

    def count(self, scope: str | None = None) -> int:
        """Entries stored (in `scope`, or in all)."""
        query = sa.select(sa.func.count()).select_from(cache_entries)
        if scope is not None:
            query = query.where(cache_entries.c.scope == scope)
        with self._read() as conn:
            return int(conn.execute(query).scalar_one())
