"""A run waiting for a worker reads as queued, not running, wherever it is looked at."""

from __future__ import annotations

from bosun.runtime import Agent, Runtime
from bosun.testing import ScriptedModel, call, reply
from bosun.tools import tool


@tool(side_effect=True, risk="write", requires_approval=True)
def send(to: str) -> str:
    """Send."""
    return to


async def test_queued_runs_read_as_queued(db_url: str) -> None:
    agent = Agent(
        name="q", tools=[send], model=ScriptedModel([call("send", {"to": "a"}), reply("ok")])
    )
    async with Runtime(store=db_url, agents=[agent]) as rt:
        run_id = await rt.start(agent, "go")
        assert (await rt.result(run_id)).status.value == "queued"
        parked = await rt.resume(run_id)
        assert parked.status.value == "waiting_approval"
        decided = await rt.decide(
            run_id, parked.waiting_for[0].id, approved=True, decided_by="r", resume=False
        )
        assert decided.status.value == "queued"
        assert (await rt.result(run_id)).status.value == "queued"
        assert rt.store.get_run(run_id).status == "queued"
        assert (await rt.resume(run_id)).status.value == "completed"
