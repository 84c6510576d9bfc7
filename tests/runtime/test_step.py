"""`Runtime.step`: a run driven one durable step at a time, as an engine that schedules each
step itself (Temporal) drives it, possibly in a different process for every step."""

from __future__ import annotations

from bosun.data.store import Store
from bosun.runtime import Agent, RunStatus, Runtime
from bosun.testing import ScriptedModel, call, reply
from bosun.tools import tool


@tool
def lookup(q: str) -> str:
    """Look something up."""
    return q.upper()


def script() -> ScriptedModel:
    return ScriptedModel([call("lookup", {"q": "abc"}), call("lookup", {"q": "def"}), reply("ok")])


def kinds(store: Store, run_id: str) -> list[str]:
    return [s.kind for s in store.journal(run_id)]


async def test_stepping_journals_what_driving_does(store: Store) -> None:
    driven = Agent(name="driven", tools=[lookup], model=script())
    stepped = Agent(name="stepped", tools=[lookup], model=script())
    async with Runtime(store=store, agents=[driven, stepped]) as rt:
        whole = await rt.run(driven, "look it up")
        run_id = await rt.start(stepped, "look it up")
        seq = None
        taken = []
        while True:
            out = await rt.step(run_id, seq=seq)
            # Durable when it returns: what a reader sees is what the step did.
            assert store.get_run(run_id).status == out.result.status.value
            assert len(store.journal(run_id)) == out.seq
            if out.next is None:
                break
            taken.append(out.next)
            seq = out.seq
    assert out.result.status is RunStatus.COMPLETED and out.result.output == "ok"
    assert kinds(store, run_id) == kinds(store, whole.run_id)
    # The first step (what comes next was not known yet) called the model.
    assert taken == ["tools", "model", "tools", "model"]


async def test_each_step_may_run_in_another_process(store: Store) -> None:
    agent = Agent(name="stepped", tools=[lookup], model=script())
    async with (
        Runtime(store=store, agents=[agent]) as a,
        Runtime(store=store, agents=[agent]) as b,
    ):
        run_id = await a.start(agent, "look it up")
        out = await a.step(run_id)
        # Alternate: each runtime's memory of the run is stale by the time it steps again
        # (the journal moved on elsewhere), so it must read the journal back.
        turn = [b, a]
        while out.next is not None:
            out = await turn[0].step(run_id, seq=out.seq)
            turn.reverse()
    assert out.result.status is RunStatus.COMPLETED and out.result.output == "ok"
    journal = store.journal(run_id)
    assert [s.kind for s in journal].count("model_response") == 3
    assert [s.tool for s in journal if s.kind == "tool_result"] == ["lookup", "lookup"]
    assert [s.seq for s in journal] == list(range(len(journal)))
