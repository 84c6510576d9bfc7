"""`RunQueue`: claims, leases, heartbeats and releases on both backends, with a fake clock."""

from __future__ import annotations

import itertools
import threading
import time

import pytest
import sqlalchemy as sa

from bosun.data.queue import Claim, RunQueue
from bosun.data.schema import runs
from bosun.data.store import NewRun, RunUpdate, Store

_ids = itertools.count()


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def add_run(
    store: Store,
    *,
    agent: str = "a",
    status: str = "queued",
    created_at: float | None = None,
    tenant: str | None = None,
) -> str:
    run_id = f"run{next(_ids):06d}"
    store.write(
        [
            NewRun(
                id=run_id,
                agent=agent,
                status=status,
                input="x",
                grants="[]",
                tenant=tenant,
                created_at=time.time() if created_at is None else created_at,
            )
        ]
    )
    return run_id


def set_status(store: Store, run_id: str, status: str) -> None:
    store.write([RunUpdate(run_id=run_id, values={"status": status})])


def row(store: Store, run_id: str) -> sa.Row[tuple[str, str | None, float | None, int]]:
    query = sa.select(
        runs.c.status, runs.c.lease_owner, runs.c.lease_expires_at, runs.c.attempts
    ).where(runs.c.id == run_id)
    with store.engine.connect() as conn:
        return conn.execute(query).one()


def ids(claims: list[Claim]) -> list[str]:
    return [c.run_id for c in claims]


def test_claim_takes_the_oldest_queued_runs_up_to_the_limit(store: Store) -> None:
    clock = Clock()
    queue = RunQueue(store, clock=clock)
    created = [add_run(store, created_at=t) for t in (5.0, 1.0, 4.0, 2.0, 3.0)]
    oldest_first = [created[i] for i in (1, 3, 4, 2, 0)]
    add_run(store, status="completed", created_at=0.5)
    add_run(store, status="waiting_approval", created_at=0.6)

    first = queue.claim("w1", limit=3, lease_s=10)
    assert ids(first) == oldest_first[:3]
    assert all(c.attempts == 1 and c.agent == "a" and c.cancel_requested_by is None for c in first)
    assert row(store, oldest_first[0]) == ("queued", "w1", clock.now + 10, 1)

    assert ids(queue.claim("w2", limit=10, lease_s=10)) == oldest_first[3:]
    assert queue.claim("w3", limit=10, lease_s=10) == []
    assert queue.claim("w3", limit=0, lease_s=10) == []


def test_a_live_lease_keeps_other_owners_out_until_it_expires(store: Store) -> None:
    clock = Clock()
    queue = RunQueue(store, clock=clock)
    run_id = add_run(store)
    assert ids(queue.claim("w1", limit=1, lease_s=10)) == [run_id]

    clock.now += 5
    assert queue.claim("w2", limit=1, lease_s=10) == []
    assert queue.claim("w1", limit=1, lease_s=10) == []  # nor twice by its holder
    clock.now += 5  # exactly at expiry the lease still holds
    assert queue.claim("w2", limit=1, lease_s=10) == []
    clock.now += 0.01
    (claim,) = queue.claim("w2", limit=1, lease_s=10)
    assert (claim.run_id, claim.attempts) == (run_id, 2)
    assert row(store, run_id).lease_owner == "w2"


def test_expired_running_runs_are_reclaimed_but_in_process_runs_never(store: Store) -> None:
    clock = Clock()
    queue = RunQueue(store, clock=clock)
    leased = add_run(store, created_at=1.0)
    in_process = add_run(store, status="running", created_at=0.0)  # Runtime.run: no lease
    assert ids(queue.claim("w1", limit=5, lease_s=10)) == [leased]
    set_status(store, leased, "running")  # its driver wrote an entry, then the worker died

    clock.now += 9
    assert queue.claim("w2", limit=5, lease_s=10) == []
    clock.now += 2
    (claim,) = queue.claim("w2", limit=5, lease_s=10)
    assert (claim.run_id, claim.attempts) == (leased, 2)
    assert row(store, leased) == ("running", "w2", clock.now + 10, 2)

    clock.now += 1e9
    reclaimed = queue.claim("w3", limit=5, lease_s=10)
    assert ids(reclaimed) == [leased]
    assert row(store, in_process) == ("running", None, None, 0)


def test_heartbeat_renews_and_reports_lost_leases_and_cancels(store: Store) -> None:
    clock = Clock()
    queue = RunQueue(store, clock=clock)
    kept, lost = add_run(store, created_at=1.0), add_run(store, created_at=2.0)
    assert ids(queue.claim("w1", limit=2, lease_s=10)) == [kept, lost]
    assert queue.heartbeat("w1", set(), lease_s=10).lost == frozenset()

    clock.now += 8
    beat = queue.heartbeat("w1", {kept}, lease_s=10)
    assert beat.lost == frozenset() and beat.cancels == {}
    assert row(store, kept).lease_expires_at == clock.now + 10

    clock.now += 4  # `lost` expired, `kept` was renewed
    assert ids(queue.claim("w2", limit=5, lease_s=10)) == [lost]

    assert queue.request_cancel(kept, "alice") is True
    beat = queue.heartbeat("w1", {kept, lost}, lease_s=10)
    assert beat.lost == {lost}
    assert beat.cancels == {kept: "alice"}
    assert row(store, lost).lease_owner == "w2"  # a heartbeat never takes a lease back


def test_release_requeues_interrupted_runs_only(store: Store) -> None:
    clock = Clock()
    queue = RunQueue(store, clock=clock)
    interrupted, parked, done, untouched = (add_run(store, created_at=t) for t in range(4))
    assert len(queue.claim("w1", limit=4, lease_s=10)) == 4
    set_status(store, interrupted, "running")
    set_status(store, parked, "waiting_approval")
    set_status(store, done, "completed")

    assert queue.release("w2", interrupted) is False  # not w2's lease
    assert row(store, interrupted).lease_owner == "w1"
    for run_id in (interrupted, parked, done, untouched):
        assert queue.release("w1", run_id) is True
    assert row(store, interrupted) == ("queued", None, None, 1)
    assert row(store, parked) == ("waiting_approval", None, None, 1)
    assert row(store, done) == ("completed", None, None, 1)
    assert row(store, untouched) == ("queued", None, None, 1)
    assert queue.release("w1", interrupted) is False  # already released

    # Released runs are claimable at once, and each claim counts.
    assert ids(queue.claim("w2", limit=4, lease_s=10)) == [interrupted, untouched]
    assert row(store, interrupted).attempts == 2


def test_claim_only_takes_the_agents_a_worker_can_drive(store: Store) -> None:
    queue = RunQueue(store, clock=Clock())
    mine = add_run(store, agent="mine", created_at=2.0)
    add_run(store, agent="theirs", created_at=1.0)
    assert queue.claim("w1", limit=5, lease_s=10, agents=set()) == []
    (claim,) = queue.claim("w1", limit=5, lease_s=10, agents={"mine", "absent"})
    assert (claim.run_id, claim.agent) == (mine, "mine")


def test_agent_limits_cap_live_leases_across_owners(store: Store) -> None:
    clock = Clock()
    queue = RunQueue(store, clock=clock)
    capped = [add_run(store, agent="capped", created_at=t) for t in range(4)]
    free = [add_run(store, agent="free", created_at=10 + t) for t in range(2)]
    limits = {"capped": 2}

    first = queue.claim("w1", limit=10, lease_s=10, agent_limits=limits)
    assert ids(first) == [*capped[:2], *free]
    assert queue.claim("w2", limit=10, lease_s=10, agent_limits=limits) == []

    assert queue.release("w1", capped[0])  # a slot frees up: the oldest waiting run takes it
    assert ids(queue.claim("w2", limit=10, lease_s=10, agent_limits=limits)) == [capped[0]]
    assert queue.claim("w3", limit=10, lease_s=10, agent_limits=limits) == []

    clock.now += 11  # every lease expired: the slots count as free again
    again = queue.claim("w3", limit=10, lease_s=10, agent_limits=limits)
    assert ids(again) == [*capped[:2], *free]


def test_claim_run_leases_one_run_whatever_its_status(store: Store) -> None:
    clock = Clock()
    queue = RunQueue(store, clock=clock)
    parked = add_run(store, status="waiting_approval")
    queued = add_run(store)

    assert queue.claim_run(parked, "api", lease_s=10) is True
    assert row(store, parked) == ("waiting_approval", "api", clock.now + 10, 0)
    assert queue.claim_run(parked, "sweeper", lease_s=10) is False
    assert queue.claim_run("no-such-run", "api", lease_s=10) is False

    assert queue.claim_run(queued, "api", lease_s=10) is True
    assert queue.claim("w1", limit=5, lease_s=10) == []  # a worker does not take it meanwhile
    assert queue.release("api", queued)
    assert ids(queue.claim("w1", limit=5, lease_s=10)) == [queued]

    clock.now += 11
    assert queue.claim_run(parked, "sweeper", lease_s=10) is True
    assert row(store, parked).lease_owner == "sweeper"


def test_request_cancel_reaches_the_holder_or_the_next_claim(store: Store) -> None:
    clock = Clock()
    queue = RunQueue(store, clock=clock)
    held, waiting = add_run(store, created_at=1.0), add_run(store, created_at=2.0)
    assert ids(queue.claim("w1", limit=1, lease_s=10)) == [held]

    assert queue.request_cancel(held, "alice") is True  # w1 learns at its next heartbeat
    assert queue.request_cancel(waiting, "bob") is False  # nobody holds it
    (claim,) = queue.claim("w2", limit=5, lease_s=10)
    assert (claim.run_id, claim.cancel_requested_by) == (waiting, "bob")

    clock.now += 11  # w1 died: whoever claims the run next must cancel it
    (claim,) = queue.claim("w3", limit=1, lease_s=10)
    assert (claim.run_id, claim.cancel_requested_by) == (held, "alice")
    assert queue.request_cancel("no-such-run", "carol") is False


def test_depth_and_counts(store: Store) -> None:
    clock = Clock()
    queue = RunQueue(store, clock=clock)
    assert queue.depth() == 0 and queue.counts() == {}
    for tenant in ("t1", "t1", "t2", None):
        add_run(store, tenant=tenant, created_at=len(tenant or ""))
    add_run(store, status="running")
    add_run(store, status="completed", tenant="t1")
    assert queue.depth() == 4
    assert queue.depth(tenant="t1") == 2
    assert queue.depth(tenant="t3") == 0

    (claim,) = queue.claim("w1", limit=1, lease_s=10)  # the oldest: tenant None
    assert queue.depth() == 3
    assert queue.counts() == {"queued": 4, "running": 1, "completed": 1}
    set_status(store, claim.run_id, "running")
    assert queue.depth() == 3
    clock.now += 11  # its worker died mid-run: the run waits for a worker again
    assert queue.depth() == 4
    assert queue.depth(tenant="t1") == 2
    assert queue.release("w1", claim.run_id)
    assert queue.depth() == 4


def test_parked_since_finds_runs_past_a_deadline(store: Store) -> None:
    clock = Clock(time.time())
    queue = RunQueue(store, clock=clock)
    old, newer, leased = (add_run(store, status="waiting_approval") for _ in range(3))
    add_run(store, status="escalated")
    add_run(store, status="queued")
    now = time.time()
    with store.engine.begin() as conn:
        for run_id, age in ((old, 300), (newer, 200), (leased, 400)):
            conn.execute(runs.update().where(runs.c.id == run_id).values(updated_at=now - age))
    assert queue.claim_run(leased, "api", lease_s=60)

    assert queue.parked_since("waiting_approval", now - 100) == [old, newer]
    assert queue.parked_since("waiting_approval", now - 100, limit=1) == [old]
    assert queue.parked_since("waiting_approval", now - 250) == [old]
    assert queue.parked_since("waiting_approval", now - 1000) == []
    assert len(queue.parked_since("escalated", now + 1)) == 1
    clock.now += 61  # a lease taken for a decision that never came back expires
    assert queue.parked_since("waiting_approval", now - 100) == [leased, old, newer]


@pytest.mark.parametrize("limits", [None, {"a": 7}])
def test_concurrent_claims_never_share_a_run(store: Store, limits: dict[str, int] | None) -> None:
    """Threads claiming at once (FOR UPDATE SKIP LOCKED on PostgreSQL, BEGIN IMMEDIATE on
    SQLite) never get the same run, and an agent's cap holds across them."""
    total = 120
    for t in range(total):
        add_run(store, agent="a" if t % 2 else "b", created_at=float(t))
    queue = RunQueue(store)  # the real clock: leases of 60 s outlive the test
    start = threading.Barrier(6)
    claimed: list[list[str]] = [[] for _ in range(6)]
    errors: list[BaseException] = []

    def claimer(i: int) -> None:
        try:
            start.wait()
            while batch := queue.claim(f"w{i}", limit=3, lease_s=60, agent_limits=limits):
                claimed[i].extend(ids(batch))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=claimer, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    every = [run_id for batch in claimed for run_id in batch]
    assert len(every) == len(set(every))
    counts = queue.counts()
    assert counts == {"queued": total}
    with store.engine.connect() as conn:
        leased = dict(
            conn.execute(  # type: ignore[arg-type]
                sa.select(runs.c.agent, sa.func.count())
                .where(runs.c.lease_owner.is_not(None))
                .group_by(runs.c.agent)
            ).all()
        )
    if limits is None:
        assert len(every) == total
        assert leased == {"a": total // 2, "b": total // 2}
    else:
        assert leased == {"a": 7, "b": total // 2}
