"""The ``bosun`` command line (Typer + Rich)."""

from __future__ import annotations

import asyncio
import inspect
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text
from typer.core import TyperGroup

from bosun.cli.drift import drift_command
from bosun.cli.kb import kb_app
from bosun.cli.mcp import mcp_app
from bosun.cli.memory import memory_app
from bosun.cli.observe import alerts, costs, online, shadow
from bosun.cli.options import DbOption, abbreviate, open_store, resolve_run
from bosun.cli.people import approvals_app, escalations_app
from bosun.cli.pipeline import pipeline_app
from bosun.cli.prompts import eval_command, prompts_app
from bosun.cli.render import clip, cost_text, error, shorten, status_markup
from bosun.cli.render import table as render_table
from bosun.cli.router import router_app
from bosun.cli.service import inbox_app, keys_app, serve, worker
from bosun.cli.trace import trace_command
from bosun.config import load_settings
from bosun.data.store import RunRow, StepRow
from bosun.errors import BosunError, ConfigError
from bosun.observe.logs import configure_logging
from bosun.runtime.agent import Agent
from bosun.runtime.loading import load_agent
from bosun.runtime.runtime import RunResult, Runtime
from bosun.runtime.streaming import TextChunk


class _OneLineErrors(TyperGroup):
    """Any bosun error that reaches the top prints as one line on stderr and exits 1: a
    person who mistyped a URL or whose database is down needs the reason, not a traceback."""

    def invoke(self, ctx: Any) -> Any:  # typer's own (vendored) click.Context
        try:
            return super().invoke(ctx)
        except BosunError as exc:
            message = " ".join(str(exc).split()) or type(exc).__name__
            # soft_wrap: a narrow terminal must not break the line; markup off: brackets in
            # the message are text.
            _stderr.print(Text.assemble(("error: ", "red"), message), soft_wrap=True)
            raise typer.Exit(1) from exc


_stderr = Console(stderr=True)
app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="Run AI agents in production.",
    cls=_OneLineErrors,
)
runs_app = typer.Typer(no_args_is_help=True, help="Inspect runs.")
audit_app = typer.Typer(no_args_is_help=True, help="The tamper-evident audit log.")
app.add_typer(runs_app, name="runs")
app.add_typer(audit_app, name="audit")
app.add_typer(keys_app, name="keys")
app.add_typer(inbox_app, name="inbox")
app.add_typer(approvals_app, name="approvals")
app.add_typer(escalations_app, name="escalations")
app.add_typer(memory_app, name="memory")
app.add_typer(kb_app, name="kb")
app.add_typer(router_app, name="router")
app.add_typer(pipeline_app, name="pipeline")
app.add_typer(mcp_app, name="mcp")
app.command()(serve)
app.command()(worker)
app.command()(costs)
app.command()(alerts)
app.command()(online)
app.command()(shadow)
app.command("drift")(drift_command)
app.add_typer(prompts_app, name="prompts")
app.command("eval")(eval_command)
app.command("trace")(trace_command)
console = Console()
_INPUT_MIN = 20  # below this many columns the input is left out of `runs list`


@app.callback()
def _configure() -> None:
    """Structured logs to stderr at BOSUN_LOG_LEVEL (default WARNING), JSON lines unless
    BOSUN_LOG_JSON=false."""
    settings = load_settings()
    configure_logging(settings.log_level, json=settings.log_json)


def _load_agent(target: str) -> Agent:
    try:
        return load_agent(target)
    except ConfigError as exc:
        raise typer.BadParameter(str(exc)) from exc


@app.command()
def run(
    target: Annotated[str, typer.Argument(help="MODULE:AGENT")],
    input: Annotated[str, typer.Argument(help="The input text of the run.")],
    model: Annotated[str | None, typer.Option(help="Model to use instead of the agent's.")] = None,
    stream: Annotated[
        bool, typer.Option(help="Print the model's text as it comes, before the outcome.")
    ] = True,
    db: DbOption = None,
) -> None:
    """Run an agent once and print its outcome and steps."""
    agent = _load_agent(target)
    if model is not None:
        agent = agent.with_model(model)

    async def go() -> RunResult:
        async with Runtime(store=open_store(db)) as runtime:
            if not stream:
                return await runtime.run(agent, input)
            # Started, then listened to, then driven: no text is written before the listener.
            run_id = await runtime.start(agent, input, queued=False)
            printer = _TextPrinter()
            stop = runtime.text.listen(run_id, printer)
            try:
                return await runtime.resume(run_id)
            finally:
                stop()
                printer.end()

    try:
        result = asyncio.run(go())
    except BosunError as exc:
        error(console, str(exc))
        raise typer.Exit(1) from exc
    store = open_store(db)
    _print_run(store.get_run(result.run_id), store.journal(result.run_id))
    store.close()
    raise typer.Exit(0 if result.status.value in ("completed", "waiting_approval") else 2)


@runs_app.command("list")
def runs_list(
    status: Annotated[str | None, typer.Option(help="Only runs with this status.")] = None,
    limit: Annotated[int, typer.Option(help="How many, newest first.")] = 20,
    db: DbOption = None,
) -> None:
    """List recent runs, newest first.

    In a narrow terminal run ids are abbreviated (every command that takes a run accepts
    the abbreviation), and the input gives way first."""
    store = open_store(db)
    try:
        rows = store.list_runs(status=status, limit=limit)
        cells = [
            (
                row.agent,
                row.status,
                str(row.input_tokens + row.output_tokens),
                cost_text(row.cost_usd),
            )
            for row in rows
        ]
        # The width every column but the input needs, headers included, with two spaces
        # between columns (`render.table`).
        fixed = sum(
            max([len(name), *(len(c[i]) for c in cells)])
            for i, name in enumerate(("agent", "status", "tokens", "cost"))
        )
        fixed += 2 * 5
        ids = {row.id: row.id for row in rows}
        longest = max((len(" ".join(row.input.split())) for row in rows), default=0)
        wanted = min(max(longest, len("input")), _INPUT_MIN)
        if fixed + max(map(len, ids), default=0) + wanted > console.width:
            ids = abbreviate(store, ids)
    finally:
        store.close()
    room = console.width - fixed - max(map(len, ids.values()), default=3)
    columns = ["run", "agent", "status", "tokens", "cost"]
    if room >= min(wanted, _INPUT_MIN // 2):
        columns.append("input")
    table = render_table(*columns)
    table.columns[0].no_wrap = True
    table.columns[1].overflow = "fold"  # a very long agent name wraps; it never vanishes
    for column in table.columns[2:5]:
        column.no_wrap = True
    for column in table.columns[3:5]:
        column.justify = "right"
    for row, (agent, run_status, tokens, cost) in zip(rows, cells, strict=True):
        values = [ids[row.id], escape(agent), status_markup(run_status), tokens, cost]
        if len(columns) == 6:
            values.append(escape(shorten(row.input, room)))
        table.add_row(*values)
    console.print(table)


@runs_app.command("show")
def runs_show(
    run_id: Annotated[str, typer.Argument(help="The run (its id, or an abbreviation).")],
    db: DbOption = None,
) -> None:
    """Show one run: outcome, handoff and every step."""
    store = open_store(db)
    try:
        row = resolve_run(store, run_id)
        _print_run(row, store.journal(row.id))
    except BosunError as exc:
        error(console, str(exc))
        raise typer.Exit(1) from exc
    finally:
        store.close()


@audit_app.command("verify")
def audit_verify(db: DbOption = None) -> None:
    """Check every link of the audit log's hash chain."""
    store = open_store(db)
    result = store.verify_audit()
    store.close()
    if result.ok:
        console.print(f"[green]audit chain ok[/green]: {result.rows} rows, head {result.head}")
        return
    console.print(
        f"[red]audit chain broken[/red] at row {result.broken_row}: {result.reason} "
        f"({result.rows} rows checked)"
    )
    raise typer.Exit(1)


@app.command()
def demo(
    data: Annotated[
        Path | None,
        typer.Option(help="Fresh data directory (default: a new one under BOSUN_HOME)."),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(help="A real model instead of the scripted policy (or BOSUN_MODEL)."),
    ] = None,
    concurrency: Annotated[int, typer.Option(help="Runs in flight at once.")] = 8,
) -> None:
    """Run the reference support desk on its sample inbox, end to end, and summarise."""
    from bosun.cli.demo import run_demo

    try:
        run_demo(console, data=data, model=model, concurrency=concurrency)
    except BosunError as exc:
        error(console, str(exc))
        raise typer.Exit(1) from exc


class _TextPrinter:
    """Prints a run's text as the model writes it, one line break between answers."""

    def __init__(self) -> None:
        self._answer: tuple[int, int] | None = None

    def __call__(self, chunk: TextChunk) -> None:
        answer = (chunk.step, chunk.attempt)
        if self._answer is not None and answer != self._answer:
            console.file.write("\n")  # a later model call, or a retry of the same one
        self._answer = answer
        # Raw writes: Rich would wrap and style each piece as a line of its own.
        console.file.write(chunk.text)
        console.file.flush()

    def end(self) -> None:
        if self._answer is not None:
            console.file.write("\n")
            console.file.flush()


def _print_run(row: RunRow, steps: list[StepRow]) -> None:
    lines = [
        f"status  {status_markup(row.status)}",
        f"agent   {escape(row.agent)}",
        f"input   {escape(clip(row.input, 200))}",
    ]
    if row.output:
        lines.append(f"output  {escape(clip(row.output, 500))}")
    if row.error:
        lines.append(f"error   {escape(row.error)}")
    if row.handoff:
        handoff = json.loads(row.handoff)
        lines.append(f"reason  {escape(handoff['reason'])}")
        if handoff.get("pending_question"):
            lines.append(f"question {escape(handoff['pending_question'])}")
    tokens = row.input_tokens + row.output_tokens
    lines.append(f"tokens  {tokens}   cost {cost_text(row.cost_usd)}")
    console.print(Panel("\n".join(lines), title=f"run {row.id}"))
    table = Table("#", "step", "tool / model", "status", "latency", "tokens", "cost")
    for s in steps:
        folded = s.kind == "thread_context" and s.model is not None  # a summarizer call
        if not folded and s.kind not in (
            "model_response",
            "model_error",
            "tool_result",
            "approval_requested",
            "approval_decided",
            "human_note",
            "run_finished",
        ):
            continue
        tokens_cell = "" if s.input_tokens is None else f"{s.input_tokens}+{s.output_tokens}"
        table.add_row(
            str(s.seq),
            s.kind,
            s.tool or s.model or "",
            status_markup(s.status or ""),
            "" if s.latency_ms is None else f"{s.latency_ms:.1f} ms",
            tokens_cell,
            "" if s.kind != "model_response" and not folded else cost_text(s.cost_usd),
        )
    console.print(table)


def _reflow_help(commands: typer.Typer) -> None:
    """Help texts come from docstrings wrapped for the source; Typer's Rich help keeps those
    line breaks mid-sentence (in command lists, and past the first paragraph). Each
    paragraph is made one line, for the terminal to wrap at its width."""
    for command in commands.registered_commands:
        text = command.help or inspect.getdoc(command.callback) or ""
        command.help = "\n\n".join(" ".join(p.split()) for p in text.split("\n\n"))
    for group in commands.registered_groups:
        if group.typer_instance is not None:
            _reflow_help(group.typer_instance)


_reflow_help(app)

if __name__ == "__main__":  # pragma: no cover
    app()
