"""Two lanes of threads for blocking calls: the API's requests, and everything else.

Store reads and writes run on threads (``asyncio.to_thread``). With the worker embedded in
the API process they all went to the loop's one default pool, first come first served: on
PostgreSQL, where each read holds a thread for a network round trip, the reads of hundreds
of runs being driven queued ahead of the few a submission needs, and 500 concurrent POSTs
all got their 202 at the end of the burst, together (about 11 s), behind the worker.

`Lanes` is installed as the loop's default executor by the app; `api_lane` (an ASGI
middleware) marks each request, and the blocking calls made while answering it go to the
API's own threads. Everything else (the embedded worker's runs, background jobs) keeps the
other lane, sized as asyncio sizes its default pool.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["ApiLane", "Lanes"]

P = ParamSpec("P")
T = TypeVar("T")

_ANSWERING = contextvars.ContextVar("bosun_answering_request", default=False)


class Lanes(ThreadPoolExecutor):
    """The loop's default pool for everything but requests (sized as asyncio sizes it),
    with a pool of its own for the calls made while a request is answered (the caller's
    context says so). A `ThreadPoolExecutor`: asyncio takes no other default executor."""

    def __init__(self, *, api_threads: int = 8) -> None:
        super().__init__(thread_name_prefix="bosun-run")
        self.api = ThreadPoolExecutor(api_threads, thread_name_prefix="bosun-api")

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        if _ANSWERING.get():
            return self.api.submit(fn, *args, **kwargs)
        return super().submit(fn, *args, **kwargs)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self.api.shutdown(wait, cancel_futures=cancel_futures)
        super().shutdown(wait, cancel_futures=cancel_futures)


class ApiLane:
    """ASGI middleware: what a request does on threads goes to the API's lane."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        token = _ANSWERING.set(True)
        try:
            await self.app(scope, receive, send)
        finally:
            _ANSWERING.reset(token)
