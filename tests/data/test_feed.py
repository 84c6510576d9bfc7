"""`JournalFeed`: followers of a run are woken when its journal grows, by a commit in this
process (both backends) or, on PostgreSQL, by one in another process (LISTEN/NOTIFY) — the
feed itself never polls, so a wake seen here came from one of those."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import sqlalchemy as sa

from bosun.data.feed import JournalFeed
from bosun.data.store import NewRun, Step, Store

WAIT_S = 20.0
"""Fail rather than hang; a wake takes milliseconds."""

_WRITE_ELSEWHERE = """
import sys
from bosun.data.store import NewRun, Step, Store
url, run_id = sys.argv[1:]
store = Store.open(url)
store.write([
    NewRun(id=run_id, agent="a", status="queued", input="x", grants="[]", principal="p",
           created_at=1.0),
    Step(run_id=run_id, seq=0, kind="run_started", payload="{}", created_at=1.0),
])
store.close()
"""


def new_run(run_id: str) -> NewRun:
    return NewRun(
        id=run_id, agent="a", status="queued", input="x", grants="[]", principal="p", created_at=1.0
    )


def entry(run_id: str, seq: int) -> Step:
    return Step(run_id=run_id, seq=seq, kind="model_response", payload="{}", created_at=1.0 + seq)


class Woken:
    """A subscriber that counts its wakes."""

    def __init__(self) -> None:
        self.count = 0
        self.event = asyncio.Event()

    def __call__(self) -> None:
        self.count += 1
        self.event.set()

    async def next(self) -> None:
        await asyncio.wait_for(self.event.wait(), WAIT_S)
        self.event.clear()


async def test_a_commit_wakes_the_followers_of_its_runs_only(store: Store) -> None:
    store.write([new_run("r1"), new_run("r2")])
    feed = JournalFeed(store)
    one, two = Woken(), Woken()
    feed.subscribe("r1", one)
    stop_two = feed.subscribe("r2", two)
    await feed.ready()
    try:
        # From another thread, as the runtime's writer commits.
        await asyncio.to_thread(store.write, [entry("r1", 0)])
        await one.next()
        await asyncio.to_thread(store.write, [entry("r2", 0)])
        await two.next()
        stop_two()
        seen = two.count
        await asyncio.to_thread(store.write, [entry("r1", 1), entry("r2", 1)])
        await one.next()
        await asyncio.sleep(0.1)  # a wrongly delivered wake would have landed by now
        assert two.count == seen
    finally:
        await feed.aclose()


async def test_a_commit_in_another_process_wakes_through_notify(pg_db_url: str) -> None:
    store = Store.open(pg_db_url)
    feed = JournalFeed(store)
    woken = Woken()
    feed.subscribe("elsewhere", woken)
    try:
        await asyncio.wait_for(feed.ready(), WAIT_S)
        await asyncio.to_thread(write_elsewhere, pg_db_url, "elsewhere")
        await woken.next()
    finally:
        await feed.aclose()
        store.close()


async def test_a_lost_listen_connection_is_reopened_and_everyone_woken(pg_db_url: str) -> None:
    store = Store.open(pg_db_url)
    store.write([new_run("r1")])
    feed = JournalFeed(store)
    woken = Woken()
    feed.subscribe("r1", woken)
    try:
        await asyncio.wait_for(feed.ready(), WAIT_S)
        with store.engine.begin() as conn:
            killed = conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE query LIKE 'LISTEN bosun_journal%' AND pid <> pg_backend_pid()"
                )
            ).all()
        assert killed, "the feed's LISTEN connection was not found"
        # Reopened, the feed wakes every follower (entries may have landed meanwhile)...
        await woken.next()
        await asyncio.wait_for(feed.ready(), WAIT_S)
        # ... and notifications from other processes flow again.
        feed.subscribe("r3", woken)
        await asyncio.to_thread(write_elsewhere, pg_db_url, "r3")
        await woken.next()
    finally:
        await feed.aclose()
        store.close()


def write_elsewhere(url: str, run_id: str) -> None:
    """Create `run_id` with its first entry from a separate Python process."""
    subprocess.run([sys.executable, "-c", _WRITE_ELSEWHERE, url, run_id], check=True, timeout=60)
