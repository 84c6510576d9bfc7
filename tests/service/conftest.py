"""Fixtures for the service tests: a real API (uvicorn) over each backend."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from api_harness import Api, make_app

from bosun.config import ServiceSettings
from servers import serve

FAST = ServiceSettings(lease_s=5, poll_s=0.05, sweep_s=0.1, max_queue=50)


@pytest.fixture
def api(db_url: str) -> Iterator[Api]:
    """The API with an embedded worker, on SQLite and PostgreSQL."""
    app, store, keys = make_app(db_url, FAST)
    with serve(app) as url:
        yield Api(url, store, keys)
    store.close()
