"""Online evaluation: signals from real journals, sampled judges, aggregates per version."""

from __future__ import annotations

import json

from bosun.data.scores import ScoreRows
from bosun.data.store import Store
from bosun.errors import PermanentToolError
from bosun.evals.dataset import Judge
from bosun.evals.online import OnlineEvaluator, aggregate, signals_for
from bosun.models.base import ModelRequest, ModelResponse
from bosun.runtime import Agent, Runtime
from bosun.runtime.agent import ResolvedInstructions
from bosun.testing import ScriptedModel, call, reply
from bosun.tools import tool


@tool(side_effect=True, risk="write", requires_approval=True)
def send(to: str) -> str:
    """Send (held for approval)."""
    return f"sent to {to}"


@tool(side_effect=True, risk="write")
def save(note: str) -> str:
    """Save a note; the CRM refuses empty ones."""
    if not note:
        raise PermanentToolError("the CRM refused an empty note")
    return "saved"


class Version:
    def __init__(self, version: str) -> None:
        self.version = version

    def resolve(self, *, key: str) -> ResolvedInstructions:
        return ResolvedInstructions(text="help", source={"name": "desk", "version": self.version})


def policy(request: ModelRequest) -> ModelResponse:
    text = next(m.content or "" for m in request.messages if m.role == "user")
    turn = sum(m.role == "assistant" for m in request.messages)
    if turn > 0:
        return reply("done")
    if text.startswith("send"):
        return call("send", {"to": "ann@example.com"})
    if text.startswith("save"):
        return call("save", {"note": ""})
    if text.startswith("ask"):
        return call("ask_human", {"question": "which?"})
    return reply("plain answer")


def agent(version: str) -> Agent:
    return Agent(
        name=f"desk-{version[0]}",
        instructions=Version(version),
        tools=[send, save],
        model=ScriptedModel(policy),
        ask_human=True,
    )


async def make_runs(store: Store) -> dict[str, str]:
    v1, v2 = agent("1.0.0"), agent("2.0.0")
    ids: dict[str, str] = {}
    async with Runtime(store=store, agents=[v1, v2]) as rt:
        ids["plain"] = (await rt.run(v1, "hello")).run_id
        ids["ask"] = (await rt.run(v1, "ask a person")).run_id
        rejected = await rt.run(v1, "send it")
        call_id = rejected.waiting_for[0].id
        await rt.decide(rejected.run_id, call_id, approved=False, decided_by="rita", reason="no")
        ids["rejected"] = rejected.run_id
        edited = await rt.run(v2, "send it")
        await rt.decide(
            edited.run_id,
            edited.waiting_for[0].id,
            approved=True,
            decided_by="rita",
            arguments={"to": "bob@example.com"},
        )
        ids["edited"] = edited.run_id
        ids["refused_write"] = (await rt.run(v2, "save nothing")).run_id
        ids["plain2"] = (await rt.run(v2, "hello")).run_id
    return ids


def by_name(signals: list) -> dict[str, float]:  # type: ignore[type-arg]
    return {s.name: s.value for s in signals}


async def test_signals_are_read_from_what_happened_to_the_run(db_url: str) -> None:
    store = Store.open(db_url)
    ids = await make_runs(store)
    assert by_name(signals_for(store, ids["plain"])) == {
        "approval_rejected": 0.0,
        "human_edited": 0.0,
        "write_rejected": 0.0,
        "escalated": 0.0,
    }
    assert by_name(signals_for(store, ids["rejected"]))["approval_rejected"] == 1.0
    assert by_name(signals_for(store, ids["edited"]))["human_edited"] == 1.0
    assert by_name(signals_for(store, ids["refused_write"]))["write_rejected"] == 1.0
    assert by_name(signals_for(store, ids["ask"]))["escalated"] == 1.0
    store.close()


async def test_runs_are_scored_once_judged_when_sampled_and_aggregated_per_version(
    db_url: str,
) -> None:
    store = Store.open(db_url)
    ids = await make_runs(store)
    ScoreRows(store).add_feedback(
        ids["plain"], principal="u", rating=1, correction=None, comment=None
    )
    ScoreRows(store).add_feedback(
        ids["plain2"], principal="u", rating=-1, correction="better", comment=None
    )
    judged: list[str] = []

    def judge_policy(request: ModelRequest) -> ModelResponse:
        judged.append(request.messages[-1].content or "")
        return reply(json.dumps({"score": 0.75, "reason": "polite enough"}))

    evaluator = OnlineEvaluator(
        store,
        judges=[Judge(rubric="Is it polite?", name="polite")],
        judge_model=ScriptedModel(judge_policy),
        sample_rate=1.0,
    )
    assert await evaluator.score_due() == 6
    assert await evaluator.score_due() == 0  # each run once
    assert len(judged) == 6
    report = {r["prompt_version"]: r for r in aggregate(store, prompt_name="desk")}
    v1, v2 = report["1.0.0"], report["2.0.0"]
    assert v1["runs"] == 3 and v2["runs"] == 3
    assert v1["signals"]["approval_rejected"] == round(1 / 3, 4)
    assert v1["signals"]["escalated"] == round(1 / 3, 4)
    assert v2["signals"]["write_rejected"] == round(1 / 3, 4)
    assert v2["signals"]["human_edited"] == round(1 / 3, 4)
    assert v1["judges"] == {"polite": 0.75}
    assert (v1["thumbs_up"], v1["thumbs_down"]) == (1, 0)
    assert (v2["thumbs_up"], v2["thumbs_down"], v2["corrections"]) == (0, 1, 1)
    store.close()


def test_sampling_is_sticky_and_near_its_rate(tmp_path: object) -> None:
    store = Store.open("sqlite://")
    evaluator = OnlineEvaluator(store, sample_rate=0.2)
    ids = [f"{i:028x}" for i in range(2000)]
    picked = [evaluator.sampled(i) for i in ids]
    assert 0.17 <= sum(picked) / len(ids) <= 0.23
    assert picked == [evaluator.sampled(i) for i in ids]
    store.close()
