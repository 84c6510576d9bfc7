"""The ``alerts`` table: alerts raised by the spine, each stored once per dedupe key."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from bosun.data._repo import Repository, values_of
from bosun.data.schema import alerts

__all__ = ["AlertRow", "AlertRows", "NewAlert"]


@dataclass(frozen=True, slots=True, kw_only=True)
class NewAlert:
    """An alert to store."""

    kind: str
    """``cost_cap``, ``drift``, ..."""
    subject: str
    """What it is about."""
    severity: str
    """``info``, ``warning`` or ``critical``."""
    message: str
    """What a person reads."""
    evidence: str
    """JSON: the numbers behind it."""
    created_at: float
    """When it was raised."""
    dedupe_key: str
    """Alerts with the same key are one alert."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertRow(NewAlert):
    """An alert as stored."""

    id: int
    """Its row id: higher is newer."""

    def to_dict(self) -> dict[str, object]:
        """The row as a mapping, in the table's column order."""
        return {name: getattr(self, name) for name in _COLUMNS}


# Column order, as a plain select returns them (the CLI prints rows in this order).
_COLUMNS = ("id", "kind", "subject", "severity", "message", "evidence", "created_at", "dedupe_key")


class AlertRows(Repository):
    """Stores and lists alerts."""

    def add(self, alert: NewAlert) -> bool:
        """Store `alert` unless one with its dedupe key exists. True when it is new."""
        with self.transaction() as conn:
            exists = conn.execute(
                sa.select(alerts.c.id).where(alerts.c.dedupe_key == alert.dedupe_key)
            ).first()
            if exists is not None:
                return False
            try:
                with conn.begin_nested():
                    conn.execute(alerts.insert().values(values_of(alert)))
            except sa.exc.IntegrityError:  # another process raised it at the same moment
                return False
        return True

    def newest(self, *, kind: str | None = None, limit: int = 100) -> list[AlertRow]:
        """Alerts (of one `kind`), newest first."""
        query = sa.select(alerts).order_by(alerts.c.id.desc()).limit(limit)
        if kind is not None:
            query = query.where(alerts.c.kind == kind)
        with self._read() as conn:
            rows = conn.execute(query).all()
        return [AlertRow(**r._mapping) for r in rows]
