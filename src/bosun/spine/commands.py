"""``bosun costs`` and ``bosun alerts``."""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Annotated, Literal

import typer
from rich.console import Console
from rich.table import Table

from bosun.config import load_settings
from bosun.data.store import Store
from bosun.spine.alerts import list_alerts
from bosun.spine.cost import spend_report

__all__ = ["alerts", "costs"]

console = Console()
DbOption = Annotated[
    str | None,
    typer.Option("--db", help="Database URL (default: BOSUN_DATABASE_URL or BOSUN_HOME)."),
]


def _store(db: str | None) -> Store:
    return Store.open(db or load_settings().resolved_database_url)


def costs(
    days: Annotated[float, typer.Option(help="How far back.")] = 1.0,
    by: Annotated[str, typer.Option(help="agent | tenant | day | run")] = "agent",
    db: DbOption = None,
) -> None:
    """Spend, tokens and model calls, grouped by agent, tenant, day or run."""
    if by not in ("agent", "tenant", "day", "run"):
        raise typer.BadParameter("--by must be agent, tenant, day or run")
    group: Literal["agent", "tenant", "day", "run"] = by  # type: ignore[assignment]
    store = _store(db)
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
    store = _store(db)
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
