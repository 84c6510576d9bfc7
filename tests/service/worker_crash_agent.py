"""A worker process for test_worker_crash.py: ``python worker_crash_agent.py DB_URL``.

Serves the ``crash-worker`` agent with a `Worker` until SIGTERM (then shuts down gracefully);
the test SIGKILLs it at random moments instead. Its tool records side effects in PostgreSQL:

- ``effects(key, run_id, item)``: one row per effect, deduplicated on the call's idempotency
  key (``ON CONFLICT DO NOTHING``), as a real idempotent API would;
- ``effect_log(key, run_id, item, pid)``: one row per *execution*, so replays after a kill
  show up as extra rows.

The scripted model answers as a function of the conversation (and sleeps a little, so kills
land mid-run): any process continues a run where its journal ends.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import signal
import sys
import time

import sqlalchemy as sa

from bosun.config import ServiceSettings
from bosun.data.store import Store
from bosun.models.base import ModelRequest
from bosun.runtime import Agent, Runtime
from bosun.service.worker import Worker
from bosun.testing import ScriptedModel, call, calls, reply
from bosun.testing.scripted import ScriptItem
from bosun.tools import ToolContext, tool

EFFECTS_SCHEMA = """
CREATE TABLE effects (key TEXT PRIMARY KEY, run_id TEXT NOT NULL, item TEXT NOT NULL);
CREATE TABLE effect_log (
    id BIGSERIAL PRIMARY KEY, key TEXT NOT NULL, run_id TEXT NOT NULL, item TEXT NOT NULL,
    pid INTEGER NOT NULL
);
"""
ITEMS = ("a", "b", "c", "d")
"""The effects every run must leave, once each."""

SETTINGS = ServiceSettings(
    lease_s=1.5,
    poll_s=0.05,
    concurrency=16,
    # Kills every second or so can hit one run several times in a row: the test is about
    # resuming, not about giving up on runs that kill their workers.
    max_attempts=100,
    shutdown_grace_s=5.0,
    sweep_s=3600.0,
)

_engine: sa.Engine | None = None


@tool(side_effect=True, risk="write", idempotent=True)
def record(ctx: ToolContext, item: str) -> str:
    """Record an item; deduplicated by the idempotency key."""
    assert _engine is not None, "the effects engine is opened in main()"
    row = {"key": ctx.idempotency_key, "run_id": ctx.run_id, "item": item, "pid": os.getpid()}
    with _engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO effects (key, run_id, item) VALUES (:key, :run_id, :item) "
                "ON CONFLICT (key) DO NOTHING"
            ),
            row,
        )
        conn.execute(
            sa.text(
                "INSERT INTO effect_log (key, run_id, item, pid) "
                "VALUES (:key, :run_id, :item, :pid)"
            ),
            row,
        )
    # The remote side answers slowly: a kill now leaves an effect whose result the journal
    # never saw, so the resumed run calls again with the same key.
    time.sleep(random.uniform(0.05, 0.15))
    return f"recorded {item}"


@tool
def lookup(q: str) -> str:
    """Read-only lookup."""
    return q[::-1]


PLAN: list[ScriptItem] = [
    call("record", {"item": "a"}),
    calls(("record", {"item": "b"}), ("record", {"item": "c"})),
    call("lookup", {"q": "abc"}),
    call("record", {"item": "d"}),
    reply("done"),
]


async def policy(request: ModelRequest) -> ScriptItem:
    # A function of the conversation, not of a position in a script: a new process answers
    # the same. The delay is a model's latency; kills land while runs wait on it.
    await asyncio.sleep(random.uniform(0.2, 0.4))
    return PLAN[sum(m.role == "assistant" for m in request.messages)]


agent = Agent(name="crash-worker", tools=[record, lookup], model=ScriptedModel(policy))


async def main(url: str) -> None:
    global _engine
    # Lost leases and failed drives go to the log the test shows when it fails.
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    _engine = sa.create_engine(url, pool_size=16, max_overflow=8)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    store = Store.open(url)
    try:
        async with Runtime(store=store, agents=[agent]) as runtime:
            worker = Worker(runtime, settings=SETTINGS)
            print(f"serving as {worker.owner}", flush=True)
            await worker.serve(stop)
            print(f"stopped after driving {worker.driven} runs", flush=True)
    finally:
        store.close()
        _engine.dispose()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
