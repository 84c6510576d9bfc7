"""The agent loop on a real store: answers, tools, model faults, critic, loops, concurrency."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal

import pytest

from bosun.data.store import Store
from bosun.runtime import Agent, ModelPolicy, RuleCritic, RunStatus, Runtime, Verdict
from bosun.testing import Fault, ScriptedModel, call, calls, reply
from bosun.tools import ErrorKind, RetryPolicy, ToolContext, tool


class Sleeps:
    """Records the runtime's backoff sleeps instead of sleeping."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


@tool
def lookup_customer(email: str) -> dict[str, str]:
    """Find a customer by email.

    Args:
        email: The customer's email address.
    """
    return {"email": email, "tier": "gold"}


def agent_with(model: ScriptedModel, **kw: object) -> Agent:
    return Agent(
        name="support", instructions="Be helpful.", tools=[lookup_customer], model=model, **kw
    )  # type: ignore[arg-type]


def kinds(store: Store, run_id: str) -> list[str]:
    return [s.kind for s in store.journal(run_id)]


async def test_final_answer_completes_and_is_journaled(store: Store) -> None:
    model = ScriptedModel([reply("Hello!")])
    async with Runtime(store=store) as rt:
        result = await rt.run(agent_with(model), "hi")
    assert result.status is RunStatus.COMPLETED
    assert result.output == "Hello!"
    assert kinds(store, result.run_id) == ["run_started", "model_response", "run_finished"]
    row = store.get_run(result.run_id)
    assert (row.status, row.output) == ("completed", "Hello!")
    assert row.input_tokens == result.usage.input_tokens > 0
    model.assert_consumed()


async def test_tool_result_reaches_the_model(store: Store) -> None:
    model = ScriptedModel([call("lookup_customer", {"email": "a@b.c"}), reply("gold customer")])
    async with Runtime(store=store) as rt:
        result = await rt.run(agent_with(model), "who is a@b.c?")
    assert result.status is RunStatus.COMPLETED
    assert result.tool_calls == 1
    second = model.requests[1].messages
    assert [m.role for m in second] == ["system", "user", "assistant", "tool"]
    assert json.loads(second[-1].content) == {
        "ok": True,
        "data": {"email": "a@b.c", "tier": "gold"},
    }  # type: ignore[union-attr]
    steps = store.journal(result.run_id)
    tool_step = next(s for s in steps if s.kind == "tool_result")
    assert (tool_step.tool, tool_step.status) == ("lookup_customer", "ok")


async def test_invalid_arguments_are_a_structured_error_the_model_corrects(store: Store) -> None:
    model = ScriptedModel(
        [
            Fault.malformed_tool_call("lookup_customer"),
            call("lookup_customer", {"wrong": 1}),
            call("lookup_customer", {"email": "a@b.c"}),
            reply("done"),
        ]
    )
    async with Runtime(store=store) as rt:
        result = await rt.run(agent_with(model), "x")
    assert result.status is RunStatus.COMPLETED
    seen = [json.loads(m.content) for m in model.requests[3].messages if m.role == "tool"]  # type: ignore[union-attr]
    assert [s["ok"] for s in seen] == [False, False, True]
    assert seen[0]["error_kind"] == seen[1]["error_kind"] == ErrorKind.INVALID_ARGUMENTS
    assert "email" in seen[1]["guidance"]
    assert all("Traceback" not in json.dumps(s) for s in seen)


@pytest.mark.parametrize(
    ("fault", "expected_delay"),
    [
        (Fault.rate_limit(retry_after=7.0), 7.0),
        (Fault.timeout(), 0.5),
        (Fault.server_error(), 0.5),
        (Fault.empty(), 0.5),
    ],
)
async def test_retryable_model_errors_are_retried(
    store: Store, fault: Fault, expected_delay: float
) -> None:
    model = ScriptedModel([reply("ok")], faults={0: fault})
    sleeps = Sleeps()
    async with Runtime(store=store, sleep=sleeps) as rt:
        result = await rt.run(agent_with(model), "x")
    assert result.status is RunStatus.COMPLETED
    assert sleeps.delays == [expected_delay]
    assert result.retries == 1
    error_step = store.journal(result.run_id)[1]
    assert error_step.kind == "model_error"
    assert error_step.status == fault.error.kind  # type: ignore[union-attr]


async def test_retries_back_off_then_escalate_when_exhausted(store: Store) -> None:
    faults = {i: Fault.server_error() for i in range(3)}
    model = ScriptedModel([], faults=faults)
    sleeps = Sleeps()
    policy = ModelPolicy(retry=RetryPolicy(attempts=3, initial_delay_s=1.0, max_delay_s=1.5))
    async with Runtime(store=store, sleep=sleeps) as rt:
        result = await rt.run(agent_with(model, model_policy=policy), "x")
    assert result.status is RunStatus.ESCALATED
    assert sleeps.delays == [1.0, 1.5]
    assert result.handoff is not None
    assert "unavailable" in result.handoff.reason


async def test_rate_limit_longer_than_allowed_escalates(store: Store) -> None:
    model = ScriptedModel([], faults={0: Fault.rate_limit(retry_after=3600)})
    async with Runtime(store=store, sleep=Sleeps()) as rt:
        result = await rt.run(agent_with(model), "x")
    assert result.status is RunStatus.ESCALATED
    assert "3600" in result.handoff.reason  # type: ignore[union-attr]


async def test_a_refusal_is_retried_once_with_the_refusal_noted(store: Store) -> None:
    model = ScriptedModel([reply("Here is the refund policy.")], faults={0: Fault.refusal()})
    sleeps = Sleeps()
    async with Runtime(store=store, sleep=sleeps) as rt:
        result = await rt.run(agent_with(model), "What is the refund policy?")
    assert result.status is RunStatus.COMPLETED
    assert result.output == "Here is the refund policy."
    first, second = model.requests
    note = second.messages[-1]
    assert len(second.messages) == len(first.messages) + 1
    assert note.role == "user" and "declined" in (note.content or "")
    assert "I can't help with that." in (note.content or "")  # the refusal, quoted
    assert kinds(store, result.run_id) == [
        "run_started",
        "model_error",
        "model_response",
        "run_finished",
    ]
    assert sleeps.delays == []  # a refusal is not load: no backoff
    model.assert_consumed()


async def test_a_second_refusal_escalates(store: Store) -> None:
    model = ScriptedModel([], faults={0: Fault.refusal(), 1: Fault.refusal()})
    async with Runtime(store=store, sleep=Sleeps()) as rt:
        result = await rt.run(agent_with(model), "x")
    assert result.status is RunStatus.ESCALATED
    assert len(model.requests) == 2
    assert "refus" in result.handoff.reason  # type: ignore[union-attr]
    model.assert_consumed()


@pytest.mark.parametrize(
    ("fault", "status"),
    [
        (Fault.context_too_long(), RunStatus.ESCALATED),
        (Fault.auth(), RunStatus.FAILED),
    ],
)
async def test_non_retryable_model_errors_stop_the_run(
    store: Store, fault: Fault, status: RunStatus
) -> None:
    model = ScriptedModel([], faults={0: fault})
    sleeps = Sleeps()
    async with Runtime(store=store, sleep=sleeps) as rt:
        result = await rt.run(agent_with(model), "x")
    assert result.status is status
    assert sleeps.delays == []
    assert store.get_run(result.run_id).status == status.value


async def test_loop_detection_stops_repeated_identical_calls(store: Store) -> None:
    same = call("lookup_customer", {"email": "a@b.c"})
    model = ScriptedModel([same, same, same])
    async with Runtime(store=store) as rt:
        result = await rt.run(agent_with(model, loop_limit=3), "x")
    assert result.status is RunStatus.ESCALATED
    assert "loop detected" in result.handoff.reason  # type: ignore[union-attr]
    assert result.tool_calls == 2  # the third identical call never ran


async def test_varied_calls_are_not_a_loop(store: Store) -> None:
    model = ScriptedModel(
        [call("lookup_customer", {"email": f"{i}@b.c"}) for i in range(4)] + [reply("ok")]
    )
    async with Runtime(store=store) as rt:
        result = await rt.run(agent_with(model, loop_limit=2), "x")
    assert result.status is RunStatus.COMPLETED


async def test_critic_denies_and_escalates(store: Store) -> None:
    def no_competitors(c, state):  # type: ignore[no-untyped-def]
        if "competitor" in c.arguments:
            return Verdict.deny("do not look up competitors")
        if "ceo" in c.arguments:
            return Verdict.escalate("touches an executive")
        return None

    critic = RuleCritic([no_competitors])
    model = ScriptedModel(
        [
            call("lookup_customer", {"email": "x@competitor.com"}),
            call("lookup_customer", {"email": "ceo@us.com"}),
        ]
    )
    async with Runtime(store=store) as rt:
        result = await rt.run(agent_with(model, critic=critic), "x")
    assert result.status is RunStatus.ESCALATED
    assert result.handoff.reason == "critic: touches an executive"  # type: ignore[union-attr]
    denied = json.loads(model.requests[1].messages[-1].content)  # type: ignore[union-attr]
    assert denied == {
        "ok": False,
        "error_kind": "denied_by_critic",
        "guidance": "do not look up competitors",
    }


async def test_independent_tool_calls_run_concurrently(store: Store) -> None:
    both_running = asyncio.Barrier(2)

    @tool
    async def fetch(source: str) -> str:
        """Fetch a source."""
        # Each call waits until the other is running too: sequential execution would hang.
        async with asyncio.timeout(5):
            await both_running.wait()
        return source.upper()

    model = ScriptedModel(
        [calls(("fetch", {"source": "a"}), ("fetch", {"source": "b"})), reply("ok")]
    )
    agent = Agent(name="fan-out", tools=[fetch], model=model)
    async with Runtime(store=store) as rt:
        result = await rt.run(agent, "x")
    assert result.status is RunStatus.COMPLETED
    assert result.tool_calls == 2


async def test_tool_context_idempotency_key_is_stable(store: Store) -> None:
    seen: list[str] = []

    @tool(side_effect=True, risk="write", idempotent=True)
    def send(ctx: ToolContext, to: str) -> str:
        """Send."""
        seen.append(ctx.idempotency_key)
        return "sent"

    model = ScriptedModel([call("send", {"to": "x"}, id="c1"), reply("ok")])
    async with Runtime(store=store) as rt:
        result = await rt.run(Agent(name="sender", tools=[send], model=model), "x")
    from bosun.tools import idempotency_key

    # Call ids are bosun's own (call_<seq>_<i>), whatever the model sent.
    assert seen == [idempotency_key(result.run_id, 1, "call_1_0")]
    # An idempotent tool needs no "started" marker: a replay calls it again with the same key.
    assert "tool_started" not in kinds(store, result.run_id)
    actions = [r["action"] for r in store.audit_rows(run_id=result.run_id)]
    assert actions == ["run_created", "tool_call", "run_finished"]


async def test_unauthorized_tool_is_refused(store: Store) -> None:
    model = ScriptedModel([call("lookup_customer", {"email": "a@b.c"}), reply("ok")])
    async with Runtime(store=store) as rt:
        result = await rt.run(agent_with(model), "x", grants=[])
    assert result.status is RunStatus.COMPLETED
    refused = json.loads(model.requests[1].messages[-1].content)  # type: ignore[union-attr]
    assert refused["error_kind"] == "unauthorized"


async def test_repeated_idempotency_key_returns_the_same_run(store: Store) -> None:
    model = ScriptedModel([reply("one")])
    async with Runtime(store=store) as rt:
        agent = agent_with(model)
        first = await rt.start(agent, "x", idempotency_key="k-1")
        second = await rt.start(agent, "x", idempotency_key="k-1")
    assert first == second
    assert len(store.list_runs()) == 1


async def test_non_durable_runtime_writes_nothing(tmp_path) -> None:  # type: ignore[no-untyped-def]
    model = ScriptedModel([call("lookup_customer", {"email": "a@b.c"}), reply("ok")])
    async with Runtime(durable=False) as rt:
        result = await rt.run(agent_with(model), "x")
    assert result.status is RunStatus.COMPLETED
    assert not (tmp_path / "bosun-home").exists()


async def test_cost_is_summed_and_unknown_prices_stay_unknown(store: Store) -> None:
    priced = ScriptedModel([reply("a")], cost_per_1k_tokens=Decimal("0.5"))
    unpriced = ScriptedModel([reply("a")])
    async with Runtime(store=store) as rt:
        known = await rt.run(agent_with(priced), "x")
        unknown = await rt.run(Agent(name="other", model=unpriced), "x")
    assert known.cost_usd == Decimal("0.5") * known.usage.total_tokens / 1000
    assert unknown.cost_usd is None
    assert store.get_run(unknown.run_id).cost_usd is None
