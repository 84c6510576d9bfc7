"""The audit log's hash chain: appends link up, every kind of tampering shows at its row."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from bosun.data.audit import GENESIS, row_hash, verify
from bosun.data.store import AuditEvent, NewRun, Step, Store

ROWS = 12  # ids 1..12 in every tampering test


def event(i: int, *, run_id: str | None = "r1", actor: str | None = "alice") -> AuditEvent:
    return AuditEvent(
        action="tool_called" if i % 2 else "approval_decided",
        payload=json.dumps({"n": i, "amount": "10.00"}),
        created_at=1000.0 + i / 8,
        run_id=run_id,
        seq=i,
        actor=actor,
        approver="bob" if i % 3 == 0 else None,
    )


def fill(store: Store, batches: list[int]) -> None:
    """Append events in batches of the given sizes, with journal writes alongside."""
    store.write([NewRun(id="r1", agent="a", status="queued", input="", grants="[]", created_at=1)])
    n = 0
    for size in batches:
        ops: list[Any] = [event(n + k) for k in range(size)]
        ops.append(Step(run_id="r1", seq=n, kind="human_note", payload="{}", created_at=1.0))
        store.write(ops)
        n += size


def execute(store: Store, sql: str, **params: Any) -> None:
    with store.engine.begin() as conn:
        conn.execute(sa.text(sql), params)


def test_the_chain_verifies_over_many_batches(store: Store) -> None:
    fill(store, [1, 5, 40, 2, 60, 1])

    rows = store.audit_rows()
    result = store.verify_audit()

    assert (result.ok, result.rows, result.broken_row, result.reason) == (True, 109, None, None)
    assert result.head == rows[-1]["hash"]
    assert rows[0]["prev_hash"] == GENESIS
    assert all(b["prev_hash"] == a["hash"] for a, b in zip(rows, rows[1:], strict=False))
    assert [r["seq"] for r in store.audit_rows(run_id="r1")] == list(range(109))
    assert store.audit_rows(run_id="r2") == []


def test_an_empty_chain_verifies(store: Store) -> None:
    assert store.verify_audit() == verify([])
    assert (store.verify_audit().ok, store.verify_audit().rows) == (True, 0)
    assert store.verify_audit().head == GENESIS


def _edit_payload(store: Store) -> None:
    execute(store, "UPDATE audit SET payload = :p WHERE id = 5", p='{"n": 4, "amount": "1e6"}')


def _edit_actor(store: Store) -> None:
    execute(store, "UPDATE audit SET actor = 'mallory' WHERE id = 5")


def _clear_approver(store: Store) -> None:
    execute(store, "UPDATE audit SET approver = NULL WHERE id = 4")


def _delete_a_middle_row(store: Store) -> None:
    execute(store, "DELETE FROM audit WHERE id = 5")


def _swap_two_rows(store: Store) -> None:
    [fourth, ninth] = [r for r in store.audit_rows() if r["id"] in (4, 9)]
    for target, source in ((4, ninth), (9, fourth)):
        content = {k: v for k, v in source.items() if k not in ("id", "hash")}
        # hash is UNIQUE: move it last, through a placeholder, so the swap can be written
        execute(
            store,
            "UPDATE audit SET created_at = :created_at, run_id = :run_id, seq = :seq, "
            "actor = :actor, approver = :approver, action = :action, payload = :payload, "
            "prev_hash = :prev_hash, hash = :placeholder WHERE id = :id",
            **content,
            placeholder=f"swap{target}",
            id=target,
        )
    execute(store, "UPDATE audit SET hash = :h WHERE id = 4", h=ninth["hash"])
    execute(store, "UPDATE audit SET hash = :h WHERE id = 9", h=fourth["hash"])


def _replace_a_row_keeping_its_links(store: Store) -> None:
    # A forged row 5 that carries the real prev_hash and the real hash, so both neighbouring
    # links look right: only its content gives it away.
    [original] = [r for r in store.audit_rows() if r["id"] == 5]
    execute(store, "DELETE FROM audit WHERE id = 5")
    execute(
        store,
        "INSERT INTO audit (id, created_at, run_id, seq, actor, approver, action, payload, "
        "prev_hash, hash) VALUES (5, :t, 'r1', 4, 'alice', NULL, 'approval_decided', "
        '\'{"n": 4, "amount": "1e6"}\', :prev, :hash)',
        t=original["created_at"],
        prev=original["prev_hash"],
        hash=original["hash"],
    )


def _edit_and_rehash(store: Store) -> None:
    # The forger recomputes row 5's own hash: row 6 still points at the old one.
    [row] = [r for r in store.audit_rows() if r["id"] == 5]
    row["payload"] = '{"n": 4, "amount": "1e6"}'
    execute(
        store,
        "UPDATE audit SET payload = :p, hash = :h WHERE id = 5",
        p=row["payload"],
        h=row_hash(row),
    )


def _append_a_forged_row(store: Store) -> None:
    head = store.audit_rows()[-1]
    forged = {
        **head,
        "seq": 99,
        "action": "tool_called",
        "payload": "{}",
        "prev_hash": head["hash"],
    }
    execute(
        store,
        "INSERT INTO audit (created_at, run_id, seq, actor, approver, action, payload, "
        "prev_hash, hash) VALUES (:created_at, :run_id, :seq, :actor, :approver, :action, "
        ":payload, :prev_hash, :hash)",
        **{k: v for k, v in forged.items() if k not in ("id", "hash")},
        hash="f" * 64,
    )


CONTENT = "content does not match the row's hash"
LINK = "prev_hash does not match the previous row's hash"
TAMPERING: dict[str, tuple[Callable[[Store], None], int, str]] = {
    "edit a payload": (_edit_payload, 5, CONTENT),
    "edit the actor": (_edit_actor, 5, CONTENT),
    "clear the approver": (_clear_approver, 4, CONTENT),
    "delete a middle row": (_delete_a_middle_row, 6, LINK),
    "swap two rows": (_swap_two_rows, 4, LINK),
    "replace a row keeping its links": (_replace_a_row_keeping_its_links, 5, CONTENT),
    "edit a row and rehash it": (_edit_and_rehash, 6, LINK),
    "append a forged row": (_append_a_forged_row, ROWS + 1, CONTENT),
}


@pytest.mark.parametrize(("tamper", "broken", "reason"), TAMPERING.values(), ids=TAMPERING.keys())
def test_tampering_is_found_at_the_first_broken_row(
    store: Store, tamper: Callable[[Store], None], broken: int, reason: str
) -> None:
    fill(store, [3, 4, 5])
    assert (store.verify_audit().ok, store.verify_audit().rows) == (True, ROWS)

    tamper(store)
    result = store.verify_audit()

    assert (result.ok, result.broken_row, result.reason) == (False, broken, reason)
    verified = [r for r in store.audit_rows() if r["id"] < broken]
    assert result.rows == len(verified) + 1
    assert result.head == verified[-1]["hash"]  # the last row that still verified


def test_concurrent_appends_from_several_processes_make_one_chain(
    db_url: str, store: Store
) -> None:
    threads, writes_per_thread, events_per_write = 4, 15, 2
    stores = [Store.open(db_url) for _ in range(threads)]  # one per simulated process
    start = threading.Barrier(threads)
    errors: list[BaseException] = []

    def append(n: int, own: Store) -> None:
        try:
            start.wait()
            for w in range(writes_per_thread):
                own.write(
                    [
                        event(w * events_per_write + k, run_id=f"p{n}", actor=f"worker-{n}")
                        for k in range(events_per_write)
                    ]
                )
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=append, args=(n, s)) for n, s in enumerate(stores)]
    try:
        for t in workers:
            t.start()
        for t in workers:
            t.join()
    finally:
        for s in stores:
            s.close()

    rows = store.audit_rows()
    result = store.verify_audit()
    assert errors == []
    assert (result.ok, result.rows) == (True, threads * writes_per_thread * events_per_write)
    assert len({r["prev_hash"] for r in rows}) == len(rows)  # no two rows extend the same head
    for n in range(threads):  # each writer's events keep their order in the one chain
        assert [r["seq"] for r in rows if r["run_id"] == f"p{n}"] == list(
            range(writes_per_thread * events_per_write)
        )


def test_verify_works_offline_on_exported_rows(store: Store, tmp_path: Path) -> None:
    fill(store, [2, 7])
    export = tmp_path / "audit.json"
    export.write_text(json.dumps(store.audit_rows()))
    head = store.verify_audit().head
    store.close()  # nothing below touches the database

    rows = json.loads(export.read_text())
    assert verify(rows) == verify(iter(rows))
    assert (verify(rows).ok, verify(rows).rows, verify(rows).head) == (True, 9, head)
    truncated = verify(rows[:5])
    assert truncated.ok  # invisible from inside the chain ...
    assert truncated.head != head  # ... but not against a head kept elsewhere

    rows[3]["approver"] = "mallory"
    assert (verify(rows).ok, verify(rows).broken_row, verify(rows).rows) == (False, 4, 4)


def test_row_hash_covers_every_content_field() -> None:
    row = {
        "prev_hash": GENESIS,
        "created_at": 1.5,
        "run_id": "r1",
        "seq": 0,
        "actor": "alice",
        "approver": None,
        "action": "run_created",
        "payload": "{}",
    }
    changes = {
        "prev_hash": "1" * 64,
        "created_at": 1.25,
        "run_id": "r2",
        "seq": 1,
        "actor": None,
        "approver": "",
        "action": "run_finished",
        "payload": "{ }",
    }

    for field, value in changes.items():
        assert row_hash({**row, field: value}) != row_hash(row), field


def test_an_integer_timestamp_still_verifies(store: Store) -> None:
    store.write([AuditEvent(action="run_created", payload="{}", created_at=1700000000)])

    assert store.verify_audit().ok
