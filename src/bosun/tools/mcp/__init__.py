"""Tools from MCP servers (stdio or streamable HTTP), run through bosun's tool pipeline.

```python
from bosun.tools.mcp import McpServer, McpToolConfig

files = McpServer("files", command="python -m files_server",
                  tools={"delete_file": McpToolConfig(requires_approval=True)})
agent = Agent(name="clerk", instructions="...", tools=files.tools())
```

Each tool of the server becomes an `McpTool`, a `bosun.tools.Tool` the executor runs like any
other: scope (``mcp:<server>:<tool>`` by default), approval rules, rate limit, breaker,
retry and timeout apply, and its output is labelled untrusted unless configured otherwise.
A tool whose input schema is not valid JSON Schema is refused when the tools are loaded
(`ConfigError` naming the tool and why). See `bosun.tools.mcp.tool` for the defaults bosun
assumes about effects, and `bosun.tools.mcp._connection` for sessions and reconnection.
"""

from bosun.tools.mcp.server import McpServer
from bosun.tools.mcp.tool import McpTool, McpToolConfig

__all__ = ["McpServer", "McpTool", "McpToolConfig"]
