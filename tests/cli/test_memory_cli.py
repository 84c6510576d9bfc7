"""``bosun memory list | forget | prune`` against a real store on each backend."""

from __future__ import annotations

import json
import time

from typer.testing import CliRunner

from bosun.cli.main import app
from bosun.data.memories import MemoryRows, NewMemory
from bosun.data.store import Store
from bosun.memory.tools import content_hash

runner = CliRunner()


def add(store: Store, text: str, *, tenant: str, expires_at: float | None = None) -> int:
    row, _ = MemoryRows(store).add(
        NewMemory(
            tenant=tenant,
            customer="jane@example.com",
            agent="desk",
            kind="preference",
            text=text,
            trust="untrusted",
            source_run="r1",
            created_at=time.time(),
            expires_at=expires_at,
            content_hash=content_hash(text),
        )
    )
    return row.id


def test_list_forget_and_prune(db_url: str) -> None:
    store = Store.open(db_url)
    try:
        mine = add(store, "Jane wants replies in German", tenant="acme")
        add(store, "Globex's secret", tenant="globex")
        add(store, "stale", tenant="acme", expires_at=time.time() - 1)
    finally:
        store.close()

    listed = runner.invoke(app, ["memory", "list", "--tenant", "acme", "--db", db_url])
    assert listed.exit_code == 0, listed.output
    shown = " ".join(listed.output.split())  # an 80-column table wraps long text
    assert "Jane wants replies in German" in shown and "untrusted" in shown
    assert "Globex" not in listed.output

    as_json = runner.invoke(app, ["memory", "list", "--tenant", "acme", "--json", "--db", db_url])
    rows = json.loads(as_json.output)
    assert {r["text"] for r in rows} == {"Jane wants replies in German", "stale"}
    assert rows[0]["created_at"].endswith("+00:00")

    other = runner.invoke(
        app, ["memory", "forget", str(mine), "--tenant", "globex", "--db", db_url]
    )
    assert other.exit_code == 1 and "no memory" in other.output

    pruned = runner.invoke(app, ["memory", "prune", "--db", db_url])
    assert pruned.exit_code == 0, pruned.output
    assert "expired 1, merged 0, dropped 0" in pruned.output

    gone = runner.invoke(app, ["memory", "forget", str(mine), "--tenant", "acme", "--db", db_url])
    assert gone.exit_code == 0 and f"forgot memory {mine}" in gone.output
    left = runner.invoke(app, ["memory", "list", "--tenant", "acme", "--json", "--db", db_url])
    assert json.loads(left.output) == []
