"""The store on SQLite and PostgreSQL: migrations, atomic batches, conflicts, errors, reads."""

from __future__ import annotations

import re
import subprocess
import sys
import time
import uuid
from contextlib import closing
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.config import Config
from alembic.script import ScriptDirectory

from bosun.data import migrations
from bosun.data.store import AuditEvent, NewRun, RunUpdate, Step, Store, WriteOp
from bosun.errors import DuplicateRun, JournalConflict, RunNotFound, StoreError, UserError

MIGRATIONS = Path(migrations.__file__).parent
WRITES = re.compile(r"^\s*(CREATE|ALTER|DROP|INSERT|UPDATE|DELETE)\b", re.IGNORECASE)


def new_run(
    run_id: str,
    *,
    agent: str = "support",
    status: str = "queued",
    created_at: float = 1000.0,
    tenant: str | None = None,
    key: str | None = None,
) -> NewRun:
    return NewRun(
        id=run_id,
        agent=agent,
        status=status,
        input=f"input of {run_id}",
        grants='["tickets:read"]',
        principal="alice",
        tenant=tenant,
        idempotency_key=key,
        created_at=created_at,
    )


def step(run_id: str, seq: int, *, kind: str = "model_response", **columns: Any) -> Step:
    payload = columns.pop("payload", f'{{"run":"{run_id}","seq":{seq}}}')
    return Step(
        run_id=run_id, seq=seq, kind=kind, payload=payload, created_at=1000.0 + seq, **columns
    )


def event(run_id: str | None, seq: int | None, action: str = "run_created") -> AuditEvent:
    return AuditEvent(
        action=action, payload=f"{action} {run_id}", created_at=1000.0, run_id=run_id, seq=seq
    )


def head_revision() -> str:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head


def alembic_versions(store: Store) -> list[str]:
    with store.engine.connect() as conn:
        return list(conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalars())


def xfail_on(request: pytest.FixtureRequest, condition: bool, reason: str) -> None:
    request.applymarker(pytest.mark.xfail(condition, reason=reason, strict=True))


# --- migrations -------------------------------------------------------------------------


def test_open_migrates_to_head(store: Store) -> None:
    inspector = sa.inspect(store.engine)

    assert alembic_versions(store) == [head_revision()]
    assert {"runs", "steps", "audit"} <= set(inspector.get_table_names())
    assert {"tool_calls", "usage", "messages"} <= set(inspector.get_view_names())


def test_reopening_a_migrated_database_changes_nothing(db_url: str) -> None:
    def statements_of_migrate(store: Store) -> list[str]:
        seen: list[str] = []
        sa.event.listen(store.engine, "before_cursor_execute", lambda *args: seen.append(args[2]))
        store.migrate()
        return seen

    with closing(Store.open(db_url, migrate=False)) as first:
        created = statements_of_migrate(first)
        first.write([new_run("r1"), step("r1", 0, kind="run_started")])
    with closing(Store.open(db_url, migrate=False)) as second:
        again = statements_of_migrate(second)
        with closing(Store.open(db_url)) as third:  # the ordinary path, migrate on open
            assert alembic_versions(second) == [head_revision()]
            assert third.get_run("r1").input == "input of r1"
            assert [s.seq for s in third.journal("r1")] == [0]

    assert any(WRITES.match(sql) for sql in created)  # the listener does see the DDL
    assert [sql for sql in again if WRITES.match(sql)] == []


def test_views_are_derived_from_the_journal(store: Store) -> None:
    store.write(
        [
            new_run("r1"),
            step("r1", 0, kind="run_started"),
            step(
                "r1",
                1,
                model="openai:gpt-4.1-mini",
                input_tokens=120,
                output_tokens=30,
                cost_usd=Decimal("0.0123"),
                latency_ms=250.0,
            ),
            step("r1", 2, kind="tool_started", tool="refund", call_id="c1"),
            step(
                "r1", 3, kind="tool_result", tool="refund", call_id="c1", status="ok", latency_ms=5
            ),
            step("r1", 4, kind="human_note"),
        ]
    )

    with store.engine.connect() as conn:
        tool_calls = conn.exec_driver_sql(
            "SELECT run_id, seq, call_id, tool, status, latency_ms FROM tool_calls"
        ).all()
        usage = conn.exec_driver_sql(
            "SELECT run_id, seq, model, input_tokens, output_tokens, cost_usd FROM usage"
        ).all()
        messages = conn.exec_driver_sql("SELECT seq, kind FROM messages ORDER BY seq").all()

    assert [tuple(r) for r in tool_calls] == [("r1", 3, "c1", "refund", "ok", 5.0)]
    [(run_id, seq, model, tokens_in, tokens_out, cost)] = usage
    assert (run_id, seq, model, tokens_in, tokens_out) == ("r1", 1, "openai:gpt-4.1-mini", 120, 30)
    assert Decimal(str(cost)) == Decimal("0.0123")
    assert [tuple(r) for r in messages] == [
        (0, "run_started"),
        (1, "model_response"),
        (3, "tool_result"),
        (4, "human_note"),
    ]


def test_two_processes_opening_a_fresh_database_both_succeed(
    request: pytest.FixtureRequest, pg_db_url: str
) -> None:
    # PostgreSQL only: SQLite serialises migrations with BEGIN IMMEDIATE.
    db_url = pg_db_url
    app = f"bosun_migrate_{uuid.uuid4().hex[:8]}"
    url = f"{db_url}&application_name={app}"
    opener = "import sys; from bosun.data.store import Store; Store.open(sys.argv[1]).close()"
    engine = sa.create_engine(url)
    procs: list[subprocess.Popen[str]] = []
    try:
        # Another migrator holds the first table mid-creation, so both processes queue up at
        # the same point of their migration; then it rolls back and lets them race.
        with engine.connect() as blocker:
            blocker.exec_driver_sql("CREATE TABLE alembic_version (version_num varchar(32))")
            for _ in range(2):
                procs.append(
                    subprocess.Popen(
                        [sys.executable, "-c", opener, url],
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.PIPE,
                        text=True,
                    )
                )
            deadline = time.monotonic() + 30
            while _waiting_backends(engine, app) < 2 and time.monotonic() < deadline:
                time.sleep(0.02)
            blocker.rollback()
        stderr = [p.communicate(timeout=60)[1] for p in procs]
        with closing(Store.open(db_url)) as store:
            versions = alembic_versions(store)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.communicate()
        engine.dispose()

    assert [p.returncode for p in procs] == [0, 0], [err[-600:] for err in stderr]
    assert versions == [head_revision()]


def _waiting_backends(engine: sa.Engine, app: str) -> int:
    # A fresh connection each time: pg_stat_activity is frozen for a transaction's lifetime.
    with engine.connect() as conn:
        return conn.execute(
            sa.text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE application_name = :app AND wait_event_type = 'Lock'"
            ),
            {"app": app},
        ).scalar_one()


# --- atomic writes ----------------------------------------------------------------------

BAD_LAST_OPS: dict[str, WriteOp] = {
    "update breaks NOT NULL": RunUpdate(run_id="r2", values={"status": None}),
    "audit breaks NOT NULL": AuditEvent(action=None, payload="x", created_at=1.0),  # type: ignore[arg-type]
    "step of an unknown run": step("ghost", 0),
    "run id taken in the batch": new_run("r2"),
    "position taken in the batch": step("r2", 1),
}


@pytest.mark.parametrize("bad", BAD_LAST_OPS.values(), ids=BAD_LAST_OPS.keys())
def test_a_refused_batch_leaves_nothing_behind(store: Store, bad: WriteOp) -> None:
    store.write([new_run("r1"), step("r1", 0), event("r1", 0)])
    before = store.audit_rows()

    with pytest.raises(StoreError) as caught:
        store.write([new_run("r2"), step("r2", 0), step("r2", 1), event("r2", 0), bad])

    assert type(caught.value) is StoreError  # no journal position was taken by anyone else
    assert [r.id for r in store.list_runs()] == ["r1"]
    assert store.journal("r2") == []
    assert store.audit_rows() == before
    # the chain goes on from the committed head, not from the rolled-back rows
    store.write([new_run("r3"), event("r3", 0)])
    assert store.verify_audit().ok
    assert store.verify_audit().rows == 2


# --- conflicts and errors ---------------------------------------------------------------


def test_a_taken_journal_position_raises_journal_conflict(store: Store) -> None:
    store.write([new_run("r1"), step("r1", 0), step("r1", 1, payload='"first"')])

    with pytest.raises(JournalConflict) as caught:
        store.write([new_run("r2"), step("r2", 0), step("r1", 2), step("r1", 1)])

    assert (caught.value.run_id, caught.value.seq) == ("r1", 1)
    assert isinstance(caught.value, StoreError)
    assert [(s.seq, s.payload) for s in store.journal("r1")] == [
        (0, '{"run":"r1","seq":0}'),
        (1, '"first"'),
    ]
    assert store.journal("r2") == []  # the batch's other run went nowhere either


def test_a_second_process_appending_the_same_position_gets_journal_conflict(
    db_url: str, store: Store
) -> None:
    store.write([new_run("r1"), step("r1", 0)])

    with closing(Store.open(db_url)) as other:
        other.write([step("r1", 1, payload='"other process"')])
        with pytest.raises(JournalConflict) as caught:
            store.write([step("r1", 1, payload='"this process"')])
        # both keep working for what they own
        store.write([new_run("r2"), step("r2", 0)])
        other.write([step("r1", 2)])
        assert [s.seq for s in other.journal("r2")] == [0]

    assert (caught.value.run_id, caught.value.seq) == ("r1", 1)
    assert [(s.seq, s.payload) for s in store.journal("r1")] == [
        (0, '{"run":"r1","seq":0}'),
        (1, '"other process"'),
        (2, '{"run":"r1","seq":2}'),
    ]


REFUSALS: dict[str, list[WriteOp]] = {
    "run id taken": [new_run("r1")],
    "step of an unknown run": [step("ghost", 0)],
    "unknown column": [RunUpdate(run_id="r1", values={"colour": "blue"})],
    "payload of the wrong type": [step("r1", 1, payload={"not": "text"})],
}


@pytest.mark.parametrize("ops", REFUSALS.values(), ids=REFUSALS.keys())
def test_a_refusal_is_a_store_error_and_the_store_keeps_working(
    store: Store, ops: list[WriteOp]
) -> None:
    store.write([new_run("r1"), step("r1", 0)])

    with pytest.raises(StoreError) as caught:
        store.write(ops)

    assert type(caught.value) is StoreError
    dbapi = store.engine.dialect.loaded_dbapi
    assert isinstance(caught.value.__cause__, dbapi.Error)
    store.write([step("r1", 1), RunUpdate(run_id="r1", values={"status": "running"})])
    store.write([new_run("r2"), step("r2", 0)])
    assert store.get_run("r1").status == "running"
    assert [s.seq for s in store.journal("r1")] == [0, 1]
    assert [r.id for r in store.list_runs()] == ["r2", "r1"]


def test_a_value_the_driver_cannot_bind_is_a_store_error_and_the_store_keeps_working(
    store: Store,
) -> None:
    store.write([new_run("r1"), step("r1", 0)])

    with pytest.raises(StoreError):  # sqlite3: OverflowError; psycopg: integer out of range
        store.write([step("r1", 1, input_tokens=2**64)])

    store.write([step("r1", 1)])
    assert [s.seq for s in store.journal("r1")] == [0, 1]


def test_model_controlled_index_columns_are_clipped_not_refused(store: Store) -> None:
    store.write(
        [
            new_run("r1"),
            step("r1", 0, kind="tool_result", tool="t" * 65, call_id="c" * 300, status="s" * 40),
        ]
    )

    [stored] = store.journal("r1")
    assert (stored.tool, stored.call_id, stored.status) == ("t" * 64, "c" * 200, "s" * 32)


def test_the_write_connection_recovers_after_the_server_drops_it(pg_db_url: str) -> None:
    db_url = pg_db_url  # only a server can drop the connection
    app = f"bosun_drop_{uuid.uuid4().hex[:8]}"
    with closing(Store.open(f"{db_url}&application_name={app}")) as store:
        store.write([new_run("r1"), step("r1", 0)])
        with store.engine.connect() as conn:
            dropped = conn.execute(
                sa.text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE application_name = :app AND pid <> pg_backend_pid()"
                ),
                {"app": app},
            ).scalar_one()

        written = [0]
        try:
            store.write([step("r1", 1)])
            written.append(1)
        except StoreError:  # the first write may find the connection gone: no raw error
            pass
        store.write([step("r1", 2)])
        written.append(2)

        assert dropped >= 1
        assert [s.seq for s in store.journal("r1")] == written


# --- values -----------------------------------------------------------------------------

COSTS = {
    "smallest unit": ("0.00000001", "0.00000001"),
    "cents": ("0.0123", "0.0123"),
    "eight places": ("12345.67891234", "12345.67891234"),
    "fifteen digits": ("9999999.12345678", "9999999.12345678"),
    "rounded to scale": ("0.123456789", "0.12345679"),
    "zero": ("0", "0"),
}


@pytest.mark.parametrize(("sent", "expected"), COSTS.values(), ids=COSTS.keys())
def test_decimal_costs_round_trip(store: Store, sent: str, expected: str) -> None:
    store.write(
        [
            new_run("r1"),
            step("r1", 0, cost_usd=Decimal(sent)),
            RunUpdate(run_id="r1", values={"cost_usd": Decimal(sent)}),
        ]
    )

    [journaled] = store.journal("r1")
    for cost in (journaled.cost_usd, store.get_run("r1").cost_usd, store.list_runs()[0].cost_usd):
        assert isinstance(cost, Decimal)
        assert cost == Decimal(expected)


def test_a_decimal_at_the_full_column_precision_round_trips(
    request: pytest.FixtureRequest, store: Store
) -> None:
    xfail_on(
        request,
        store.dialect == "sqlite",
        "NUMERIC(18, 8) on SQLite stores a REAL: only 15 significant digits survive",
    )
    cost = Decimal("1234567890.12345678")
    store.write([new_run("r1"), RunUpdate(run_id="r1", values={"cost_usd": cost})])

    assert store.get_run("r1").cost_usd == cost


# --- reads ------------------------------------------------------------------------------


def test_runs_round_trip_and_updates_move_updated_at(store: Store) -> None:
    store.write([new_run("r1", tenant="acme", key="k1")])
    created = store.get_run("r1")
    store.write([RunUpdate(run_id="r1", values={"status": "done", "output": "42"})])
    updated = store.get_run("r1")

    assert (created.agent, created.status, created.input, created.grants) == (
        "support",
        "queued",
        "input of r1",
        '["tickets:read"]',
    )
    assert (created.principal, created.tenant, created.idempotency_key) == ("alice", "acme", "k1")
    assert created.created_at == created.updated_at == 1000.0
    assert (created.input_tokens, created.output_tokens, created.cost_usd) == (0, 0, None)
    assert (updated.status, updated.output) == ("done", "42")
    assert updated.updated_at > created.updated_at


def test_list_runs_filters_orders_newest_first_and_pages(store: Store) -> None:
    store.write(
        [
            new_run("a", agent="support", status="done", created_at=1.0),
            new_run("b", agent="billing", status="running", created_at=2.0),
            new_run("c", agent="support", status="running", created_at=3.0),
            new_run("d", agent="support", status="done", created_at=3.0),  # same instant as c
            new_run("e", agent="billing", status="done", created_at=5.0),
        ]
    )

    def ids(**query: Any) -> list[str]:
        return [r.id for r in store.list_runs(**query)]

    assert ids() == ["e", "d", "c", "b", "a"]
    assert ids(status="done") == ["e", "d", "a"]
    assert ids(agent="support") == ["d", "c", "a"]
    assert ids(status="running", agent="billing") == ["b"]
    assert ids(status="cancelled") == []
    pages = [ids(limit=2, offset=offset) for offset in (0, 2, 4, 6)]
    assert pages == [["e", "d"], ["c", "b"], ["a"], []]
    assert ids(status="done", limit=1, offset=1) == ["d"]


def test_find_run_by_tenant_and_idempotency_key(store: Store) -> None:
    store.write(
        [
            new_run("acme-run", tenant="acme", key="order-7"),
            new_run("globex-run", tenant="globex", key="order-7"),
            new_run("tenantless-run", tenant=None, key="order-7"),
            new_run("other-key", tenant="acme", key="order-8"),
        ]
    )

    def found(tenant: str | None, key: str) -> str | None:
        run = store.find_run(tenant=tenant, idempotency_key=key)
        return None if run is None else run.id

    assert found("acme", "order-7") == "acme-run"
    assert found("globex", "order-7") == "globex-run"
    assert found(None, "order-7") == "tenantless-run"
    assert found("acme", "order-8") == "other-key"
    assert found(None, "order-8") is None
    assert found("initech", "order-7") is None
    assert found("acme", "order-9") is None


@pytest.mark.parametrize("tenant", ["acme", None])
def test_an_idempotency_key_is_taken_once_per_tenant(store: Store, tenant: str | None) -> None:
    store.write([new_run("first", tenant=tenant, key="order-7"), step("first", 0)])

    with pytest.raises(DuplicateRun) as caught:
        store.write([new_run("second", tenant=tenant, key="order-7"), step("second", 0)])
    store.write([new_run("elsewhere", tenant="globex", key="order-7")])

    assert caught.value.run_id == "first"
    assert isinstance(caught.value, StoreError)
    assert store.journal("second") == []
    assert sorted(r.id for r in store.list_runs()) == ["elsewhere", "first"]


def test_get_run_of_an_unknown_id_raises_run_not_found(store: Store) -> None:
    store.write([new_run("r1")])

    with pytest.raises(RunNotFound, match="nope"):
        store.get_run("nope")
    assert issubclass(RunNotFound, UserError)
    assert store.journal("nope") == []
