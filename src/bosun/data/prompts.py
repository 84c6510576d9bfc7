"""The prompt registry's tables: immutable ``prompt_versions`` and the ``prompt_labels`` that
point at them (with their rollout and history as JSON).

Changes to one prompt happen inside `PromptRows.editing`: one write transaction that holds
the prompt's lock (on PostgreSQL a transaction-scoped advisory lock keyed by the prompt name;
SQLite's single writer already serialises), so a check and the change it guards, and the
change's audit row, commit together or not at all.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from bosun.data._repo import Repository, values_of
from bosun.data.schema import prompt_labels, prompt_versions
from bosun.data.store import AuditEvent, Store

__all__ = ["LabelRow", "PromptEdit", "PromptRows", "PromptVersionRow"]


@dataclass(frozen=True, slots=True, kw_only=True)
class PromptVersionRow:
    """A prompt version as stored."""

    name: str
    """The prompt."""
    version: str
    """Its semantic version."""
    template: str
    """The Jinja2 template."""
    variables: str
    """JSON: ``{name: type}``."""
    model_settings: str
    """JSON: the model settings."""
    changelog: str | None
    """What changed."""
    owner: str | None
    """Who owns it."""
    digest: str
    """sha256 of the content."""
    created_at: float
    """When it was created."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LabelRow:
    """A label as stored."""

    name: str
    """The prompt."""
    label: str
    """``production``, ``staging``, ..."""
    version: str
    """The version it points at."""
    rollout: str | None
    """JSON: canary, shadow and the label's history."""
    updated_at: float
    """When it last moved."""
    updated_by: str | None
    """Who moved it."""


class PromptRows(Repository):
    """Reads prompt versions and labels; changes them through `editing`."""

    def version(self, name: str, version: str) -> PromptVersionRow | None:
        """One version, if stored."""
        query = sa.select(prompt_versions).where(
            prompt_versions.c.name == name, prompt_versions.c.version == version
        )
        with self._read() as conn:
            row = conn.execute(query).first()
        return None if row is None else PromptVersionRow(**row._mapping)

    def versions(self, name: str) -> list[PromptVersionRow]:
        """Every version of `name`, in no particular order."""
        query = sa.select(prompt_versions).where(prompt_versions.c.name == name)
        with self._read() as conn:
            return [PromptVersionRow(**r._mapping) for r in conn.execute(query).all()]

    def names(self) -> list[str]:
        """Names of every prompt, sorted."""
        query = sa.select(prompt_versions.c.name).distinct().order_by(prompt_versions.c.name)
        with self._read() as conn:
            return [r[0] for r in conn.execute(query).all()]

    def labels(self, name: str) -> list[LabelRow]:
        """Every label of `name`, sorted by label."""
        query = (
            sa.select(prompt_labels)
            .where(prompt_labels.c.name == name)
            .order_by(prompt_labels.c.label)
        )
        with self._read() as conn:
            return [LabelRow(**r._mapping) for r in conn.execute(query).all()]

    def label(self, name: str, label: str) -> LabelRow | None:
        """One label of `name`, if set."""
        with self._read() as conn:
            return _label(conn, name, label)

    @contextmanager
    def editing(self, name: str) -> Iterator[PromptEdit]:
        """A write transaction holding prompt `name`'s lock; an exception rolls it back."""
        with self.transaction() as conn:
            if self._postgres:
                digest = hashlib.sha256(f"prompt\x1f{name}".encode()).digest()
                key = int.from_bytes(digest[:8], "big", signed=True)
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
            yield PromptEdit(self.store, conn, name)


class PromptEdit:
    """One prompt's rows inside `PromptRows.editing`'s transaction."""

    def __init__(self, store: Store, conn: Connection, name: str) -> None:
        self._store = store
        self._conn = conn
        self.name = name
        """The prompt being changed."""

    def versions(self) -> set[str]:
        """The versions stored so far."""
        query = sa.select(prompt_versions.c.version).where(prompt_versions.c.name == self.name)
        return {r[0] for r in self._conn.execute(query).all()}

    def add_version(self, row: PromptVersionRow) -> None:
        """Store a new version of this prompt."""
        self._conn.execute(prompt_versions.insert().values(values_of(row)))

    def label(self, label: str) -> LabelRow | None:
        """One label, as this transaction sees it."""
        return _label(self._conn, self.name, label)

    def put_label(self, row: LabelRow, *, insert: bool) -> None:
        """Insert a new label (`insert`) or move an existing one."""
        if insert:
            self._conn.execute(prompt_labels.insert().values(values_of(row)))
            return
        self._conn.execute(
            prompt_labels.update()
            .where(prompt_labels.c.name == row.name, prompt_labels.c.label == row.label)
            .values(
                version=row.version,
                rollout=row.rollout,
                updated_at=row.updated_at,
                updated_by=row.updated_by,
            )
        )

    def audit(self, event: AuditEvent) -> None:
        """Append `event` to the audit chain in this transaction: it lands with the change."""
        self._store.audit_in(self._conn, [event])


def _label(conn: Connection, name: str, label: str) -> LabelRow | None:
    query = sa.select(prompt_labels).where(
        prompt_labels.c.name == name, prompt_labels.c.label == label
    )
    row = conn.execute(query).first()
    return None if row is None else LabelRow(**row._mapping)
