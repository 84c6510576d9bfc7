"""Budgets stop runs; people approve, reject, take over and hand back; cancel; audit."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal

import pytest
import sqlalchemy as sa

from bosun.data.store import Store
from bosun.models.base import ModelRequest, ModelResponse, Usage
from bosun.runtime import Agent, Budget, RunStatus, Runtime
from bosun.testing import ScriptedModel, call, reply
from bosun.tools import tool


@tool
def ping(n: int) -> int:
    """Echo a number."""
    return n


def pinging(count: int) -> ScriptedModel:
    return ScriptedModel([call("ping", {"n": i}) for i in range(count)] + [reply("done")])


@pytest.mark.parametrize(
    ("budget", "fragment"),
    [
        (Budget(max_steps=3), "step budget"),
        (Budget(max_tool_calls=2), "tool-call budget"),
        (Budget(max_tokens=30), "token budget"),
        (Budget(max_cost_usd=Decimal("0.001")), "cost budget"),
        (Budget(max_wall_s=0.0), "wall-time budget"),
    ],
)
async def test_each_budget_limit_escalates_with_a_handoff(
    store: Store, budget: Budget, fragment: str
) -> None:
    model = ScriptedModel(
        [call("ping", {"n": i}) for i in range(10)] + [reply("done")],
        cost_per_1k_tokens=Decimal("0.1"),
    )
    agent = Agent(name="pinger", tools=[ping], model=model, budget=budget)
    async with Runtime(store=store) as rt:
        result = await rt.run(agent, "ping a lot")
    assert result.status is RunStatus.ESCALATED
    handoff = result.handoff
    assert handoff is not None
    assert fragment in handoff.reason
    assert "ping a lot" in handoff.summary
    assert len(handoff.actions_taken) == result.tool_calls
    assert model.remaining > 0  # stopped early
    stored = json.loads(store.get_run(result.run_id).handoff or "{}")
    assert stored["reason"] == handoff.reason


async def test_wall_time_budget_interrupts_a_slow_model_call(store: Store) -> None:
    async def slow(request: ModelRequest) -> ModelResponse:
        await asyncio.sleep(30)
        raise AssertionError("unreachable")

    agent = Agent(name="slow", model=ScriptedModel(slow), budget=Budget(max_wall_s=0.2))
    async with Runtime(store=store) as rt:
        result = await asyncio.wait_for(rt.run(agent, "x"), 10)
    assert result.status is RunStatus.ESCALATED
    assert "wall-time" in result.handoff.reason  # type: ignore[union-attr]


async def test_budget_within_limits_completes(store: Store) -> None:
    agent = Agent(name="pinger", tools=[ping], model=pinging(2), budget=Budget(max_steps=3))
    async with Runtime(store=store) as rt:
        result = await rt.run(agent, "x")
    assert result.status is RunStatus.COMPLETED
    assert result.model_calls == 3


side_effects: list[str] = []


@tool(side_effect=True, risk="irreversible", requires_approval=True)
def refund(order: str, amount: float) -> str:
    """Refund an order."""
    side_effects.append(f"{order}:{amount}")
    return f"refunded {amount}"


async def test_approval_parks_the_run_and_a_decision_resumes_it(store: Store) -> None:
    side_effects.clear()
    model = ScriptedModel(
        [call("refund", {"order": "A1", "amount": 50.0}, id="r1"), reply("refunded")]
    )
    agent = Agent(name="refunder", tools=[refund], model=model)
    async with Runtime(store=store) as rt:
        parked = await rt.run(agent, "refund A1", principal="alice")
        assert parked.status is RunStatus.WAITING_APPROVAL
        assert side_effects == []
        assert store.get_run(parked.run_id).status == "waiting_approval"
    # A new runtime (another process, days later) records the decision and finishes the run.
    async with Runtime(store=store, agents=[agent]) as rt:
        (held,) = parked.waiting_for
        assert (held.name, held.arguments) == ("refund", '{"order":"A1","amount":50.0}')
        done = await rt.decide(
            parked.run_id,
            held.id,
            approved=True,
            decided_by="bob",
            arguments={"order": "A1", "amount": 20.0},
        )
    assert done.status is RunStatus.COMPLETED
    assert side_effects == ["A1:20.0"]
    journal = [s.kind for s in store.journal(parked.run_id)]
    assert journal.index("approval_decided") < journal.index("tool_started")
    assert journal.index("tool_started") < journal.index("tool_result")
    audit = store.audit_rows(run_id=parked.run_id)
    tool_row = next(r for r in audit if r["action"] == "tool_call")
    assert (tool_row["actor"], tool_row["approver"]) == ("alice", "bob")
    # The audit row records what executed: the approver's edit, marked as such.
    executed = json.loads(tool_row["payload"])
    assert (executed["arguments"], executed["edited"]) == ('{"order":"A1","amount":20.0}', True)
    assert [r["action"] for r in audit] == [
        "run_created",
        "approval_requested",
        "approval",
        "tool_started",  # an attempted irreversible effect is audited before it runs
        "tool_call",
        "run_finished",
    ]


async def test_rejected_approval_is_reported_to_the_model(store: Store) -> None:
    side_effects.clear()
    model = ScriptedModel([call("refund", {"order": "A1", "amount": 50.0}, id="r1"), reply("ok")])
    agent = Agent(name="refunder", tools=[refund], model=model)
    async with Runtime(store=store) as rt:
        parked = await rt.run(agent, "refund A1")
        done = await rt.decide(
            parked.run_id,
            parked.waiting_for[0].id,
            approved=False,
            decided_by="bob",
            reason="fraud",
        )
    assert done.status is RunStatus.COMPLETED
    assert side_effects == []
    seen = json.loads(model.requests[1].messages[-1].content)  # type: ignore[union-attr]
    assert seen["error_kind"] == "approval_rejected"
    assert "fraud" in seen["guidance"]


async def test_deciding_a_call_that_is_not_waiting_is_an_error(store: Store) -> None:
    agent = Agent(name="a", model=ScriptedModel([reply("x")]))
    async with Runtime(store=store) as rt:
        result = await rt.run(agent, "x")
        with pytest.raises(Exception, match="no call 'nope' waiting"):
            await rt.decide(result.run_id, "nope", approved=True, decided_by="bob")


async def test_hand_back_continues_with_the_note_in_context(store: Store) -> None:
    model = ScriptedModel([call("ping", {"n": 1}), reply("finished with help")])
    agent = Agent(name="pinger", tools=[ping], model=model, budget=Budget(max_steps=1))
    async with Runtime(store=store) as rt:
        escalated = await rt.run(agent, "x")
        assert escalated.status is RunStatus.ESCALATED
    bigger = Agent(name="pinger", tools=[ping], model=model, budget=Budget(max_steps=5))
    async with Runtime(store=store, agents=[bigger]) as rt:
        done = await rt.hand_back(escalated.run_id, "customer confirmed, go ahead", by="carol")
    assert done.status is RunStatus.COMPLETED
    assert done.output == "finished with help"
    last_request = model.requests[-1].messages
    assert last_request[-1].role == "user"
    assert "customer confirmed" in (last_request[-1].content or "")


async def test_cancel_an_active_run(store: Store) -> None:
    started = asyncio.Event()

    async def hang(request: ModelRequest) -> ModelResponse:
        started.set()
        await asyncio.sleep(30)
        raise AssertionError("unreachable")

    agent = Agent(name="hanger", model=ScriptedModel(hang))
    async with Runtime(store=store) as rt:
        run_id = await rt.start(agent, "x")
        task = asyncio.create_task(rt.resume(run_id))
        await asyncio.wait_for(started.wait(), 5)
        cancelled = await rt.cancel(run_id, by="dave")
        assert cancelled.status is RunStatus.CANCELLED
        with pytest.raises(asyncio.CancelledError):
            await task
    assert store.get_run(run_id).status == "cancelled"


async def test_cancel_a_parked_run(store: Store) -> None:
    model = ScriptedModel([call("refund", {"order": "A1", "amount": 5.0}, id="r1")])
    agent = Agent(name="refunder", tools=[refund], model=model)
    async with Runtime(store=store) as rt:
        parked = await rt.run(agent, "x")
        cancelled = await rt.cancel(parked.run_id, by="dave")
    assert cancelled.status is RunStatus.CANCELLED
    assert store.get_run(parked.run_id).error == "cancelled by dave"


async def test_audit_chain_verifies_and_detects_tampering(store: Store) -> None:
    model = ScriptedModel([call("refund", {"order": "A1", "amount": 5.0}, id="r1"), reply("ok")])
    agent = Agent(name="refunder", tools=[refund], model=model)
    async with Runtime(store=store) as rt:
        parked = await rt.run(agent, "x")
        await rt.decide(parked.run_id, parked.waiting_for[0].id, approved=True, decided_by="bob")
    check = store.verify_audit()
    assert check.ok and check.rows == 6
    third = store.audit_rows()[2]["id"]
    with store.engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE audit SET payload = :p WHERE id = :id"),
            {"p": '{"amount": 5000}', "id": third},
        )
    broken = store.verify_audit()
    assert not broken.ok
    assert broken.broken_row == third


async def test_usage_is_taken_from_the_model(store: Store) -> None:
    async def fixed(request: ModelRequest) -> ModelResponse:
        return ModelResponse(
            text="x", model="m", provider="p", usage=Usage(input_tokens=100, output_tokens=7)
        )

    async with Runtime(store=store) as rt:
        result = await rt.run(Agent(name="u", model=ScriptedModel(fixed)), "x")
    assert (result.usage.input_tokens, result.usage.output_tokens) == (100, 7)
    with store.engine.connect() as conn:
        usage_rows = conn.execute(sa.text("SELECT input_tokens FROM usage")).all()
    assert [r[0] for r in usage_rows] == [100]


async def test_agent_asks_a_person_and_gets_the_answer_as_the_tool_result(store: Store) -> None:
    model = ScriptedModel(
        [
            call("ask_human", {}),  # malformed: the model is told how to call it
            call("ask_human", {"question": "Which order do you mean?"}, id="q1"),
            reply("refund of A7 noted"),
        ]
    )
    agent = Agent(name="asker", model=model, ask_human=True)
    async with Runtime(store=store) as rt:
        waiting = await rt.run(agent, "refund my order")
    assert waiting.status is RunStatus.WAITING_HUMAN
    assert waiting.handoff is not None
    assert waiting.handoff.pending_question == "Which order do you mean?"
    assert store.get_run(waiting.run_id).status == "waiting_human"
    assert [t.name for t in model.requests[0].tools] == ["ask_human"]
    corrected = json.loads(model.requests[1].messages[-1].content)  # type: ignore[union-attr]
    assert corrected["error_kind"] == "invalid_arguments"

    async with Runtime(store=store, agents=[agent]) as rt:
        done = await rt.hand_back(waiting.run_id, "order A7", by="erin")
    assert done.status is RunStatus.COMPLETED
    answer = model.requests[-1].messages[-1]
    assert answer.role == "tool"
    assert json.loads(answer.content) == {  # type: ignore[union-attr]
        "ok": True,
        "data": {"answer": "order A7", "answered_by": "erin"},
    }
    assert store.get_run(waiting.run_id).handoff is None
    actions = [r["action"] for r in store.audit_rows(run_id=waiting.run_id)]
    assert actions == ["run_created", "human_requested", "hand_back", "run_finished"]


async def test_ask_human_is_not_offered_unless_enabled(store: Store) -> None:
    model = ScriptedModel([call("ask_human", {"question": "?"}), reply("ok")])
    async with Runtime(store=store) as rt:
        result = await rt.run(Agent(name="plain", model=model), "x")
    assert model.requests[0].tools == ()
    assert json.loads(model.requests[1].messages[-1].content)["error_kind"] == "unknown_tool"  # type: ignore[union-attr]
    assert result.status is RunStatus.COMPLETED
