"""Following a run for ``GET /v1/runs/{id}/events``: woken by its journal, not by a timer.

The endpoint reads the journal past the last entry it sent, then waits for `follow`'s wake:
a `JournalFeed` notification that entries of the run committed (in process, or from
another process through PostgreSQL's LISTEN/NOTIFY), or, with ``text``, the text of a
model answer as the run's driver receives it (`TextHub`; only when the run is driven in
this process, as by ``bosun serve``'s embedded worker).

Without a notification the wait ends after a while anyway and the journal is read again:
every `_FALLBACK_S` on SQLite, whose notifications do not cross processes (an API process
beside a separate worker process; bosun runs one worker process on SQLite), and every
`_SAFETY_S` on PostgreSQL, against a notification lost while the LISTEN connection was down.

Text events carry no id: they are not journaled, so ``Last-Event-ID`` resumes the journal
and a client that reconnects misses the text written while it was away (the answer is whole
in the final ``run`` event). They leave a sentence at a time, after the output guardrails
(`bosun.service.text_gate`); PII placeholders stay placeholders (the final event resolves
them for ``pii:read``). A client asks for them with ``?text=true``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Final

from bosun.data.feed import JournalFeed
from bosun.runtime.streaming import TextChunk, TextHub

__all__ = ["follow"]

_FALLBACK_S: Final = 2.0
_SAFETY_S: Final = 30.0
_READY_S: Final = 5.0
_MAX_QUEUED: Final = 10_000
"""Text chunks held for a slow client; beyond, chunks are dropped (the final event has all)."""
_WAKE: Final = object()

Woken = Callable[[int], AsyncIterator[TextChunk]]


@asynccontextmanager
async def follow(feed: JournalFeed, hub: TextHub, run_id: str, text: bool) -> AsyncIterator[Woken]:
    """Subscribe to `run_id`; yields ``woken(after)``, whose iteration gives the text chunks
    that arrive for answers past journal position `after` (an answer already sent whole is
    not sent again in pieces) and ends when the journal should be read again."""
    queue: asyncio.Queue[object] = asyncio.Queue()
    waking = False

    def wake() -> None:
        nonlocal waking
        if not waking:  # one pending wake is enough: the next read sees every entry
            waking = True
            queue.put_nowait(_WAKE)

    def on_text(chunk: TextChunk) -> None:
        if queue.qsize() < _MAX_QUEUED:
            queue.put_nowait(chunk)

    unsubscribe = feed.subscribe(run_id, wake)
    stop_text = hub.listen(run_id, on_text) if text else None
    wait_s = _SAFETY_S if feed.cross_process else _FALLBACK_S
    try:
        # Listening before the first read: nothing committed after it can be missed.
        async with asyncio.timeout(_READY_S):
            await feed.ready()
    except TimeoutError:
        wait_s = _FALLBACK_S

    async def woken(after: int) -> AsyncIterator[TextChunk]:
        nonlocal waking
        while True:
            try:
                async with asyncio.timeout(wait_s):
                    item = await queue.get()
            except TimeoutError:
                return
            if item is _WAKE:
                waking = False
                return
            if isinstance(item, TextChunk) and item.step > after:
                yield item

    try:
        yield woken
    finally:
        unsubscribe()
        if stop_text is not None:
            stop_text()
