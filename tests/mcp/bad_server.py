"""An MCP server that misbehaves, for the tests (the `mcp` package's low-level Server API).

``python bad_server.py [--bad-schema]``. Its tools:

- ``count`` declares an output schema (``{"n": integer}``) and answers ``{"n": "many"}``;
- ``garbage`` answers a dict that is no tool result at all (the server's SDK refuses to send
  it and answers a protocol error instead);
- ``ok`` answers properly;
- with ``--bad-schema``, ``broken`` has an input schema that is not JSON Schema.
"""

from __future__ import annotations

import sys
from typing import Any

import anyio
import mcp_types as types
from mcp.server import Server
from mcp.server.stdio import stdio_server

EMPTY = {"type": "object", "properties": {}}
TOOLS = [
    types.Tool(
        name="count",
        description="Count things.",
        input_schema=EMPTY,
        output_schema={
            "type": "object",
            "properties": {"n": {"type": "integer"}},
            "required": ["n"],
        },
        annotations=types.ToolAnnotations(read_only_hint=True),
    ),
    types.Tool(name="garbage", description="Answers garbage.", input_schema=EMPTY),
    types.Tool(name="ok", description="Answers properly.", input_schema=EMPTY),
]
if "--bad-schema" in sys.argv:
    TOOLS.append(
        types.Tool(
            name="broken",
            description="Its schema is not JSON Schema.",
            input_schema={"type": "object", "properties": {"path": {"type": "filename"}}},
        )
    )


async def list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
    return types.ListToolsResult(tools=TOOLS)


async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> Any:
    if params.name == "count":
        return types.CallToolResult(content=[], structured_content={"n": "many"})
    if params.name == "ok":
        return types.CallToolResult(content=[types.TextContent(type="text", text="fine")])
    return {"content": "oops", "isError": "maybe"}


server = Server("bad", on_list_tools=list_tools, on_call_tool=call_tool)


async def main() -> None:
    async with stdio_server() as (read, write):
        await server.run(read, write, server.create_initialization_options())


if __name__ == "__main__":
    anyio.run(main)
