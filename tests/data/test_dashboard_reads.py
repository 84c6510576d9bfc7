"""What the dashboard reads from the store, on SQLite and PostgreSQL: pages of runs (filters,
keyset pages that neither skip nor repeat a run) and the hourly operations counts."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from bosun.data.operations import HOUR, OpsRows, OpsWindow
from bosun.data.runlist import RunCursor, RunFilter, RunList
from bosun.data.store import NewRun, RunUpdate, Step, Store
from bosun.errors import UserError

T0 = 1_700_000_000.0 - 1_700_000_000.0 % HOUR  # the start of an hour


def _run(run_id: str, *, at: float, tenant: str | None = "acme", agent: str = "desk") -> NewRun:
    return NewRun(
        id=run_id,
        agent=agent,
        status="queued",
        input="x",
        grants="[]",
        tenant=tenant,
        created_at=at,
    )


def _step(run_id: str, seq: int, kind: str, *, payload: object = None, **columns: object) -> Step:
    return Step(
        run_id=run_id,
        seq=seq,
        kind=kind,
        payload=json.dumps(payload or {}),
        created_at=T0 + seq,
        **columns,  # type: ignore[arg-type]
    )


def test_pages_cover_every_matching_run_once_newest_first(store: Store) -> None:
    # 25 runs, several sharing one creation instant (a page may end inside such a group).
    created = {f"{i:04x}": T0 + i // 3 for i in range(25)}
    store.write([_run(r, at=t) for r, t in created.items()])
    store.write([_run("ffff", at=T0 + 5, tenant="globex")])
    rows = RunList(store)
    seen: list[str] = []
    after = None
    while True:
        page = rows.page(RunFilter(tenant="acme"), after=after, limit=4)
        seen += [r.id for r in page]
        if len(page) < 4:
            break
        after = RunCursor.parse(str(page[-1].cursor))  # through the text a link carries
    assert sorted(seen) == sorted(created)  # each exactly once, the other tenant's never
    assert len(seen) == len(set(seen))
    order = [(created[r], r) for r in seen]
    assert order == sorted(order, reverse=True)


def test_filters_by_agent_status_and_time(store: Store) -> None:
    store.write(
        [
            _run("a1", at=T0, agent="desk"),
            _run("a2", at=T0 + 10, agent="desk"),
            _run("b1", at=T0 + 20, agent="billing"),
            _run("a3", at=T0 + 30, agent="desk"),
        ]
    )
    store.write([RunUpdate(run_id="a2", values={"status": "completed"})])
    rows = RunList(store)

    def ids(**kw: object) -> list[str]:
        return [r.id for r in rows.page(RunFilter(tenant="acme", **kw))]  # type: ignore[arg-type]

    assert ids(agent="desk") == ["a3", "a2", "a1"]
    assert ids(statuses=["completed"]) == ["a2"]
    assert ids(statuses=["completed", "queued"], agent="desk") == ["a3", "a2", "a1"]
    assert ids(since=T0 + 10, until=T0 + 30) == ["b1", "a2"]
    assert rows.agents(tenant="acme") == ["billing", "desk"]
    assert rows.agents(tenant="nobody") == []


def test_a_forged_cursor_is_a_user_error() -> None:
    for text in ("", "x~abc", "1.5~ABC", "1.5~abc;drop", "1.5"):
        with pytest.raises(UserError):
            RunCursor.parse(text)
    assert RunCursor.parse("1700000000.25~0aF".lower()) == RunCursor(
        created_at=1700000000.25, id="0af"
    )


def test_operations_count_runs_tools_and_people_per_hour(store: Store) -> None:
    store.write(
        [
            _run("r1", at=T0 + 10),
            _run("r2", at=T0 + 20),
            _run("r3", at=T0 + HOUR + 5),
            _run("other", at=T0 + 30, tenant="globex"),
        ]
    )
    flagged = {"gateway": {"screening": [{"part": 1, "verdict": "injection"}]}}
    store.write(
        [
            _step("r1", 0, "run_started", payload=flagged),
            _step("r1", 1, "tool_result", tool="search", status="ok"),
            _step("r1", 2, "tool_result", tool="search", status="timeout"),
            _step("r1", 3, "human_requested"),
            _step("r2", 0, "run_started", payload={"gateway": {}}),
            _step("r2", 1, "tool_result", tool="send", status="blocked_by_policy"),
            _step("r2", 2, "run_finished", status="escalated"),
            _step("r3", 0, "run_started"),
            _step("r3", 1, "tool_result", tool="search", status="ok"),
            _step("other", 0, "run_started", payload=flagged),
        ]
    )
    store.write(
        [
            RunUpdate(run_id="r1", values={"status": "completed", "cost_usd": Decimal("0.5")}),
            RunUpdate(run_id="r2", values={"status": "escalated"}),
        ]
    )
    ops = OpsRows(store)
    window = OpsWindow(since=T0, until=T0 + 2 * HOUR, tenant="acme")
    statuses = {(s.hour, s.status): s for s in ops.statuses(window)}
    assert set(statuses) == {(T0, "completed"), (T0, "escalated"), (T0 + HOUR, "queued")}
    assert statuses[T0, "completed"].cost_usd == Decimal("0.5")
    assert statuses[T0, "completed"].priced == 1
    assert statuses[T0, "escalated"].priced == 0
    durations = ops.durations(window, statuses=["completed", "escalated"])
    assert sorted(h for h, _ in durations) == [T0, T0]
    assert all(d >= 0 for _, d in durations)
    tools = {(t.hour, t.tool, t.status): t.calls for t in ops.tools(window)}
    assert tools == {
        (T0, "search", "ok"): 1,
        (T0, "search", "timeout"): 1,
        (T0, "send", "blocked_by_policy"): 1,
        (T0 + HOUR, "search", "ok"): 1,
    }
    flags = {f.hour: (f.handed_over, f.inputs_flagged) for f in ops.flags(window)}
    assert flags == {T0: (2, 1), T0 + HOUR: (0, 0)}
    everyone = OpsWindow(since=T0, until=T0 + HOUR, all_tenants=True)
    assert sum(s.runs for s in ops.statuses(everyone)) == 3
    assert {f.hour: f.inputs_flagged for f in ops.flags(everyone)} == {T0: 2}


def test_oldest_first_pages_and_a_page_of_journals_in_two_queries(store: Store) -> None:
    created = {f"{i:04x}": T0 + i // 2 for i in range(9)}
    store.write([_run(r, at=t) for r, t in created.items()])
    store.write([_step(r, seq, "model_response") for r in created for seq in range(3)])
    rows = RunList(store)
    seen: list[str] = []
    after = None
    while page := rows.page(RunFilter(tenant="acme"), after=after, limit=2, oldest_first=True):
        seen += [r.id for r in page]
        after = page[-1].cursor
    assert seen == sorted(created, key=lambda r: (created[r], r))
    loaded = rows.loads(["0003", "nope", "0001"])
    assert [(row.id, [s.seq for s in journal]) for row, journal in loaded] == [
        ("0003", [0, 1, 2]),
        ("0001", [0, 1, 2]),
    ]
    assert rows.loads([]) == []
