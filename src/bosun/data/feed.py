"""`JournalFeed`: wakes whoever follows a run when its journal grows, instead of polling.

- **In process**: `Store.write` reports the runs it committed entries for to its commit
  hooks; the feed is one (on PostgreSQL only while its LISTEN connection is down: otherwise
  the notification below covers the same commit). The embedded worker of ``bosun serve``
  shares the API's process, so on SQLite that is all there is.
- **PostgreSQL, across processes**: an ``AFTER INSERT`` trigger on ``steps`` (migration 0009)
  runs ``pg_notify('bosun_journal', run_id)``, delivered when the entry commits (several
  entries of one run in one commit arrive as one notification). The feed holds one
  ``LISTEN`` connection per process (psycopg's async ``notifies()``), opened with the first
  subscriber; a lost connection is reopened and every subscriber woken, since entries may
  have landed meanwhile.
- **SQLite across processes** (an API process beside a separate ``bosun worker``) has no
  notification: `cross_process` is False and followers fall back to a slow re-read.

Wakes carry no data: a follower reads the journal past the last entry it saw. A wake for an
entry it has already read costs one empty read.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Iterable

from bosun.data.store import Store

__all__ = ["CHANNEL", "JournalFeed"]

logger = logging.getLogger("bosun.data.feed")

CHANNEL = "bosun_journal"
"""The PostgreSQL notification channel; the payload is the run id."""
_RETRY_S = 1.0

Wake = Callable[[], None]


class JournalFeed:
    """Subscriptions to runs' journals for one event loop. Create it inside the loop."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._loop = asyncio.get_running_loop()
        self._subscribers: dict[str, set[Wake]] = {}
        self._lock = threading.Lock()
        self._listener: asyncio.Task[None] | None = None
        self._listening = asyncio.Event()
        store.on_commit(self._committed)

    @property
    def cross_process(self) -> bool:
        """Whether entries written by other processes wake subscribers too (PostgreSQL)."""
        return self.store.dialect == "postgresql"

    def subscribe(self, run_id: str, wake: Wake) -> Callable[[], None]:
        """Call `wake` (on this loop) whenever entries of `run_id` commit; returns the
        function that ends the subscription."""
        with self._lock:
            self._subscribers.setdefault(run_id, set()).add(wake)
        if self.cross_process and self._listener is None:
            self._listener = self._loop.create_task(self._listen(), name="bosun journal feed")

        def unsubscribe() -> None:
            with self._lock:
                wakes = self._subscribers.get(run_id)
                if wakes is not None:
                    wakes.discard(wake)
                    if not wakes:
                        del self._subscribers[run_id]

        return unsubscribe

    async def ready(self) -> None:
        """Wait until notifications from other processes arrive (at once on SQLite)."""
        if self.cross_process:
            await self._listening.wait()

    async def aclose(self) -> None:
        """Stop listening and detach from the store."""
        self.store.off_commit(self._committed)
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None

    # --- delivery ---------------------------------------------------------------------------

    def _committed(self, run_ids: Iterable[str]) -> None:
        # Called by the thread that committed (the writer's, or this loop's own). While the
        # LISTEN connection is up, its notification covers this commit too: one wake is enough.
        if self._listening.is_set():
            return
        wanted = [r for r in run_ids if r in self._subscribers]
        if wanted:
            self._loop.call_soon_threadsafe(self._wake, wanted)

    def _wake(self, run_ids: Iterable[str] | None) -> None:
        with self._lock:
            if run_ids is None:
                wakes = [w for ws in self._subscribers.values() for w in ws]
            else:
                wakes = [w for r in run_ids for w in self._subscribers.get(r, ())]
        for wake in wakes:
            wake()

    async def _listen(self) -> None:
        import psycopg

        conninfo = self.store.engine.url.set(drivername="postgresql").render_as_string(
            hide_password=False
        )
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self._listening.set()
                    self._wake(None)  # entries may have landed while nobody listened
                    async for note in conn.notifies():
                        self._wake((note.payload,))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("journal feed: LISTEN connection lost (%s); reconnecting", exc)
            self._listening.clear()
            await asyncio.sleep(_RETRY_S)
