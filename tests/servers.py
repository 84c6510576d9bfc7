"""Real local servers for tests: an ASGI app under uvicorn on a free port, and waiting for a
`bosun serve` process to answer."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

__all__ = ["serve", "wait_ready"]


@contextmanager
def serve(app: FastAPI, **config: Any) -> Iterator[str]:
    """Run `app` under uvicorn on 127.0.0.1:<free port>; yields its base URL."""
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", **config)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def wait_ready(url: str, process: subprocess.Popen[str], *, timeout: float = 30) -> None:
    """Wait until the server `process` started answers ``/readyz`` at `url` with 200; fail
    with its output if it exits or the time runs out."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{url}/readyz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.1)
