"""`bosun costs`, `alerts`, `online` and `shadow` print what the store holds."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

from typer.testing import CliRunner

from bosun.cli.main import app
from bosun.data.store import Store
from bosun.evals.online import OnlineEvaluator
from bosun.evals.shadow import ShadowRunner
from bosun.models.base import ModelRequest, ModelResponse
from bosun.observe.cost import CostCaps, CostGuard
from bosun.prompts.registry import PromptRef, PromptRegistry, PromptSource
from bosun.runtime import Agent, Runtime
from bosun.testing import ScriptedModel, call, reply
from bosun.tools import tool


@tool(side_effect=True, risk="write")
def note(text: str) -> str:
    """Write a note."""
    return "noted"


def policy(request: ModelRequest) -> ModelResponse:
    system = request.messages[0].content or ""
    if sum(m.role == "assistant" for m in request.messages) == 0 and "chatty" in system:
        return call("note", {"text": "hi"}).model_copy(update={"cost_usd": Decimal("0.02")})
    return reply("done").model_copy(update={"cost_usd": Decimal("0.01")})


async def test_the_spine_commands(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'spine.db'}"
    store = Store.open(db)
    registry = PromptRegistry(store)
    registry.create("desk", "1.0.0", "Be brief.", by="pat")
    registry.create("desk", "1.1.0", "Be chatty.", by="pat")
    registry.promote("desk", "1.0.0", "production", by="pat", require_gate=False)
    registry.set_shadow("desk", "production", "1.1.0", by="pat")
    agent = Agent(
        name="desk",
        instructions=PromptSource(registry, PromptRef("desk")),
        tools=[note],
        model=ScriptedModel(policy),
    )
    guard = CostGuard(store, CostCaps(per_agent_day_usd={"desk": Decimal("0.02")}))
    async with Runtime(store=store, agents=[agent], spend=guard) as rt:
        for i in range(3):
            await rt.run(agent, f"hello {i}", tenant="acme")
    await OnlineEvaluator(store).score_due()
    await ShadowRunner(store, registry, agent, prompt="desk").shadow_due()
    store.close()
    runner = CliRunner()

    costs = runner.invoke(app, ["costs", "--by", "tenant", "--db", db])
    assert costs.exit_code == 0, costs.output
    assert "acme" in costs.output and "0.0200" in costs.output
    alerts = runner.invoke(app, ["alerts", "--json", "--db", db])
    assert alerts.exit_code == 0, alerts.output
    assert {a["severity"] for a in json.loads(alerts.output)} == {"warning", "critical"}
    online = runner.invoke(app, ["online", "--json", "--db", db])
    rows = json.loads(online.output)
    assert [(r["prompt_version"], r["runs"]) for r in rows] == [("1.0.0", 3)]
    assert rows[0]["signals"]["escalated"] == round(1 / 3, 4)  # the third hit the cap
    shadow = runner.invoke(app, ["shadow", "desk", "--db", db])
    assert shadow.exit_code == 0, shadow.output
    assert "3 shadowed runs" in shadow.output and "note" in shadow.output
