"""A run's token and cost totals equal the sum of its steps at every moment: while it runs,
while it waits for a person, and after a person ends it."""

from __future__ import annotations

from decimal import Decimal

from bosun.data.store import Store
from bosun.runtime import Agent, RunStatus, Runtime
from bosun.testing import ScriptedModel, call, reply
from bosun.tools import tool


@tool(side_effect=True, risk="irreversible", requires_approval=True)
def refund(order: str) -> str:
    """Refund an order."""
    return f"refunded {order}"


def _assert_totals_match_steps(store: Store, run_id: str) -> int:
    row = store.get_run(run_id)
    steps = store.journal(run_id)
    tokens_in = sum(s.input_tokens or 0 for s in steps)
    tokens_out = sum(s.output_tokens or 0 for s in steps)
    cost = sum((s.cost_usd or Decimal(0) for s in steps), Decimal(0))
    assert tokens_in > 0
    assert (row.input_tokens, row.output_tokens) == (tokens_in, tokens_out)
    assert row.cost_usd is not None
    assert abs(row.cost_usd - cost) < Decimal("1e-8")
    return tokens_in + tokens_out


async def test_totals_hold_while_parked_and_after_the_approval(store: Store) -> None:
    model = ScriptedModel(
        [call("refund", {"order": "A-1"}), reply("refunded")], cost_per_1k_tokens=Decimal("0.1")
    )
    agent = Agent(name="refunder", tools=[refund], model=model)
    async with Runtime(store=store) as rt:
        parked = await rt.run(agent, "refund A-1")
        assert parked.status is RunStatus.WAITING_APPROVAL
        parked_tokens = _assert_totals_match_steps(store, parked.run_id)
        done = await rt.decide(
            parked.run_id, parked.waiting_for[0].id, approved=True, decided_by="bob"
        )
    assert done.status is RunStatus.COMPLETED
    assert _assert_totals_match_steps(store, parked.run_id) > parked_tokens


async def test_totals_hold_after_an_escalation_is_closed(store: Store) -> None:
    model = ScriptedModel(
        [call("ask_human", {"question": "Which order?"}, id="q1")],
        cost_per_1k_tokens=Decimal("0.1"),
    )
    agent = Agent(name="asker", model=model, ask_human=True)
    async with Runtime(store=store) as rt:
        waiting = await rt.run(agent, "refund my order")
        assert waiting.status is RunStatus.WAITING_HUMAN
        _assert_totals_match_steps(store, waiting.run_id)
        closed = await rt.finish(
            waiting.run_id, RunStatus.COMPLETED, by="carol", audit="escalation_closed", output="ok"
        )
    assert closed.status is RunStatus.COMPLETED
    _assert_totals_match_steps(store, waiting.run_id)
