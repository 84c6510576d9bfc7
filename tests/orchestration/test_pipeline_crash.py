"""Durable pipelines: worker processes on PostgreSQL SIGKILLed mid-pipeline and restarted.

Every pipeline completes; every effect (function stages' and agent tools') is recorded once
per pipeline although some executions were replayed; no function stage started after it was
journaled as finished (finished stages are never run again); each agent stage has exactly
one run (an interrupted stage run was resumed, not started again). ``BOSUN_CRASH_SEED``
replays a kill schedule.
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

import pipeline_crash_worker as crash
import sqlalchemy as sa

from bosun.data.schema import pipeline_steps, pipelines, runs
from bosun.data.store import Store
from bosun.orchestration import Pipelines
from bosun.runtime import Runtime

SCRIPT = Path(crash.__file__)
SEED = os.environ.get("BOSUN_CRASH_SEED")
PIPELINES = 8
WORKERS = 2
DEADLINE_S = 90.0


def spawn(url: str, logs: Path, n: int) -> tuple[subprocess.Popen[bytes], Path]:
    log = logs / f"worker-{n:03d}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, str(SCRIPT), url], stdout=out, stderr=out)
    return proc, log


def unfinished(store: Store) -> int:
    query = sa.select(sa.func.count()).where(pipelines.c.status != "completed")
    with store.engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def holds(store: Store, pid: int) -> bool:
    query = sa.select(sa.func.count()).where(
        pipelines.c.lease_owner == f"w{pid}", pipelines.c.status != "completed"
    )
    with store.engine.connect() as conn:
        return bool(conn.execute(query).scalar_one())


async def enqueue(store: Store) -> list[str]:
    async with Runtime(store=store) as runtime:
        runner = Pipelines(runtime, [crash.pipeline])
        return [
            await runner.start(crash.pipeline, crash.Job(ref=f"job {i}")) for i in range(PIPELINES)
        ]


def test_killed_workers_resume_pipelines_without_repeating_effects(
    pg_db_url: str, tmp_path: Path
) -> None:
    seed = int(SEED) if SEED else random.randrange(1 << 30)
    rng = random.Random(seed)
    store = Store.open(pg_db_url)
    try:
        with store.engine.begin() as conn:
            conn.exec_driver_sql(crash.EFFECTS_SCHEMA)
        ids = asyncio.run(enqueue(store))
        started = 0
        procs = []
        for _ in range(WORKERS):
            started += 1
            procs.append(spawn(pg_db_url, tmp_path, started))
        kills = 0
        t0 = time.monotonic()
        try:
            while unfinished(store):
                assert time.monotonic() - t0 < DEADLINE_S, f"unfinished (seed {seed})"
                time.sleep(rng.uniform(0.3, 0.9))
                # Kill a worker only while it holds a pipeline: mid-pipeline, not at startup.
                busy = [i for i, (proc, _) in enumerate(procs) if holds(store, proc.pid)]
                if busy and kills < 3:
                    i = rng.choice(busy)
                    procs[i][0].send_signal(signal.SIGKILL)
                    procs[i][0].wait(10)
                    started += 1
                    procs[i] = spawn(pg_db_url, tmp_path, started)
                    kills += 1
        finally:
            elapsed = time.monotonic() - t0
            for proc, log in procs:
                # One restarted a moment ago handles SIGTERM only once it is serving.
                deadline = time.monotonic() + 30
                while proc.poll() is None and "serving as" not in log.read_text(errors="replace"):
                    if time.monotonic() > deadline:
                        break
                    time.sleep(0.05)
                proc.send_signal(signal.SIGTERM)
            codes = [proc.wait(30) for proc, _ in procs]
        logs = "\n".join(p.read_text(errors="replace")[-2000:] for p in tmp_path.glob("*.log"))
        assert codes == [0] * WORKERS, logs

        with store.engine.connect() as conn:
            effects = conn.exec_driver_sql("SELECT pipeline_id, name FROM effects").all()
            executions = conn.exec_driver_sql(
                "SELECT pipeline_id, name, started_at FROM effect_log"
            ).all()
            finished = {
                (row.pipeline_id, row.stage): row.created_at
                for row in conn.execute(
                    sa.select(pipeline_steps).where(pipeline_steps.c.kind == "stage_finished")
                )
            }
            stage_runs = Counter(
                (row.parent_id, row.agent, row.status)
                for row in conn.execute(sa.select(runs.c.parent_id, runs.c.agent, runs.c.status))
            )
            attempts = [
                n for (n,) in conn.execute(sa.select(pipelines.c.attempts)) if n is not None
            ]
        per_pipeline = Counter(effects)
        assert set(per_pipeline) == {(p, name) for p in ids for name in crash.EFFECTS}, seed
        assert max(per_pipeline.values()) == 1, f"an effect recorded twice (seed {seed})"
        late = [
            (p, name)
            for p, name, t in executions
            if name in ("reserve", "ship") and t > finished[(p, name)]
        ]
        assert late == [], f"a finished stage ran again (seed {seed})"
        assert stage_runs == {
            **{(p, "pack", "completed"): 1 for p in ids},
            **{(p, "bill", "completed"): 1 for p in ids},
        }, f"an agent stage was started twice (seed {seed})"
        replays = len(executions) - len(effects)
        resumed = sum(1 for n in attempts if n > 1)
        print(
            f"pipeline crash test: seed {seed}, {elapsed:.1f} s, {kills} kills, {resumed} "
            f"pipelines resumed by another worker, {replays} effects replayed and deduplicated"
        )
        assert kills >= 2, f"the pipelines finished before the kills (seed {seed})"
        assert resumed > 0, f"no pipeline was resumed by another worker (seed {seed})"
        assert store.verify_audit().ok
    finally:
        store.close()
