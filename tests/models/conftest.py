"""The fake provider server (one subprocess for the session) and helpers to script it."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

SERVER = Path(__file__).with_name("fake_provider.py")


class FakeProvider:
    """Client of the control endpoints of `fake_provider.py`."""

    def __init__(self, url: str) -> None:
        self.url = url
        """Root URL, e.g. ``http://127.0.0.1:40123``."""

    def script(self, *replies: dict[str, Any]) -> None:
        """Queue canned replies, answered in order to the next provider requests."""
        self._call("POST", "/_script", {"replies": list(replies)})

    def requests(self) -> list[dict[str, Any]]:
        """Every provider request received since the last reset."""
        requests: list[dict[str, Any]] = self._call("GET", "/_requests")["requests"]
        return requests

    def only_request(self) -> dict[str, Any]:
        """The single provider request of a test."""
        requests = self.requests()
        assert len(requests) == 1, requests
        return requests[0]

    def pending(self) -> int:
        """How many scripted replies were not used."""
        pending: int = self._call("GET", "/_requests")["pending"]
        return pending

    def reset(self) -> None:
        self._call("POST", "/_reset", {})

    def _call(self, method: str, path: str, payload: Any = None) -> Any:
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.loads(response.read())


@pytest.fixture(scope="session")
def fake_provider_server() -> Iterator[FakeProvider]:
    process = subprocess.Popen(
        [sys.executable, str(SERVER), "--port", "0"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline())
        yield FakeProvider(f"http://127.0.0.1:{port}")
    finally:
        process.terminate()
        process.wait(timeout=5)
        if process.stdout is not None:
            process.stdout.close()


@pytest.fixture
def fake(fake_provider_server: FakeProvider) -> Iterator[FakeProvider]:
    """The fake provider, emptied for this test; every scripted reply must have been used."""
    fake_provider_server.reset()
    yield fake_provider_server
    assert fake_provider_server.pending() == 0, "the test scripted replies it never used"


@pytest.fixture
def refused_url() -> str:
    """A URL where nothing listens: the port was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
