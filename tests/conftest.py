"""Shared fixtures: an isolated BOSUN_HOME for every test, and a store on each real backend.

PostgreSQL runs when BOSUN_TEST_PG_URL is set (`.ci/run` starts a throwaway cluster); under
CI its absence is an error, so the PostgreSQL half can never silently disappear.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from bosun.data.store import Store

PG_URL = os.environ.get("BOSUN_TEST_PG_URL")
BACKENDS = ["sqlite", "postgresql"] if PG_URL else ["sqlite"]

if os.environ.get("CI") and not PG_URL:
    raise RuntimeError("CI is set but BOSUN_TEST_PG_URL is not: start PostgreSQL (see .ci/run)")


@pytest.fixture(autouse=True)
def bosun_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own data directory and no ambient bosun settings."""
    home = tmp_path / "bosun-home"
    for name in list(os.environ):
        if name.startswith("BOSUN_") and name != "BOSUN_TEST_PG_URL":
            monkeypatch.delenv(name)
    monkeypatch.setenv("BOSUN_HOME", str(home))
    return home


def _fresh_db(backend: str, tmp_path: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    assert PG_URL is not None
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_URL)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in PG_URL else "?"
    try:
        yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database URL on each backend."""
    yield from _fresh_db(request.param, tmp_path)


@pytest.fixture(params=[b for b in BACKENDS if b == "postgresql"])
def pg_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh PostgreSQL database, for behaviour only a server has (dropped connections,
    concurrent migrations). Without BOSUN_TEST_PG_URL such tests are not collected as runs."""
    yield from _fresh_db(request.param, tmp_path)


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    """A migrated store on each backend."""
    s = Store.open(db_url)
    yield s
    s.close()
