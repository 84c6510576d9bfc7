"""Resuming interrupted runs in a new runtime: idempotent re-run, reconcile, escalate.

A worker that stops mid tool call (here: its task is cancelled, as on shutdown) leaves a
`tool_started` entry with no result. A new runtime resumes from the journal.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from inline_snapshot import snapshot

from bosun.data.store import Store
from bosun.runtime import Agent, RunStatus, Runtime
from bosun.testing import Fault, ScriptedModel, call, reply
from bosun.tools import Reconciliation, ToolContext, tool


class World:
    """The outside world a tool changes, and a gate to stop the first call mid-flight."""

    def __init__(self) -> None:
        self.effects: list[str] = []
        self.block_first = True
        self.entered = asyncio.Event()

    async def act(self, key: str) -> None:
        self.effects.append(key)
        if self.block_first:
            self.block_first = False
            self.entered.set()
            await asyncio.Event().wait()  # hangs until the task is cancelled


async def interrupt(store: Store, agent: Agent, world: World) -> str:
    """Start a run and stop its worker while the tool is mid-call."""
    async with Runtime(store=store) as rt:
        run_id = await rt.start(agent, "do it")
        task = asyncio.create_task(rt.resume(run_id))
        await asyncio.wait_for(world.entered.wait(), 5)
        task.cancel()  # not Runtime.cancel: the run is not cancelled, the worker just stopped
        with pytest.raises(asyncio.CancelledError):
            await task
    journal = [s.kind for s in store.journal(run_id)]
    assert journal[-1] == "tool_started"
    return run_id


def script() -> ScriptedModel:
    # A function of the conversation, so a new runtime continues where the journal ends.
    plan = [call("pay", {"amount": 5}, id="p1"), reply("paid")]
    return ScriptedModel(lambda request: plan[sum(m.role == "assistant" for m in request.messages)])


async def test_non_idempotent_without_reconciler_escalates(store: Store) -> None:
    world = World()

    @tool(side_effect=True, risk="irreversible")
    async def pay(ctx: ToolContext, amount: int) -> str:
        """Pay."""
        await world.act(ctx.idempotency_key)
        return "ok"

    agent = Agent(name="payer", tools=[pay], model=script())
    run_id = await interrupt(store, agent, world)
    async with Runtime(store=store, agents=[agent]) as rt:
        result = await rt.resume(run_id)
    assert result.status is RunStatus.ESCALATED
    assert result.handoff is not None
    assert "interrupted mid-call" in result.handoff.reason
    assert result.handoff.pending_question == 'Did pay({"amount":5}) take effect?'
    assert len(world.effects) == 1  # never ran a second time


@pytest.mark.parametrize("happened", [True, False])
async def test_reconciler_decides(store: Store, happened: bool) -> None:
    world = World()

    @tool(side_effect=True, risk="irreversible")
    async def pay(ctx: ToolContext, amount: int) -> str:
        """Pay."""
        await world.act(ctx.idempotency_key)
        return "ok"

    @pay.reconciler
    def check(args: dict[str, Any], ctx: ToolContext) -> Reconciliation:
        if happened:
            return Reconciliation(done=True, data="already paid")
        world.effects.clear()  # the payment provider says it never went through
        return Reconciliation(done=False)

    agent = Agent(name="payer", tools=[pay], model=script())
    run_id = await interrupt(store, agent, world)
    async with Runtime(store=store, agents=[agent]) as rt:
        result = await rt.resume(run_id)
    assert result.status is RunStatus.COMPLETED
    assert len(world.effects) == 1
    tool_results = [json.loads(s.payload) for s in store.journal(run_id) if s.kind == "tool_result"]
    assert [r["result"]["data"] for r in tool_results] == ["already paid" if happened else "ok"]


async def test_idempotent_tool_runs_again_with_the_same_key(store: Store) -> None:
    world = World()

    @tool(side_effect=True, risk="write", idempotent=True)
    async def pay(ctx: ToolContext, amount: int) -> str:
        """Pay (the provider deduplicates by key)."""
        await world.act(ctx.idempotency_key)
        return "ok"

    agent = Agent(name="payer", tools=[pay], model=script())
    async with Runtime(store=store) as rt:
        run_id = await rt.start(agent, "do it")
        task = asyncio.create_task(rt.resume(run_id))
        await asyncio.wait_for(world.entered.wait(), 5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    async with Runtime(store=store, agents=[agent]) as rt:
        result = await rt.resume(run_id)
    assert result.status is RunStatus.COMPLETED
    assert len(world.effects) == 2
    assert world.effects[0] == world.effects[1]  # same idempotency key: the provider dedupes


async def test_resume_of_a_finished_run_changes_nothing(store: Store) -> None:
    agent = Agent(name="done", model=ScriptedModel([reply("hi")]))
    async with Runtime(store=store) as rt:
        first = await rt.run(agent, "x")
        again = await rt.resume(first.run_id)
    assert again == first
    assert len(store.journal(first.run_id)) == 3


def normalised(store: Store, run_id: str) -> list[dict[str, Any]]:
    """The journal with ids, times and latencies replaced by stable placeholders."""
    out = []
    for step in store.journal(run_id):
        payload = json.loads(step.payload)
        payload.pop("t", None)
        payload.pop("latency_ms", None)
        if "boundary" in payload:
            payload["boundary"] = "<boundary>"
        if "response" in payload:
            response = payload["response"]
            payload["response"] = {
                "text": response["text"],
                "tool_calls": [(c["name"], c["arguments"]) for c in response["tool_calls"]],
            }
        if "result" in payload:
            payload["result"] = {k: v for k, v in payload["result"].items() if v is not None}
        out.append({"seq": step.seq, "entry": step.kind, "status": step.status, **payload})
    return out


async def test_journal_of_a_run_with_a_failure_and_a_retry(store: Store) -> None:
    attempts = 0

    @tool(scope="crm:read")
    def lookup(email: str) -> dict[str, str]:
        """Look up a customer."""
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise ConnectionError("reset by peer")
        return {"email": email, "plan": "pro"}

    model = ScriptedModel(
        [call("lookup", {"email": "a@b.c"}), reply("You are on pro.")],
        faults={0: Fault.rate_limit(retry_after=0.0)},
    )
    agent = Agent(name="support", instructions="Help.", tools=[lookup], model=model)

    async def no_sleep(_: float) -> None:
        return None

    async with Runtime(store=store, sleep=no_sleep) as rt:
        result = await rt.run(agent, "my plan?", principal="alice")
    assert result.status is RunStatus.COMPLETED
    assert normalised(store, result.run_id) == snapshot(
        [
            {
                "seq": 0,
                "entry": "run_started",
                "status": None,
                "input": "my plan?",
                "instructions": "Help.",
                "boundary": "<boundary>",
                "spotlight": False,
                "principal": "alice",
                "grants": ["crm:read"],
            },
            {
                "seq": 1,
                "entry": "model_error",
                "status": "rate_limited",
                "kind": "rate_limited",
                "message": "rate limited",
                "attempt": 1,
            },
            {
                "seq": 2,
                "entry": "model_response",
                "status": "ok",
                "response": {"text": None, "tool_calls": [("lookup", '{"email":"a@b.c"}')]},
            },
            {
                "seq": 3,
                "entry": "tool_result",
                "status": "ok",
                "call_id": "call_2_0",
                "tool": "lookup",
                "arguments": '{"email":"a@b.c"}',
                "edited": False,
                "result": {"ok": True, "data": {"email": "a@b.c", "plan": "pro"}, "attempts": 2},
            },
            {
                "seq": 4,
                "entry": "model_response",
                "status": "ok",
                "response": {"text": "You are on pro.", "tool_calls": []},
            },
            {
                "seq": 5,
                "entry": "run_finished",
                "status": "completed",
                "output": "You are on pro.",
                "handoff": None,
                "error": None,
            },
        ]
    )


@pytest.mark.parametrize("idempotent", [True, False])
async def test_a_side_effect_happens_only_after_its_cause_is_durable(
    store: Store, idempotent: bool
) -> None:
    seen_in_journal: list[list[str]] = []

    @tool(side_effect=True, risk="write", idempotent=idempotent)
    def send(ctx: ToolContext, to: str) -> str:
        """Send a message (sync: runs in a thread, so it can read the store)."""
        seen_in_journal.append([s.kind for s in store.journal(ctx.run_id)])
        return "sent"

    @tool
    def peek(q: str) -> str:
        """Read-only."""
        return q

    model = ScriptedModel([call("peek", {"q": "x"}), call("send", {"to": "bob"}), reply("ok")])
    async with Runtime(store=store) as rt:
        result = await rt.run(Agent(name="sender", tools=[send, peek], model=model), "x")
    assert result.status is RunStatus.COMPLETED
    (journal_at_call,) = seen_in_journal
    # The response proposing the side effect is committed before the tool runs.
    assert journal_at_call[-1] == ("model_response" if idempotent else "tool_started")
    assert journal_at_call.count("model_response") == 2
