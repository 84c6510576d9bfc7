"""Pruning long-term memory: expired rows, near-duplicates, memories nobody ever recalled.

Run by ``bosun memory prune`` and, in a worker, as a background job (`MemoryUpkeep`) at most
once per interval. Near-duplicates are compared within one scope (tenant, customer, agent):
token sets with a Jaccard similarity at or above `similarity` are one memory. The survivor is
the most recalled (then the newest, which is likely the more current wording); it takes the
uses, the latest use and expiry, and the lowest label of the group, so merging never turns
an untrusted memory into a trusted one. Comparison is pairwise within a scope: fine for the
hundreds of memories a customer has, not for millions in one scope.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from bosun.data.memories import MemoryRow, MemoryRows
from bosun.data.store import Store

__all__ = ["MemoryUpkeep", "PruneReport", "jaccard", "prune_memories"]

_WORD = re.compile(r"\w+")
_DAY = 86_400.0


@dataclass(frozen=True, slots=True)
class PruneReport:
    """What one pruning pass removed."""

    expired: int
    """Rows past their expiry."""
    merged: int
    """Rows folded into a near-duplicate."""
    unused: int
    """Rows never recalled and older than the limit."""


def jaccard(a: str, b: str) -> float:
    """Similarity of two texts' word sets (case-insensitive), 0 to 1."""
    left, right = set(_WORD.findall(a.casefold())), set(_WORD.findall(b.casefold()))
    if not left and not right:
        return 1.0
    return len(left & right) / len(left | right)


def prune_memories(
    rows: MemoryRows, *, now: float, unused_days: float = 90.0, similarity: float = 0.9
) -> PruneReport:
    """Expire, merge near-duplicates, then drop what was never recalled in `unused_days`."""
    expired = rows.expire(now=now)
    merged = 0
    for group in rows.by_scope():
        for cluster in _clusters(group, similarity):
            if len(cluster) > 1:
                keep = max(cluster, key=lambda r: (r.use_count, r.created_at, r.id))
                rows.merge(keep, [r for r in cluster if r is not keep])
                merged += len(cluster) - 1
    unused = rows.drop_unused(created_before=now - unused_days * _DAY)
    return PruneReport(expired=expired, merged=merged, unused=unused)


def _clusters(group: list[MemoryRow], similarity: float) -> list[list[MemoryRow]]:
    clusters: list[list[MemoryRow]] = []
    for row in group:
        for cluster in clusters:
            if jaccard(cluster[0].text, row.text) >= similarity:
                cluster.append(row)
                break
        else:
            clusters.append([row])
    return clusters


class MemoryUpkeep:
    """A worker background job: `prune_memories` at most once every `every_s` seconds."""

    def __init__(
        self,
        store: Store,
        *,
        every_s: float = 3600.0,
        unused_days: float = 90.0,
        similarity: float = 0.9,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.rows = MemoryRows(store)
        self.every_s = every_s
        self.unused_days = unused_days
        self.similarity = similarity
        self._clock = clock
        self._last: float | None = None

    async def prune_due(self) -> PruneReport | None:
        """Prune if the interval passed since the last pass in this process."""
        now = self._clock()
        if self._last is not None and now - self._last < self.every_s:
            return None
        self._last = now
        return await asyncio.to_thread(
            prune_memories,
            self.rows,
            now=now,
            unused_days=self.unused_days,
            similarity=self.similarity,
        )
