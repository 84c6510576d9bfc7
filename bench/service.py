"""The service end to end: runs submitted over HTTP, driven by workers, timed to the finish.

For a burst of N runs (default 1,000) of bench/service_agent.py's agent (a 200 ms model
called twice around one tool call: 0.4 s per run at best), prints
  accepted/s   POST /v1/runs answered 202 per second (--clients requests in flight);
  p50, p99     time to completion of a run: its created_at -> its run_finished entry;
  drained      first submission -> last run finished, and the runs finished per second;
on SQLite (`bosun serve`: the API with its embedded worker) and on PostgreSQL (`bosun serve
--no-embedded-worker` and 1 or 3 `bosun worker` processes). Every server is a real `bosun`
process with the default stack (PII masking, injection screening; --bare turns both off) and
per-principal limits raised out of the way. PostgreSQL: BOSUN_TEST_PG_URL, else a throwaway
cluster from scripts/pg-test-cluster.sh.

    python bench/service.py [--runs 1000] [--clients 32] [--concurrency 64] [--sqlite-only]
    python bench/service.py --runs 100      # quick
    python bench/service.py --bare          # without PII masking and injection screening
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import sqlalchemy as sa

from bosun import Store
from bosun.data.schema import runs, steps
from bosun.gateway.auth import ApiKeys, Roles

BENCH = Path(__file__).resolve().parent
PG_CLUSTER = BENCH.parent / "scripts" / "pg-test-cluster.sh"
AGENT = "service_agent:agent"
WARMUP = 20
DRIVEN = re.compile(r"stopped after (\d+) runs")
STOPPED = ("completed", "failed", "cancelled", "escalated", "waiting_approval", "waiting_human")
"""Statuses in which no worker drives a run any more (finished, or waiting for a person)."""


@dataclass
class Result:
    backend: str
    workers: str
    accepted_per_s: float
    p50_s: float
    p99_s: float
    drained_s: float
    completed: int
    runs: int
    driven: list[str]
    """Runs each worker process drove, warm-up included (standalone workers only)."""
    not_completed: Counter[str]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Processes:
    """`bosun` CLI processes with their output in log files; all stopped on exit."""

    def __init__(self, home: Path, env: dict[str, str]) -> None:
        self.home = home
        self.env = env
        self.procs: list[tuple[subprocess.Popen[bytes], Path]] = []

    def start(self, name: str, *args: str) -> Path:
        log = self.home / f"{name}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "bosun.cli.main", *args],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.procs.append((proc, log))
        return log

    def wait_for(self, log: Path, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while text not in log.read_text(errors="replace"):
            dead = [p for p, lg in self.procs if lg == log and p.poll() is not None]
            if dead or time.monotonic() > deadline:
                raise RuntimeError(f"{log.name} did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.05)

    def stop(self) -> None:
        for proc, _ in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc, log in self.procs:
            try:
                proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                proc.kill()
                print(f"  ({log.name} did not stop on SIGTERM; killed)")


async def _submit(url: str, key: str, n: int, clients: int) -> tuple[list[str], float]:
    """POST n runs with `clients` requests in flight; their ids and the accepted rate."""
    ids: list[str] = []
    remaining = iter(range(n))
    headers = {"Authorization": f"Bearer {key}"}
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async def client(http: httpx.AsyncClient) -> None:
        for i in remaining:
            body = {"agent": "bench", "input": f"where is order A-{i}?"}
            while True:
                response = await http.post("/v1/runs", json=body, headers=headers)
                if response.status_code != 429:
                    break
                await asyncio.sleep(float(response.headers.get("Retry-After", "1")))
            if response.status_code != 202:
                raise RuntimeError(f"POST /v1/runs: {response.status_code} {response.text}")
            ids.append(response.json()["id"])

    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as http:
        t0 = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(clients)))
        elapsed = time.perf_counter() - t0
    return ids, n / elapsed


def _wait_finished(store: Store, ids: list[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    query = sa.select(sa.func.count()).where(runs.c.id.in_(ids), runs.c.status.in_(STOPPED))
    while True:
        with store.engine.connect() as conn:
            done = conn.execute(query).scalar_one()
        if done == len(ids):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {done} of {len(ids)} runs finished in {timeout:.0f} s")
        time.sleep(0.1)


def _completion_times(store: Store, ids: list[str]) -> tuple[list[float], int, float, float]:
    """Seconds from created_at to run_finished per run, the completed count, and the first
    creation and last finish (epoch seconds)."""
    query = (
        sa.select(runs.c.id, runs.c.status, runs.c.created_at, steps.c.created_at.label("done"))
        .join(steps, sa.and_(steps.c.run_id == runs.c.id, steps.c.kind == "run_finished"))
        .where(runs.c.id.in_(ids))
    )
    with store.engine.connect() as conn:
        rows = conn.execute(query).all()
    times = sorted(r.done - r.created_at for r in rows)
    completed = sum(r.status == "completed" for r in rows)
    return times, completed, min(r.created_at for r in rows), max(r.done for r in rows)


def _not_completed(store: Store, ids: list[str]) -> Counter[str]:
    """Runs that did not complete, by status and error (what went wrong, when anything did)."""
    query = sa.select(runs.c.status, runs.c.error).where(
        runs.c.id.in_(ids), runs.c.status != "completed"
    )
    with store.engine.connect() as conn:
        return Counter(f"{r.status}: {(r.error or '')[:160]}" for r in conn.execute(query))


def _percentile(sorted_values: list[float], q: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * q))]


def deployment(
    db_url: str, home: Path, args: argparse.Namespace
) -> tuple[Store, str, dict[str, str]]:
    """The store at `db_url`, a submitter key in it, and the environment of the service
    processes: limits high enough that only the queue and the workers pace the burst."""
    store = Store.open(db_url)
    key = ApiKeys(store, roles=Roles.builtin()).create("bench", tenant="bench", roles=["submitter"])
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("BOSUN_")},
        "BOSUN_HOME": str(home),
        "BOSUN_SERVICE__CONCURRENCY": str(args.concurrency),
        "BOSUN_SERVICE__TOOL_SCOPES": '["tools:*"]',
        "BOSUN_SERVICE__REQUESTS_PER_PRINCIPAL": "100000000/minute",
        "BOSUN_SERVICE__TOKENS_PER_PRINCIPAL": "100000000000/hour",
        "BOSUN_SERVICE__MAX_QUEUE": str(max(10_000, 10 * args.runs)),
        "PYTHONPATH": os.pathsep.join([str(BENCH), os.environ.get("PYTHONPATH", "")]),
    }
    return store, key, env


def scenario(
    backend: str, db_url: str, workers: int, args: argparse.Namespace, tmp: Path
) -> Result:
    """One deployment: the API (embedded worker when `workers` is 0) and `workers` worker
    processes over `db_url`; a warm-up, then the timed burst."""
    home = tmp / f"{backend}-{workers}"
    home.mkdir()
    store, key, env = deployment(db_url, home, args)
    if args.bare:
        env["BOSUN_SERVICE__MASK_PII"] = env["BOSUN_SERVICE__SCREEN_INJECTIONS"] = "false"
    port = _free_port()
    procs = Processes(home, env)
    try:
        serve = ["serve", "--agent", AGENT, "--db", db_url, "--port", str(port)]
        api_log = procs.start("api", *serve, *([] if workers == 0 else ["--no-embedded-worker"]))
        for i in range(workers):
            log = procs.start(f"worker{i}", "worker", "--agent", AGENT, "--db", db_url)
            procs.wait_for(log, "worker ")
        procs.wait_for(api_log, "bosun API on")
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/readyz").status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"the API is not ready:\n{api_log.read_text()[-3000:]}")
            time.sleep(0.1)

        # More warm-up runs than one worker takes at once, so every worker drives some: a
        # cold worker's first runs pay for loading the PII detector.
        warmup = WARMUP + args.concurrency * max(workers, 1)
        warm, _ = asyncio.run(_submit(url, key.key, warmup, args.clients))
        _wait_finished(store, warm, timeout=120)

        ids, accepted = asyncio.run(_submit(url, key.key, args.runs, args.clients))
        _wait_finished(store, ids, timeout=60 + args.runs * 0.2)
        times, completed, first, last = _completion_times(store, ids)
        not_completed = _not_completed(store, ids)
    finally:
        procs.stop()
        store.close()
    driven = [m.group(1) for _, log in procs.procs if (m := DRIVEN.search(log.read_text()))]
    return Result(
        backend=backend,
        workers="embedded" if workers == 0 else str(workers),
        accepted_per_s=accepted,
        p50_s=_percentile(times, 0.50),
        p99_s=_percentile(times, 0.99),
        drained_s=last - first,
        completed=completed,
        runs=len(ids),
        driven=driven,
        not_completed=not_completed,
    )


@contextlib.contextmanager
def postgresql() -> Iterator[str | None]:
    """A PostgreSQL URL: BOSUN_TEST_PG_URL, else a throwaway cluster (None when neither)."""
    if os.environ.get("BOSUN_TEST_PG_URL"):
        yield os.environ["BOSUN_TEST_PG_URL"]
        return
    if not PG_CLUSTER.exists():
        yield None
        return
    # On a free port: the script's random pick can collide with a port in use.
    env = {**os.environ, "PGTEST_PORT": str(_free_port())}
    out = subprocess.run([str(PG_CLUSTER), "start"], capture_output=True, text=True, env=env)
    exported = dict(
        word.split("=", 1) for word in shlex.split(out.stdout) if "=" in word and word != "export"
    )
    if "BOSUN_TEST_PG_URL" not in exported:
        print(f"PostgreSQL did not start: {out.stdout.strip()} {out.stderr.strip()}")
        yield None
        return
    try:
        yield exported["BOSUN_TEST_PG_URL"]
    finally:
        subprocess.run([str(PG_CLUSTER), "stop", exported["PGTEST_DIR"]], check=False)


@contextlib.contextmanager
def pg_schema(url: str) -> Iterator[str]:
    """A fresh schema in `url`'s database, as a URL that uses it; dropped afterwards."""
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(url)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in url else "?"
    try:
        yield f"{url}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000, help="runs in the timed burst")
    parser.add_argument("--clients", type=int, default=32, help="POSTs in flight at once")
    parser.add_argument("--concurrency", type=int, default=64, help="runs one worker drives")
    parser.add_argument("--sqlite-only", action="store_true")
    parser.add_argument(
        "--bare", action="store_true", help="no PII masking and no injection screening"
    )
    args = parser.parse_args()
    print(
        f"{args.runs} runs (after warm-up runs), 2 model calls of 200 ms + 1 tool call "
        f"per run (0.40 s at best); {args.clients} HTTP clients; worker concurrency "
        f"{args.concurrency}; {os.cpu_count()} CPUs; "
        f"{'no PII masking or screening' if args.bare else 'PII masking and screening on'}"
    )
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="bosun-bench-") as name:
        tmp = Path(name)
        results.append(scenario("sqlite", f"sqlite:///{tmp}/bench.db", 0, args, tmp))
        _print(results[-1:], header=True)
        if not args.sqlite_only:
            with postgresql() as pg_url:
                if pg_url is None:
                    print("PostgreSQL: no BOSUN_TEST_PG_URL and no local cluster; skipped")
                for workers in (1, 3) if pg_url else ():
                    assert pg_url is not None
                    with pg_schema(pg_url) as url:
                        results.append(scenario("postgresql", url, workers, args, tmp))
                    _print(results[-1:], header=False)


def _print(results: list[Result], *, header: bool) -> None:
    if header:
        print(
            f"\n{'backend':<11} {'workers':>8} {'accepted/s':>11} {'p50 s':>7} {'p99 s':>7} "
            f"{'drained s':>10} {'finished/s':>11} {'completed':>10}"
        )
    for r in results:
        print(
            f"{r.backend:<11} {r.workers:>8} {r.accepted_per_s:>11.0f} {r.p50_s:>7.2f} "
            f"{r.p99_s:>7.2f} {r.drained_s:>10.2f} {r.runs / r.drained_s:>11.0f} "
            f"{r.completed:>5}/{r.runs:<4}",
            flush=True,
        )
        if r.driven:
            print(f"{'':<21}runs driven per worker, warm-up included: {', '.join(r.driven)}")
        for what, n in r.not_completed.most_common(5):
            print(f"{'':<21}{n} runs {what}")


if __name__ == "__main__":
    main()
