"""The Temporal engine when things break: a worker process SIGKILLed between a side effect and
its journaled result, Temporal unreachable when a worker starts, and Temporal going away in
the middle of runs and coming back."""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import socket
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import temporal_agents as agents
from temporal_harness import HERE, ROOT, DevServer, engine_settings, eventually, serving, wait_for

from bosun.data.store import Store
from bosun.runtime import Runtime


def _worker(
    url: str, address: str, task_queue: str, home: Path, log: Path, **env: str
) -> subprocess.Popen[bytes]:
    """``bosun worker --engine temporal`` as an operator starts it, serving agents.py."""
    environ = {
        **{k: v for k, v in os.environ.items() if not k.startswith("BOSUN_")},
        "PYTHONPATH": str(HERE),
        "BOSUN_HOME": str(home),
        "BOSUN_TEMPORAL__TASK_QUEUE": task_queue,
        "BOSUN_SERVICE__LEASE_S": "2",
        "BOSUN_SERVICE__POLL_S": "0.1",
        "BOSUN_SERVICE__SHUTDOWN_GRACE_S": "1",
        "BOSUN_SERVICE__MASK_PII": "false",
        **env,
    }
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "bosun.cli.main", "worker", "--engine", "temporal"]
            + ["--temporal-address", address, "-a", "temporal_agents:effects", "--db", url],
            cwd=ROOT,
            env=environ,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def _check_effects(store: Store, run_ids: list[str]) -> Counter[str]:
    """Every run completed, each effect once, one journaled result per call; the executions
    of each idempotency key."""
    assert {store.get_run(r).status for r in run_ids} == {"completed"}
    keys = Counter(key for key, _ in agents.executions())
    # Each call kept its key across processes: one effect per (run, item), none under a
    # second key.
    assert agents.effects_done() == {_digest(k) for k in keys}
    assert len(keys) == len(run_ids) * len(agents.ITEMS)
    for run_id in run_ids:
        journal = store.journal(run_id)
        results = [s.call_id for s in journal if s.kind == "tool_result"]
        assert len(results) == len(set(results)) == len(agents.ITEMS) + 1  # + the lookup
        assert [s.kind for s in journal].count("run_finished") == 1
    assert store.verify_audit().ok
    return keys


async def test_a_worker_killed_mid_step_resumes_on_another_without_repeating_effects(
    pg_db_url: str, temporal_address: str, effects_dir: Path, tmp_path: Path
) -> None:
    settings = engine_settings(pg_db_url, temporal_address)
    store = Store.open(pg_db_url)
    hung = tmp_path / "hung"
    a = None
    try:
        async with Runtime(store=store, settings=settings, agents=[agents.effects]) as rt:
            run_ids = [await rt.start(agents.effects, f"job {i}") for i in range(3)]
            a = _worker(
                pg_db_url,
                temporal_address,
                settings.temporal.task_queue,
                tmp_path,
                tmp_path / "a.log",
                TEMPORAL_TEST_HANG=str(hung),
            )
            # Worker A (`bosun worker --engine temporal`, as an operator starts it) hangs in
            # `record` right after its first effect: kill it there.
            await eventually(hung.exists, "an effect in worker A", deadline_s=60)
            a.send_signal(signal.SIGKILL)
            a.wait(10)
            # Worker B serves in this process: it starts at once, where a second process
            # would spend seconds of the test's budget importing.
            async with serving(rt, settings):
                await wait_for(store, run_ids, what=(tmp_path / "a.log").read_text())
        keys = _check_effects(store, run_ids)
        # The interrupted call ran again, on B, with the same key, and was deduplicated.
        interrupted = hung.read_text()
        assert keys[interrupted] == 2
        pids = [
            line.split()[2]
            for line in (effects_dir / "executions.log").read_text().splitlines()
            if line.startswith(interrupted)
        ]
        assert pids == [str(a.pid), str(os.getpid())]
    finally:
        if a is not None and a.poll() is None:
            a.kill()
            a.wait(10)
        store.close()


def test_an_unreachable_temporal_at_start_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    done = subprocess.run(
        [sys.executable, "-m", "bosun.cli.main", "worker", "--engine", "temporal"]
        + ["--temporal-address", f"127.0.0.1:{port}", "-a", "temporal_agents:effects"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(HERE), "BOSUN_HOME": str(tmp_path), "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    assert f"cannot reach Temporal at 127.0.0.1:{port} (connection refused)" in out
    assert "Traceback" not in out


async def test_runs_resume_when_temporal_comes_back(
    tmp_path: Path, temporal_dev: DevServer, effects_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The outage is Temporal's, not the store's: one backend is enough (the budget is tight).
    db_url = f"sqlite:///{tmp_path / 'store.db'}"
    monkeypatch.setenv("TEMPORAL_TEST_DELAY", "0.3")  # runs are mid-way when it goes
    settings = engine_settings(db_url, temporal_dev.address)
    store = Store.open(db_url)
    try:
        async with (
            Runtime(store=store, settings=settings, agents=[agents.effects]) as rt,
            serving(rt, settings) as engine,
        ):
            before = [await rt.start(agents.effects, f"before {i}") for i in range(3)]
            await eventually(lambda: len(agents.executions()) >= 2, "runs under way")
            await asyncio.to_thread(temporal_dev.kill)
            # Accepted while Temporal is away: stored, queued, nothing lost.
            during = [await rt.start(agents.effects, f"during {i}") for i in range(2)]
            await asyncio.sleep(1.0)
            # (queued, or running while the dispatcher keeps retrying its signal)
            assert all(len(store.journal(r)) == 1 for r in during)
            await asyncio.to_thread(temporal_dev.restart)
            await wait_for(store, before + during, what="runs after Temporal came back")
            assert engine.dispatcher.dispatched >= len(before) + len(during)
        _check_effects(store, before + during)
    finally:
        store.close()
