"""A run's budget holds for its whole life: a hand-back by a person does not refill it
(`Budget(lifetime=False)` does, for agents that want a fresh allowance per hand-back)."""

from __future__ import annotations

import pytest

from bosun import Agent, Budget, Runtime, Store, tool
from bosun.runtime.state import RunStatus
from bosun.testing import ScriptedModel, call


@tool
def lookup(q: str) -> str:
    """Look something up."""
    return f"found {q}"


def searching() -> ScriptedModel:
    # Distinct lookups (no loop to detect), then an answer.
    return ScriptedModel(
        [call("lookup", {"q": "a"}), call("lookup", {"q": "b"}), call("lookup", {"q": "c"})]
        + ["answered"],
    )


@pytest.mark.parametrize("lifetime", [True, False])
async def test_a_hand_back_refills_the_budget_only_when_asked(store: Store, lifetime: bool) -> None:
    model = searching()
    agent = Agent(
        name="searcher",
        tools=[lookup],
        model=model,
        budget=Budget(max_steps=3, lifetime=lifetime),
    )
    async with Runtime(store=store) as rt:
        first = await rt.run(agent, "find it")
        assert first.status is RunStatus.ESCALATED
        assert "step" in first.handoff.reason  # type: ignore[union-attr]
        after = await rt.hand_back(first.run_id, "go on", by="carol")
    if lifetime:
        # Three steps were spent before the hand-back: the model is not asked again.
        assert after.status is RunStatus.ESCALATED
        assert "step" in after.handoff.reason  # type: ignore[union-attr]
        assert len(model.requests) == 3
    else:
        assert after.status is RunStatus.COMPLETED and after.output == "answered"
        assert len(model.requests) == 4
