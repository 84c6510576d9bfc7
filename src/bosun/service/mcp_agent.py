"""An agent served as an MCP tool (``bosun mcp serve MODULE:AGENT``).

The tool takes ``{"input": "..."}`` and answers with the run's final answer. Each call goes
through the gateway, as a REST submission would: as `principal` (a ``submitter`` of a local
tenant by default, so the agent's runs carry the tool scopes a submitter's do), inputs
screened, output through the output guardrails. The run is driven in this process, then
read back. A run that does not complete with an answer it may return (waiting for an
approval or a person, failed, blocked by a guardrail) is an MCP error result naming the run
and its status, so the caller can tell it from an answer and a person can pick it up
(``bosun approvals``, ``bosun escalations``).

Runs are journaled in the store like any other; the MCP caller is an ordinary principal in
the audit trail.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import ToolAnnotations

from bosun.gateway.auth import Principal
from bosun.runtime.agent import Agent
from bosun.runtime.state import RunStatus
from bosun.service.compose import System

__all__ = ["agent_server"]


def agent_server(system: System, agent: Agent, principal: Principal) -> MCPServer:
    """An MCP server with one tool, named after `agent`, that runs it in `system` for
    `principal`; closing the server closes the system."""

    @asynccontextmanager
    async def lifespan(server: MCPServer) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await system.aclose()

    server: MCPServer = MCPServer(f"bosun-{agent.name}", lifespan=lifespan)
    gateway = system.gateway
    writes = any(tool.policy.side_effect for tool in agent.tools)

    async def run_agent(input: str) -> str:
        run_id = await gateway.submit(principal, agent.name, input, queued=False)
        await system.runtime.resume(run_id)
        result = await gateway.result(principal, run_id)
        status = result.run.status
        if status is RunStatus.COMPLETED and result.output is not None:
            return result.output
        if status is RunStatus.COMPLETED:
            why = "its answer was withheld by the output guardrails"
        elif status.parked:
            why = f"it is {status.value} (a person decides: bosun approvals / escalations)"
        else:
            why = f"it {status.value}" + (f": {result.run.error}" if result.run.error else "")
        raise ToolError(f"run {run_id} gave no answer: {why}")

    server.add_tool(
        run_agent,
        name=agent.name,
        description=(
            f"Run the bosun agent {agent.name!r} on `input` and return its answer (after "
            "bosun's guardrails). A run that needs a person returns an error naming it."
        ),
        annotations=ToolAnnotations(read_only_hint=not writes, open_world_hint=True),
    )
    return server
