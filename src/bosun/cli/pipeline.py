"""``bosun pipeline run`` and ``bosun pipeline show``: a pipeline from a terminal.

``run`` drives the pipeline in this process over the configured store (the SQLite database
in BOSUN_HOME by default), like ``bosun run`` does an agent, and prints each stage and the
result; ``show`` prints a stored pipeline the same way, wherever it was driven. Exit status
of ``run``: 0 completed, 2 escalated or failed (the reason is printed), 1 a bad argument.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape

from bosun.cli.options import DbOption, open_store
from bosun.cli.render import clip, cost_text, error, shorten, status_markup, table
from bosun.data.pipelines import PipelineRows
from bosun.errors import BosunError, ConfigError
from bosun.orchestration import (
    Pipelines,
    PipelineStatus,
    PipelineView,
    load_pipeline,
    view_of,
)
from bosun.runtime.runtime import Runtime
from bosun.trust import Trust

__all__ = ["pipeline_app"]

console = Console()
pipeline_app = typer.Typer(no_args_is_help=True, help="Pipelines of agents: run one, show one.")

_OUTPUT_CHARS = 2000
_STAGE_STATUS = {
    "completed": "[green]completed[/green]",
    "failed": "[red]failed[/red]",
    "running": "[cyan]running[/cyan]",
    "pending": "[dim]pending[/dim]",
}


def _input(text: str) -> Any:
    """The JSON given inline, or read from ``@file``."""
    if text.startswith("@"):
        path = Path(text[1:])
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise typer.BadParameter(f"cannot read {path}: {exc.strerror}") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise typer.BadParameter(f"the input is not JSON: {exc}") from exc


@pipeline_app.command("run")
def run(
    target: Annotated[str, typer.Argument(help="MODULE:PIPELINE (or a function building one).")],
    input: Annotated[
        str, typer.Option("--input", "-i", help="The input: JSON, or @file holding JSON.")
    ],
    untrusted: Annotated[
        bool, typer.Option(help="Label the input untrusted (an email, a web form).")
    ] = False,
    db: DbOption = None,
) -> None:
    """Run a pipeline here, once, and print each stage and the result."""
    try:
        pipeline = load_pipeline(target)
    except ConfigError as exc:
        raise typer.BadParameter(str(exc)) from exc
    data = _input(input)
    try:
        given = pipeline.input.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "input"
        raise typer.BadParameter(
            f"the input does not fit {pipeline.name!r}'s {pipeline.input.__name__}: "
            f"{where}: {first['msg']}"
        ) from exc
    trust = Trust.UNTRUSTED if untrusted else Trust.USER

    async def go() -> PipelineView:
        store = open_store(db)
        try:
            async with Runtime(store=store) as runtime:
                pipelines = Pipelines(runtime, [pipeline])
                result = await pipelines.run(pipeline, given, trust=trust)
                return await pipelines.view(result.pipeline_id)
        finally:
            store.close()

    try:
        view = asyncio.run(go())
    except BosunError as exc:
        error(console, str(exc))
        raise typer.Exit(1) from exc
    _print(view)
    raise typer.Exit(0 if view.status is PipelineStatus.COMPLETED else 2)


@pipeline_app.command("show")
def show(
    pipeline_id: Annotated[str, typer.Argument(help="The pipeline's id.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    db: DbOption = None,
) -> None:
    """Show a stored pipeline: each stage's status, output and runs, and the result."""
    store = open_store(db)
    try:
        row, entries = PipelineRows(store).load(pipeline_id)
    except BosunError as exc:
        error(console, str(exc))
        raise typer.Exit(1) from exc
    finally:
        store.close()
    view = view_of(row, entries, None)
    if as_json:
        print(json.dumps(_jsonable(view), indent=2, ensure_ascii=False))
        return
    _print(view)


def _print(view: PipelineView) -> None:
    """The pipeline in 80 columns: a header line, a table of stages, then the output or
    the reason it stopped."""
    width = console.width
    console.print(
        f"pipeline {view.pipeline_id} [bold]{escape(view.name)}[/bold]: "
        f"{status_markup(view.status.value)}",
        highlight=False,
        soft_wrap=True,  # the id is copied whole
    )
    console.print(
        f"{len(view.runs)} run(s), {view.model_calls} model call(s), {view.tokens} tokens, "
        f"{cost_text(view.cost_usd)}",
        highlight=False,
    )
    grid = table("stage", "kind", "status", "runs", "output")
    fixed = max((len(s.name) for s in view.stages), default=5) + 8 + 9 + 4 + 2 * 4
    room = max(10, width - fixed)
    for stage in view.stages:
        if stage.outputs:
            values = [o.output for o in stage.outputs]
            shown = json.dumps(values[0] if len(values) == 1 else values, ensure_ascii=False)
        else:
            shown = stage.error or ""
        grid.add_row(
            escape(stage.name),
            stage.kind or "",
            _STAGE_STATUS.get(stage.status, escape(stage.status)),
            str(len(stage.runs)),
            escape(shorten(shown, room)),
        )
    console.print(grid)
    for stage in view.stages:
        for run_id in stage.runs:
            console.print(f"  {escape(stage.name)} run {run_id}", highlight=False, soft_wrap=True)
    if view.status is PipelineStatus.COMPLETED:
        label = "" if view.trust is None else f" ({view.trust.value})"
        console.print(f"output{label}:", highlight=False)
        text = json.dumps(view.output, indent=2, ensure_ascii=False)
        console.print(escape(clip(text, _OUTPUT_CHARS)), highlight=False)
    elif view.error:
        # One line, for a person and for grep: the terminal wraps it.
        console.print(
            f"[yellow]why:[/yellow] {escape(view.error)}", highlight=False, soft_wrap=True
        )
        if view.handoff:
            text = json.dumps(view.handoff, indent=2, ensure_ascii=False, default=str)
            console.print(escape(clip(text, _OUTPUT_CHARS)), highlight=False)


def _jsonable(view: PipelineView) -> dict[str, Any]:
    return {
        "id": view.pipeline_id,
        "name": view.name,
        "status": view.status.value,
        "output": view.output,
        "trust": None if view.trust is None else view.trust.value,
        "error": view.error,
        "handoff": view.handoff,
        "stages": [
            {
                "name": s.name,
                "status": s.status,
                "outputs": [o.output for o in s.outputs],
                "runs": list(s.runs),
                "error": s.error,
            }
            for s in view.stages
        ],
        "runs": list(view.runs),
    }
