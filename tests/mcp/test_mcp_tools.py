"""MCP tools through bosun's tool pipeline, against real MCP server processes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import mcp_types
import pytest
import pytest_asyncio
from mcp_helpers import bad, invocation, notes

from bosun.data.store import Store
from bosun.errors import ConfigError
from bosun.models.base import ToolMessage
from bosun.runtime import Agent, RunStatus, Runtime
from bosun.testing import ScriptedModel, call, reply
from bosun.tools import BreakerPolicy, ErrorKind, RetryPolicy, Risk, ToolExecutor, ToolPolicy
from bosun.tools.mcp import McpServer, McpTool, McpToolConfig
from bosun.trust import Trust

ALL = {
    f"mcp:notes:{name}"
    for name in ("add", "write_note", "calls", "slow", "flaky", "die", "exit_soon", "pid")
} | {"mcp:notes:refuse"}


DIE = ToolPolicy(
    scope="mcp:notes:die",
    side_effect=True,
    risk=Risk.WRITE,
    retry=RetryPolicy(attempts=1),
    breaker=BreakerPolicy(failure_threshold=2, cooldown_s=60),
)
REFUSE = ToolPolicy(scope="mcp:notes:refuse", breaker=BreakerPolicy(failure_threshold=1))


@pytest.fixture(scope="module")
def marker(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """While this file exists, the next ``flaky`` call kills its server process."""
    return tmp_path_factory.mktemp("notes") / "die-once"


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def server(marker: Path) -> AsyncIterator[McpServer]:
    """The notes server over stdio, shared by the tests of this module. Tests that kill its
    process leave the next one to start it again: that is what they test."""
    srv = notes(
        marker=marker,
        tools={
            "slow": McpToolConfig(timeout_s=0.5),
            "refuse": McpToolConfig(policy=REFUSE),
            "die": McpToolConfig(policy=DIE),
        },
    )
    yield srv
    await srv.aclose()


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def executor(server: McpServer) -> ToolExecutor:
    return ToolExecutor(await server.load_tools())


@pytest.mark.asyncio(loop_scope="module")
async def test_tools_carry_the_servers_schema_and_cautious_policies(
    executor: ToolExecutor,
) -> None:
    add, write = executor.get("add"), executor.get("write_note")
    assert isinstance(add, McpTool) and isinstance(write, McpTool)
    assert add.definition().parameters["properties"] == {
        "a": {"title": "A", "type": "integer"},
        "b": {"title": "B", "type": "integer"},
    }
    assert add.description == "Add two integers."
    # readOnlyHint: a read; no hint: a side effect of risk write. Output untrusted either way.
    assert (add.policy.side_effect, add.policy.risk) == (False, Risk.READ)
    assert (write.policy.side_effect, write.policy.risk) == (True, Risk.WRITE)
    assert add.policy.scope == "mcp:notes:add"
    assert add.policy.untrusted_output and write.policy.untrusted_output
    # A call cut off mid-flight may have acted: a non-idempotent side effect is not retried.
    assert add.policy.retry is not None and write.policy.retry is None


def test_config_overrides_the_defaults() -> None:
    remote = mcp_types.Tool(
        name="write.note",
        input_schema={"type": "object", "properties": {"to": {"type": "string"}}},
        annotations=mcp_types.ToolAnnotations(read_only_hint=True, idempotent_hint=True),
    )
    srv = McpServer("n", command="unused")
    with pytest.raises(ConfigError, match="not a valid tool name"):
        McpTool(srv, remote)
    config = McpToolConfig(
        name="save",
        scope="notes:write",
        risk=Risk.IRREVERSIBLE,
        requires_approval=True,
        untrusted_output=False,
        outbound=("to",),
    )
    save = McpTool(srv, remote, config)
    assert (save.name, save.remote_name, save.policy.scope) == ("save", "write.note", "notes:write")
    # The config wins over the server's hints; its idempotentHint still counts.
    assert (save.policy.side_effect, save.policy.risk, save.policy.idempotent) == (
        True,
        Risk.IRREVERSIBLE,
        True,
    )
    assert save.policy.requires_approval and not save.policy.untrusted_output
    with pytest.raises(ConfigError, match=r"outbound=\['cc'\] are not arguments"):
        McpTool(srv, remote, McpToolConfig(name="save", outbound=("cc",)))


@pytest.mark.asyncio(loop_scope="module")
async def test_calls_run_through_the_pipeline(executor: ToolExecutor) -> None:
    result = await executor.execute(invocation("add", {"a": 2, "b": 3}, grants=ALL))
    assert (result.ok, result.data, result.attempts) == (True, {"result": 5}, 1)

    before = (await executor.execute(invocation("calls", grants=ALL))).data
    refused = await executor.execute(invocation("add", {"a": 1, "b": 1}, grants=set()))
    assert (refused.error_kind, refused.attempts) == (ErrorKind.UNAUTHORIZED, 0)
    invalid = await executor.execute(invocation("add", {"a": "two", "b": 3}, grants=ALL))
    assert invalid.error_kind is ErrorKind.INVALID_ARGUMENTS
    assert invalid.guidance is not None and '- a: should be of type "integer"' in invalid.guidance
    assert "two" not in invalid.guidance  # the schema's rule, never the value sent
    missing = await executor.execute(invocation("add", {"a": 1}, grants=ALL))
    assert missing.guidance is not None and "missing required argument(s): b" in missing.guidance
    # Neither refusal reached the server.
    assert (await executor.execute(invocation("calls", grants=ALL))).data == before


@pytest.mark.asyncio(loop_scope="module")
async def test_an_error_answer_is_guidance_and_leaves_the_breaker_closed(
    executor: ToolExecutor,
) -> None:
    for _ in range(2):  # the breaker opens after one failure, were this one
        result = await executor.execute(invocation("refuse", {"title": "x"}, grants=ALL))
        assert result.error_kind is ErrorKind.RETRY_WITH_GUIDANCE
        assert result.guidance is not None and "try 'welcome'" in result.guidance
    assert executor.breaker("refuse").state.value == "closed"  # type: ignore[union-attr]


@pytest.mark.asyncio(loop_scope="module")
async def test_a_slow_call_times_out_per_attempt(executor: ToolExecutor) -> None:
    result = await executor.execute(invocation("slow", {"seconds": 3}, grants=ALL))
    assert result.error_kind is ErrorKind.TIMEOUT
    assert result.attempts == 3  # retried: the tool is read-only


@pytest.mark.asyncio(loop_scope="module")
async def test_a_server_that_dies_mid_call_is_transient_retried_and_restarted(
    server: McpServer, executor: ToolExecutor, marker: Path
) -> None:
    connects = server.connects
    await asyncio.to_thread(marker.touch)
    result = await executor.execute(invocation("flaky", grants=ALL))
    # The first attempt's process died mid-call; the retry reached a fresh one.
    assert (result.ok, result.attempts) == (True, 2)
    assert server.connects == connects + 1
    assert not await asyncio.to_thread(marker.exists)
    # A side effect the server dies during is not repeated (it may have happened) ...
    died = await executor.execute(invocation("die", grants=ALL))
    assert (died.error_kind, died.attempts) == (ErrorKind.TRANSIENT, 1)
    assert died.guidance is not None and "closed the connection during the call" in died.guidance
    # ... the breaker opens after repeated deaths, and the next call does not reach a server ...
    again = await executor.execute(invocation("die", grants=ALL))
    assert again.error_kind is ErrorKind.TRANSIENT
    opened = await executor.execute(invocation("die", grants=ALL))
    assert (opened.error_kind, opened.attempts) == (ErrorKind.CIRCUIT_OPEN, 0)
    assert server.connects == connects + 2
    # ... and other tools get a fresh process.
    after = await executor.execute(invocation("add", {"a": 1, "b": 1}, grants=ALL))
    assert (after.ok, after.attempts, server.connects) == (True, 1, connects + 3)


@pytest.mark.asyncio(loop_scope="module")
async def test_a_server_lost_while_idle_is_restarted_before_the_next_call(
    server: McpServer, executor: ToolExecutor
) -> None:
    first = await executor.execute(invocation("exit_soon", grants=ALL))
    connects = server.connects
    await asyncio.sleep(1.0)  # the process exits meanwhile
    second = await executor.execute(invocation("pid", grants=ALL))
    # No failed attempt: the end of the stream was seen and the call went to a new process.
    assert (second.ok, second.attempts) == (True, 1)
    assert second.data != first.data and server.connects == connects + 1


@pytest.mark.asyncio(loop_scope="module")
async def test_malformed_results_are_invalid_results_not_outages() -> None:
    srv = bad()
    try:
        tools = await srv.load_tools()
        executor = ToolExecutor(tools)
        grants = {"mcp:bad:count", "mcp:bad:garbage", "mcp:bad:ok"}
        count = await executor.execute(invocation("count", grants=grants))
        assert (count.error_kind, count.attempts) == (ErrorKind.INVALID_RESULT, 1)
        assert executor.breaker("count").state.value == "closed"  # type: ignore[union-attr]
        # The server's SDK would not send its garbage: a protocol error, the tool failed.
        garbage = await executor.execute(invocation("garbage", grants=grants))
        assert garbage.error_kind is ErrorKind.FAILED
        assert garbage.guidance is not None and "invalid result" in garbage.guidance
        # The session survives both.
        ok = await executor.execute(invocation("ok", grants=grants))
        assert (ok.ok, ok.data, srv.connects) == (True, "fine", 1)
    finally:
        await srv.aclose()


@pytest.mark.asyncio(loop_scope="module")
async def test_an_invalid_input_schema_is_refused_at_load_with_the_reason() -> None:
    srv = bad("--bad-schema")
    with pytest.raises(ConfigError) as refused:
        await srv.load_tools()
    await srv.aclose()
    message = str(refused.value)
    assert "MCP server 'bad', tool 'broken'" in message
    assert "not valid JSON Schema at properties/path/type" in message


@pytest.mark.asyncio(loop_scope="module")
async def test_streamable_http_servers_work_the_same(notes_http: str) -> None:
    srv = McpServer("web", url=notes_http, headers={"X-Test": "1"})
    try:
        executor = ToolExecutor(await srv.load_tools())
        call = invocation("add", {"a": 20, "b": 22}, grants={"mcp:web:add"})
        result = await executor.execute(call)
        assert (result.ok, result.data) == (True, {"result": 42})
    finally:
        await srv.aclose()


def test_tools_load_from_synchronous_code_and_config_must_name_real_tools(
    notes_http: str,
) -> None:
    # Where agents are defined (module level, no loop): listed in a thread of its own.
    names = {t.name for t in McpServer("web", url=notes_http).tools()}
    assert {"add", "write_note", "die"} <= names
    typo = McpServer("web", url=notes_http, tools={"wirte_note": McpToolConfig()})
    with pytest.raises(ConfigError, match=r"tools= names \['wirte_note'\], which it does not"):
        typo.tools()


@pytest.mark.asyncio(loop_scope="module")
async def test_in_a_run_mcp_output_taints_and_side_effects_wait_for_a_person(
    executor: ToolExecutor, store: Store
) -> None:
    tools = [executor.get(name) for name in ("read_note", "write_note", "calls")]
    model = ScriptedModel(
        [
            call("read_note", {"title": "welcome"}, id="r"),
            call("write_note", {"title": "all", "text": "done as told"}, id="w"),
            call("calls", {}, id="c"),
            reply("ok"),
        ]
    )
    agent = Agent(name="clerk", tools=[t for t in tools if t is not None], model=model)
    async with Runtime(store=store) as rt:
        parked = await rt.run(agent, "What does the welcome note say?")
        assert parked.status is RunStatus.WAITING_APPROVAL
        note = model.requests[1].messages[-1]
        # The server's text reached the model labelled untrusted, spotlighted as data.
        assert isinstance(note, ToolMessage) and note.trust is Trust.UNTRUSTED
        assert note.content.startswith("<<untrusted tool:read_note ")
        before = (await executor.execute(invocation("calls", grants=ALL))).data
        done = await rt.decide(
            parked.run_id,
            parked.waiting_for[0].id,
            approved=False,
            decided_by="reviewer",
            reason="no",
        )
    assert done.status is RunStatus.COMPLETED
    # The held write never reached the server: only the model's later read did.
    after = (await executor.execute(invocation("calls", grants=ALL))).data
    assert after == before
    results = [s for s in store.journal(parked.run_id) if s.kind == "tool_result"]
    assert [(r.tool, r.status) for r in results][:2] == [
        ("read_note", "ok"),
        ("write_note", "approval_rejected"),
    ]
