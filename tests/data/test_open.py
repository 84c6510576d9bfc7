"""Opening the store: the URLs people write, and one clear line when the database is not there."""

from __future__ import annotations

import socket
from contextlib import closing

import pytest
import sqlalchemy as sa

from bosun.data.store import Store
from bosun.errors import ConfigError, StoreUnavailable


@pytest.fixture
def closed_port() -> int:
    """A local port where nothing listens: bound a moment ago, then closed."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.mark.parametrize("scheme", ["postgresql", "postgres"])
def test_a_url_without_a_driver_is_opened_with_psycopg(scheme: str, closed_port: int) -> None:
    # Before: "No module named 'psycopg2'" from deep inside SQLAlchemy.
    with pytest.raises(StoreUnavailable) as caught:
        Store.open(f"{scheme}://bosun@127.0.0.1:{closed_port}/bosun")
    assert isinstance(caught.value.__cause__, sa.exc.OperationalError)
    assert "psycopg" in type(caught.value.__cause__.orig).__module__


def test_an_unreachable_database_is_one_line_naming_host_and_port(closed_port: int) -> None:
    with pytest.raises(StoreUnavailable) as caught:
        Store.open(f"postgresql+psycopg://bosun:hunter2@127.0.0.1:{closed_port}/bosun")
    message = str(caught.value)
    assert f"127.0.0.1:{closed_port}" in message
    assert "connection refused" in message.lower()
    assert "\n" not in message
    assert "hunter2" not in message
    assert (caught.value.host, caught.value.port) == ("127.0.0.1", closed_port)


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("mysqlx://db/bosun", "mysqlx"),
        ("not a url", "not a database URL"),
        ("postgresql+nosuchdriver://db/bosun", "nosuchdriver"),
    ],
)
def test_a_url_bosun_cannot_use_is_a_config_error(url: str, says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        Store.open(url)


def test_a_plain_postgresql_url_opens_a_real_database(pg_db_url: str) -> None:
    plain = "postgresql://" + pg_db_url.split("://", 1)[1]
    with closing(Store.open(plain, migrate=False)) as store:
        assert (store.dialect, store.engine.dialect.driver) == ("postgresql", "psycopg")
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT 1").scalar() == 1


def test_a_refused_login_names_the_server_and_the_reason(pg_db_url: str) -> None:
    url = sa.engine.make_url(pg_db_url).set(username="no_such_role_bosun", password="s3cret")
    with pytest.raises(StoreUnavailable) as caught:
        Store.open(url.render_as_string(hide_password=False))
    message = str(caught.value)
    assert f"{url.host}:{url.port}" in message
    assert "no_such_role_bosun" in message  # PostgreSQL's own reason: the role does not exist
    assert "s3cret" not in message and "\n" not in message
