"""Requests get threads of their own: a submission never queues behind the worker's calls."""

from __future__ import annotations

import asyncio
import threading

from starlette.types import Receive, Scope, Send

from bosun.service.lanes import ApiLane, Lanes


async def test_a_request_is_answered_while_every_other_thread_is_busy() -> None:
    lanes = Lanes(api_threads=1)
    asyncio.get_running_loop().set_default_executor(lanes)
    release = threading.Event()
    # The embedded worker's runs hold every thread of the default lane (PostgreSQL round
    # trips, sync tools): before lanes, a request's store read queued behind them all.
    busy = [asyncio.to_thread(release.wait, 30) for _ in range(lanes._max_workers)]
    held = asyncio.gather(*busy)
    await asyncio.sleep(0.05)
    answered: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        answered.append(await asyncio.to_thread(lambda: threading.current_thread().name))

    async def nothing() -> dict[str, object]:
        return {}

    async def ignore(message: dict[str, object]) -> None:
        return None

    try:
        await asyncio.wait_for(ApiLane(app)({"type": "http"}, nothing, ignore), timeout=5)
    finally:
        release.set()
        await held
    assert answered and answered[0].startswith("bosun-api")
    # Outside a request, calls stay on the other lane.
    name = await asyncio.to_thread(lambda: threading.current_thread().name)
    assert name.startswith("bosun-run")
