"""``bosun trace RUN_ID``: a run's trace as a tree, with timings, tokens and cost per span."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.tree import Tree

from bosun.cli.options import DbOption, open_store, resolve_run
from bosun.errors import BosunError
from bosun.observe.tracing import Span, Trace, trace_of

__all__ = ["render_trace", "trace_command"]


def trace_command(
    run_id: Annotated[str, typer.Argument(help="The run (its id, or an abbreviation).")],
    db: DbOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a tree.")] = False,
) -> None:
    """Show a run's trace: every model call, tool call, wait and guardrail, with timings
    (offset from the run's start, duration), tokens and cost."""
    console = Console()
    store = open_store(db)
    try:
        trace = trace_of(store, resolve_run(store, run_id).id)
    except BosunError as exc:
        Console(stderr=True).print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(1) from exc
    finally:
        store.close()
    if as_json:
        # Plain print: Rich would wrap long lines and break the JSON for a pipe.
        print(json.dumps(trace.to_json(), indent=2, ensure_ascii=False))
    else:
        console.print(f"trace [bold]{trace.trace_id}[/bold]  run {escape(trace.run_id)}")
        console.print(render_trace(trace))


def render_trace(trace: Trace) -> Tree:
    """The trace as a Rich tree, one node per span."""
    t0 = trace.root.start
    tree = Tree(_label(trace.root, t0))
    nodes = {trace.root.span_id: tree}
    for _, span in trace.walk():
        if span is trace.root:
            continue
        parent = nodes.get(span.parent_id or "", tree)
        nodes[span.span_id] = parent.add(_label(span, t0))
    for span in trace.spans:
        for event in span.events:
            nodes[span.span_id].add(
                f"[dim]• {escape(event.name)}  +{_duration(event.time - t0)}[/dim]"
            )
    return tree


def _label(span: Span, t0: float) -> str:
    a = span.attributes
    parts = [f"[bold]{escape(span.name)}[/bold]"]
    parts.append(f"[dim]+{_duration(span.start - t0)}[/dim]")
    parts.append("[yellow]open[/yellow]" if span.duration is None else _duration(span.duration))
    if "gen_ai.usage.input_tokens" in a:
        parts.append(
            f"[cyan]{a['gen_ai.usage.input_tokens']}→{a.get('gen_ai.usage.output_tokens', 0)} "
            "tok[/cyan]"
        )
    cost = a.get("bosun.cost_usd")
    if isinstance(cost, int | float) and cost:
        parts.append(f"[green]${f'{cost:.6f}'.rstrip('0')}[/green]")
    attempt, attempts = a.get("bosun.attempt"), a.get("bosun.tool.attempts")
    if isinstance(attempt, int) and attempt > 1:
        parts.append(f"attempt {attempt}")
    if isinstance(attempts, int) and attempts > 1:
        parts.append(f"{attempts} attempts")
    for key, fmt in (
        ("bosun.run.status", "{}"),
        ("bosun.guardrail.action", "{}"),
        ("bosun.approval.decided_by", "by {}"),
        ("bosun.human.answered_by", "by {}"),
        ("bosun.wait.outcome", "{}"),
    ):
        if key in a:
            parts.append(escape(fmt.format(a[key])))
    if span.status == "error":
        message = f"{a.get('error.type', 'error')}: {span.status_message or ''}"
        parts.append(f"[red]✗ {escape(message[:120])}[/red]")
    return "  ".join(parts)


def _duration(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.1f} ms"
    if seconds < 60:
        return f"{seconds:.2f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes}m"
