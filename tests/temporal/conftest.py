"""Fixtures of the Temporal tests; what they share otherwise is in `temporal_harness`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from temporal_harness import DevServer


@pytest.fixture
def effects_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where the test agents' tools leave their effects (see temporal_agents.py)."""
    path = tmp_path / "effects"
    path.mkdir()
    monkeypatch.setenv("TEMPORAL_TEST_EFFECTS", str(path))
    return path


@pytest.fixture
def temporal_dev() -> Iterator[DevServer]:
    """A private dev server (needs the Temporal part of the suite, like `temporal_address`)."""
    server = DevServer()
    try:
        yield server
    finally:
        server.stop()
