"""The Temporal engine against a real Temporal dev server: runs come out as they do on the
built-in queue, a person's decision or answer reaches a parked run as a signal, a parked run
holds no worker slot, and a cancel stops the step in flight."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
import temporal_agents as agents
from temporal_harness import engine_settings, eventually, serving, wait_for
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowExecutionStatus

from bosun.data.queue import RunQueue
from bosun.data.store import Store
from bosun.gateway.people import People
from bosun.observe.tracing import trace_of
from bosun.runtime import Agent, Runtime
from bosun.service.temporal.messages import MODEL_CALL, STEP
from bosun.service.worker import Worker


def _view(store: Store, run_id: str) -> dict[str, Any]:
    """What a reader sees of a run (dashboard, API, audit, trace), ids and times left out."""
    row, journal = store.load(run_id)
    return {
        "status": row.status,
        "output": row.output,
        "error": row.error,
        "handoff": None if row.handoff is None else json.loads(row.handoff)["reason"],
        "tokens": (row.input_tokens, row.output_tokens),
        "journal": [(s.kind, s.status) for s in journal],
        # Parallel calls end in either order, on either engine: compared as multisets.
        "tools": sorted((s.tool, _result(s.payload)) for s in journal if s.kind == "tool_result"),
        "audit": sorted(a["action"] for a in store.audit_rows(run_id=run_id)),
        "spans": sorted(s.name for s in trace_of(store, run_id).spans),
    }


def _result(payload: str) -> tuple[Any, ...]:
    result = json.loads(payload)["result"]
    return result["ok"], result["data"], result["error_kind"], result["attempts"]


async def _through_queue(runtime: Runtime, agent: Agent, store: Store) -> dict[str, str]:
    ids = {task: await runtime.start(agent, task) for task in agents.SHAPES}
    stop = asyncio.Event()
    worker = Worker(runtime, settings=runtime.settings.service)
    serving_queue = asyncio.create_task(worker.serve(stop))
    try:
        await wait_for(store, ids.values(), {"completed", "escalated"}, what="the queue")
    finally:
        stop.set()
        await serving_queue
    return ids


async def test_runs_come_out_as_on_the_builtin_queue(
    db_url: str, temporal_address: str, effects_dir: Path
) -> None:
    settings = engine_settings(db_url, temporal_address)
    store = Store.open(db_url)
    try:
        # One store, both engines, one after the other: each engine's runs are its own.
        async with Runtime(store=store, settings=settings) as rt:
            queued = await _through_queue(rt, agents.shapes(), store)
        async with Runtime(store=store, settings=settings) as rt:
            agent = agents.shapes()
            rt.register(agent)
            ids = {task: await rt.start(agent, task) for task in agents.SHAPES}
            async with serving(rt, settings):
                await wait_for(store, ids.values(), {"completed", "escalated"}, what="Temporal")
        for task in agents.SHAPES:
            assert _view(store, ids[task]) == _view(store, queued[task]), task
        # Budgets, and the driver's and the tool pipeline's retries, are bosun's on both
        # engines: journaled the same, not left to Temporal.
        assert _view(store, ids["budget"])["handoff"].startswith("step budget exhausted")
        assert ("model_error", "unavailable") in _view(store, ids["flaky-model"])["journal"]
        assert _view(store, ids["flaky-tool"])["tools"] == [("flaky", (True, "ok k", None, 2))]
        assert store.verify_audit().ok
    finally:
        store.close()


async def _history(engine: Any, run_id: str) -> list[Any]:
    history = await engine.client.get_workflow_handle(run_id).fetch_history()
    return list(history.events)


async def test_an_approval_and_a_hand_back_reach_parked_runs_as_signals(
    db_url: str, temporal_address: str
) -> None:
    settings = engine_settings(db_url, temporal_address)
    store = Store.open(db_url)
    try:
        async with Runtime(
            store=store, settings=settings, agents=[agents.approvals, agents.asker]
        ) as rt:
            run_id = await rt.start(agents.approvals, "refund order 7")
            asked = await rt.start(agents.asker, "refund my order")
            async with serving(rt, settings) as engine:
                await wait_for(store, [run_id], {"waiting_approval"})
                await wait_for(store, [asked], {"waiting_human"})
                handle = engine.client.get_workflow_handle(run_id)
                assert (await handle.describe()).status is WorkflowExecutionStatus.RUNNING
                [held] = (await rt.result(run_id)).waiting_for
                # The API's path: the decision (or the answer) is journaled and the run
                # queued; the dispatcher wakes the workflow.
                people = People(rt)
                await people.decide(run_id, held.id, approved=True, by="alice")
                await people.hand_back(asked, "order A7", by="erin")
                await wait_for(store, [run_id, asked])
                assert await handle.result() == "completed"
                assert await engine.client.get_workflow_handle(asked).result() == "completed"
                done = await _history(engine, run_id)
        answer = json.loads(store.get_run(asked).output.removeprefix("noted: "))
        assert answer == {"ok": True, "data": {"answer": "order A7", "answered_by": "erin"}}
        assert "hand_back" in _view(store, asked)["audit"]
        view = _view(store, run_id)
        assert view["output"] == "refund handled"
        assert view["tools"] == [("refund", (True, "refunded 40", None, 1))]
        kinds_in_journal = [k for k, _ in view["journal"]]
        assert kinds_in_journal[-6:] == [
            "approval_requested",
            "approval_decided",
            "tool_started",
            "tool_result",
            "model_response",
            "run_finished",
        ]
        kinds = [e.event_type for e in done]
        signals = [
            i for i, k in enumerate(kinds) if k == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
        ]
        # One wake to start the workflow, one for the decision.
        assert len(signals) == 2
        waiting, after = kinds[: signals[1]], done[signals[1] :]
        # While the run waited, no step was scheduled or running: the workflow was a wait.
        assert waiting.count(EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED) == waiting.count(
            EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED
        )
        # After the signal: a step that reads the journal back and runs the approved call,
        # then the model's answer.
        scheduled = [
            e.activity_task_scheduled_event_attributes.activity_type.name
            for e in after
            if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        ]
        assert scheduled == [STEP, MODEL_CALL]
    finally:
        store.close()


async def test_a_parked_run_holds_no_worker_slot(
    db_url: str, temporal_address: str, effects_dir: Path
) -> None:
    # One step at a time in this worker: a run waiting for a person that held its slot
    # would stop every other run.
    settings = engine_settings(db_url, temporal_address, concurrency=1)
    store = Store.open(db_url)
    try:
        async with Runtime(
            store=store, settings=settings, agents=[agents.approvals, agents.effects]
        ) as rt:
            parked = await rt.start(agents.approvals, "refund order 8")
            async with serving(rt, settings) as engine:
                await wait_for(store, [parked], {"waiting_approval"})
                others = [await rt.start(agents.effects, f"job {i}") for i in range(3)]
                finished = await wait_for(store, others)
                assert set(finished.values()) == {"completed"}
                assert store.get_run(parked).status == "waiting_approval"
                described = await engine.client.get_workflow_handle(parked).describe()
                assert described.status is WorkflowExecutionStatus.RUNNING
                assert not described.raw_description.pending_activities  # just a wait
                [held] = (await rt.result(parked)).waiting_for
                await People(rt).decide(parked, held.id, approved=True, by="bob")
                assert (await wait_for(store, [parked]))[parked] == "completed"
    finally:
        store.close()


async def test_a_cancel_reaches_the_step_in_flight(
    db_url: str, temporal_address: str, effects_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEMPORAL_TEST_DELAY", "1.0")  # each effect takes a second
    settings = engine_settings(db_url, temporal_address)
    store = Store.open(db_url)
    try:
        async with Runtime(store=store, settings=settings, agents=[agents.effects]) as rt:
            run_id = await rt.start(agents.effects, "job")
            async with serving(rt, settings) as engine:
                await eventually(lambda: bool(agents.executions()), "the first effect")
                # The API's path for a run leased elsewhere: ask, and its step's next
                # heartbeat cancels it through bosun's driver.
                assert RunQueue(store).request_cancel(run_id, "carol")
                assert (await wait_for(store, [run_id]))[run_id] == "cancelled"
                assert await engine.client.get_workflow_handle(run_id).result() == "cancelled"
        assert len(agents.executions()) == 1  # nothing ran after the cancel
        assert store.get_run(run_id).error == "cancelled by carol"
    finally:
        store.close()


async def test_a_parked_run_cancelled_through_the_api_closes_its_workflow(
    db_url: str, temporal_address: str
) -> None:
    settings = engine_settings(db_url, temporal_address, sweep_s=0.2)
    store = Store.open(db_url)
    try:
        async with Runtime(store=store, settings=settings, agents=[agents.approvals]) as rt:
            run_id = await rt.start(agents.approvals, "refund order 9")
            async with serving(rt, settings) as engine:
                await wait_for(store, [run_id], {"waiting_approval"})
                # The API's path (Gateway.cancel): ask; if nobody leases the run, cancel it
                # under a lease of its own (nothing queues it afterwards); if the step that
                # parked it still does, that step cancels it.
                queue = RunQueue(store)
                if not queue.request_cancel(run_id, "carol") and queue.claim_run(
                    run_id, "api:carol", lease_s=5
                ):
                    await rt.cancel(run_id, by="carol")
                    queue.release("api:carol", run_id)
                # Without the dispatcher's wake the workflow would wait for its hourly look.
                handle = engine.client.get_workflow_handle(run_id)
                assert await asyncio.wait_for(handle.result(), 30) == "cancelled"
        assert store.get_run(run_id).status == "cancelled"
    finally:
        store.close()
