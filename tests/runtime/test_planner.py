"""The planner: one journaled plan, in the context of every later call, never remade."""

from __future__ import annotations

from decimal import Decimal

from bosun.data.store import Store
from bosun.models.base import ModelRequest, ModelResponse, Usage
from bosun.runtime import Agent, ModelPlanner, RunStatus, Runtime
from bosun.testing import ScriptedModel, call, reply
from bosun.tools import tool


@tool
def lookup(q: str) -> str:
    """Look something up in the wiki."""
    return q


async def test_plan_is_journaled_shown_to_the_model_and_counted(store: Store) -> None:
    planning_requests: list[ModelRequest] = []

    async def planner_model(request: ModelRequest) -> ModelResponse:
        planning_requests.append(request)
        return ModelResponse(
            text="1. look it up\n2. answer",
            model="planner",
            provider="scripted",
            usage=Usage(input_tokens=40, output_tokens=10),
            cost_usd=Decimal("0.001"),
        )

    worker = ScriptedModel([call("lookup", {"q": "x"}), reply("done")])
    agent = Agent(
        name="planned",
        instructions="Be brief.",
        tools=[lookup],
        model=worker,
        planner=ModelPlanner(ScriptedModel(planner_model)),
    )
    async with Runtime(store=store) as rt:
        result = await rt.run(agent, "find x")
    assert result.status is RunStatus.COMPLETED
    assert len(planning_requests) == 1
    assert "lookup: Look something up" in (planning_requests[0].messages[0].content or "")
    for request in worker.requests:
        system, user = request.messages[:2]
        assert system.content == "Be brief."  # the plan never gets system trust
        assert user.role == "user"
        assert user.content.startswith("find x")  # type: ignore[union-attr]
        assert "1. look it up" in user.content  # type: ignore[union-attr]
    assert result.usage.input_tokens >= 40
    steps = store.journal(result.run_id)
    assert [s.kind for s in steps][:3] == ["run_started", "plan", "model_response"]
    assert steps[1].input_tokens == 40

    # Replaying the journal restores the plan; resuming does not plan again.
    async with Runtime(store=store, agents=[agent]) as rt:
        again = await rt.result(result.run_id)
    assert again.usage == result.usage
    assert len(planning_requests) == 1
