"""What every repository over the store shares: its store, and how it opens transactions.

The repositories (`bosun.data.alerts`, `bosun.data.prompts`, ...) each own the SQL of one
aggregate; the rest of bosun calls their typed methods and never sees SQLAlchemy. They use the
store's engine, so they behave alike on SQLite and PostgreSQL, and they write through the
store's write transaction, so SQLite's writers start with ``BEGIN IMMEDIATE`` there too.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import fields
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Connection

if TYPE_CHECKING:
    from bosun.data.store import Store

__all__ = ["Repository", "values_of"]


class Repository:
    """A repository over one `Store`: ``Rows(store).method(...)``."""

    def __init__(self, store: Store) -> None:
        self.store = store
        """The store whose tables this repository reads and writes."""

    @property
    def _postgres(self) -> bool:
        return self.store.dialect == "postgresql"

    def _read(self) -> AbstractContextManager[Connection]:
        return self.store.engine.connect()

    def transaction(self) -> AbstractContextManager[Connection]:
        # The store's write transaction: SQLite's starts with BEGIN IMMEDIATE (the deadlock
        # two deferred writers hit otherwise).
        return self.store.transaction()


def values_of(row: Any) -> dict[str, Any]:
    """A typed row's fields as column values (its dataclass fields are named as columns)."""
    return {f.name: getattr(row, f.name) for f in fields(row)}
