"""A mistake or an unreachable database is one line from the real command, not a traceback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys


def bosun(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "60"}  # a narrow terminal must not wrap the line either
    return subprocess.run(
        [sys.executable, "-m", "bosun.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def test_an_unreachable_database_is_one_line_naming_host_and_port() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    done = bosun("runs", "list", "--db", f"postgresql://127.0.0.1:{port}/x")

    output = (done.stdout + done.stderr).strip()
    assert done.returncode != 0
    assert "Traceback" not in output
    assert len(output.splitlines()) == 1, output
    assert f"127.0.0.1:{port}" in output
    assert "connection refused" in output.lower()


def test_a_database_url_bosun_cannot_use_is_one_line() -> None:
    done = bosun("runs", "list", "--db", "mysqlx://db/x")

    output = (done.stdout + done.stderr).strip()
    assert done.returncode != 0
    assert "Traceback" not in output
    assert len(output.splitlines()) == 1, output
    assert "mysqlx" in output
