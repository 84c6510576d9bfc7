"""``bosun costs``, ``bosun alerts``, ``bosun online`` and ``bosun shadow``."""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Annotated, Literal

import typer
from rich.console import Console
from rich.table import Table

from bosun.cli.options import DbOption, open_store
from bosun.data.scores import ScoreRows
from bosun.observe.alerts import list_alerts
from bosun.observe.cost import spend_report

__all__ = ["alerts", "costs", "online", "shadow"]

console = Console()


def costs(
    days: Annotated[float, typer.Option(help="How far back.")] = 1.0,
    by: Annotated[str, typer.Option(help="agent | tenant | day | run")] = "agent",
    db: DbOption = None,
) -> None:
    """Spend, tokens and model calls, grouped by agent, tenant, day or run."""
    if by not in ("agent", "tenant", "day", "run"):
        raise typer.BadParameter("--by must be agent, tenant, day or run")
    group: Literal["agent", "tenant", "day", "run"] = by  # type: ignore[assignment]
    store = open_store(db)
    try:
        rows = spend_report(store, since=time.time() - days * 86400, by=group)
    finally:
        store.close()
    table = Table(by, "cost (USD)", "model calls", "runs", "input tokens", "output tokens")
    for row in rows:
        table.add_row(
            str(row[by]) or "-",
            f"{row['cost_usd']:.4f}",
            str(row["model_calls"]),
            str(row["runs"]),
            str(row["input_tokens"]),
            str(row["output_tokens"]),
        )
    console.print(table)


def alerts(
    kind: Annotated[str | None, typer.Option(help="Only this kind (cost_cap, drift).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    db: DbOption = None,
) -> None:
    """Alerts raised by cost caps and drift detection, newest first."""
    store = open_store(db)
    try:
        rows = list_alerts(store, kind=kind)
    finally:
        store.close()
    if as_json:
        print(json.dumps(rows, default=str, indent=2))
        return
    table = Table("when (UTC)", "kind", "severity", "subject", "message")
    for row in rows:
        when = dt.datetime.fromtimestamp(row["created_at"], dt.UTC).strftime("%Y-%m-%d %H:%M")
        table.add_row(when, row["kind"], row["severity"], row["subject"], row["message"])
    console.print(table)


def online(
    prompt: Annotated[str | None, typer.Option(help="Only this prompt.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    db: DbOption = None,
) -> None:
    """Online evaluation per prompt version: signal rates, judge scores, feedback."""
    from bosun.evals.online import SIGNALS, aggregate

    store = open_store(db)
    try:
        rows = aggregate(store, prompt_name=prompt)
    finally:
        store.close()
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    judges = sorted({name for row in rows for name in row["judges"]})
    table = Table("prompt", "version", "runs", *SIGNALS, *judges, "thumbs +/-", "corrections")
    for row in rows:
        table.add_row(
            str(row["prompt_name"] or "-"),
            str(row["prompt_version"] or "-"),
            str(row["runs"]),
            *(f"{row['signals'].get(s, 0):.1%}" for s in SIGNALS),
            *(f"{row['judges'][j]:.2f}" if j in row["judges"] else "-" for j in judges),
            f"{row['thumbs_up']}/{row['thumbs_down']}",
            str(row["corrections"]),
        )
    console.print(table)


def shadow(
    prompt: Annotated[str, typer.Argument(help="The prompt whose shadow runs to report.")],
    db: DbOption = None,
) -> None:
    """Where a shadow version's intended actions differ from production's."""
    store = open_store(db)
    try:
        rows = ScoreRows(store).newest(kind="shadow", prompt_name=prompt, limit=200)
    finally:
        store.close()
    table = Table("production run", "shadow version", "agreement", "only production", "only shadow")
    for row in rows:
        diff = json.loads(row.reason or "{}")
        table.add_row(
            row.run_id,
            row.prompt_version or "-",
            f"{row.value:.0%}",
            ", ".join(tool for tool, _ in diff.get("only_production", [])) or "-",
            ", ".join(tool for tool, _ in diff.get("only_shadow", [])) or "-",
        )
    console.print(table)
    if rows:
        agreements = [r.value or 0.0 for r in rows]  # a shadow row always carries one
        mean = sum(agreements) / len(rows)
        differing = sum(a < 1 for a in agreements)
        console.print(f"{len(rows)} shadowed runs, mean agreement {mean:.0%}, {differing} differ")
