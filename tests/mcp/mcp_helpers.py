"""MCP test helpers: the test servers as `McpServer`s, calls as the runtime makes them."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from bosun.models.base import ToolCall
from bosun.tools import Invocation, ToolContext
from bosun.tools.mcp import McpServer, McpToolConfig

HERE = Path(__file__).parent
NOTES = HERE / "notes_server.py"
BAD = HERE / "bad_server.py"


def notes(
    *, marker: Path | None = None, tools: dict[str, McpToolConfig] | None = None
) -> McpServer:
    """The notes server over stdio (each session starts its own process)."""
    env = {"PATH": "/usr/bin:/bin", "NOTES_MARKER": str(marker or "/nonexistent")}
    return McpServer("notes", command=[sys.executable, str(NOTES)], env=env, tools=tools)


def bad(*flags: str) -> McpServer:
    """The misbehaving server over stdio."""
    return McpServer("bad", command=[sys.executable, str(BAD), *flags])


def invocation(
    name: str, arguments: dict[str, Any] | None = None, *, grants: set[str], call_id: str = "c1"
) -> Invocation:
    """A call as the runtime hands it to the executor."""
    call = ToolCall(id=call_id, name=name, arguments=json.dumps(arguments or {}))
    ctx = ToolContext(run_id="r1", step=1, call_id=call_id)
    return Invocation(call=call, ctx=ctx, grants=frozenset(grants))
