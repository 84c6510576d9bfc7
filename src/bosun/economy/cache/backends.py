"""Where cached answers live: bosun's store (default) or Redis.

Both keep `CacheRow`s by (scope, digest) and list a scope's embeddings for the in-memory
index; neither matches by similarity. The store backend is `bosun.data.cache.CacheRows`
(SQLite or PostgreSQL, run in a worker thread); the Redis backend keeps each entry as a hash
that Redis expires itself, and a scope's embeddings in one hash (expiry time + float32
bytes per digest), filtered by time when read.
"""

from __future__ import annotations

import asyncio
import struct
from typing import TYPE_CHECKING, Any, Protocol

from bosun.data.cache import CacheRow, CacheRows
from bosun.data.store import Store

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["CacheBackend", "RedisCacheBackend", "StoreCacheBackend"]


class CacheBackend(Protocol):
    """Stores and finds cached answers by exact key."""

    async def get(self, scope: str, digest: str, *, now: float) -> CacheRow | None:
        """The unexpired entry, if any."""
        ...

    async def put(self, row: CacheRow) -> None:
        """Store (or replace) an entry."""
        ...

    async def vectors(
        self, scope: str, *, now: float, since: float = 0.0
    ) -> list[tuple[str, bytes]]:
        """(digest, embedding) of the scope's unexpired entries that have one, stored at or
        after `since` (an index refreshes with what is new)."""
        ...


class StoreCacheBackend:
    """Cached answers in bosun's store (table ``cache_entries``)."""

    def __init__(self, store: Store) -> None:
        self.rows = CacheRows(store)
        """The repository (also for invalidation and purging)."""

    async def get(self, scope: str, digest: str, *, now: float) -> CacheRow | None:
        return await asyncio.to_thread(self.rows.get, scope, digest, now=now)

    async def put(self, row: CacheRow) -> None:
        await asyncio.to_thread(self.rows.put, row)

    async def vectors(
        self, scope: str, *, now: float, since: float = 0.0
    ) -> list[tuple[str, bytes]]:
        return await asyncio.to_thread(self.rows.vectors, scope, now=now, since=since)


_FIELDS = (
    "tenant",
    "agent",
    "prompt_version",
    "tier",
    "corpus_version",
    "response",
    "created_at",
    "expires_at",
)


class RedisCacheBackend:
    """Cached answers in Redis (``pip install bosun[redis]``): `client` is a
    ``redis.asyncio.Redis``; keys start with `prefix`."""

    def __init__(self, client: Redis, *, prefix: str = "bosun:cache") -> None:
        self.client = client
        self.prefix = prefix

    def _key(self, scope: str, digest: str) -> str:
        return f"{self.prefix}:{scope}:{digest}"

    def _vectors_key(self, scope: str) -> str:
        return f"{self.prefix}:{scope}:vectors"

    async def get(self, scope: str, digest: str, *, now: float) -> CacheRow | None:
        values = await self.client.hgetall(self._key(scope, digest))
        if not values:
            return None
        fields = {_text(k): _bytes(v) for k, v in values.items()}
        expires_at = float(fields["expires_at"])
        if expires_at <= now:
            return None
        return CacheRow(
            scope=scope,
            digest=digest,
            tenant=fields["tenant"].decode(),
            agent=fields["agent"].decode(),
            prompt_version=fields["prompt_version"].decode(),
            tier=fields["tier"].decode(),
            corpus_version=fields["corpus_version"].decode(),
            vector=fields.get("vector") or None,
            response=fields["response"].decode(),
            created_at=float(fields["created_at"]),
            expires_at=expires_at,
        )

    async def put(self, row: CacheRow) -> None:
        key = self._key(row.scope, row.digest)
        mapping: dict[Any, Any] = {n: str(getattr(row, n)) for n in _FIELDS}
        if row.vector is not None:
            mapping["vector"] = row.vector
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.delete(key)
            pipe.hset(key, mapping=mapping)
            pipe.expireat(key, int(row.expires_at) + 1)
            if row.vector is not None:
                scope_key = self._vectors_key(row.scope)
                stamp = struct.pack("<dd", row.expires_at, row.created_at)
                pipe.hset(scope_key, row.digest, stamp + row.vector)
                # The scope's hash lives as long as its newest entry.
                pipe.expireat(scope_key, int(row.expires_at) + 1, gt=True)
                pipe.expireat(scope_key, int(row.expires_at) + 1, nx=True)
            await pipe.execute()

    async def vectors(
        self, scope: str, *, now: float, since: float = 0.0
    ) -> list[tuple[str, bytes]]:
        stored = await self.client.hgetall(self._vectors_key(scope))
        out = []
        for digest, raw in stored.items():
            value = _bytes(raw)
            expires_at, created_at = struct.unpack("<dd", value[:16])
            if expires_at > now and created_at >= since:
                out.append((_text(digest), value[16:]))
        return out


def _bytes(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else value.encode()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
