"""Fixtures for the knowledge base: a third backend, PostgreSQL with pgvector, and one MiniLM
embedder and chunker shared by the session (loading the model takes about a second).

Here `db_url` runs each store-backed test on SQLite (FTS5 + sqlite-vec), on the test
PostgreSQL at BOSUN_TEST_PG_URL (no pgvector there: the vectors are scanned in Python, the
fallback) and on a PostgreSQL with pgvector started from the PyPI package pgserver (a dev
dependency, so it always runs: a failure to start it fails the tests).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from pgvector_server import pgvector_server, schema_url  # scripts/, on the path (../conftest.py)

from bosun.knowledge.chunking import Chunker
from bosun.knowledge.embeddings import MiniLmEmbedder

PG_URL = os.environ.get("BOSUN_TEST_PG_URL") or None
BACKENDS = ["sqlite", "postgresql", "pgvector"] if PG_URL else ["sqlite", "pgvector"]


@pytest.fixture(scope="session")
def pgvector_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A PostgreSQL 16 with pgvector for the session."""
    with pgvector_server(tmp_path_factory.mktemp("pgvector") / "data") as url:
        yield url


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database on SQLite, PostgreSQL (when configured) and pgvector."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    if request.param == "postgresql":
        assert PG_URL is not None
        base = PG_URL
    else:
        base = request.getfixturevalue("pgvector_server_url")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(base)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    try:
        yield schema_url(base, schema, public=request.param == "pgvector")
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()


@pytest.fixture(scope="session")
def embedder() -> MiniLmEmbedder:
    """The default embedder, loaded once."""
    return MiniLmEmbedder()


@pytest.fixture(scope="session")
def chunker() -> Chunker:
    """The default chunker (its tokenizer loaded once)."""
    return Chunker()


@pytest.fixture
def backend(request: pytest.FixtureRequest, db_url: str) -> str:
    """Which of `db_url`'s backends this test runs on: sqlite, postgresql or pgvector."""
    name: str = request.node.callspec.params["db_url"]
    return name
