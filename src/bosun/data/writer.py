"""Group commit of store writes: one transaction carries the operations of many concurrent runs.

A run awaits `GroupCommitWriter.write(ops)`; the call returns once its entries are durable.

- PostgreSQL: a commit is network round trips, so it runs on the writer's thread; while one
  batch commits, new entries queue up and go together in the next commit.
- SQLite: a commit in WAL mode with ``synchronous=NORMAL`` is a few tens of microseconds of
  CPU, less than the thread hop it would take to hand it off. The writer gathers every entry
  appended during one turn of the event loop and commits them inline (``loop.call_soon``);
  a batch of `_THREAD_BATCH` operations or more goes to the thread instead, where its commit
  overlaps with the loop's work on other runs.
  The cost: the loop is blocked during the commit, and a second *process* writing the same
  SQLite file would block it for up to the busy timeout; on SQLite bosun runs one worker
  process (DESIGN.md), and many processes share PostgreSQL.

When a batch fails (one run's journal position was taken by another process), each run's
operations are retried alone so one run's conflict never fails its neighbours.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from bosun.data.store import Store, WriteOp

__all__ = ["GroupCommitWriter"]

_THREAD_BATCH = 64
"""Operations in one SQLite batch from which committing on the writer thread pays off."""


class GroupCommitWriter:
    """Batches writes to a `Store` from one event loop. Create it inside the running loop."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._pending: list[tuple[Sequence[WriteOp], asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._inline = store.dialect == "sqlite"
        self._scheduled = False
        # One thread: SQLite has one writer anyway, and ordering stays simple.
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bosun-journal")
        self.commits = 0
        """Transactions committed (for benchmarks: entries / commits is the batching factor)."""

    async def write(self, ops: Sequence[WriteOp]) -> None:
        """Make `ops` durable, in one transaction with whatever else is queued."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._pending.append((ops, future))
        if self._flusher is not None:
            pass  # the running flusher takes it with its next batch
        elif not self._inline:
            self._flusher = loop.create_task(self._flush())
        elif not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush_inline)
        await future

    def _flush_inline(self) -> None:
        self._scheduled = False
        if self._flusher is not None or not self._pending:
            return
        if sum(len(ops) for ops, _ in self._pending) >= _THREAD_BATCH:
            # A big batch commits on the thread: sqlite3 releases the GIL while it writes, so
            # the loop keeps running other runs meanwhile.
            self._flusher = asyncio.get_running_loop().create_task(self._flush())
            return
        batch, self._pending = self._pending, []
        _settle_all(batch, self._commit([ops for ops, _ in batch]))

    async def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        batch: list[tuple[Sequence[WriteOp], asyncio.Future[None]]] = []
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                groups = [ops for ops, _ in batch]
                outcomes = await loop.run_in_executor(self._thread, self._commit, groups)
                _settle_all(batch, outcomes)
        except BaseException as exc:  # cancelled with the loop: nobody may wait forever
            for _, future in [*batch, *self._pending]:
                _settle(future, exc)
            self._pending = []
            raise
        finally:
            self._flusher = None

    def _commit(self, groups: list[Sequence[WriteOp]]) -> list[Exception | None]:
        """Commit all groups in one transaction; if that fails, each group alone, so one run's
        conflict never fails its neighbours. Returns each group's outcome. Runs on whichever
        thread commits (the loop's for small SQLite batches, else the writer's)."""
        try:
            self.store.write([op for ops in groups for op in ops])
        except Exception as exc:
            if len(groups) == 1:
                return [exc]
            outcomes: list[Exception | None] = []
            for ops in groups:
                try:
                    self.store.write(ops)
                except Exception as one_exc:
                    outcomes.append(one_exc)
                else:
                    self.commits += 1
                    outcomes.append(None)
            return outcomes
        self.commits += 1
        return [None] * len(groups)

    async def aclose(self) -> None:
        """Wait for queued writes, then stop the writer thread."""
        if self._pending and self._flusher is None:
            self._flusher = asyncio.get_running_loop().create_task(self._flush())
        if self._flusher is not None:
            await asyncio.shield(self._flusher)
        self._thread.shutdown(wait=True)


def _settle_all(
    batch: list[tuple[Sequence[WriteOp], asyncio.Future[None]]], outcomes: list[Exception | None]
) -> None:
    for (_, future), outcome in zip(batch, outcomes, strict=True):
        _settle(future, outcome)


def _settle(future: asyncio.Future[None], exc: BaseException | None) -> None:
    if future.done():
        return
    if exc is None:
        future.set_result(None)
    else:
        future.set_exception(exc)
