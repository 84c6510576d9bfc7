"""A worker in its own process for test_event_stream.py: ``python stream_worker.py DB_URL``.

Serves the ``pacer`` agent (three lookups, a little model latency each, then an answer) with
a `Worker` until SIGTERM. The API under test runs without an embedded worker, so every
journal entry it streams was written by this process.
"""

from __future__ import annotations

import asyncio
import signal
import sys

from bosun.config import ServiceSettings
from bosun.data.store import Store
from bosun.models.base import ModelRequest
from bosun.runtime import Agent, Runtime
from bosun.service.worker import Worker
from bosun.testing import ScriptedModel, call, reply
from bosun.testing.scripted import ScriptItem
from bosun.tools import tool

SETTINGS = ServiceSettings(lease_s=5, poll_s=0.05, sweep_s=3600.0, shutdown_grace_s=5.0)
LOOKUPS = 3


@tool
def lookup(q: str) -> str:
    """Read-only lookup."""
    return q[::-1]


async def policy(request: ModelRequest) -> ScriptItem:
    await asyncio.sleep(0.1)
    turn = sum(m.role == "assistant" for m in request.messages)
    return call("lookup", {"q": f"q{turn}"}) if turn < LOOKUPS else reply("paced")


def agents() -> list[Agent]:
    """The agents this worker serves (the API registers the same, to accept runs for them)."""
    return [Agent(name="pacer", tools=[lookup], model=ScriptedModel(policy))]


async def main(url: str) -> None:
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    store = Store.open(url)
    try:
        async with Runtime(store=store, agents=agents()) as runtime:
            worker = Worker(runtime, settings=SETTINGS)
            print(f"serving as {worker.owner}", flush=True)
            await worker.serve(stop)
    finally:
        store.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
