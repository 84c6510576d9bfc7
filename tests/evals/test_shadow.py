"""Shadow runs: a candidate version on copies of live inputs, side effects intercepted."""

from __future__ import annotations

import json

import sqlalchemy as sa

from bosun.data.schema import run_scores
from bosun.data.store import Store
from bosun.evals.shadow import ShadowRunner, intended_actions
from bosun.models.base import ModelRequest, ModelResponse
from bosun.prompts.registry import PromptRef, PromptRegistry, PromptSource
from bosun.runtime import Agent, Runtime
from bosun.testing import ScriptedModel, call, reply
from bosun.tools import tool

EXECUTED: list[str] = []


@tool
def lookup(order: str) -> str:
    """Look an order up (read-only: runs in the shadow too)."""
    return f"order {order}: delivered"


@tool(side_effect=True, risk="irreversible")
def refund(order: str) -> str:
    """Refund an order. Must never run for a shadow."""
    EXECUTED.append(order)
    return "refunded"


def policy(request: ModelRequest) -> ModelResponse:
    """v1 looks the order up and answers; v2 also refunds it."""
    system = request.messages[0].content or ""
    turn = sum(m.role == "assistant" for m in request.messages)
    if turn == 0:
        return call("lookup", {"order": "A-1"})
    if turn == 1 and "generous" in system:
        return call("refund", {"order": "A-1"})
    return reply("handled")


async def test_the_shadow_intends_a_refund_that_never_reaches_the_tool(db_url: str) -> None:
    EXECUTED.clear()
    store = Store.open(db_url)
    registry = PromptRegistry(store)
    registry.create("desk", "1.0.0", "You are careful.", by="pat")
    registry.create("desk", "2.0.0", "You are generous.", by="pat")
    registry.promote("desk", "1.0.0", "production", by="pat", require_gate=False)
    registry.set_shadow("desk", "production", "2.0.0", by="pat")
    agent = Agent(
        name="desk",
        instructions=PromptSource(registry, PromptRef("desk")),
        tools=[lookup, refund],
        model=ScriptedModel(policy),
    )
    async with Runtime(store=store, agents=[agent]) as rt:
        production = [await rt.run(agent, f"where is my order? #{i}") for i in range(3)]
    assert all(r.status.value == "completed" for r in production)

    runner = ShadowRunner(store, registry, agent, prompt="desk")
    compared = await runner.shadow_due()
    assert len(compared) == 3
    assert await runner.shadow_due() == []  # each production run once per shadow version
    first = compared[0]
    assert first.shadow_version == "2.0.0" and first.production_version == "1.0.0"
    assert [a.tool for a in first.same] == ["lookup"]
    assert [(a.tool, json.loads(a.arguments)) for a in first.only_shadow] == [
        ("refund", {"order": "A-1"})
    ]
    assert first.only_production == ()
    assert first.agreement == 0.5
    assert [c.tool for c in first.intercepted if c.side_effect] == ["refund"]
    assert EXECUTED == []  # the intercepted refund never reached the implementation
    # The shadow's own journal says what it meant to do; production's is untouched.
    assert [a.tool for a in intended_actions(store, first.shadow_run)] == ["lookup", "refund"]
    assert [a.tool for a in intended_actions(store, first.production_run)] == ["lookup"]
    shadow_row = store.get_run(first.shadow_run)
    assert shadow_row.agent == "desk.shadow" and shadow_row.status == "completed"
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(run_scores).where(run_scores.c.kind == "shadow")).all()
    assert {r.run_id for r in rows} == {r.run_id for r in production}
    assert {r.value for r in rows} == {0.5}
    store.close()


async def test_without_a_shadow_version_nothing_is_shadowed(db_url: str) -> None:
    store = Store.open(db_url)
    registry = PromptRegistry(store)
    registry.create("desk", "1.0.0", "You are careful.", by="pat")
    registry.promote("desk", "1.0.0", "production", by="pat", require_gate=False)
    agent = Agent(name="desk", tools=[lookup, refund], model=ScriptedModel(policy))
    assert await ShadowRunner(store, registry, agent, prompt="desk").shadow_due() == []
    store.close()
