"""Group commit for the journal: one transaction carries the entries of many concurrent runs.

A run awaits `JournalWriter.write(ops)`; the call returns once its entries are durable. While
one batch commits on the writer's thread, new entries queue up and go together in the next
commit, so with 500 runs in flight the store sees a few commits per round instead of 500.
When a batch fails (one run's journal position was taken by another process), each run's
operations are retried alone so one run's conflict never fails its neighbours.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from bosun.data.store import Store, WriteOp

__all__ = ["JournalWriter"]


class JournalWriter:
    """Batches writes to a `Store` from one event loop. Create it inside the running loop."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._pending: list[tuple[Sequence[WriteOp], asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None
        # One thread: SQLite has one writer anyway, and ordering stays simple.
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bosun-journal")
        self.commits = 0
        """Transactions committed (for benchmarks: entries / commits is the batching factor)."""

    async def write(self, ops: Sequence[WriteOp]) -> None:
        """Make `ops` durable, in one transaction with whatever else is queued."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._pending.append((ops, future))
        if self._flusher is None:
            self._flusher = loop.create_task(self._flush())
        await future

    async def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        batch: list[tuple[Sequence[WriteOp], asyncio.Future[None]]] = []
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                ops = [op for item, _ in batch for op in item]
                try:
                    await loop.run_in_executor(self._thread, self.store.write, ops)
                except Exception as exc:
                    if len(batch) == 1:
                        _settle(batch[0][1], exc)
                    else:
                        await self._write_one_by_one(batch)
                    continue
                self.commits += 1
                for _, future in batch:
                    _settle(future, None)
        except BaseException as exc:  # cancelled with the loop: nobody may wait forever
            for _, future in [*batch, *self._pending]:
                _settle(future, exc)
            self._pending = []
            raise
        finally:
            self._flusher = None

    async def _write_one_by_one(
        self, batch: list[tuple[Sequence[WriteOp], asyncio.Future[None]]]
    ) -> None:
        loop = asyncio.get_running_loop()
        for ops, future in batch:
            try:
                await loop.run_in_executor(self._thread, self.store.write, ops)
                self.commits += 1
                _settle(future, None)
            except Exception as exc:
                _settle(future, exc)

    async def aclose(self) -> None:
        """Wait for queued writes, then stop the writer thread."""
        if self._flusher is not None:
            await asyncio.shield(self._flusher)
        self._thread.shutdown(wait=True)


def _settle(future: asyncio.Future[None], exc: BaseException | None) -> None:
    if future.done():
        return
    if exc is None:
        future.set_result(None)
    else:
        future.set_exception(exc)
