"""How long POST /v1/runs takes to answer 202 while the embedded worker is busy.

A burst of N concurrent POSTs (default 500, all in flight at once) to a real `bosun serve`
process (the API with its embedded worker, bench/service_agent.py's 200 ms agent, worker
concurrency --concurrency) on SQLite and on PostgreSQL. Accepting a run writes one row; it
must not wait for the worker driving the runs accepted a moment before. Prints, per
backend, the accept latency (p50, p95, max: POST sent -> 202 received) and the time the
burst took to drain (first POST -> last run finished).

    python bench/accept_latency.py [--runs 500] [--concurrency 500] [--sqlite-only]
                                   [--postgresql-only]

PostgreSQL: BOSUN_TEST_PG_URL, else a throwaway cluster (see bench/service.py).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
import time
from pathlib import Path

import httpx
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
from service import (  # bench/ is not a package: found through sys.path
    AGENT,
    Processes,
    _free_port,
    _percentile,
    _wait_finished,
    deployment,
    pg_schema,
    postgresql,
)


async def _burst(url: str, key: str, n: int) -> tuple[list[str], list[float], float]:
    """All `n` POSTs in flight at once: run ids, each request's seconds to 202, and when
    the first was sent (epoch seconds)."""
    headers = {"Authorization": f"Bearer {key}"}
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=120) as http:

        async def one(i: int) -> tuple[str, float]:
            t0 = time.perf_counter()
            body = {"agent": "bench", "input": f"where is order A-{i}?"}
            response = await http.post("/v1/runs", json=body, headers=headers)
            if response.status_code != 202:
                raise RuntimeError(f"POST /v1/runs: {response.status_code} {response.text}")
            return response.json()["id"], time.perf_counter() - t0

        started = time.time()
        done = await asyncio.gather(*(one(i) for i in range(n)))
    return [run_id for run_id, _ in done], sorted(s for _, s in done), started


def scenario(backend: str, db_url: str, args: argparse.Namespace, tmp: Path) -> str:
    home = tmp / backend
    home.mkdir()
    store, key, env = deployment(db_url, home, args)
    port = _free_port()
    procs = Processes(home, env)
    try:
        log = procs.start("api", "serve", "--agent", AGENT, "--db", db_url, "--port", str(port))
        procs.wait_for(log, "bosun API on")
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/readyz").status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"the API is not ready:\n{log.read_text()[-3000:]}")
            time.sleep(0.1)
        warm, _, _ = asyncio.run(_burst(url, key.key, 20))  # load the PII detector etc.
        _wait_finished(store, warm, timeout=120)
        ids, latencies, started = asyncio.run(_burst(url, key.key, args.runs))
        _wait_finished(store, ids, timeout=60 + args.runs * 0.2)
        with store.engine.connect() as conn:
            last = conn.execute(
                sa.text("SELECT max(created_at) FROM steps WHERE kind = 'run_finished'")
            ).scalar_one()
    finally:
        procs.stop()
        store.close()
    return (
        f"{backend:<11} {_percentile(latencies, 0.50):>7.2f} {_percentile(latencies, 0.95):>7.2f} "
        f"{latencies[-1]:>7.2f} {last - started:>9.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=500, help="POSTs in flight at once")
    parser.add_argument("--concurrency", type=int, default=500, help="runs the worker drives")
    parser.add_argument("--sqlite-only", action="store_true")
    parser.add_argument("--postgresql-only", action="store_true")
    args = parser.parse_args()
    print(
        f"{args.runs} concurrent POST /v1/runs to `bosun serve` (embedded worker, concurrency "
        f"{args.concurrency}); seconds"
    )
    print(f"{'backend':<11} {'p50':>7} {'p95':>7} {'max':>7} {'drained':>9}")
    with tempfile.TemporaryDirectory() as tmp:
        if not args.postgresql_only:
            print(scenario("sqlite", f"sqlite:///{tmp}/bench.db", args, Path(tmp)), flush=True)
        if not args.sqlite_only:
            with postgresql() as pg_url:
                if pg_url is None:
                    print("postgresql  (skipped: no BOSUN_TEST_PG_URL and no local cluster)")
                    return
                with pg_schema(pg_url) as url:
                    print(scenario("postgresql", url, args, Path(tmp)), flush=True)


if __name__ == "__main__":
    main()
