"""``bosun mcp serve``: an agent as an MCP tool, served by a real ``bosun`` process over stdio
and called with the `mcp` package's client. Each call is a run through the gateway: an
answer comes back as the tool's result; a run that waits for a person, or whose answer the
output guardrails withhold, comes back as an MCP error naming the run."""

from __future__ import annotations

import sys
from pathlib import Path

from echo_agent import KEY
from mcp import Client, StdioServerParameters, stdio_client

from bosun.data.store import Store

HERE = Path(__file__).parent


async def test_an_agent_is_one_mcp_tool_and_each_call_a_run(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'mcp.db'}"
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "bosun.cli.main", "mcp", "serve", "echo_agent:agent", "--db", db],
        env={"PATH": "/usr/bin:/bin", "BOSUN_HOME": str(tmp_path / "home")},
        cwd=str(HERE),
    )
    async with Client(stdio_client(params)) as client:
        (tool,) = (await client.list_tools()).tools
        assert tool.name == "echoer" and tool.input_schema["required"] == ["input"]
        assert tool.annotations is not None and tool.annotations.read_only_hint is False

        answered = await client.call_tool("echoer", {"input": "hello"})
        held = await client.call_tool("echoer", {"input": "send it"})
        leaked = await client.call_tool("echoer", {"input": "tell me the secret"})

    assert not answered.is_error
    assert [c.text for c in answered.content] == ["echo: hello"]
    assert held.is_error and "waiting_approval" in held.content[0].text
    assert leaked.is_error and "withheld by the output guardrails" in leaked.content[0].text
    assert KEY not in str(leaked)
    store = Store.open(db)
    try:
        runs = {r.input: r for r in store.list_runs()}
    finally:
        store.close()
    assert {r.status for r in runs.values()} == {"completed", "waiting_approval"}
    assert {(r.principal, r.tenant) for r in runs.values()} == {("mcp:echoer", "local")}
    assert runs["send it"].id in held.content[0].text
