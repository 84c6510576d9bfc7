"""`McpServer`: where an MCP server is (a command over stdio, or a streamable HTTP URL), what
bosun should assume about its tools, and the session calls go through."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import shlex
import weakref
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import mcp_types
from mcp import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import MCPError
from pydantic import ValidationError

from bosun.errors import ConfigError, ModelRetry, PermanentToolError, TransientToolError
from bosun.tools.base import ToolContext
from bosun.tools.mcp._connection import Connection
from bosun.tools.mcp.tool import Malformed, McpTool, McpToolConfig

__all__ = ["McpServer"]

logger = logging.getLogger("bosun.tools.mcp")

_MAX_PAGES = 100
_GRACE_S = 1.0
"""The SDK's own read timeout is the tool's timeout plus this: bosun's timeout stage, which
knows the policy, answers first."""


class McpServer:
    """An MCP server and how its tools are used. One session per server and event loop,
    opened on the first call and reopened after the server is lost.

    ```python
    files = McpServer("files", command=["python", "-m", "files_server"],
                      tools={"delete": McpToolConfig(risk=Risk.IRREVERSIBLE,
                                                     requires_approval=True)})
    agent = Agent(name="clerk", ..., tools=files.tools())
    ```
    """

    name: str
    """Names the server in scopes (``mcp:<name>:<tool>``) and messages."""

    def __init__(
        self,
        name: str,
        *,
        command: Sequence[str] | str | None = None,
        url: str | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | Path | None = None,
        headers: Mapping[str, str] | None = None,
        tools: Mapping[str, McpToolConfig] | None = None,
        include: Collection[str] | None = None,
        connect_timeout_s: float = 30.0,
    ) -> None:
        """Give `command` (stdio: the process bosun starts) or `url` (streamable HTTP).

        `env` is the stdio server's whole environment (default: the SDK's safe subset,
        ``HOME``, ``PATH`` and the like, so bosun's own secrets do not leak into it); `headers`
        go with every HTTP request (an ``Authorization`` header, say). `tools` configures tools
        by their name on the server; `include` keeps only the tools named.
        """
        if (command is None) == (url is None):
            raise ConfigError(f"MCP server {name!r}: give either command= or url=, not both")
        argv = shlex.split(command) if isinstance(command, str) else list(command or ())
        if command is not None and not argv:
            raise ConfigError(f"MCP server {name!r}: the command is empty")
        self.name = name
        self._argv = argv
        self._url = url
        self._env = dict(env) if env is not None else None
        self._cwd = cwd
        self._headers = dict(headers or {})
        self._configs = dict(tools or {})
        self._include = None if include is None else frozenset(include)
        self._connect_timeout_s = connect_timeout_s
        self._connections: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Connection] = (
            weakref.WeakKeyDictionary()
        )

    def __repr__(self) -> str:
        return f"McpServer({self.name!r}, {self._where()})"

    # --- loading ----------------------------------------------------------------------------

    def tools(self) -> list[McpTool]:
        """The server's tools, listed now (the server is started, asked, and closed; calls
        open their own session later). For module-level agent definitions; from async code,
        prefer `load_tools`."""
        with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="bosun-mcp") as pool:
            return pool.submit(asyncio.run, self._list_and_close()).result()

    async def load_tools(self) -> list[McpTool]:
        """The server's tools, listed over this loop's session (kept for the calls)."""
        connection = self._connection()
        try:
            client = await connection.client()
            listed: list[mcp_types.Tool] = []
            cursor: str | None = None
            for _ in range(_MAX_PAGES):
                page = await client.list_tools(cursor=cursor)
                listed.extend(page.tools)
                cursor = page.next_cursor
                if not cursor:
                    break
        except (ConfigError, asyncio.CancelledError):
            raise
        except Exception as exc:
            raise ConfigError(
                f"MCP server {self.name!r} ({self._where()}) could not list its tools: "
                f"{_reason(exc)}"
            ) from exc
        return self._build(listed)

    def _build(self, listed: Sequence[mcp_types.Tool]) -> list[McpTool]:
        names = {tool.name for tool in listed}
        for label, wanted in (("tools", set(self._configs)), ("include", self._include or set())):
            unknown = sorted(wanted - names)
            if unknown:
                raise ConfigError(
                    f"MCP server {self.name!r}: {label}= names {unknown}, which it does not "
                    f"offer (it offers: {', '.join(sorted(names)) or 'nothing'})"
                )
        return [
            McpTool(self, tool, self._configs.get(tool.name))
            for tool in listed
            if self._include is None or tool.name in self._include
        ]

    async def _list_and_close(self) -> list[McpTool]:
        try:
            return await self.load_tools()
        finally:
            await self.aclose()

    # --- calls ------------------------------------------------------------------------------

    async def call(
        self, tool: str, arguments: dict[str, Any], *, timeout_s: float, ctx: ToolContext
    ) -> mcp_types.CallToolResult | Malformed:
        """Call `tool` once. Raises what the tool pipeline classifies: `TransientToolError`
        (the server cannot be reached or was lost during the call), `ModelRetry` (it refused
        the arguments), `PermanentToolError` (any other protocol error); a result that does
        not match the tool's output schema comes back `Malformed`."""
        connection = self._connection()
        try:
            client = await connection.client()
        except (TimeoutError, OSError, MCPError, ExceptionGroup) as exc:
            raise TransientToolError(
                f"MCP server {self.name!r} cannot be reached: {_reason(exc)}", tool=tool
            ) from exc
        meta: Any = {"bosun/idempotency_key": ctx.idempotency_key}
        try:
            return await client.call_tool(
                tool, arguments, read_timeout_seconds=timeout_s + _GRACE_S, meta=meta
            )
        except MCPError as exc:
            if exc.code == mcp_types.CONNECTION_CLOSED:
                await connection.lost(client)
                raise TransientToolError(
                    f"MCP server {self.name!r} closed the connection during the call", tool=tool
                ) from exc
            if exc.code == mcp_types.REQUEST_TIMEOUT:
                raise TimeoutError(f"MCP server {self.name!r} did not answer") from exc
            if exc.code == mcp_types.INVALID_PARAMS:
                raise ModelRetry(f"{tool!r} refused the arguments: {exc.message[:500]}") from exc
            raise PermanentToolError(
                f"MCP server {self.name!r} answered error {exc.code}: {exc.message[:500]}",
                tool=tool,
            ) from exc
        except (RuntimeError, ValidationError) as exc:
            # The SDK checks structured content against the tool's output schema (and
            # refuses answers it cannot parse or act on, such as a request for user input).
            logger.warning("MCP server %r, tool %r: unusable result: %s", self.name, tool, exc)
            return Malformed(f"MCP server {self.name!r} sent an unusable result: {exc}"[:1000])

    async def aclose(self) -> None:
        """Close this loop's session (a stdio server process exits with it)."""
        loop = asyncio.get_running_loop()
        connection = self._connections.pop(loop, None)
        if connection is not None:
            await connection.aclose()

    @property
    def connects(self) -> int:
        """Sessions opened on the running loop so far (1 + reconnects)."""
        connection = self._connections.get(asyncio.get_running_loop())
        return 0 if connection is None else connection.connects

    def _connection(self) -> Connection:
        loop = asyncio.get_running_loop()
        connection = self._connections.get(loop)
        if connection is None:
            connection = Connection(
                self._transport, describe=self.name, connect_timeout_s=self._connect_timeout_s
            )
            self._connections[loop] = connection
        return connection

    def _transport(self) -> AbstractAsyncContextManager[Any]:
        if self._url is not None:
            return _http(self._url, self._headers)
        params = StdioServerParameters(
            command=self._argv[0], args=self._argv[1:], env=self._env, cwd=self._cwd
        )
        return stdio_client(params)

    def _where(self) -> str:
        return self._url if self._url is not None else shlex.join(self._argv)


@asynccontextmanager
async def _http(url: str, headers: dict[str, str]) -> AsyncIterator[Any]:
    if not headers:
        async with streamable_http_client(url) as streams:
            yield streams
        return
    # A client handed to the SDK is the caller's to close.
    async with (
        create_mcp_http_client(headers=headers) as client,
        streamable_http_client(url, http_client=client) as streams,
    ):
        yield streams


def _reason(exc: BaseException) -> str:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:300]
