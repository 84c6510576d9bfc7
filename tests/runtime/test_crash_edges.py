"""Edges of crash recovery found in the second review, each a regression test.

A "crash" here is a write that fails at a chosen journal entry: the effect has happened, its
result is lost, and a new runtime resumes from what is durable (as after SIGKILL, which
tests/runtime/test_crash.py does with real processes).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any

from bosun.data.store import Step, Store, WriteOp
from bosun.errors import ModelRefusal, StoreError, TransientToolError
from bosun.models.base import ModelRequest, ModelResponse, ToolCall
from bosun.runtime import Agent, ModelPlanner, RunStatus, Runtime
from bosun.testing import ScriptedModel, reply
from bosun.tools import Reconciliation, ToolContext, tool


@contextmanager
def dying_on(store: Store, kind: str) -> Iterator[None]:
    """Writes carrying a `kind` entry fail, as if the process died before they committed."""
    real = store.write

    def write(ops: Sequence[WriteOp]) -> None:
        if any(isinstance(op, Step) and op.kind == kind for op in ops):
            raise StoreError("process died")
        real(ops)

    store.write = write  # type: ignore[method-assign]
    try:
        yield
    finally:
        store.write = real  # type: ignore[method-assign]


def by_turn(*turns: ModelResponse | str) -> ScriptedModel:
    items = [reply(t) if isinstance(t, str) else t for t in turns]
    return ScriptedModel(
        lambda request: items[sum(m.role == "assistant" for m in request.messages)]
    )


def calls(*specs: tuple[str, str]) -> ModelResponse:
    tool_calls = tuple(ToolCall(id=f"c{i}", name=n, arguments=a) for i, (n, a) in enumerate(specs))
    return ModelResponse(tool_calls=tool_calls, model="m", provider="p")


def contiguous(store: Store, run_id: str) -> bool:
    seqs = [s.seq for s in store.journal(run_id)]
    return seqs == list(range(len(seqs)))


async def test_reconcile_is_asked_about_the_arguments_that_executed(store: Store) -> None:
    ledger: list[tuple[str, float]] = []

    @tool(side_effect=True, risk="irreversible", requires_approval=True)
    def pay(order: str, amount: float) -> str:
        """Pay."""
        ledger.append((order, amount))
        return "paid"

    @pay.reconciler
    def paid(args: dict[str, Any], ctx: ToolContext) -> Reconciliation:
        return Reconciliation(done=(args["order"], args["amount"]) in ledger, data="paid")

    agent = Agent(
        name="payer",
        tools=[pay],
        model=by_turn(calls(("pay", '{"order":"A","amount":1000}')), "ok"),
    )
    async with Runtime(store=store) as rt:
        parked = await rt.run(agent, "pay")
    with dying_on(store, "tool_result"):
        async with Runtime(store=store, agents=[agent]) as rt:
            with suppress(StoreError):
                await rt.decide(
                    parked.run_id,
                    parked.waiting_for[0].id,
                    approved=True,
                    decided_by="eve",
                    arguments={"order": "A", "amount": 10},
                )
    marker = next(s for s in store.journal(parked.run_id) if s.kind == "tool_started")
    assert json.loads(json.loads(marker.payload)["arguments"]) == {"order": "A", "amount": 10}
    async with Runtime(store=store, agents=[agent]) as rt:
        result = await rt.resume(parked.run_id)
    assert result.status is RunStatus.COMPLETED
    assert ledger == [("A", 10.0)]  # the edited payment, once


async def test_reconcile_asks_the_fallback_that_may_have_acted(store: Store) -> None:
    primary: list[str] = []
    backup: list[str] = []
    down = True

    @tool(side_effect=True, risk="irreversible", retry=None, fallback="pay_backup")
    def pay(order: str) -> str:
        """Pay through the primary processor."""
        if down:
            raise TransientToolError("processor unavailable")
        primary.append(order)
        return "paid"

    @pay.reconciler
    def primary_paid(args: dict[str, Any], ctx: ToolContext) -> Reconciliation:
        return Reconciliation(done=args["order"] in primary, data="paid")

    @tool(side_effect=True, risk="irreversible", retry=None)
    def pay_backup(order: str) -> str:
        """Pay through the backup processor."""
        backup.append(order)
        return "paid"

    @pay_backup.reconciler
    def backup_paid(args: dict[str, Any], ctx: ToolContext) -> Reconciliation:
        return Reconciliation(done=args["order"] in backup, data="paid by backup")

    agent = Agent(
        name="fb", tools=[pay, pay_backup], model=by_turn(calls(("pay", '{"order":"A"}')), "ok")
    )
    with dying_on(store, "tool_result"):
        async with Runtime(store=store) as rt:
            with suppress(StoreError):
                await rt.run(agent, "pay A")
    down = False  # restarted, and the primary is back
    run_id = store.list_runs()[0].id
    async with Runtime(store=store, agents=[agent]) as rt:
        result = await rt.resume(run_id)
    assert result.status is RunStatus.COMPLETED
    assert (primary, backup) == ([], ["A"])  # paid once, by the backup


async def test_a_store_failure_in_parallel_calls_leaves_the_run_resumable(store: Store) -> None:
    @tool(side_effect=True, risk="write", idempotent=True)
    def send(to: str) -> str:
        """Send."""
        return "sent"

    agent = Agent(
        name="par",
        tools=[send],
        model=by_turn(calls(("send", '{"to":"a"}'), ("send", '{"to":"b"}')), "done"),
    )
    with dying_on(store, "tool_result"):
        async with Runtime(store=store) as rt:
            try:
                await rt.run(agent, "x")
            except BaseException as exc:
                assert isinstance(exc, StoreError | ExceptionGroup)
    run_id = store.list_runs()[0].id
    assert store.get_run(run_id).status != "failed"
    async with Runtime(store=store, agents=[agent]) as rt:
        result = await rt.resume(run_id)
    assert result.status is RunStatus.COMPLETED
    assert contiguous(store, run_id)


async def test_an_unexpected_failure_keeps_the_journal_contiguous(store: Store) -> None:
    @tool
    def look(q: str) -> str:
        """Look."""
        return q

    def broken(call: Any, state: Any) -> None:
        raise RuntimeError("critic bug")

    from bosun.runtime import RuleCritic

    agent = Agent(
        name="buggy",
        tools=[look],
        model=by_turn(calls(("look", '{"q":"x"}'))),
        critic=RuleCritic([broken]),
    )
    async with Runtime(store=store) as rt:
        result = await rt.run(agent, "x")
    assert result.status is RunStatus.FAILED
    assert contiguous(store, result.run_id)
    assert [s.kind for s in store.journal(result.run_id)] == [
        "run_started",
        "model_response",
        "run_finished",
    ]
    async with Runtime(store=store, agents=[agent]) as rt:
        replayed = await rt.result(result.run_id)
    assert (replayed.model_calls, replayed.usage) == (result.model_calls, result.usage)


async def test_invalid_unicode_from_the_model_never_fails_the_run(store: Store) -> None:
    asker = Agent(
        name="asker",
        model=by_turn(
            ModelResponse(
                tool_calls=(
                    ToolCall(id="q", name="ask_human", arguments='{"question":"\\ud800"}'),
                ),
                model="m",
                provider="p",
            ),
            "fine",
        ),
        ask_human=True,
    )

    async def hostile_plan(request: ModelRequest) -> ModelResponse:
        return ModelResponse(text="1. \ud800", model="m", provider="p")

    planned = Agent(
        name="planned",
        model=ScriptedModel(["done"]),
        planner=ModelPlanner(ScriptedModel(hostile_plan)),
    )

    async def refuse(request: ModelRequest) -> ModelResponse:
        raise ModelRefusal("no \ud800", provider="p")

    refused = Agent(name="refused", model=ScriptedModel(refuse))
    async with Runtime(store=store) as rt:
        outcomes = [
            (await rt.run(asker, "x")).status,
            (await rt.run(planned, "x")).status,
            (await rt.run(refused, "x")).status,
        ]
    assert outcomes == [RunStatus.COMPLETED, RunStatus.COMPLETED, RunStatus.ESCALATED]


async def test_hand_back_does_not_call_an_interrupted_effect_not_run(store: Store) -> None:
    charged: list[str] = []

    @tool(side_effect=True, risk="irreversible")
    def charge(order: str) -> str:
        """Charge (no reconciler: after a crash nobody can tell)."""
        charged.append(order)
        return "charged"

    model = by_turn(calls(("charge", '{"order":"A"}')), "noted")
    agent = Agent(name="charger", tools=[charge], model=model)
    with dying_on(store, "tool_result"):
        async with Runtime(store=store) as rt:
            with suppress(StoreError):
                await rt.run(agent, "charge A")
    run_id = store.list_runs()[0].id
    async with Runtime(store=store, agents=[agent]) as rt:
        escalated = await rt.resume(run_id)
        assert escalated.status is RunStatus.ESCALATED
        done = await rt.hand_back(run_id, "it went through, do not charge again", by="carol")
    assert done.status is RunStatus.COMPLETED
    assert charged == ["A"]
    seen = json.loads(model.requests[-1].messages[-2].content)  # type: ignore[union-attr]
    assert seen["error_kind"] == "outcome_unknown"
    actions = [r["action"] for r in store.audit_rows(run_id=run_id)]
    assert "tool_started" in actions  # the attempt is in the audit log


async def test_a_side_effect_with_an_unjournalable_result_is_still_a_success(
    store: Store,
) -> None:
    sent: list[str] = []

    @tool(side_effect=True, risk="write", idempotent=True)
    def send(to: str) -> str:
        """Send, echoing the recipient."""
        sent.append(to)
        return f"sent to {to}"

    model = by_turn(calls(("send", '{"to":"\\ud800"}')), "done")
    async with Runtime(store=store) as rt:
        result = await rt.run(Agent(name="sender", tools=[send], model=model), "x")
    assert result.status is RunStatus.COMPLETED
    assert len(sent) == 1
    seen = json.loads(model.requests[1].messages[-1].content)  # type: ignore[union-attr]
    assert seen["ok"] is True
    assert "withheld" in seen["data"]
