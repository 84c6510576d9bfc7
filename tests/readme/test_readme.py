"""The README's code runs as written: its agent module, `bosun run`, and the service calls
(`bosun keys create`, `bosun serve`, the curl requests) against a real `bosun serve` process.
Only the port is changed, so the test can run beside anything on 8080."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
BIN = Path(sys.executable).parent


def blocks(section: str, language: str) -> list[str]:
    """The fenced `language` blocks under the ``## section`` heading, in order."""
    start = README.index(f"## {section}\n")
    end = README.find("\n## ", start + 1)
    body = README[start : end if end != -1 else None]
    return re.findall(rf"```{language}\n(.*?)```", body, flags=re.S)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def project(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A directory holding the README's `myapp/agents.py`, and an environment to run
    bosun commands in it."""
    (tmp_path / "myapp").mkdir()
    (tmp_path / "myapp" / "__init__.py").write_text("")
    (tmp_path / "myapp" / "agents.py").write_text(blocks("Writing an agent", "python")[0])
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOSUN_")}
    env.update(
        BOSUN_HOME=str(tmp_path / "home"),
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        BOSUN_SERVICE__PORT=str(_free_port()),
    )
    return tmp_path, env


def _bash(script: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_agent_snippet_runs_offline_with_bosun_run(
    project: tuple[Path, dict[str, str]],
) -> None:
    cwd, env = project
    commands = blocks("Writing an agent", "bash")[0]
    first = commands.splitlines()[0]
    assert first.startswith("bosun run myapp.agents:support")
    out = _bash(first + "\nbosun runs list\nbosun audit verify", cwd, {**env, "COLUMNS": "120"})
    assert out.returncode == 0, out.stdout + out.stderr
    assert "completed" in out.stdout
    assert "lookup_customer" in out.stdout  # the step table shows the tool call
    assert "audit chain ok" in out.stdout


def test_the_service_calls_work_against_a_real_bosun_serve(
    project: tuple[Path, dict[str, str]],
) -> None:
    cwd, env = project
    setup, calls = blocks("Running it as a service", "bash")
    lines = [line.split("#")[0].strip() for line in setup.splitlines() if line.strip()]
    keys = [line for line in lines if line.startswith("bosun keys create")]
    (serve_line,) = [line for line in lines if line.startswith("bosun serve")]
    created = [_bash(line, cwd, env) for line in keys]
    for out in created:
        assert out.returncode == 0, out.stdout + out.stderr
    ann_key = created[0].stdout.strip().splitlines()[-1]
    assert ann_key.startswith("bsn_")
    port = env["BOSUN_SERVICE__PORT"]
    server = subprocess.Popen(
        ["bash", "-c", f"exec {serve_line}"],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, server.communicate()[0]
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "bosun serve did not start"
            time.sleep(0.2)
        script = calls.replace("KEY=bsn_...", f"KEY={ann_key}").replace(":8080", f":{port}")
        out = _bash(script, cwd, env)
    finally:
        server.terminate()
        printed = server.communicate(timeout=60)[0]
    assert out.returncode == 0, out.stdout + out.stderr
    # The events stream ends with the run as GET /v1/runs/{id} shows it: completed, answered.
    assert "event: run" in out.stdout, out.stdout
    final = out.stdout.rsplit("event: run", 1)[1]
    assert '"status":"completed"' in final.replace(" ", ""), final
    assert "has shipped" in final
    # serve said what submitters' runs may use, before the first run did.
    assert "submitter runs of support may use: crm:read, payments:refund" in printed, printed
