"""The dashboard's list pages with 10,000 runs in the store: p50/p95 render time per page.

Seeds a store with 10,000 runs spread over the last 7 days, cloned (fresh ids, shifted
times) from real runs of the support desk agent on its sample inbox, so journals, held
calls and handoff packages are what the runtime writes: about 70% finished, 10% waiting for
an approval, 15% waiting for a person, 5% failed. Then serves the API with the dashboard
under uvicorn (no worker: nothing moves while measuring), logs in through the login form,
and times each list page over HTTP: the approvals queue, escalations, runs (first page,
a status filter, a time window, a page deep in the list), operations (24 h and 7 days) and
the prompt list. Target (issue #15): p95 <= 150 ms per list page. Operations is a charts page,
not a list: it reuses its counts for 30 seconds, and counting grows with the runs in its
window (a week here is all 10,000 of them, their tool results and first entries read), so
the counting itself is timed too ("operations counted": median and worst of a few).

On SQLite, and on PostgreSQL when BOSUN_TEST_PG_URL is set (a fresh schema, dropped after).

    python bench/dashboard.py [--runs 10000] [--requests 60] [--sqlite-only]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import secrets
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
import uvicorn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
INBOX = ROOT / "examples" / "support_desk" / "inbox"
TEMPLATES = [
    "billing-01", "billing-02", "bug-01", "refund-01", "password-01",  # held for approval
    "ambiguous-01", "gdpr-01", "hostile-01",  # waiting for a person
    "autoreply-01", "resolved-01",  # completed
]  # fmt: skip
WEEK = 7 * 86400


def _mix() -> list[str]:
    """Template statuses in the seeded proportions (approx.)."""
    return ["finished"] * 70 + ["waiting_approval"] * 10 + ["waiting_human"] * 15 + ["failed"] * 5


async def _templates(system: Any, who: Any, settings: Any) -> dict[str, list[str]]:
    from bosun.gateway.email import parse_email, parts_for

    by_status: dict[str, list[str]] = {}
    async with system.runtime:
        for name in TEMPLATES:
            parsed = parse_email((INBOX / f"{name}.eml").read_bytes())
            parts = parts_for(parsed, template=settings.service.inbox_instruction)
            result = await system.gateway.run(who, "support_desk", parts)
            by_status.setdefault(result.status.value, []).append(result.run_id)
    return by_status


def _seed(store: Any, templates: dict[str, list[str]], count: int) -> None:
    """`count` clones of the template runs, created over the last week."""
    from bosun.data.store import NewRun, RunUpdate, Step

    loaded = {s: [store.load(r) for r in ids] for s, ids in templates.items()}
    pools = {
        "finished": loaded.get("completed", []),
        "waiting_approval": loaded.get("waiting_approval", []),
        "waiting_human": loaded.get("waiting_human", []),
        "failed": loaded.get("completed", []),
    }
    rng = random.Random(15)
    now = time.time()
    mix = _mix()
    batch: list[Any] = []
    for i in range(count):
        kind = rng.choice(mix)
        row, steps = rng.choice(pools[kind])
        created = now - WEEK + WEEK * i / count
        run_id = f"{int(created * 1000):012x}{secrets.token_hex(8)}"
        shift = created - row.created_at
        status = "failed" if kind == "failed" else row.status
        batch.append(
            NewRun(
                id=run_id,
                agent=row.agent,
                status="queued",
                input=row.input,
                grants=row.grants,
                principal=row.principal,
                tenant=row.tenant,
                created_at=created,
            )
        )
        batch += [
            Step(**{**_step_fields(s), "run_id": run_id, "created_at": s.created_at + shift})
            for s in steps
        ]
        batch.append(
            RunUpdate(
                run_id=run_id,
                values={
                    "status": status,
                    "output": row.output,
                    "handoff": row.handoff,
                    "error": "bench: failed" if kind == "failed" else row.error,
                    "input_tokens": row.input_tokens,
                    "output_tokens": row.output_tokens,
                    "cost_usd": row.cost_usd,
                    "updated_at": created + rng.uniform(0.5, 30.0),
                },
            )
        )
        if len(batch) > 3000:
            store.write(batch)
            batch = []
    if batch:
        store.write(batch)


def _step_fields(step: Any) -> dict[str, Any]:
    names = ("seq", "kind", "payload", "tool", "call_id", "model", "status")
    more = ("input_tokens", "output_tokens", "cost_usd", "latency_ms")
    return {n: getattr(step, n) for n in (*names, *more)}


@contextmanager
def _serve(app: Any) -> Iterator[str]:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def _login(url: str, key: str) -> httpx.Client:
    client = httpx.Client(base_url=url, timeout=30)
    token = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text)
    assert token is not None
    client.post("/login", data={"csrf": token.group(1), "api_key": key, "next": "/"})
    return client


def _pages(client: httpx.Client) -> dict[str, str]:
    first = client.get("/runs").text
    deep = "/runs"
    for _ in range(20):  # 20 pages in: keyset pages cost the same anywhere
        found = re.search(r'href="(/runs\?[^"]*after=[^"]+)"', client.get(deep).text)
        if found is None:
            break
        deep = found.group(1).replace("&amp;", "&")
    day = time.strftime("%Y-%m-%dT%H:%M", time.gmtime(time.time() - 86400))
    assert "<table" in first
    return {
        "approvals": "/approvals",
        "escalations": "/escalations",
        "runs": "/runs",
        "runs ?status=completed": "/runs?status=completed",
        "runs, last 24 h": f"/runs?since={day}",
        "runs, 20 pages in": deep,
        "operations, 24 h": "/ops",
        "operations, 7 days": "/ops?hours=168",
        "prompts": "/prompts",
    }


def _time(client: httpx.Client, path: str, requests: int) -> tuple[float, float]:
    for _ in range(3):
        assert client.get(path).status_code == 200, path
    took = []
    for _ in range(requests):
        t0 = time.perf_counter()
        answer = client.get(path)
        took.append((time.perf_counter() - t0) * 1000)
        assert answer.status_code == 200, (path, answer.status_code)
    took.sort()
    p95 = took[max(0, int(len(took) * 0.95 + 0.5) - 1)]
    return statistics.median(took), p95


Timings = dict[str, tuple[float, float]]


def bench(url_of_store: str, home: Path, runs: int, requests: int) -> Timings:
    os.environ["BOSUN_HOME"] = str(home)
    from bosun.config import load_settings
    from bosun.data.store import Store
    from bosun.prompts.registry import PromptRegistry
    from bosun.service.compose import compose
    from examples.support_desk import build_agent, seed
    from examples.support_desk.agent import PROMPTS

    settings = load_settings(home=home, database_url=url_of_store)
    store = Store.open(url_of_store)
    desk = seed(home / "helpdesk.db")
    system = compose(settings, [build_agent(desk.path)], store=store, worker=False)
    key = system.gateway.keys.create("admin", tenant="acme", roles=["admin"]).key
    who = asyncio.run(system.gateway.authenticate(key))
    templates = asyncio.run(_templates(system, who, settings))
    t0 = time.perf_counter()
    _seed(store, templates, runs)
    print(f"  seeded {runs:,} runs in {time.perf_counter() - t0:.1f} s", flush=True)
    PromptRegistry(store).sync_from_dir(PROMPTS, by="bench")
    # A fresh system to serve: the one that made the templates closed its runtime.
    served = compose(settings, [build_agent(desk.path)], store=store, worker=False)
    results = {}
    with _serve(served.app()) as url:
        client = _login(url, key)
        try:
            for name, path in _pages(client).items():
                results[name] = _time(client, path, requests)
        finally:
            client.close()
    results.update(_counting(store, max(5, requests // 6)))
    store.close()
    return results


def _counting(store: Any, times: int) -> Timings:
    """The operations counts themselves (the page reuses them for 30 seconds)."""
    from bosun.data.operations import OpsRows, OpsWindow
    from bosun.service.dashboard.ops import charts

    found = {}
    for hours in (24, 168):
        took = []
        for _ in range(times):
            now = time.time()
            window = OpsWindow(since=now - hours * 3600, until=now, all_tenants=True)
            t0 = time.perf_counter()
            charts(OpsRows(store), window)
            took.append((time.perf_counter() - t0) * 1000)
        took.sort()
        found[f"operations counted, {hours} h"] = (statistics.median(took), took[-1])
    return found


@contextmanager
def _postgres() -> Iterator[str | None]:
    base = os.environ.get("BOSUN_TEST_PG_URL")
    if not base:
        yield None
        return
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(base)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in base else "?"
    try:
        yield f"{base}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=60)
    parser.add_argument("--sqlite-only", action="store_true")
    args = parser.parse_args()
    tables: dict[str, Timings] = {}
    with tempfile.TemporaryDirectory(prefix="bosun-bench-dash-") as tmp:
        print("SQLite:", flush=True)
        home = Path(tmp) / "sqlite"
        tables["SQLite"] = bench(f"sqlite:///{home / 'bosun.db'}", home, args.runs, args.requests)
        if not args.sqlite_only:
            with _postgres() as pg:
                if pg is None:
                    print("PostgreSQL: skipped (set BOSUN_TEST_PG_URL)")
                else:
                    print("PostgreSQL:", flush=True)
                    home = Path(tmp) / "pg"
                    tables["PostgreSQL"] = bench(pg, home, args.runs, args.requests)
    print(f"\nrender time over HTTP, {args.runs:,} runs in the store, {args.requests} requests")
    print(f"{'page':28}" + "".join(f"{b + ' p50':>16}{b + ' p95':>16}" for b in tables))
    for page in next(iter(tables.values())):
        cells = "".join(f"{t[page][0]:13.1f} ms{t[page][1]:13.1f} ms" for t in tables.values())
        print(f"{page:28}{cells}")
    lists = [p for p in next(iter(tables.values())) if not p.startswith("operations")]
    worst = max(table[p][1] for table in tables.values() for p in lists)
    print(f"\nworst p95 of the list pages: {worst:.1f} ms (target <= 150 ms)")
    print(f"load average (1, 5, 15 min) at the end: {os.getloadavg()}")
    rounded = {b: {p: [round(v, 1) for v in t] for p, t in tb.items()} for b, tb in tables.items()}
    print(json.dumps(rounded))


if __name__ == "__main__":
    main()
