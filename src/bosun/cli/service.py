"""``bosun serve``, ``worker``, ``keys`` and ``inbox``: the service from the command line."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import signal
import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from bosun.cli.options import DbOption
from bosun.config import ServiceSettings, Settings, TemporalSettings, load_settings
from bosun.data.store import Store
from bosun.errors import BosunError, UserError
from bosun.gateway.auth import ApiKeys, Principal, Roles
from bosun.orchestration.loading import load_pipelines
from bosun.runtime.loading import load_agents
from bosun.service.compose import System, compose
from bosun.service.worker import Worker

__all__ = ["inbox_app", "keys_app", "serve", "worker"]

logger = logging.getLogger(__name__)
console = Console()
keys_app = typer.Typer(no_args_is_help=True, help="API keys of the service's principals.")


def _setting(name: str) -> str:
    """How --help shows a default that comes from settings: the setting and its default."""
    return f"service.{name} = {ServiceSettings.model_fields[name].default}"


AgentOption = Annotated[
    list[str] | None,
    typer.Option("--agent", "-a", help="MODULE:AGENT to serve (repeatable; default: settings)."),
]
PipelineOption = Annotated[
    list[str] | None,
    typer.Option(
        "--pipeline",
        "-p",
        help="MODULE:PIPELINE to serve, its agents with it (repeatable; default: settings).",
    ),
]


def _settings(db: str | None) -> Settings:
    return load_settings(database_url=db) if db else load_settings()


def _system(
    settings: Settings,
    agents: list[str] | None,
    *,
    worker: bool = True,
    pipelines: list[str] | None = None,
) -> System:
    try:
        return compose(
            settings,
            load_agents(agents or settings.agents),
            worker=worker,
            warm=True,
            pipelines=load_pipelines(pipelines or settings.pipelines),
        )
    except BosunError as exc:
        raise typer.BadParameter(str(exc)) from exc


def _served(system: System) -> str:
    """What a process serves, for its first line."""
    line = f"agents: {', '.join(system.runtime.agents)}"
    if system.pipelines is not None:
        line += f"; pipelines: {', '.join(system.pipelines.pipelines)}"
    return line


def serve(
    agent: AgentOption = None,
    pipeline: PipelineOption = None,
    host: Annotated[
        str | None,
        typer.Option(help="Listen address.", show_default=_setting("host")),
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="Listen port.", show_default=_setting("port"))
    ] = None,
    db: DbOption = None,
    embedded_worker: Annotated[
        bool, typer.Option(help="Drive runs in this process too (the one-machine setup).")
    ] = True,
) -> None:
    """Serve the REST API and the dashboard (with an embedded worker by default). With no
    agent given or configured: the reference agent, and a key to log in with."""
    import uvicorn

    settings = _settings(db)
    prompts = None
    if not agent and not settings.agents and not pipeline and not settings.pipelines:
        from bosun.cli.embedded import reference_settings

        settings, prompts = reference_settings(settings)
    system = _system(settings, agent, worker=embedded_worker, pipelines=pipeline)
    url = f"http://{host or settings.service.host}:{port or settings.service.port}"
    console.print(
        f"bosun API on {url} ({system.store.dialect}; {_served(system)}; "
        f"worker: {'embedded' if system.worker else 'none'})",
        soft_wrap=True,
    )
    _print_grants(system)
    if prompts is not None:
        _print_login(system, prompts, url)
    elif settings.service.dashboard:
        console.print(f"dashboard on {url}/ (log in with an API key: bosun keys create)")
    uvicorn.run(
        system.app(),
        host=host or settings.service.host,
        port=settings.service.port if port is None else port,
        log_level=settings.log_level.lower(),
        timeout_graceful_shutdown=int(settings.service.shutdown_grace_s) + 5,
    )


def _print_grants(system: System) -> None:
    """What a ``submitter``'s runs may use, per agent: a tool left out answers "unauthorized"
    in every run, so say it before the first run does."""
    for agent, scopes in system.grants.items():
        tools = system.runtime.agents[agent].tools
        missing = sorted(t.name for t in tools if t.policy.scope not in scopes)
        line = f"submitter runs of {agent} may use: {', '.join(scopes) or 'no tools'}"
        console.print(line, soft_wrap=True)
        if missing:
            console.print(
                f"[yellow]note:[/yellow] {agent}'s tools {', '.join(missing)} are not granted "
                "to submitters (service.tool_scopes): their calls will be refused",
                soft_wrap=True,
            )


def _print_login(system: System, prompts: Path, url: str) -> None:
    """The reference setup: its prompt in the registry, and a key to log in with."""
    from bosun.cli.embedded import login_key, sync_prompts

    for created in sync_prompts(system, prompts):
        console.print(f"prompt registry: added {created}")
    key = login_key(system)
    console.print(
        f"dashboard on {url}/ : log in with this admin key (shown once; valid for a day, "
        "a restart prints a new one):",
        soft_wrap=True,
    )
    print(key.key, flush=True)


class Engine(StrEnum):
    """What drives the runs a worker takes."""

    queue = "queue"
    temporal = "temporal"


def worker(
    agent: AgentOption = None,
    pipeline: PipelineOption = None,
    db: DbOption = None,
    concurrency: Annotated[
        int | None,
        typer.Option(help="Runs driven at once.", show_default=_setting("concurrency")),
    ] = None,
    engine: Annotated[
        Engine,
        typer.Option(
            # \\[ : Rich would take "[temporal]" for markup and print nothing of it.
            help="queue: bosun's own queue (leases in the store); temporal: each run a "
            "Temporal workflow (pip install 'bosun\\[temporal]')."
        ),
    ] = Engine.queue,
    temporal_address: Annotated[
        str | None,
        typer.Option(
            help="The Temporal frontend, HOST:PORT (with --engine temporal).",
            show_default=f"temporal.address = {TemporalSettings().address}",
        ),
    ] = None,
) -> None:
    """Run a worker: claim queued runs and drive them until SIGTERM (then finish or hand
    back what is in flight). With --engine temporal the runs are Temporal workflows.

    With --pipeline (or the pipelines setting) it drives queued pipelines too (built-in
    engine only)."""
    settings = _settings(db)
    if concurrency is not None:
        settings = settings.model_copy(
            update={"service": settings.service.model_copy(update={"concurrency": concurrency})}
        )
    if temporal_address is not None:
        settings = settings.model_copy(
            update={"temporal": settings.temporal.model_copy(update={"address": temporal_address})}
        )
    if engine is Engine.temporal:
        if pipeline or settings.pipelines:
            raise UserError(
                "pipelines run on the built-in engine: start them in a `bosun worker "
                "--pipeline ...` of their own"
            )
        _temporal_worker(settings, agent)
        return
    system = _system(settings, agent, pipelines=pipeline)
    if system.store.dialect == "sqlite":
        console.print(
            "[yellow]note:[/yellow] on SQLite run one worker process (or `bosun serve`); "
            "several workers need PostgreSQL"
        )
    w = system.worker
    assert w is not None
    console.print(f"worker {w.owner} ({system.store.dialect}; {_served(system)})", soft_wrap=True)
    asyncio.run(_work(w, system))
    done = f"{w.driven} runs"
    if system.pipeline_worker is not None:
        done += f" and {system.pipeline_worker.driven} pipelines"
    console.print(f"worker {w.owner} stopped after {done}")


async def _work(w: Worker, system: System) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        # The pipeline worker beside the run worker: both stop on the same signal.
        workers = [w.serve(stop)]
        if system.pipeline_worker is not None:
            workers.append(system.pipeline_worker.serve(stop))
        await asyncio.gather(*workers)
    finally:
        await system.aclose()


def _temporal_worker(settings: Settings, agents: list[str] | None) -> None:
    try:
        from bosun.service.temporal import TemporalEngine, connect
    except ImportError as exc:
        console.print(
            f"[red]error:[/red] --engine temporal needs the temporal extra "
            f"({escape(str(exc))}): pip install 'bosun\\[temporal]'",
            soft_wrap=True,
        )
        raise typer.Exit(1) from exc

    async def go() -> int:
        try:  # before anything else: an unreachable Temporal is the likeliest mistake
            client = await connect(settings.temporal)
        except BosunError as exc:  # escaped: an IPv6 address is "[::1]:7233"
            console.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True)
            return 1
        system = _system(settings, agents)
        engine = TemporalEngine(system.runtime, client, settings=settings, worker=system.worker)
        console.print(
            f"worker {engine.owner} ({system.store.dialect}; Temporal at "
            f"{settings.temporal.address}, task queue {settings.temporal.task_queue}; agents: "
            f"{', '.join(system.runtime.agents)})",
            soft_wrap=True,
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        try:
            await engine.serve(stop)
        finally:
            await system.aclose()
        console.print(f"worker {engine.owner} stopped after {engine.stopped} runs")
        return 0

    code = asyncio.run(go())
    if code:
        raise typer.Exit(code)


@keys_app.command("create")
def keys_create(
    principal: Annotated[str, typer.Argument(help="Principal id (created on its first key).")],
    tenant: Annotated[str, typer.Option(help="The principal's tenant.")],
    role: Annotated[list[str], typer.Option("--role", "-r", help="Role (repeatable).")],
    name: Annotated[str | None, typer.Option(help="A label for the key.")] = None,
    expires_days: Annotated[float | None, typer.Option(help="Expire after N days.")] = None,
    db: DbOption = None,
) -> None:
    """Create an API key. The key is printed once: only its digest is stored."""
    settings = _settings(db)
    keys, store = _keys(settings)
    expires = None if expires_days is None else time.time() + expires_days * 86400
    try:
        new = keys.create(principal, tenant=tenant, roles=role, name=name, expires_at=expires)
    except BosunError as exc:
        raise typer.BadParameter(str(exc)) from exc
    finally:
        store.close()
    console.print(f"key id  {new.key_id}")
    print(new.key)


@keys_app.command("list")
def keys_list(
    tenant: Annotated[str | None, typer.Option(help="Only this tenant's keys.")] = None,
    db: DbOption = None,
) -> None:
    """List keys (never their secrets)."""
    keys, store = _keys(_settings(db))
    try:
        infos = keys.list(tenant=tenant)
    finally:
        store.close()
    table = Table("key id", "principal", "tenant", "roles", "created", "state")
    for info in infos:
        created = dt.datetime.fromtimestamp(info.created_at, dt.UTC).strftime("%Y-%m-%d %H:%M")
        expired = info.expires_at is not None and info.expires_at <= time.time()
        state = "revoked" if info.revoked_at else "expired" if expired else "active"
        table.add_row(
            info.key_id, info.principal_id, info.tenant, ",".join(info.roles), created, state
        )
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(key_id: str, db: DbOption = None) -> None:
    """Revoke a key at once."""
    keys, store = _keys(_settings(db))
    try:
        keys.revoke(key_id)
    except BosunError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    finally:
        store.close()
    console.print(f"revoked {key_id}")


def _keys(settings: Settings) -> tuple[ApiKeys, Store]:
    store = Store.open(settings.resolved_database_url)
    cfg = settings.service
    pepper = None if cfg.key_pepper is None else cfg.key_pepper.get_secret_value().encode()
    return ApiKeys(
        store, roles=Roles.builtin(tool_scopes=cfg.tool_scopes or ()), pepper=pepper
    ), store


inbox_app = typer.Typer(no_args_is_help=True, help="Email in: a directory of .eml, or IMAP.")
KeyEnv = Annotated[str, typer.Option(help="Environment variable holding the submitting API key.")]


async def _inbox_system(
    settings: Settings, key_env: str, agent: str
) -> tuple[System, Principal, str]:
    """The system (no worker) for `agent`, the principal of the API key in `key_env`, and
    the agent's name."""
    key = os.environ.get(key_env)
    if not key:
        raise typer.BadParameter(f"set {key_env} to an API key with the submitter role")
    system = _system(settings, [agent], worker=False)
    gateway = system.gateway
    return system, await gateway.authenticate(key), next(iter(gateway.agents))


@inbox_app.command("dir")
def inbox_dir(
    directory: Annotated[Path, typer.Argument(help="A directory of .eml files.")],
    agent: Annotated[str, typer.Option("--agent", "-a", help="MODULE:AGENT to hand them to.")],
    key_env: KeyEnv = "BOSUN_API_KEY",
    db: DbOption = None,
) -> None:
    """Submit every .eml in a directory as a queued run (a message already submitted, by its
    Message-ID, is not submitted twice); workers drive them."""
    from bosun.gateway.email import message_key, parse_email, parts_for, thread_key

    settings = _settings(db)

    async def go() -> int:
        system, who, name = await _inbox_system(settings, key_env, agent)
        gateway = system.gateway
        refused = 0
        async with system.runtime:
            for path in sorted(directory.glob("*.eml")):
                try:
                    parsed = parse_email(path.read_bytes())
                    parts = parts_for(parsed, template=settings.service.inbox_instruction)
                    run_id = await gateway.submit(
                        who,
                        name,
                        parts,
                        idempotency_key=message_key(parsed),
                        thread=thread_key(parsed),
                    )
                except BosunError as exc:
                    refused += 1
                    console.print(f"{path.name}: [red]refused[/red] {exc}")
                    continue
                console.print(f"{path.name}: {run_id}")
        system.store.close()
        return refused

    raise typer.Exit(1 if asyncio.run(go()) else 0)


@inbox_app.command("imap")
def inbox_imap(
    host: Annotated[str, typer.Option(help="IMAP server.")],
    user: Annotated[str, typer.Option(help="IMAP user.")],
    agent: Annotated[str, typer.Option("--agent", "-a", help="MODULE:AGENT to hand mail to.")],
    password_env: Annotated[
        str, typer.Option(help="Environment variable holding the IMAP password.")
    ] = "BOSUN_IMAP_PASSWORD",
    port: Annotated[int, typer.Option(help="IMAP port.")] = 993,
    mailbox: Annotated[str, typer.Option(help="Mailbox to read.")] = "INBOX",
    every: Annotated[float, typer.Option(help="Seconds between polls.")] = 30.0,
    once: Annotated[bool, typer.Option(help="Poll once and exit.")] = False,
    ssl: Annotated[bool, typer.Option(help="IMAPS; --no-ssl only for a local server.")] = True,
    key_env: KeyEnv = "BOSUN_API_KEY",
    db: DbOption = None,
) -> None:
    """Poll a mailbox (IMAPS): each unseen message becomes a queued run; it is marked seen
    once its run is stored."""
    from bosun.service.imap import ImapMailbox, ImapPoller

    settings = _settings(db)
    password = os.environ.get(password_env)
    if password is None:
        raise typer.BadParameter(f"set {password_env} to the IMAP password")
    box = ImapMailbox(host=host, port=port, user=user, password=password, mailbox=mailbox, ssl=ssl)

    async def go() -> None:
        system, who, name = await _inbox_system(settings, key_env, agent)
        gateway = system.gateway
        poller = ImapPoller(
            gateway,
            who,
            box,
            agent=name,
            instruction=settings.service.inbox_instruction,
        )
        async with system.runtime:
            if once:
                result = await poller.poll()
                console.print(f"{len(result.submitted)} submitted, {len(result.refused)} refused")
            else:
                stop = asyncio.Event()
                loop = asyncio.get_running_loop()
                for sig in (signal.SIGTERM, signal.SIGINT):
                    loop.add_signal_handler(sig, stop.set)
                await poller.run(stop, every_s=every)
        system.store.close()

    asyncio.run(go())
