"""A throwaway PostgreSQL with pgvector, for the tests and bench/ (not for bosun itself).

The test PostgreSQL at BOSUN_TEST_PG_URL is the machine's own server, which has no pgvector,
so it exercises the fallback (vectors scanned in Python). The PyPI package ``pgserver`` ships
PostgreSQL 16 binaries with pgvector; this starts one in a directory, creates the extension in
``public``, and hands back a SQLAlchemy URL over its Unix socket. Run as root, pgserver runs
the server as a system user ``pgserver`` that it creates.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["pgvector_server", "schema_url"]


@contextmanager
def pgvector_server(directory: Path) -> Iterator[str]:
    """Start a server with its data in `directory`; yield its ``postgresql+psycopg`` URL;
    stop it on exit."""
    # platformdirs warns at import when XDG_RUNTIME_DIR is unset (CI, containers); pgserver
    # keeps only a lock file there.
    os.environ.setdefault("XDG_RUNTIME_DIR", tempfile.mkdtemp(prefix="xdg-"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver
    from sqlalchemy.engine import make_url

    server = pgserver.get_server(directory, cleanup_mode="stop")
    try:
        server.psql("CREATE EXTENSION IF NOT EXISTS vector SCHEMA public;")
        url = make_url(server.get_uri()).set(drivername="postgresql+psycopg")
        yield url.render_as_string(hide_password=False)
    finally:
        server.cleanup()


def schema_url(url: str, schema: str, *, public: bool = False) -> str:
    """`url` with `schema` as its search path, followed by ``public`` when asked (on this
    server the vector type lives there). Never add ``public`` on a server whose public schema
    holds bosun's tables: the migrations would read its ``alembic_version``."""
    sep = "&" if "?" in url else "?"
    path = f"{schema},public" if public else schema
    return f"{url}{sep}options=-csearch_path%3D{path}"
