"""Scale-out crash safety: three worker processes on PostgreSQL, SIGKILLed at random moments
and restarted, drive hundreds of queued runs; every run finishes and no effect happens twice.

``BOSUN_CRASH_SEED`` replays a schedule of kills (the seed is printed);
``BOSUN_WORKER_CRASH_RUNS`` changes the number of runs (default 300).
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import sqlalchemy as sa
import worker_crash_agent as crash
from worker_crash_agent import EFFECTS_SCHEMA, ITEMS

from bosun.data.schema import runs, steps
from bosun.data.store import Store
from bosun.runtime import Runtime

SCRIPT = Path(crash.__file__)
# Read at import: the autouse fixture clears BOSUN_* variables before each test.
RUNS = int(os.environ.get("BOSUN_WORKER_CRASH_RUNS", "300"))
SEED = os.environ.get("BOSUN_CRASH_SEED")
WORKERS = 3
DEADLINE_S = 150.0
"""Fail rather than hang; a healthy run takes a fraction of this."""


class Workers:
    """The worker processes, each logging to its own file."""

    def __init__(self, url: str, logs: Path) -> None:
        self.url = url
        self.logs = logs
        self.procs: list[tuple[subprocess.Popen[bytes], Path]] = []
        self.started = 0

    def spawn(self) -> tuple[subprocess.Popen[bytes], Path]:
        self.started += 1
        log = self.logs / f"worker-{self.started:03d}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, str(SCRIPT), self.url], stdout=out, stderr=subprocess.STDOUT
            )
        return proc, log

    def start(self, n: int) -> None:
        self.procs = [self.spawn() for _ in range(n)]

    def kill_and_restart(self, i: int) -> None:
        proc, _ = self.procs[i]
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        self.procs[i] = self.spawn()

    def stop(self) -> list[int | None]:
        """SIGTERM all (graceful shutdown); their exit codes, None for one that hung."""
        deadline = time.monotonic() + 30
        for proc, log in self.procs:
            # One restarted a moment ago handles SIGTERM only once it is serving.
            while proc.poll() is None and "serving as" not in log.read_text(errors="replace"):
                if time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            proc.send_signal(signal.SIGTERM)
        codes: list[int | None] = []
        for proc, _ in self.procs:
            try:
                codes.append(proc.wait(max(deadline - time.monotonic(), 1)))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                codes.append(None)
        return codes

    def tail(self) -> str:
        """The end of the logs that show an error, for a failure message."""
        parts = []
        for log in sorted(self.logs.glob("worker-*.log")):
            text = log.read_text(errors="replace")
            if "Traceback" in text or "ERROR" in text:
                parts.append(f"--- {log.name}\n{text[-3000:]}")
        return "\n".join(parts[-5:])


async def enqueue(store: Store, n: int) -> list[str]:
    async with Runtime(store=store) as api:
        return list(await asyncio.gather(*(api.start(crash.agent, f"job {i}") for i in range(n))))


def unfinished(store: Store) -> int:
    terminal = ("completed", "failed", "cancelled")
    query = sa.select(sa.func.count()).where(runs.c.status.not_in(terminal))
    with store.engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def test_killed_workers_lose_no_run_and_repeat_no_effect(pg_db_url: str, tmp_path: Path) -> None:
    store = Store.open(pg_db_url)
    try:
        crash_and_check(store, pg_db_url, tmp_path)
    finally:
        store.close()


def crash_and_check(store: Store, url: str, logs: Path) -> None:
    seed = int(SEED) if SEED else random.randrange(1 << 30)
    print(f"worker crash test: seed {seed}, {RUNS} runs, {WORKERS} workers")
    rng = random.Random(seed)
    with store.engine.begin() as conn:
        conn.exec_driver_sql(EFFECTS_SCHEMA)
    run_ids = asyncio.run(enqueue(store, RUNS))
    assert len(set(run_ids)) == RUNS

    workers = Workers(url, logs)
    t0 = time.monotonic()
    kills = 0
    workers.start(WORKERS)
    try:
        while unfinished(store):
            assert time.monotonic() - t0 < DEADLINE_S, (
                f"{unfinished(store)} runs unfinished after {DEADLINE_S} s (seed {seed})\n"
                + workers.tail()
            )
            next_kill = time.monotonic() + rng.uniform(0.5, 2.0)
            while unfinished(store) and time.monotonic() < next_kill:
                time.sleep(0.05)
            if unfinished(store):
                workers.kill_and_restart(rng.randrange(WORKERS))
                kills += 1
        elapsed = time.monotonic() - t0
    finally:
        codes = workers.stop()
    assert codes == [0] * WORKERS, f"graceful shutdown failed: {codes}\n{workers.tail()}"

    with store.engine.connect() as conn:
        statuses = Counter(
            status
            for (status,) in conn.execute(sa.select(runs.c.status).where(runs.c.id.in_(run_ids)))
        )
        attempts = Counter(
            n for (n,) in conn.execute(sa.select(runs.c.attempts).where(runs.c.id.in_(run_ids)))
        )
        effects = conn.exec_driver_sql("SELECT run_id, item FROM effects").all()
        executions = conn.exec_driver_sql("SELECT count(*) FROM effect_log").scalar_one()
        finished = Counter(
            run_id
            for (run_id,) in conn.execute(
                sa.select(steps.c.run_id).where(steps.c.kind == "run_finished")
            )
        )
        results = conn.execute(
            sa.select(steps.c.run_id, steps.c.call_id).where(steps.c.kind == "tool_result")
        ).all()
    replays = executions - len(effects)
    resumed = sum(n for claims, n in attempts.items() if claims > 1)
    print(
        f"worker crash test: {RUNS} runs in {elapsed:.1f} s, {kills} kills, "
        f"{workers.started} worker processes, {resumed} runs claimed more than once "
        f"(most claims of one run: {max(attempts)}), {replays} effects re-executed "
        "and deduplicated by their idempotency key"
    )

    assert statuses == {"completed": RUNS}, f"{statuses} (seed {seed})\n{workers.tail()}"
    per_run = Counter((run_id, item) for run_id, item in effects)
    assert max(per_run.values()) == 1, f"an effect recorded twice (seed {seed})"
    assert set(per_run) == {(r, item) for r in run_ids for item in ITEMS}, f"seed {seed}"
    assert finished == dict.fromkeys(run_ids, 1), f"seed {seed}"
    assert len(results) == len(set(results)) == RUNS * (len(ITEMS) + 1), f"seed {seed}"
    assert kills >= 5, f"only {kills} kills: the runs finished too fast to test (seed {seed})"
    assert resumed > 0, f"no run was ever resumed by another worker (seed {seed})"
    assert replays > 0, f"no kill landed between an effect and its result (seed {seed})"
    assert store.verify_audit().ok
