"""What the Temporal tests share (imported by name, as tests/service imports `api_harness`):
settings with short leases, an engine served in the test's event loop, a private dev server
that can be killed and restarted, and waiting on runs."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Collection
from contextlib import asynccontextmanager
from pathlib import Path

from bosun.config import Settings, load_settings
from bosun.data.store import Store
from bosun.runtime import Runtime
from bosun.service.temporal import TemporalEngine, connect

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
DEV = ROOT / "scripts" / "temporal-dev.sh"
TERMINAL = frozenset({"completed", "failed", "cancelled"})
DEADLINE_S = 60.0
"""Fail rather than hang; each wait here takes a few seconds when things work."""


def engine_settings(db_url: str, address: str, **service: object) -> Settings:
    """Settings for one test: its own task queue on the shared server, short leases (a dead
    worker's step moves on within seconds), quick polls, no sweeps."""
    values = {
        "lease_s": 2.0,
        "poll_s": 0.05,
        "sweep_s": 3600.0,
        "shutdown_grace_s": 1.0,
        **service,
    }
    return load_settings(
        database_url=db_url,
        service=values,
        temporal={"address": address, "task_queue": f"test-{uuid.uuid4().hex[:12]}"},
    )


@asynccontextmanager
async def serving(runtime: Runtime, settings: Settings) -> AsyncIterator[TemporalEngine]:
    """A `TemporalEngine` (Temporal worker + dispatcher) serving in this event loop."""
    client = await connect(settings.temporal)
    engine = TemporalEngine(runtime, client, settings=settings)
    stop = asyncio.Event()
    task = asyncio.create_task(engine.serve(stop))
    try:
        yield engine
    finally:
        stop.set()
        await task


async def wait_for(
    store: Store,
    run_ids: Collection[str],
    statuses: Collection[str] = TERMINAL,
    *,
    what: str = "",
    deadline_s: float = DEADLINE_S,
) -> dict[str, str]:
    """Poll until every run is in one of `statuses`; their statuses."""
    t0 = time.monotonic()
    while True:
        now = await asyncio.to_thread(lambda: {i: store.get_run(i).status for i in run_ids})
        if all(s in statuses for s in now.values()):
            return now
        assert time.monotonic() - t0 < deadline_s, f"waiting for {what or statuses}: {now}"
        await asyncio.sleep(0.1)


async def eventually(check: Callable[[], bool], what: str, deadline_s: float = DEADLINE_S) -> None:
    """Poll `check` until it holds."""
    t0 = time.monotonic()
    while not check():
        assert time.monotonic() - t0 < deadline_s, f"never happened: {what}"
        await asyncio.sleep(0.1)


class DevServer:
    """A Temporal dev server of this test alone (scripts/temporal-dev.sh), so it can be
    killed and brought back on the same port and state file."""

    def __init__(self) -> None:
        out = self._script("start", capture=True)
        env = dict(part.split("=", 1) for part in out.split()[1:] if "=" in part)
        self.dir = env["TEMPORAL_DEV_DIR"]
        self.address = env["BOSUN_TEST_TEMPORAL_ADDRESS"]

    def kill(self) -> None:
        """An outage: SIGKILL; the state file stays."""
        self._script("kill", self.dir)

    def restart(self) -> None:
        """Back on the same port, with the state it had."""
        self._script("restart", self.dir)

    def stop(self) -> None:
        self._script("stop", self.dir)

    @staticmethod
    def _script(*args: str, capture: bool = False) -> str:
        env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
        done = subprocess.run(
            ["bash", str(DEV), *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout if capture else ""
