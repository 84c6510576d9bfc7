"""``bosun memory list | forget | prune``: what agents remember, per tenant."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import time
from typing import Annotated

import typer
from rich.console import Console

from bosun.cli.options import DbOption, open_store
from bosun.cli.render import clip, error
from bosun.cli.render import table as render_table
from bosun.config import load_settings
from bosun.data.memories import MemoryRow, MemoryRows
from bosun.memory.upkeep import prune_memories

__all__ = ["memory_app"]

console = Console()
memory_app = typer.Typer(help="Long-term memory: list, forget, prune.", no_args_is_help=True)

Tenant = Annotated[
    str, typer.Option(help='The tenant whose memories to show ("" for runs without one).')
]


@memory_app.command("list")
def list_memories(
    tenant: Tenant,
    customer: Annotated[str | None, typer.Option(help="Only this customer's.")] = None,
    agent: Annotated[str | None, typer.Option(help="Only this agent's.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="How many, newest first.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    db: DbOption = None,
) -> None:
    """A tenant's memories, newest first, with their labels and use."""
    store = open_store(db)
    try:
        rows = MemoryRows(store).recent(tenant=tenant, customer=customer, agent=agent, limit=limit)
    finally:
        store.close()
    if as_json:
        print(json.dumps([_json(r) for r in rows], indent=2, ensure_ascii=False))
        return
    grid = render_table("id", "kind", "trust", "uses", "customer", "agent", "text")
    for r in rows:
        grid.add_row(
            str(r.id),
            r.kind,
            r.trust,
            str(r.use_count),
            clip(r.customer or "-", 24),
            clip(r.agent or "-", 16),
            clip(r.text, 60),
        )
    console.print(grid)


@memory_app.command()
def forget(
    memory_id: Annotated[int, typer.Argument(help="The memory's id (bosun memory list).")],
    tenant: Tenant,
    db: DbOption = None,
) -> None:
    """Delete one memory of a tenant."""
    store = open_store(db)
    try:
        gone = MemoryRows(store).forget(tenant=tenant, memory_id=memory_id)
    finally:
        store.close()
    if not gone:
        error(console, f"tenant {tenant!r} has no memory {memory_id}")
        raise typer.Exit(1)
    console.print(f"forgot memory {memory_id}")


@memory_app.command()
def prune(
    unused_days: Annotated[
        float | None, typer.Option(help="Drop memories never recalled after this many days.")
    ] = None,
    similarity: Annotated[
        float | None, typer.Option(help="Merge memories of one scope at least this similar.")
    ] = None,
    db: DbOption = None,
) -> None:
    """Expire, merge near-duplicates, drop what was never recalled (as workers do hourly)."""
    settings = load_settings().memory
    store = open_store(db)
    try:
        report = prune_memories(
            MemoryRows(store),
            now=time.time(),
            unused_days=unused_days if unused_days is not None else settings.unused_days,
            similarity=similarity if similarity is not None else settings.similarity,
        )
    finally:
        store.close()
    console.print(
        f"expired {report.expired}, merged {report.merged}, dropped {report.unused} never recalled"
    )


def _json(row: MemoryRow) -> dict[str, object]:
    values: dict[str, object] = dataclasses.asdict(row)
    for key in ("created_at", "last_used_at", "expires_at"):
        stamp = values.get(key)
        if isinstance(stamp, float):
            values[key] = dt.datetime.fromtimestamp(stamp, dt.UTC).isoformat(timespec="seconds")
    return values
