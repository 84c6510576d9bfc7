"""Loading MCP tools from synchronous code (where agents are defined), and failing to."""

from __future__ import annotations

import pytest

from bosun.errors import ConfigError
from bosun.tools.mcp import McpServer


def test_a_server_that_cannot_start_is_a_config_error() -> None:
    srv = McpServer("ghost", command=["/nonexistent/mcp-server"], connect_timeout_s=5)
    with pytest.raises(ConfigError, match="MCP server 'ghost' .* could not list its tools"):
        srv.tools()
