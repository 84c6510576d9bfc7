"""Pipelines from the command line, as real processes: `bosun pipeline run` and `show` on
the SQLite home, `bosun serve --pipeline` (the pipeline worker embedded) and `bosun worker
--pipeline` (beside the run worker) driving pipelines queued elsewhere."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from served_pipelines import Order, build
from test_commands import HERE, bosun, free_port

from bosun.data.pipelines import PipelineRows
from bosun.data.store import Store
from bosun.errors import ConfigError
from bosun.orchestration import Pipelines, load_pipeline, load_pipelines
from bosun.runtime import Runtime
from servers import wait_ready


def test_pipeline_run_and_show_on_the_sqlite_home(tmp_path: Path) -> None:
    home = {"BOSUN_HOME": str(tmp_path / "home"), "COLUMNS": "80"}
    (tmp_path / "order.json").write_text('{"order_id": "#W3", "quantity": 4}')
    ran = bosun(
        "pipeline",
        "run",
        "served_pipelines:orders",
        "--input",
        f"@{tmp_path / 'order.json'}",
        env=home,
    )
    assert ran.returncode == 0, ran.stderr
    lines = ran.stdout.splitlines()
    assert all(len(line) <= 80 for line in lines), ran.stdout
    assert "orders: completed" in lines[0]
    pipeline_id = lines[0].split()[1]
    for stage in ("validate", "check", "ship"):
        assert any(line.split()[:1] == [stage] and "completed" in line for line in lines), stage
    assert '"label": "#W3 x4"' in ran.stdout

    shown = bosun("pipeline", "show", pipeline_id, "--json", env=home)
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)
    assert data["status"] == "completed" and data["output"]["label"] == "#W3 x4"
    assert [s["name"] for s in data["stages"]] == ["validate", "check", "ship"]

    # The builder form, and an input that escalates: exit 2, the reason printed.
    failed = bosun(
        "pipeline",
        "run",
        "served_pipelines:build",
        "-i",
        '{"order_id": "W3", "quantity": 1}',
        env=home,
    )
    assert failed.returncode == 2, failed.stdout + failed.stderr
    assert "escalated" in failed.stdout and "ids start with '#'" in failed.stdout

    bad = bosun("pipeline", "run", "served_pipelines:orders", "-i", '{"order_id": "#1"}', env=home)
    assert bad.returncode == 2 and "quantity" in bad.stderr  # a usage error: nothing stored


def test_pipelines_load_by_import_path_as_a_pipeline_or_a_builder() -> None:
    import served_pipelines

    assert load_pipeline("served_pipelines:orders") is served_pipelines.orders
    built = load_pipeline("served_pipelines:build")
    assert built.name == "orders" and built is not served_pipelines.orders
    with pytest.raises(ConfigError, match="is a class, not a bosun Pipeline"):
        load_pipeline("served_pipelines:Order")
    with pytest.raises(ConfigError, match=r"needs arguments \(checked\)"):
        load_pipeline("served_pipelines:ship")
    with pytest.raises(ConfigError, match="has no attribute 'nothing'"):
        load_pipeline("served_pipelines:nothing")
    with pytest.raises(ConfigError, match="two pipelines are named 'orders'"):
        load_pipelines(["served_pipelines:orders", "served_pipelines:build"])


def test_serve_with_a_pipeline_drives_it_in_the_same_process(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'serve.db'}"
    created = bosun("keys", "create", "ann", "--tenant", "acme", "--role", "submitter", "--db", db)
    key = created.stdout.strip().splitlines()[-1]
    port = free_port()
    command = ["serve", "--pipeline", "served_pipelines:orders", "--port", str(port), "--db", db]
    env = {
        **os.environ,
        "BOSUN_SERVICE__POLL_S": "0.05",
        "BOSUN_SERVICE__MASK_PII": "false",
        "BOSUN_SERVICE__SCREEN_INJECTIONS": "false",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "bosun.cli.main", *command],
        cwd=HERE,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    auth = {"Authorization": f"Bearer {key}"}
    try:
        deadline = time.monotonic() + 30
        wait_ready(url, server)
        order = {"input": {"order_id": "#S1", "quantity": 1}}
        started = httpx.post(f"{url}/v1/pipelines/orders/runs", json=order, headers=auth)
        assert started.status_code == 202, started.text
        while (
            got := httpx.get(f"{url}/v1/pipelines/runs/{started.json()['id']}", headers=auth).json()
        )["status"] != "completed":
            assert got["status"] in ("queued", "running") and time.monotonic() < deadline, got
            time.sleep(0.05)
    finally:
        server.send_signal(signal.SIGTERM)
        out, err = server.communicate(timeout=30)
    assert server.returncode in (0, -signal.SIGTERM), err
    assert "Traceback" not in err, err
    assert "pipelines: orders" in out


def test_worker_process_drives_queued_pipelines(db_url: str) -> None:
    pipeline = build()

    async def enqueue() -> list[str]:
        async with Runtime(store=db_url) as runtime:
            pipelines = Pipelines(runtime, [pipeline])
            return [
                await pipelines.start(pipeline, Order(order_id=f"#Q{i}", quantity=1))
                for i in range(3)
            ]

    pipeline_ids = asyncio.run(enqueue())
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bosun.cli.main",
            "worker",
            "--pipeline",
            "served_pipelines:build",
            "--db",
            db_url,
        ],
        cwd=HERE,
        env={**os.environ, "BOSUN_SERVICE__POLL_S": "0.05", "BOSUN_SERVICE__MASK_PII": "false"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    store = Store.open(db_url)
    rows = PipelineRows(store)
    try:
        deadline = time.monotonic() + 30
        while {rows.get(p).status for p in pipeline_ids} != {"completed"}:
            assert worker.poll() is None and time.monotonic() < deadline, worker.communicate()
            time.sleep(0.1)
    finally:
        worker.send_signal(signal.SIGTERM)
        out, err = worker.communicate(timeout=30)
        store.close()
    assert worker.returncode == 0, err
    assert "pipelines: orders" in out and "0 runs and 3 pipelines" in out
