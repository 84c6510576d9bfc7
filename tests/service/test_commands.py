"""`bosun keys`, `bosun serve` and `bosun worker` as real processes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from bosun.data.store import Store
from bosun.runtime import Runtime
from servers import wait_ready

HERE = Path(__file__).parent


def bosun(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bosun.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=HERE,
        env={**os.environ, **(env or {})},
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_keys_create_list_revoke(db_url: str) -> None:
    created = bosun(
        "keys", "create", "ann", "--tenant", "acme", "--role", "submitter", "--db", db_url
    )
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip().splitlines()[-1]
    assert key.startswith("bsn_")
    listed = bosun("keys", "list", "--db", db_url)
    assert "ann" in listed.stdout and "active" in listed.stdout and key not in listed.stdout
    key_id = key.split("_")[1]
    assert bosun("keys", "revoke", key_id, "--db", db_url).returncode == 0
    assert "revoked" in bosun("keys", "list", "--db", db_url).stdout
    assert bosun("keys", "revoke", "0" * 16, "--db", db_url).returncode == 1
    bad_role = bosun("keys", "create", "bo", "--tenant", "acme", "--role", "wizard", "--db", db_url)
    assert bad_role.returncode != 0 and "wizard" in bad_role.stderr


def test_serve_runs_submitted_runs_and_stops_on_sigterm(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'serve.db'}"
    env = {"BOSUN_SERVICE__TOOL_SCOPES": '["tools:*"]', "BOSUN_SERVICE__POLL_S": "0.05"}
    created = bosun("keys", "create", "ann", "--tenant", "acme", "--role", "submitter", "--db", db)
    key = created.stdout.strip().splitlines()[-1]
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bosun.cli.main",
            "serve",
            "--agent",
            "served_agents:helper",
            "--port",
            str(port),
            "--db",
            db,
        ],
        cwd=HERE,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        wait_ready(url, server)
        auth = {"Authorization": f"Bearer {key}"}
        run = httpx.post(f"{url}/v1/runs", json={"agent": "helper", "input": "hi"}, headers=auth)
        assert run.status_code == 202, run.text
        while (status := httpx.get(f"{url}/v1/runs/{run.json()['id']}", headers=auth).json())[
            "status"
        ] != "completed":
            assert time.monotonic() < deadline + 30, status
            time.sleep(0.05)
    finally:
        server.send_signal(signal.SIGTERM)
        out, err = server.communicate(timeout=30)
    # uvicorn shuts down gracefully, then re-raises the signal so its parent sees it.
    assert server.returncode in (0, -signal.SIGTERM), err
    assert "Traceback" not in err, err
    assert "bosun API on" in out


def test_worker_process_drives_queued_runs_and_exits_on_sigterm(db_url: str) -> None:
    import asyncio

    from api_harness import agents

    helper = agents()[0]

    async def enqueue() -> list[str]:
        async with Runtime(store=db_url, agents=[helper]) as rt:
            return [await rt.start(helper, f"question {i}") for i in range(5)]

    run_ids = asyncio.run(enqueue())
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bosun.cli.main",
            "worker",
            "--agent",
            "served_agents:helper",
            "--db",
            db_url,
        ],
        cwd=HERE,
        env={**os.environ, "BOSUN_SERVICE__POLL_S": "0.05"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    store = Store.open(db_url)
    try:
        deadline = time.monotonic() + 30
        while {store.get_run(r).status for r in run_ids} != {"completed"}:
            assert worker.poll() is None and time.monotonic() < deadline, worker.communicate()
            time.sleep(0.1)
    finally:
        worker.send_signal(signal.SIGTERM)
        out, err = worker.communicate(timeout=30)
        store.close()
    assert worker.returncode == 0, err
    assert "stopped after 5 runs" in out
