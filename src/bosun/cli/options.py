"""What every ``bosun`` command that reads the store shares: the ``--db`` option."""

from __future__ import annotations

from typing import Annotated

import typer

from bosun.config import load_settings
from bosun.data.store import Store

__all__ = ["DbOption", "open_store"]

DbOption = Annotated[
    str | None,
    typer.Option("--db", help="Database URL (default: BOSUN_DATABASE_URL or BOSUN_HOME)."),
]


def open_store(db: str | None) -> Store:
    """The store `db` names, else the configured one (migrated on open)."""
    return Store.open(db or load_settings().resolved_database_url)
