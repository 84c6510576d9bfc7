"""Crash safety with real processes: SIGKILL at random journal points and inside tools."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

from bosun.data.store import Store

SCRIPT = Path(__file__).with_name("crash_agent.py")
RUNS = int(os.environ.get("BOSUN_CRASH_RUNS", "20"))


def spawn(
    db_url: str, effects: Path, *args: str, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), db_url, str(effects), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env},
    )


def crash_env(rng: random.Random) -> dict[str, str]:
    # A run makes ~17 journal writes and 5 side-effecting tool calls.
    if rng.random() < 0.5:
        return {
            "CRASH_AT_WRITE": str(rng.randint(1, 17)),
            "CRASH_WHEN": rng.choice(["before", "after"]),
        }
    return {"CRASH_IN_TOOL": str(rng.randint(1, 5))}


def test_killed_runs_resume_and_do_each_side_effect_once(db_url: str, tmp_path: Path) -> None:
    Store.open(db_url).close()  # migrate once, outside the crashing processes
    effects = tmp_path / "effects.db"
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    kills = 0
    run_ids: list[str] = []
    for _ in range(RUNS):
        first = spawn(db_url, effects, "start", env=crash_env(rng))
        lines = first.stdout.split()
        if first.returncode == -signal.SIGKILL:
            kills += 1
        else:
            assert first.returncode == 0, first.stderr
        if not lines:  # killed before the run row was committed: nothing to resume
            continue
        run_id = lines[0]
        run_ids.append(run_id)
        status = lines[1] if len(lines) > 1 else None
        for attempt in range(6):
            if status == "completed":
                break
            env = crash_env(rng) if attempt < 2 else {}
            again = spawn(db_url, effects, "resume", run_id, env=env)
            if again.returncode == -signal.SIGKILL:
                kills += 1
                status = None
                continue
            assert again.returncode == 0, again.stderr
            status = again.stdout.split()[-1]
        assert status == "completed", f"run {run_id} ended {status} (seed {seed})"
    assert kills >= RUNS // 2, f"only {kills} kills happened (seed {seed})"
    assert len(run_ids) >= RUNS // 2

    conn = sqlite3.connect(effects)
    for run_id in run_ids:
        recorded = sorted(
            i for (i,) in conn.execute("SELECT item FROM effects WHERE run_id=?", (run_id,))
        )
        charged = sorted(
            i for (i,) in conn.execute("SELECT item FROM charges WHERE run_id=?", (run_id,))
        )
        assert recorded == ["a", "c", "d"], f"run {run_id}: {recorded} (seed {seed})"
        assert charged == ["b", "e"], f"run {run_id}: charged {charged} (seed {seed})"
    conn.close()

    store = Store.open(db_url)
    try:
        for run_id in run_ids:
            results = [s.call_id for s in store.journal(run_id) if s.kind == "tool_result"]
            assert len(results) == len(set(results)) == 6, (run_id, results)
            assert store.get_run(run_id).status == "completed"
        assert store.verify_audit().ok
    finally:
        store.close()
