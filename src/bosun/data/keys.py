"""Principals and their API keys (read by `bosun.gateway.auth`).

Not on the journal's hot path: SQLAlchemy Core, one transaction per call, except the lookup
every authenticated request makes, which runs SQL compiled once.
"""

from __future__ import annotations

import builtins
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from bosun.data._repo import Repository
from bosun.data.records import ApiKeyRow, PrincipalRow, as_dict
from bosun.data.schema import api_keys, principals
from bosun.errors import StoreError

if TYPE_CHECKING:
    from bosun.data.store import Store

__all__ = ["KeyRows"]

_KEYS_WITH_PRINCIPAL = sa.select(*api_keys.c, *(c.label(f"p_{c.name}") for c in principals.c)).join(
    principals, principals.c.id == api_keys.c.principal_id
)


class KeyRows(Repository):
    """The ``principals`` and ``api_keys`` tables."""

    def __init__(self, store: Store) -> None:
        super().__init__(store)
        self._find_sql: str | None = None

    def add(self, key: ApiKeyRow, *, principal: PrincipalRow | None = None) -> None:
        """Insert `key`, and its principal first when given, in one transaction."""
        try:
            with self.transaction() as conn:
                if principal is not None:
                    conn.execute(principals.insert().values(as_dict(principal)))
                conn.execute(api_keys.insert().values(as_dict(key)))
        except sa.exc.IntegrityError as exc:
            raise StoreError(
                f"API key {key.key_id} or principal {key.principal_id!r} conflicts with a "
                "stored one (created concurrently?)"
            ) from exc

    def find(self, key_id: str) -> tuple[ApiKeyRow, PrincipalRow] | None:
        """The key and its principal: one primary-key lookup joined to the principal."""
        # Every authenticated request runs this: SQL compiled once, as on the journal's hot
        # path (SQLAlchemy's per-call cache-key work was two thirds of the lookup's cost).
        sql = self._find_sql
        if sql is None:
            select = _KEYS_WITH_PRINCIPAL.compile(dialect=self.store.engine.dialect)
            sql = f"{select} WHERE api_keys.key_id = {self.store.param('key_id')}"
            self._find_sql = sql
        with self._read() as conn:
            row = conn.exec_driver_sql(sql, {"key_id": key_id}).first()
        return None if row is None else _key_and_principal(row._mapping)

    def list(self, *, tenant: str | None = None) -> builtins.list[tuple[ApiKeyRow, PrincipalRow]]:
        """Every key (of one tenant) with its principal, oldest first."""
        query = _KEYS_WITH_PRINCIPAL.order_by(api_keys.c.created_at, api_keys.c.key_id)
        if tenant is not None:
            query = query.where(principals.c.tenant == tenant)
        with self._read() as conn:
            return [_key_and_principal(r._mapping) for r in conn.execute(query).all()]

    def principal(self, principal_id: str) -> PrincipalRow | None:
        """The principal, if stored."""
        with self._read() as conn:
            row = conn.execute(sa.select(principals).where(principals.c.id == principal_id)).first()
        return None if row is None else PrincipalRow(**row._mapping)

    def update_principal(self, principal_id: str, **values: Any) -> bool:
        """Set columns of a principal (`roles`, `disabled`); False when there is none."""
        with self.transaction() as conn:
            result = conn.execute(
                principals.update().where(principals.c.id == principal_id).values(**values)
            )
        return bool(result.rowcount)

    def revoke(self, key_id: str, *, at: float) -> bool:
        """Mark a key revoked (a second revocation keeps the first time); False when absent."""
        return self._update(key_id, revoked_at=sa.func.coalesce(api_keys.c.revoked_at, at))

    def touch(self, key_id: str, *, at: float) -> None:
        """Record when a key was last used."""
        self._update(key_id, last_used_at=at)

    def _update(self, key_id: str, **values: Any) -> bool:
        with self.transaction() as conn:
            result = conn.execute(
                api_keys.update().where(api_keys.c.key_id == key_id).values(**values)
            )
        return bool(result.rowcount)


def _key_and_principal(row: Any) -> tuple[ApiKeyRow, PrincipalRow]:
    key = ApiKeyRow(**{name: row[name] for name in ApiKeyRow.__slots__})
    principal = PrincipalRow(**{name: row[f"p_{name}"] for name in PrincipalRow.__slots__})
    # A driver-level query returns SQLite's 0/1 where a Boolean column would give a bool.
    return key, replace(principal, disabled=bool(principal.disabled))
