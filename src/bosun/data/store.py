"""The store: one SQLAlchemy engine, SQLite (WAL) or PostgreSQL, the same code.

Writes arrive as batches of operations (`NewRun`, `Step`, `RunUpdate`, `AuditEvent`, a
pipeline's `PipelineEntry` and `PipelineUpdate`) and are committed in one transaction, so the
journal entries of many concurrent runs and pipelines cost one commit (see
`bosun.data.writer`). Reads are plain queries. Everything here is synchronous; the async
runtime calls it from the writer's thread.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from bosun.data import audit as audit_chain
from bosun.data import connect, sqlite_ext
from bosun.data.keys import KeyRows
from bosun.data.records import (
    ApiKeyRow,
    AuditEvent,
    NewRun,
    PipelineEntry,
    PipelineUpdate,
    PrincipalRow,
    RunRow,
    RunUpdate,
    Step,
    StepRow,
    WriteOp,
    as_dict,
)
from bosun.data.schema import audit, pipeline_steps, runs, steps
from bosun.errors import DuplicateRun, JournalConflict, RunNotFound, StoreError

__all__ = [
    "ApiKeyRow",
    "AuditEvent",
    "NewRun",
    "PipelineEntry",
    "PipelineUpdate",
    "PrincipalRow",
    "RunRow",
    "RunUpdate",
    "Step",
    "StepRow",
    "Store",
    "WriteOp",
]

logger = logging.getLogger("bosun.data")

_MIGRATIONS = Path(__file__).parent / "migrations"
_AUDIT_LOCK_KEY = 0x6B6F7375  # pg_advisory_xact_lock key serialising audit chain appends
_MIGRATION_LOCK_KEY = 0x6B6F7376  # ... and migrations


_RUN_COLUMNS = [c for c in runs.c if c.name in RunRow.__slots__]
_STEP_FIELDS: tuple[str, ...] = Step.__slots__
_ENTRY_FIELDS: tuple[str, ...] = PipelineEntry.__slots__


class Store:
    """bosun's database. Open with `Store.open(url)`; migrations run on open."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self._sql: dict[tuple[str, tuple[str, ...]], str] = {}
        self._write_lock = threading.Lock()
        self._write_conn: Any = None
        self._commit_hooks: tuple[Callable[[set[str]], None], ...] = ()
        self.keys = KeyRows(self)
        """Principals and API keys."""

    @classmethod
    def open(cls, url: str, *, migrate: bool = True) -> Store:
        """Connect to `url` (``sqlite:///path`` or ``postgresql://...``, run on psycopg 3).

        A URL bosun cannot use raises `ConfigError`; a database that does not answer (refused,
        unknown host, timeout, login refused), `StoreUnavailable` naming host and port.
        """
        parsed = connect.parse_url(url)
        if parsed.get_backend_name() == "sqlite":
            path = parsed.database
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            module = sqlite_ext.sqlite_module()
            engine = connect.create_engine(
                parsed, module=module, connect_args={"check_same_thread": False, "timeout": 30}
            )
            _tune_sqlite(engine)
            sqlite_ext.install_extensions(engine, module)  # sqlite-vec, for the knowledge base
        else:
            engine = connect.create_engine(
                parsed, pool_size=10, max_overflow=20, pool_pre_ping=True
            )
        connect.check_reachable(engine)
        store = cls(engine)
        if migrate:
            store.migrate()
        return store

    def close(self) -> None:
        """Release all connections."""
        with self._write_lock:
            if self._write_conn is not None:
                self._write_conn.close()
                self._write_conn = None
        self.engine.dispose()

    # --- schema -------------------------------------------------------------------------

    def migrate(self) -> None:
        """Bring the schema to the newest migration (cheap when already there)."""
        from alembic import command
        from alembic.config import Config
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory

        config = Config()
        config.set_main_option("script_location", str(_MIGRATIONS))
        head = ScriptDirectory.from_config(config).get_current_head()
        with self.transaction() as conn:
            if self.dialect == "postgresql":
                # Processes opening a fresh database at once must not both run the migrations.
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK_KEY})")
            if MigrationContext.configure(conn).get_current_revision() == head:
                return
            config.attributes["connection"] = conn
            command.upgrade(config, "head")

    # --- writes -------------------------------------------------------------------------

    def write(self, ops: Sequence[WriteOp]) -> None:
        """Commit `ops` in one transaction: new runs, then steps, pipeline entries, updates,
        audit rows.

        Raises `JournalConflict` when a journal position is already taken (another process
        owns the run), `StoreError` for anything else the database refused.
        """
        dbapi = self.engine.dialect.loaded_dbapi
        with self._write_lock:
            conn = self._writer()
            try:
                self._apply(conn, ops)
                conn.commit()
                if self._commit_hooks:
                    self._committed(ops)
            except dbapi.IntegrityError as exc:
                conn.rollback()
                raise self._explain_integrity_error(ops, exc) from exc
            except dbapi.Error as exc:
                self._drop_writer()
                raise StoreError(f"the store failed: {exc}") from exc
            except BaseException as exc:
                # Anything else (a value the driver cannot encode, a cancelled thread) must not
                # leave the shared connection inside an open transaction holding the lock.
                self._drop_writer()
                if isinstance(exc, Exception):
                    raise StoreError(f"the store refused a write: {exc!r}") from exc
                raise

    def on_commit(self, hook: Callable[[set[str]], None]) -> None:
        """Call `hook` with the ids of the runs whose journal or row a write changed, after
        each commit, on the committing thread (`bosun.data.feed` wakes followers with it)."""
        self._commit_hooks = (*self._commit_hooks, hook)

    def off_commit(self, hook: Callable[[set[str]], None]) -> None:
        """Stop calling `hook`."""
        self._commit_hooks = tuple(h for h in self._commit_hooks if h is not hook)

    def _committed(self, ops: Sequence[WriteOp]) -> None:
        run_ids = {op.run_id for op in ops if isinstance(op, Step | RunUpdate)}
        for hook in self._commit_hooks:
            try:
                hook(run_ids)
            except Exception:  # a follower's failure must not fail a committed write
                logger.exception("a commit hook failed")

    def _explain_integrity_error(self, ops: Sequence[WriteOp], exc: Exception) -> StoreError:
        taken = self._taken_entry(ops)
        if taken is not None:
            return JournalConflict(
                f"journal position {taken.seq} of pipeline {taken.pipeline_id} is taken",
                run_id=taken.pipeline_id,
                seq=taken.seq,
            )
        conflict = self._find_conflict(ops)
        if conflict is not None:
            return JournalConflict(
                f"journal position {conflict.seq} of run {conflict.run_id} is taken",
                run_id=conflict.run_id,
                seq=conflict.seq,
            )
        for op in ops:
            if isinstance(op, NewRun) and op.idempotency_key is not None:
                existing = self.find_run(tenant=op.tenant, idempotency_key=op.idempotency_key)
                if existing is not None and existing.id != op.id:
                    return DuplicateRun(
                        f"run {existing.id} already has idempotency key {op.idempotency_key!r}",
                        run_id=existing.id,
                    )
        return StoreError(f"the store refused a write: {exc}")

    def _writer(self) -> Any:
        # The hot path uses one DBAPI connection with SQL prepared once per statement shape:
        # SQLAlchemy Core's per-statement compile and cache-key work cost ~5x the write itself
        # (bench/overhead.py). Reads and migrations still go through SQLAlchemy.
        if self._write_conn is None:
            self._write_conn = self.engine.raw_connection()
        return self._write_conn

    def _drop_writer(self) -> None:
        conn, self._write_conn = self._write_conn, None
        if conn is not None:
            with contextlib.suppress(Exception):  # it is broken already
                conn.invalidate()

    def _apply(self, conn: Any, ops: Sequence[WriteOp]) -> None:
        cur = conn.cursor()
        try:
            if self.dialect == "sqlite":
                cur.execute("BEGIN IMMEDIATE")
            new_runs = [as_dict(op) for op in ops if isinstance(op, NewRun)]
            if new_runs:
                for row in new_runs:
                    row["updated_at"] = row["created_at"]
                _execute(cur, self._insert_sql("runs", tuple(new_runs[0])), new_runs)
            step_rows = [_clip(as_dict(op)) for op in ops if isinstance(op, Step)]
            if step_rows:
                _execute(cur, self._insert_sql("steps", _STEP_FIELDS), step_rows)
            entries = [as_dict(op) for op in ops if isinstance(op, PipelineEntry)]
            if entries:
                _execute(cur, self._insert_sql("pipeline_steps", _ENTRY_FIELDS), entries)
            for op in ops:
                if isinstance(op, RunUpdate):
                    values = {"updated_at": time.time(), **op.values}
                    _execute(cur, self._update_sql(tuple(values)), [{**values, "_id": op.run_id}])
                elif isinstance(op, PipelineUpdate):
                    values = {"updated_at": time.time(), **op.values}
                    sql = self._update_sql(tuple(values), table="pipelines")
                    _execute(cur, sql, [{**values, "_id": op.pipeline_id}])
            events = [op for op in ops if isinstance(op, AuditEvent)]
            if events:
                self._append_audit(cur, events)
        finally:
            cur.close()

    def audit_in(self, conn: Connection, events: Sequence[AuditEvent]) -> None:
        """Append `events` to the audit chain inside `conn`'s open write transaction (from
        `transaction()`), so a change and its audit row commit together or not at all."""
        cur = conn.connection.cursor()
        try:
            self._append_audit(cur, list(events))
        finally:
            cur.close()

    def _append_audit(self, cur: Any, events: list[AuditEvent]) -> None:
        if self.dialect == "postgresql":
            # Concurrent writers must not both extend the chain from the same head.
            cur.execute(f"SELECT pg_advisory_xact_lock({_AUDIT_LOCK_KEY})")
        cur.execute("SELECT hash FROM audit ORDER BY id DESC LIMIT 1")
        prev = cur.fetchone()
        rows = []
        prev_hash = prev[0] if prev else audit_chain.GENESIS
        for ev in events:
            row = as_dict(ev)
            row["prev_hash"] = prev_hash
            row["hash"] = prev_hash = audit_chain.row_hash(row)
            rows.append(row)
        _execute(cur, self._insert_sql("audit", tuple(rows[0])), rows)

    def param(self, name: str) -> str:
        """A bound parameter in the driver's own style, for SQL prepared once."""
        return f"%({name})s" if self.dialect == "postgresql" else f":{name}"

    def _insert_sql(self, table: str, columns: tuple[str, ...]) -> str:
        key = (table, columns)
        sql = self._sql.get(key)
        if sql is None:
            params = ", ".join(self.param(c) for c in columns)
            sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({params})"
            self._sql[key] = sql
        return sql

    def _update_sql(self, columns: tuple[str, ...], table: str = "runs") -> str:
        key = (f"{table}:update", columns)
        sql = self._sql.get(key)
        if sql is None:
            sets = ", ".join(f"{c} = {self.param(c)}" for c in columns)
            sql = f"UPDATE {table} SET {sets} WHERE id = {self.param('_id')}"
            self._sql[key] = sql
        return sql

    def _find_conflict(self, ops: Sequence[WriteOp]) -> Step | None:
        keys = [(op.run_id, op.seq) for op in ops if isinstance(op, Step)]
        if not keys:
            return None
        with self.engine.connect() as conn:
            taken = set(
                conn.execute(
                    sa.select(steps.c.run_id, steps.c.seq).where(
                        sa.tuple_(steps.c.run_id, steps.c.seq).in_(keys)
                    )
                ).all()
            )
        return next(
            (op for op in ops if isinstance(op, Step) and (op.run_id, op.seq) in taken), None
        )

    def _taken_entry(self, ops: Sequence[WriteOp]) -> PipelineEntry | None:
        entries = [op for op in ops if isinstance(op, PipelineEntry)]
        if not entries:
            return None
        keys = [(op.pipeline_id, op.seq) for op in entries]
        with self.engine.connect() as conn:
            taken = set(
                conn.execute(
                    sa.select(pipeline_steps.c.pipeline_id, pipeline_steps.c.seq).where(
                        sa.tuple_(pipeline_steps.c.pipeline_id, pipeline_steps.c.seq).in_(keys)
                    )
                ).all()
            )
        return next((op for op in entries if (op.pipeline_id, op.seq) in taken), None)

    # --- reads --------------------------------------------------------------------------

    def get_run(self, run_id: str) -> RunRow:
        """The run row; raises `RunNotFound`."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(*_RUN_COLUMNS).where(runs.c.id == run_id)).first()
        if row is None:
            raise RunNotFound(f"no run with id {run_id!r}")
        return RunRow(**row._mapping)

    def find_run(self, *, tenant: str | None, idempotency_key: str) -> RunRow | None:
        """The run submitted earlier with this idempotency key, if any."""
        tenant_match = sa.func.coalesce(runs.c.tenant, "") == (tenant or "")
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(*_RUN_COLUMNS).where(
                    tenant_match, runs.c.idempotency_key == idempotency_key
                )
            ).first()
        return None if row is None else RunRow(**row._mapping)

    def list_runs(
        self,
        *,
        status: str | Sequence[str] | None = None,
        agent: str | None = None,
        tenant: str | None = None,
        all_tenants: bool = True,
        before: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[RunRow]:
        """Newest first. `before` is a run id: only runs older than it (keyset pagination,
        stable while new runs arrive). ``all_tenants=False`` keeps `tenant`'s runs only."""
        query = sa.select(*_RUN_COLUMNS).order_by(runs.c.id.desc())
        if isinstance(status, str):
            query = query.where(runs.c.status == status)
        elif status is not None:
            query = query.where(runs.c.status.in_(list(status)))
        if agent is not None:
            query = query.where(runs.c.agent == agent)
        if not all_tenants:
            query = query.where(
                runs.c.tenant.is_(None) if tenant is None else runs.c.tenant == tenant
            )
        if before is not None:
            query = query.where(runs.c.id < before)
        with self.engine.connect() as conn:
            rows = conn.execute(query.limit(limit).offset(offset)).all()
        return [RunRow(**r._mapping) for r in rows]

    def load(self, run_id: str) -> tuple[RunRow, list[StepRow]]:
        """The run row and its whole journal in one round of reads on one connection (what a
        request for a run needs); raises `RunNotFound`."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(*_RUN_COLUMNS).where(runs.c.id == run_id)).first()
            if row is None:
                raise RunNotFound(f"no run with id {run_id!r}")
            journal = conn.execute(
                sa.select(steps).where(steps.c.run_id == run_id).order_by(steps.c.seq)
            ).all()
        return RunRow(**row._mapping), [StepRow(**r._mapping) for r in journal]

    def journal(self, run_id: str, *, after: int = -1) -> list[StepRow]:
        """A run's journal entries in order (those past seq `after`, when given)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(steps)
                .where(steps.c.run_id == run_id, steps.c.seq > after)
                .order_by(steps.c.seq)
            ).all()
        return [StepRow(**r._mapping) for r in rows]

    def assign(self, run_id: str, assignee: str, *, statuses: Sequence[str]) -> bool:
        """Claim a parked run for a person: only while it is in one of `statuses` and nobody
        else holds it. True when `assignee` holds it now."""
        with self.transaction() as conn:
            result = conn.execute(
                runs.update()
                .where(
                    runs.c.id == run_id,
                    runs.c.status.in_(list(statuses)),
                    sa.or_(runs.c.assignee.is_(None), runs.c.assignee == assignee),
                )
                .values(assignee=assignee)
            )
        return bool(result.rowcount)

    def audit_rows(self, *, run_id: str | None = None) -> list[dict[str, Any]]:
        """Audit rows in chain order (optionally one run's)."""
        query = sa.select(audit).order_by(audit.c.id)
        if run_id is not None:
            query = query.where(audit.c.run_id == run_id)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query).all()]

    def verify_audit(self) -> audit_chain.Verification:
        """Check every link of the audit chain; reports the first broken row."""
        query = sa.select(audit).order_by(audit.c.id)
        with (
            self.engine.connect() as conn,
            conn.execution_options(yield_per=1000).execute(query) as result,
        ):
            return audit_chain.verify(dict(r._mapping) for r in result)

    # --- plumbing -----------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A write transaction on a pooled connection (for repositories in `bosun.data`)."""
        # On SQLite a write transaction starts with BEGIN IMMEDIATE: taking the write lock up
        # front avoids the deadlock two deferred transactions hit when both upgrade to writing.
        with self.engine.connect() as conn:
            if self.dialect == "sqlite":
                conn.execution_options(sqlite_begin="BEGIN IMMEDIATE")
            with conn.begin():
                yield conn


_STEP_LIMITS = {"tool": 64, "call_id": 200, "model": 200, "status": 32}


def _clip(row: dict[str, Any]) -> dict[str, Any]:
    # These columns index the journal; the payload keeps the full value. Model-controlled
    # text (a 65-character tool name) must not make PostgreSQL refuse the step.
    for key, limit in _STEP_LIMITS.items():
        value = row[key]
        if value is not None and len(value) > limit:
            row[key] = value[:limit]
    return row


def _execute(cur: Any, sql: str, rows: list[dict[str, Any]]) -> None:
    # sqlite3 has no Decimal adapter (registering one would be process-global): send text,
    # which the NUMERIC column stores as a number.
    for row in rows:
        for key, value in row.items():
            if type(value) is Decimal:
                row[key] = str(value)
    # One row: a plain execute. psycopg's executemany pipelines, which costs an extra round
    # trip for a single row (measured: 970 us against 342 us on loopback here).
    if len(rows) == 1:
        cur.execute(sql, rows[0])
    else:
        cur.executemany(sql, rows)


def _tune_sqlite(engine: Engine) -> None:
    """WAL, normal sync, busy timeout, and transactions that SQLAlchemy's BEGIN controls."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # let the "begin" hook below issue BEGIN
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql(conn.get_execution_options().get("sqlite_begin", "BEGIN"))
