"""One live MCP client session per server and event loop, reconnected when it is lost.

The `mcp` SDK's `Client` is an async context manager whose transport runs in anyio task
groups: it must be entered and left by the same task. A tool call comes from whichever run's
task makes it, so each connection is owned by a background task of its own that enters the
client, publishes it, and waits to be told to close; callers share the session (JSON-RPC
carries concurrent requests, each with its own id).

A lost connection is noticed two ways:

* the transport's read stream ended (the server process exited, the HTTP session was torn
  down): the next call reconnects *before* sending, so a server that died while idle costs
  no failed call. `_Observed` wraps the read stream to see its end.
* a call fails with ``CONNECTION_CLOSED`` (the server died while answering it): the call
  fails as transient (the caller's retry policy decides whether to try again; the effect
  may have happened) and the connection is dropped, so the next call starts a fresh one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from mcp import Client

__all__ = ["Connection", "Transport"]

logger = logging.getLogger("bosun.tools.mcp")

Transport = Callable[[], AbstractAsyncContextManager[Any]]
"""Makes a fresh `mcp` transport (stdio process, streamable HTTP session) to enter."""


class Connection:
    """A session with one server on the running loop, opened on first use."""

    def __init__(self, transport: Transport, *, describe: str, connect_timeout_s: float) -> None:
        self._transport = transport
        self._describe = describe
        self._connect_timeout_s = connect_timeout_s
        self._client: Client | None = None
        self._eof: asyncio.Event | None = None
        self._stop: asyncio.Event | None = None
        self._owner: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self.connects = 0
        """Sessions opened so far (the first, then one per reconnect)."""

    async def client(self) -> Client:
        """The live session, connecting (again) when there is none or it ended."""
        client = self._client
        if client is not None and self._eof is not None and not self._eof.is_set():
            return client
        async with self._lock:
            if self._client is not None and self._eof is not None and not self._eof.is_set():
                return self._client
            await self._drop()
            return await self._connect()

    async def lost(self, client: Client) -> None:
        """A call on `client` found the connection closed: the next call reconnects."""
        async with self._lock:
            if self._client is client:
                await self._drop()

    async def aclose(self) -> None:
        """Close the session (and stop a stdio server process)."""
        async with self._lock:
            await self._drop()

    async def _connect(self) -> Client:
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[Client] = loop.create_future()
        stop = asyncio.Event()
        eof = asyncio.Event()
        self._owner = loop.create_task(self._own(ready, stop, eof), name=f"mcp {self._describe}")
        self._stop, self._eof = stop, eof
        try:
            async with asyncio.timeout(self._connect_timeout_s):
                client = await asyncio.shield(ready)
        except BaseException:
            await self._drop()
            raise
        self._client = client
        self.connects += 1
        return client

    async def _own(
        self, ready: asyncio.Future[Client], stop: asyncio.Event, eof: asyncio.Event
    ) -> None:
        try:
            async with Client(_observed(self._transport, eof)) as client:
                if not ready.done():
                    ready.set_result(client)
                await stop.wait()
        except BaseException as exc:  # the SDK raises ExceptionGroups from its task groups
            if not ready.done():
                ready.set_exception(_first_cause(exc))
            elif not isinstance(exc, asyncio.CancelledError):
                logger.debug("MCP session with %s ended: %r", self._describe, exc)
            if isinstance(exc, asyncio.CancelledError):
                raise
        finally:
            eof.set()

    async def _drop(self) -> None:
        owner, stop = self._owner, self._stop
        self._client = self._owner = self._stop = self._eof = None
        if owner is None:
            return
        if stop is not None:
            stop.set()
        try:
            async with asyncio.timeout(5):
                await asyncio.shield(owner)
        except (TimeoutError, Exception):
            owner.cancel()
            with contextlib.suppress(BaseException):
                await owner


def _first_cause(exc: BaseException) -> BaseException:
    """The error inside the SDK's exception groups, which say nothing by themselves."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def _observed(transport: Transport, eof: asyncio.Event) -> AbstractAsyncContextManager[Any]:
    @asynccontextmanager
    async def enter() -> AsyncIterator[Any]:
        async with transport() as (read, write):
            yield _Observed(read, eof), write

    return enter()


class _Observed:
    """A transport's read stream that sets `eof` when it ends, so a dead server is seen
    before a call is sent to it. Everything else goes to the stream itself."""

    def __init__(self, stream: Any, eof: asyncio.Event) -> None:
        self._stream = stream
        self._eof = eof

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

    async def __aenter__(self) -> _Observed:
        await self._stream.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._eof.set()
        await self._stream.__aexit__(*exc)

    def __aiter__(self) -> _Observed:
        return self

    async def __anext__(self) -> Any:
        try:
            return await self._stream.__anext__()
        except BaseException:
            self._eof.set()
            raise

    async def receive(self) -> Any:
        try:
            return await self._stream.receive()
        except BaseException:
            self._eof.set()
            raise
