"""`Worker` in-process on both backends: claiming, driving, leases, cancels, shutdown, deadlines.

Runs are submitted by a separate `Runtime` (as an API process would) and driven by a worker
whose runtime registers the agent. The scripted model reads its plan from the run's input
(``"record:a wait:slow record:b"``: one tool call per word, then ``done``), so any runtime
answers the same for the same conversation.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from typing import Any

import sqlalchemy as sa

from bosun.config import ServiceSettings
from bosun.data.queue import RunQueue
from bosun.data.schema import runs
from bosun.data.store import Store
from bosun.errors import StoreError
from bosun.models.base import ModelRequest
from bosun.runtime import Agent, RunStatus, Runtime
from bosun.service.worker import APPROVAL_TIMEOUT, ESCALATION_TIMEOUT, Worker
from bosun.testing import Fault, ScriptedModel, call, reply
from bosun.testing.scripted import ScriptItem
from bosun.tools import ToolContext, tool


class World:
    """What the tools did, and gates that hold a ``wait`` call until the test opens them."""

    def __init__(self) -> None:
        self.effects: list[tuple[str, str]] = []
        """(run, item) per execution: a replayed effect shows up twice."""
        self.gates: defaultdict[str, asyncio.Event] = defaultdict(asyncio.Event)
        self.entered: list[str] = []
        self.cancelled: list[str] = []
        self.active = 0
        self.most_active = 0

    def count(self, run_id: str, item: str) -> int:
        return self.effects.count((run_id, item))


def plan(request: ModelRequest) -> ScriptItem:
    # A function of the conversation: the n-th assistant turn makes the n-th planned call.
    words = str(next(m.content for m in request.messages if m.role == "user")).split()
    turn = sum(m.role == "assistant" for m in request.messages)
    if turn >= len(words):
        return reply("done")
    name, _, item = words[turn].partition(":")
    if name == "refuse":
        return Fault.refusal()
    if name == "ask_human":
        return call("ask_human", {"question": f"what about {item}?"})
    return call(name, {"item": item})


def make_agent(world: World, *, name: str = "worker-test", ask_human: bool = False) -> Agent:
    @tool(side_effect=True, idempotent=True)
    def record(ctx: ToolContext, item: str) -> str:
        """Record an item."""
        world.effects.append((ctx.run_id, item))
        return f"recorded {item}"

    @tool(side_effect=True, idempotent=True)
    async def wait(ctx: ToolContext, item: str) -> str:
        """Record an item once its gate opens."""
        world.entered.append(ctx.run_id)
        world.active += 1
        world.most_active = max(world.most_active, world.active)
        try:
            await world.gates[item].wait()
        except asyncio.CancelledError:
            world.cancelled.append(ctx.run_id)
            raise
        finally:
            world.active -= 1
        world.effects.append((ctx.run_id, item))
        return f"waited for {item}"

    @tool(side_effect=True, requires_approval=True)
    def approve_me(ctx: ToolContext, item: str) -> str:
        """Record an item, once a person approves."""
        world.effects.append((ctx.run_id, item))
        return f"approved {item}"

    return Agent(
        name=name,
        tools=[record, wait, approve_me],
        model=ScriptedModel(plan),
        ask_human=ask_human,
    )


def service(**overrides: Any) -> ServiceSettings:
    options: dict[str, Any] = {
        "lease_s": 1.0,
        "poll_s": 0.02,
        "sweep_s": 3600.0,  # deadlines are swept by hand, with a fake clock
        "concurrency": 4,
        "shutdown_grace_s": 1.0,
    }
    return ServiceSettings(**{**options, **overrides})


@asynccontextmanager
async def serving(worker: Worker) -> AsyncIterator[Worker]:
    stop = asyncio.Event()
    task = asyncio.create_task(worker.serve(stop))
    try:
        yield worker
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)


async def until(condition: Callable[[], bool], *, within: float = 15.0) -> None:
    """Wait for `condition` (polled); fail the test if it does not hold in time."""
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


def status(store: Store, run_id: str) -> str:
    return store.get_run(run_id).status


def terminal(store: Store, run_ids: Iterable[str]) -> Callable[[], bool]:
    return lambda: all(RunStatus(status(store, r)).terminal for r in run_ids)


def lease(store: Store, run_id: str) -> tuple[str | None, int]:
    query = sa.select(runs.c.lease_owner, runs.c.attempts).where(runs.c.id == run_id)
    with store.engine.connect() as conn:
        owner, attempts = conn.execute(query).one()
    return owner, attempts


def kinds(store: Store, run_id: str) -> list[str]:
    return [step.kind for step in store.journal(run_id)]


def entries(store: Store, run_id: str, kind: str) -> list[dict[str, Any]]:
    return [json.loads(s.payload) for s in store.journal(run_id) if s.kind == kind]


def audited(store: Store, run_id: str) -> list[tuple[str, str | None]]:
    return [(r["action"], r["approver"]) for r in store.audit_rows(run_id=run_id)]


async def test_worker_drives_queued_runs_to_completion(store: Store) -> None:
    world = World()
    agent = make_agent(world)
    stranger = Agent(name="stranger", model=ScriptedModel(["never asked"]))
    async with Runtime(store=store) as api, Runtime(store=store, agents=[agent]) as rt:
        run_ids = [await api.start(agent, f"record:{i}a record:{i}b") for i in range(6)]
        foreign = await api.start(stranger, "nobody here drives me")
        worker = Worker(rt, settings=service(concurrency=4))
        async with serving(worker):
            await until(terminal(store, run_ids))
            assert await worker.claim() == []  # the stranger's run is not this worker's
        for run_id in run_ids:
            result = await api.result(run_id)
            assert (result.status, result.output) == (RunStatus.COMPLETED, "done")
            assert lease(store, run_id) == (None, 1)
            assert kinds(store, run_id).count("run_finished") == 1
        assert sorted(world.effects) == sorted(
            (run_id, f"{i}{x}") for i, run_id in enumerate(run_ids) for x in "ab"
        )
        assert worker.driven == 6
        assert (status(store, foreign), lease(store, foreign)) == ("queued", (None, 0))
        assert kinds(store, foreign) == ["run_started"]


async def test_concurrency_limit_holds(store: Store) -> None:
    world = World()
    agent = make_agent(world)
    async with Runtime(store=store) as api, Runtime(store=store, agents=[agent]) as rt:
        run_ids = [await api.start(agent, "wait:gate record:after") for _ in range(7)]
        worker = Worker(rt, settings=service(concurrency=3))
        async with serving(worker):
            await until(lambda: world.active == 3)
            assert await worker.claim() == []  # no free slot
            assert len(worker.in_flight) == 3
            assert RunQueue(store).depth() == 4
            world.gates["gate"].set()
            await until(terminal(store, run_ids))
        assert world.most_active == 3
        assert {status(store, r) for r in run_ids} == {"completed"}
        assert Counter(item for _, item in world.effects) == {"gate": 7, "after": 7}


async def test_in_process_runs_are_never_claimed(store: Store) -> None:
    world = World()
    agent = make_agent(world)
    async with Runtime(store=store, agents=[agent]) as local, Runtime(store=store) as rt:
        rt.register(agent)
        driven_here = asyncio.create_task(local.run(agent, "wait:held"))
        await until(lambda: bool(world.entered))
        (run_id,) = world.entered
        worker = Worker(rt, settings=service())
        async with serving(worker):
            assert await worker.claim() == []
            assert worker.in_flight == frozenset()
            world.gates["held"].set()
            result = await driven_here
        assert result.status is RunStatus.COMPLETED
        assert lease(store, run_id) == (None, 0)
        assert world.effects == [(run_id, "held")]


async def test_approval_parks_without_a_lease_and_a_decision_requeues(store: Store) -> None:
    world = World()
    agent = make_agent(world)
    async with Runtime(store=store) as api, Runtime(store=store, agents=[agent]) as rt:
        run_id = await api.start(agent, "approve_me:x record:y")
        worker = Worker(rt, settings=service())
        async with serving(worker):
            await until(lambda: status(store, run_id) == "waiting_approval")
            await until(lambda: not worker.in_flight)
            assert lease(store, run_id) == (None, 1)
            assert await worker.claim() == []  # parked runs are nobody's work
            (held,) = (await api.result(run_id)).waiting_for
            await api.decide(run_id, held.id, approved=True, decided_by="alice", resume=False)
            worker.notify()
            await until(terminal(store, [run_id]))
        assert status(store, run_id) == "completed"
        assert lease(store, run_id) == (None, 2)
        assert world.effects == [(run_id, "x"), (run_id, "y")]
        assert ("approval", "alice") in audited(store, run_id)


async def test_cancel_reaches_the_worker_driving_the_run(store: Store) -> None:
    world = World()
    agent = make_agent(world)
    async with Runtime(store=store) as api, Runtime(store=store, agents=[agent]) as rt:
        run_id = await api.start(agent, "record:a wait:forever record:b")
        worker = Worker(rt, settings=service(lease_s=0.6))
        async with serving(worker):
            await until(lambda: run_id in world.entered)
            assert RunQueue(store).request_cancel(run_id, "bob") is True
            await until(lambda: status(store, run_id) == "cancelled")
            await until(lambda: not worker.in_flight)
        assert world.cancelled == [run_id]
        assert world.effects == [(run_id, "a")]
        assert kinds(store, run_id)[-1] == "run_finished"
        (finished,) = entries(store, run_id, "run_finished")
        assert (finished["status"], finished["error"]) == ("cancelled", "cancelled by bob")
        assert ("run_finished", "bob") in audited(store, run_id)
        assert lease(store, run_id) == (None, 1)


async def test_a_run_cancelled_while_queued_is_cancelled_without_driving(store: Store) -> None:
    world = World()
    agent = make_agent(world)
    async with Runtime(store=store) as api, Runtime(store=store, agents=[agent]) as rt:
        run_id = await api.start(agent, "record:a")
        assert RunQueue(store).request_cancel(run_id, "bob") is False
        worker = Worker(rt, settings=service())
        async with serving(worker):
            await until(terminal(store, [run_id]))
        assert status(store, run_id) == "cancelled"
        assert kinds(store, run_id) == ["run_started", "run_finished"]
        assert ("run_cancelled", "bob") in audited(store, run_id)
        assert world.effects == []


async def test_a_lost_lease_stops_the_worker_writing(store: Store) -> None:
    world = World()
    agent = make_agent(world)
    async with Runtime(store=store) as api, Runtime(store=store, agents=[agent]) as rt:
        run_id = await api.start(agent, "record:a wait:stuck record:b")
        worker = Worker(rt, settings=service(lease_s=0.6))
        async with serving(worker):
            await until(lambda: run_id in world.entered)
            # Another worker whose clock says the lease expired takes the run.
            thief = RunQueue(store, clock=lambda: time.time() + 1000)
            (taken,) = thief.claim("thief", limit=1, lease_s=10_000)
            assert (taken.run_id, taken.attempts) == (run_id, 2)
            await until(lambda: not worker.in_flight)
            assert world.cancelled == [run_id]
            before = store.journal(run_id)
            world.gates["stuck"].set()  # had the worker kept driving, it would go on now
        await rt.aclose()
        assert store.journal(run_id) == before
        assert lease(store, run_id) == ("thief", 2)  # not released: the lease is the thief's
        assert status(store, run_id) == "running"

        # The thief hands the run back; any worker finishes it from the journal.
        assert thief.release("thief", run_id)
        async with (
            Runtime(store=store, agents=[agent]) as rt2,
            serving(Worker(rt2, settings=service())),
        ):
            await until(terminal(store, [run_id]))
        assert status(store, run_id) == "completed"
        assert world.effects == [(run_id, "a"), (run_id, "stuck"), (run_id, "b")]


async def test_shutdown_hands_back_what_cannot_finish_in_the_grace_period(store: Store) -> None:
    world = World()
    agent = make_agent(world)
    async with Runtime(store=store) as api:
        slow = [await api.start(agent, "record:a wait:slow record:b") for _ in range(3)]
        quick = await api.start(agent, "record:a wait:quick")
        async with Runtime(store=store, agents=[agent]) as rt:
            worker = Worker(rt, settings=service(shutdown_grace_s=2.0))
            stop = asyncio.Event()
            serve = asyncio.create_task(worker.serve(stop))
            await until(lambda: len(world.entered) == 4)
            stop.set()
            await asyncio.sleep(0)  # let shutdown begin, then let the quick run finish
            world.gates["quick"].set()
            await asyncio.wait_for(serve, 15)
            assert worker.in_flight == frozenset()
        assert status(store, quick) == "completed"
        for run_id in slow:
            assert (status(store, run_id), lease(store, run_id)) == ("queued", (None, 1))
            # record:a is durable, and so is the call to wait: interrupted, not finished.
            assert [e["tool"] for e in entries(store, run_id, "tool_result")] == ["record"]
            assert kinds(store, run_id)[-1] == "model_response"
        assert sorted(world.cancelled) == sorted(slow)
        assert Counter(item for _, item in world.effects) == {"a": 4, "quick": 1}

        world.gates["slow"].set()
        async with (
            Runtime(store=store, agents=[agent]) as rt2,
            serving(Worker(rt2, settings=service())),
        ):
            await until(terminal(store, slow))
        for run_id in slow:
            assert status(store, run_id) == "completed"
            assert lease(store, run_id) == (None, 2)
            assert [world.count(run_id, x) for x in ("a", "slow", "b")] == [1, 1, 1]


class Offset:
    """The real clock plus an offset the test moves (the store stamps rows with real time)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


async def test_approval_deadline_rejects_the_held_call(store: Store) -> None:
    world = World()
    agent = make_agent(world)
    clock = Offset()
    settings = service(approval_timeout_s=60, on_approval_timeout="reject")
    async with Runtime(store=store) as api, Runtime(store=store, agents=[agent]) as rt:
        run_id = await api.start(agent, "approve_me:x")
        worker = Worker(rt, settings=settings, clock=clock)
        async with serving(worker):
            await until(lambda: status(store, run_id) == "waiting_approval")
            await until(lambda: not worker.in_flight)
            await worker.sweep()
            assert status(store, run_id) == "waiting_approval"
            clock.offset = 120
            await worker.sweep()
            await until(terminal(store, [run_id]))
        assert status(store, run_id) == "completed"
        (decision,) = entries(store, run_id, "approval_decided")
        assert (decision["approved"], decision["decided_by"]) == (False, APPROVAL_TIMEOUT)
        assert decision["reason"] == "no decision before the approval deadline"
        (result,) = entries(store, run_id, "tool_result")
        assert result["result"]["ok"] is False
        assert world.effects == []


async def test_approval_deadline_can_escalate_again(store: Store) -> None:
    world = World()
    agent = make_agent(world)
    clock = Offset()
    settings = service(approval_timeout_s=60, on_approval_timeout="escalate")
    async with Runtime(store=store, agents=[agent]) as rt:
        run_id = (await rt.run(agent, "approve_me:x")).run_id
        worker = Worker(rt, settings=settings, clock=clock)
        clock.offset = 120
        await worker.sweep()
        await worker.sweep()
        assert status(store, run_id) == "waiting_approval"
        assert [e["level"] for e in entries(store, run_id, "approval_timeout")] == [1, 2]
        assert audited(store, run_id).count(("approval_timeout", APPROVAL_TIMEOUT)) == 2
        assert lease(store, run_id) == (None, 0)


async def test_escalation_deadline_closes_parked_runs(store: Store) -> None:
    world = World()
    agent = make_agent(world, ask_human=True)
    clock = Offset()
    settings = service(escalation_timeout_s=60, on_escalation_timeout="close")
    async with Runtime(store=store, agents=[agent]) as rt:
        escalated = (await rt.run(agent, "refuse")).run_id
        asking = (await rt.run(agent, "ask_human:x")).run_id
        held = (await rt.run(agent, "refuse")).run_id
        assert [status(store, r) for r in (escalated, asking, held)] == [
            "escalated",
            "waiting_human",
            "escalated",
        ]
        # Someone (an API process answering it) holds this one: the sweep leaves it alone.
        assert RunQueue(store).claim_run(held, "api", lease_s=1000)
        worker = Worker(rt, settings=settings, clock=clock)
        await worker.sweep()
        assert status(store, escalated) == "escalated"
        clock.offset = 120
        await worker.sweep()
        for run_id in (escalated, asking):
            assert status(store, run_id) == "cancelled"
            (finished,) = entries(store, run_id, "run_finished")[-1:]
            assert finished["error"] == "closed: nobody answered the escalation before its deadline"
            assert ("escalation_timeout", ESCALATION_TIMEOUT) in audited(store, run_id)
            assert lease(store, run_id) == (None, 0)
        assert status(store, held) == "escalated"
        assert lease(store, held)[0] == "api"


async def test_escalation_deadline_escalates_again(store: Store) -> None:
    world = World()
    agent = make_agent(world)
    clock = Offset()
    settings = service(escalation_timeout_s=60, on_escalation_timeout="escalate")
    async with Runtime(store=store, agents=[agent]) as rt:
        run_id = (await rt.run(agent, "refuse")).run_id
        worker = Worker(rt, settings=settings, clock=clock)
        clock.offset = 120
        await worker.sweep()
        await worker.sweep()
        clock.offset = 0
        await worker.sweep()  # the note restarted the timer
        assert status(store, run_id) == "escalated"
        notes = entries(store, run_id, "escalation_timeout")
        assert [(n["policy"], n["level"]) for n in notes] == [("escalate", 1), ("escalate", 2)]
        assert audited(store, run_id).count(("escalation_timeout", ESCALATION_TIMEOUT)) == 2


async def test_a_run_claimed_too_often_is_failed(store: Store) -> None:
    world = World()
    agent = make_agent(world)
    model = agent.model
    assert isinstance(model, ScriptedModel)
    async with Runtime(store=store) as api, Runtime(store=store, agents=[agent]) as rt:
        run_id = await api.start(agent, "record:a")
        other = RunQueue(store)
        for _ in range(2):  # two workers died holding it
            (claim,) = other.claim("doomed", limit=1, lease_s=60)
            assert other.release("doomed", claim.run_id)
        worker = Worker(rt, settings=service(max_attempts=2))
        async with serving(worker):
            await until(terminal(store, [run_id]))
        assert status(store, run_id) == "failed"
        (finished,) = entries(store, run_id, "run_finished")
        assert finished["error"].startswith("gave up after 2 claims")
        assert ("run_abandoned", worker.owner) in audited(store, run_id)
        assert lease(store, run_id) == (None, 3)
        assert model.requests == []
        assert world.effects == []


async def _claim_and_lose(
    rt: Runtime, run_id: str, settings: ServiceSettings, world: World, entered: int
) -> None:
    """A worker of its own claims the run, drives it until the `entered`-th ``wait`` starts,
    and loses it there (its process went away mid-step): nothing more is written."""
    worker = Worker(rt, settings=settings)
    assert [c.run_id for c in await worker.claim()] == [run_id]
    ended = terminal(rt.store, [run_id])
    await until(lambda: len(world.entered) == entered or ended())
    assert not ended(), rt.store.get_run(run_id)
    await rt.abandon(run_id)
    await until(lambda: not worker.in_flight)


async def test_claims_that_moved_the_run_on_do_not_count_against_it(store: Store) -> None:
    world = World()
    agent = make_agent(world)
    settings = service(lease_s=0.5, max_attempts=2)
    async with Runtime(store=store) as api, Runtime(store=store, agents=[agent]) as rt:
        run_id = await api.start(agent, "wait:g1 wait:g2 wait:g3")
        # Three workers in a row lose it, each after finishing a step the one before could not.
        await _claim_and_lose(rt, run_id, settings, world, entered=1)  # in g1
        world.gates["g1"].set()
        await _claim_and_lose(rt, run_id, settings, world, entered=3)  # g1 again, then g2
        world.gates["g2"].set()
        await _claim_and_lose(rt, run_id, settings, world, entered=5)  # g2 again, then g3
        world.gates["g3"].set()
        worker = Worker(rt, settings=settings)
        async with serving(worker):
            await until(terminal(store, [run_id]))
        assert status(store, run_id) == "completed"
        assert lease(store, run_id) == (None, 4)
        # Every claim journaled something (at least the model's answer) before it was lost.
        marks = [(e["attempt"], e["stalled"]) for e in entries(store, run_id, "run_reclaimed")]
        assert marks == [(2, 0), (3, 0), (4, 0)]


async def test_a_stuck_run_whose_effects_happened_is_escalated_not_failed(store: Store) -> None:
    world = World()
    agent = make_agent(world)
    settings = service(lease_s=0.5, max_attempts=2)
    async with Runtime(store=store) as api, Runtime(store=store, agents=[agent]) as rt:
        run_id = await api.start(agent, "record:charged wait:never")
        for entered in (1, 2, 3):  # every claim dies in the same step after the effect
            await _claim_and_lose(rt, run_id, settings, world, entered=entered)
        worker = Worker(rt, settings=settings)
        async with serving(worker):
            await until(lambda: status(store, run_id) not in ("queued", "running"))
        assert world.effects == [(run_id, "charged")]
        assert status(store, run_id) == "escalated"
        (finished,) = entries(store, run_id, "run_finished")
        assert finished["error"] is None
        handoff = finished["handoff"]
        assert handoff["reason"].startswith("gave up after 2 claims in a row")
        assert "side effects may already have happened" in handoff["reason"]
        assert [a["tool"] for a in handoff["actions_taken"]] == ["record"]
        assert ("run_abandoned", worker.owner) in audited(store, run_id)
        assert lease(store, run_id) == (None, 4)


async def test_a_worker_reclaiming_its_own_run_drives_it_once(store: Store) -> None:
    world = World()
    agent = make_agent(world)
    clock = Offset()
    async with Runtime(store=store) as api, Runtime(store=store, agents=[agent]) as rt:
        run_id = await api.start(agent, "wait:gate")
        worker = Worker(rt, settings=service(lease_s=5), clock=clock)
        async with serving(worker):
            await until(lambda: run_id in world.entered)
            clock.offset = 6  # its own heartbeat came too late: the lease lapsed
            assert await worker.claim() == []
            assert worker.in_flight == {run_id}
            assert lease(store, run_id) == (worker.owner, 2)
            world.gates["gate"].set()
            await until(terminal(store, [run_id]))
            await until(lambda: not worker.in_flight)
        assert status(store, run_id) == "completed"
        assert world.entered == [run_id]
        assert world.effects == [(run_id, "gate")]
        assert lease(store, run_id) == (None, 2)


async def test_a_failed_claim_does_not_stop_the_worker(store: Store) -> None:
    world = World()
    agent = make_agent(world)
    async with Runtime(store=store) as api, Runtime(store=store, agents=[agent]) as rt:
        run_id = await api.start(agent, "record:a")
        worker = Worker(rt, settings=service())
        claim = worker.queue.claim
        failures = []

        def flaky(*args: Any, **kwargs: Any) -> Any:
            if not failures:
                failures.append(1)
                raise StoreError("the store failed: connection reset")
            return claim(*args, **kwargs)

        worker.queue.claim = flaky  # type: ignore[method-assign]
        async with serving(worker):
            await until(terminal(store, [run_id]))
        assert failures == [1]
        assert status(store, run_id) == "completed"


async def test_background_jobs_run_each_sweep_and_one_failing_stops_none(store: Store) -> None:
    ran: list[str] = []

    async def broken() -> None:
        ran.append("broken")
        raise RuntimeError("the judge is down")

    async def fine() -> None:
        ran.append("fine")

    async with Runtime(store=store, agents=[make_agent(World())]) as rt:
        worker = Worker(rt, settings=service(), background=[broken, fine])
        await worker.sweep()
        await worker.sweep()
    assert ran == ["broken", "fine", "broken", "fine"]


async def test_the_service_settings_build_the_background_jobs(store: Store) -> None:
    from bosun.config import load_settings
    from bosun.prompts.registry import PromptRef, PromptRegistry, PromptSource
    from bosun.service.compose import background_jobs

    registry = PromptRegistry(store)
    registry.create("desk", "1.0.0", "Be careful.", by="pat")
    versioned = Agent(
        name="versioned",
        instructions=PromptSource(registry, PromptRef("desk")),
        model=ScriptedModel([reply("ok")]),
    )
    async with Runtime(store=store, agents=[make_agent(World()), versioned]) as rt:
        jobs = background_jobs(rt, load_settings(), store=store)
        assert [j.__qualname__ for j in jobs] == [
            "OnlineEvaluator.score_due",
            "ShadowRunner.shadow_due",
            "MemoryUpkeep.prune_due",
        ]
        none = background_jobs(
            rt,
            load_settings(online={"enabled": False, "shadow": False}, memory={"prune_every_s": 0}),
            store=store,
        )
        assert none == []
