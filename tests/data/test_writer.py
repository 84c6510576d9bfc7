"""Group commit: many runs' entries share a transaction, and one run's conflict stays its own."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from contextlib import closing

import pytest

from bosun.data.store import NewRun, Step, Store, WriteOp
from bosun.data.writer import GroupCommitWriter
from bosun.errors import JournalConflict


def new_run(run_id: str) -> NewRun:
    return NewRun(
        id=run_id, agent="support", status="queued", input="hi", grants="[]", created_at=1.0
    )


def step(run_id: str, seq: int, payload: str = '"entry"') -> Step:
    return Step(run_id=run_id, seq=seq, kind="model_response", payload=payload, created_at=1.0)


def record_writes(store: Store, monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, str]]:
    """(number of ops, thread name) of every `Store.write` call, failed ones included."""
    calls: list[tuple[int, str]] = []
    write = store.write

    def recording(ops: Sequence[WriteOp]) -> None:
        calls.append((len(ops), threading.current_thread().name))
        write(ops)

    monkeypatch.setattr(store, "write", recording)
    return calls


def xfail_on(request: pytest.FixtureRequest, condition: bool, reason: str) -> None:
    request.applymarker(pytest.mark.xfail(condition, reason=reason, strict=True))


async def test_concurrent_runs_share_few_commits_and_all_are_durable(
    store: Store, db_url: str
) -> None:
    writer = GroupCommitWriter(store)
    runs, later_steps = 50, 3

    async def one_run(i: int) -> None:
        await writer.write([new_run(f"r{i}"), step(f"r{i}", 0)])
        for seq in range(1, later_steps + 1):
            await writer.write([step(f"r{i}", seq)])

    await asyncio.gather(*(one_run(i) for i in range(runs)))
    await writer.aclose()

    calls = runs * (1 + later_steps)
    assert 1 <= writer.commits <= calls // 10
    with closing(Store.open(db_url)) as reader:  # as another process sees it
        assert len(reader.list_runs(limit=1000)) == runs
        for i in range(runs):
            assert [s.seq for s in reader.journal(f"r{i}")] == list(range(later_steps + 1))


@pytest.mark.parametrize("neighbours", [2, 40], ids=["inline batch", "thread batch"])
async def test_a_conflict_fails_only_its_own_run(
    store: Store, db_url: str, monkeypatch: pytest.MonkeyPatch, neighbours: int
) -> None:
    store.write([new_run("taken"), step("taken", 0)])
    with closing(Store.open(db_url)) as other_process:
        other_process.write([step("taken", 1, payload='"other process"')])
    writer = GroupCommitWriter(store)
    calls = record_writes(store, monkeypatch)
    writes = [[new_run(f"n{i}"), step(f"n{i}", 0)] for i in range(neighbours)]
    writes.insert(neighbours // 2, [step("taken", 1, payload='"this process"')])

    results = await asyncio.gather(*(writer.write(w) for w in writes), return_exceptions=True)
    await writer.aclose()

    conflicts = [r for r in results if isinstance(r, BaseException)]
    assert len(conflicts) == 1
    assert isinstance(conflicts[0], JournalConflict)
    assert (conflicts[0].run_id, conflicts[0].seq) == ("taken", 1)
    assert calls[0][0] == sum(len(w) for w in writes)  # all of them were tried as one batch
    for i in range(neighbours):
        assert [s.seq for s in store.journal(f"n{i}")] == [0]
    assert [s.payload for s in store.journal("taken")] == ['"entry"', '"other process"']


async def test_commits_counts_only_committed_transactions(
    request: pytest.FixtureRequest, store: Store, db_url: str
) -> None:
    store.write([new_run("taken"), step("taken", 0)])
    with closing(Store.open(db_url)) as other_process:
        other_process.write([step("taken", 1)])
    writer = GroupCommitWriter(store)

    results = await asyncio.gather(
        writer.write([new_run("a"), step("a", 0)]),
        writer.write([step("taken", 1)]),
        writer.write([new_run("b"), step("b", 0)]),
        return_exceptions=True,
    )
    await writer.aclose()

    assert isinstance(results[1], JournalConflict)
    assert writer.commits == 2  # the failed batch and the refused retry committed nothing


async def test_a_large_batch_commits_on_the_writer_thread(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = GroupCommitWriter(store)
    calls = record_writes(store, monkeypatch)
    big = [new_run("big"), *(step("big", seq) for seq in range(99))]

    await asyncio.gather(
        writer.write(big),
        *(writer.write([new_run(f"small{i}"), step(f"small{i}", 0)]) for i in range(5)),
    )
    await writer.aclose()

    assert writer.commits == len(calls) == 1
    [(ops, thread)] = calls
    assert ops == len(big) + 5 * 2
    assert thread != threading.main_thread().name
    assert [s.seq for s in store.journal("big")] == list(range(99))
    assert all(store.journal(f"small{i}") for i in range(5))


async def test_small_batches_commit_inline_on_sqlite_and_on_the_thread_on_postgresql(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = GroupCommitWriter(store)
    calls = record_writes(store, monkeypatch)

    await writer.write([new_run("r1"), step("r1", 0)])
    await writer.aclose()

    [(_, thread)] = calls
    assert (thread == threading.main_thread().name) == (store.dialect == "sqlite")
    assert [s.seq for s in store.journal("r1")] == [0]


@pytest.mark.parametrize("steps_per_run", [1, 7], ids=["small", "past the thread threshold"])
async def test_aclose_flushes_pending_writes(
    request: pytest.FixtureRequest, store: Store, db_url: str, steps_per_run: int
) -> None:
    writer = GroupCommitWriter(store)
    tasks = [
        asyncio.create_task(
            writer.write([new_run(f"r{i}"), *(step(f"r{i}", s) for s in range(steps_per_run))])
        )
        for i in range(10)
    ]
    await asyncio.sleep(0)  # each task queues its entries and waits for the commit
    assert not any(t.done() for t in tasks)

    await writer.aclose()

    with closing(Store.open(db_url)) as reader:  # durable when aclose returns
        durable = {r.id: [s.seq for s in reader.journal(r.id)] for r in reader.list_runs()}
    await asyncio.gather(*tasks)
    assert durable == {f"r{i}": list(range(steps_per_run)) for i in range(10)}
