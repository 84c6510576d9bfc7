"""From a database URL to a working SQLAlchemy engine, or to one line a person can act on.

`Store.open` goes through here: the URL is normalised (`bosun.config.normalise_database_url`:
``postgresql://`` runs on psycopg 3), a URL bosun cannot use is a `ConfigError`, and a database
that does not answer is a `StoreUnavailable` naming host and port and PostgreSQL's reason,
never the password and never a traceback.
"""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine

from bosun.config import normalise_database_url
from bosun.errors import ConfigError, StoreUnavailable

__all__ = ["check_reachable", "create_engine", "parse_url"]

_EXAMPLES = "sqlite:///PATH or postgresql://USER@HOST:PORT/DATABASE"
_PG_PORT = 5432
_CONNECT_TIMEOUT_S = 10  # libpq's default is to wait for the OS, which can take minutes
# libpq: 'connection to server at "h", port 5432 failed: FATAL:  role "x" does not exist'
_LIBPQ_REASON = re.compile(r"^.*failed:\s*(?:FATAL:\s*)?(?P<reason>.+)$")


def parse_url(url: str) -> URL:
    """`url` parsed, with the driver bosun ships for PostgreSQL; `ConfigError` if it is none."""
    try:
        return sa.engine.make_url(normalise_database_url(url))
    except sa.exc.ArgumentError as exc:
        # The text is not echoed: a URL that does not parse may still hold a password.
        raise ConfigError(f"not a database URL (expected {_EXAMPLES})") from exc


def create_engine(url: URL, **options: Any) -> Engine:
    """`sa.create_engine`, with a dialect or driver bosun cannot load as a `ConfigError`."""
    if url.get_backend_name() == "postgresql" and "connect_timeout" not in url.query:
        options.setdefault("connect_args", {})["connect_timeout"] = _CONNECT_TIMEOUT_S
    try:
        return sa.create_engine(url, **options)
    except sa.exc.NoSuchModuleError as exc:
        raise ConfigError(
            f"bosun cannot use {url.drivername!r} databases (expected {_EXAMPLES})"
        ) from exc
    except ImportError as exc:
        raise ConfigError(
            f"the {url.drivername!r} driver is not installed ({exc.name}); "
            "bosun ships psycopg: write postgresql://..."
        ) from exc


def check_reachable(engine: Engine) -> None:
    """Connect once; `StoreUnavailable` in one line when the database does not answer."""
    try:
        with engine.connect():
            pass
    except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
        engine.dispose()
        raise _unavailable(engine.url, exc) from exc


def _unavailable(url: URL, exc: sa.exc.DBAPIError) -> StoreUnavailable:
    reason = _reason(exc)
    if url.get_backend_name() == "sqlite":
        return StoreUnavailable(f"cannot open the SQLite database {url.database}: {reason}")
    port = url.port or _PG_PORT
    if url.host is None:  # libpq then uses the Unix-domain socket
        return StoreUnavailable(
            f"cannot reach the database on the local socket (port {port}): {reason}", port=port
        )
    return StoreUnavailable(
        f"cannot reach the database at {url.host}:{port}: {reason}", host=url.host, port=port
    )


def _reason(exc: sa.exc.DBAPIError) -> str:
    """The driver's reason in one line, without the libpq preamble that repeats the host."""
    lines = str(exc.orig).strip().splitlines() or [type(exc.orig).__name__]
    first = lines[0].strip()
    match = _LIBPQ_REASON.search(first)
    return match["reason"].strip() if match else first
