"""``bosun mcp serve MODULE:AGENT``: an agent as a tool for MCP clients (see
`bosun.service.mcp_agent`)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from bosun.cli.options import DbOption
from bosun.config import load_settings
from bosun.errors import BosunError
from bosun.runtime.loading import load_agent

__all__ = ["mcp_app"]

mcp_app = typer.Typer(no_args_is_help=True, help="The Model Context Protocol.")


class Transport(StrEnum):
    stdio = "stdio"
    http = "http"


@mcp_app.command("serve")
def serve(
    target: Annotated[str, typer.Argument(help="MODULE:AGENT")],
    transport: Annotated[
        Transport, typer.Option(help="stdio (started by the client) or streamable HTTP.")
    ] = Transport.stdio,
    host: Annotated[str, typer.Option(help="Listen address (http).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Listen port (http).")] = 8765,
    tenant: Annotated[str, typer.Option(help="The tenant the runs belong to.")] = "local",
    db: DbOption = None,
) -> None:
    """Serve an agent as one MCP tool: each call is a run, through the gateway, as a
    submitter of TENANT. Nothing but MCP goes to stdout (logs go to stderr)."""
    from bosun.service.compose import compose
    from bosun.service.mcp_agent import agent_server

    settings = load_settings(database_url=db) if db else load_settings()
    try:
        agent = load_agent(target)
        system = compose(settings, [agent], worker=False, warm=True)
    except BosunError as exc:
        raise typer.BadParameter(str(exc)) from exc
    principal = system.gateway.keys.roles.principal(
        id=f"mcp:{agent.name}", tenant=tenant, roles=["submitter"]
    )
    server = agent_server(system, agent, principal)
    if transport is Transport.stdio:
        server.run("stdio")
    else:
        server.run("streamable-http", host=host, port=port)
