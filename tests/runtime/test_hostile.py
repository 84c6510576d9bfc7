"""A hostile model against the runtime: every attack found in review, as a regression test.

The model controls tool names, call ids, argument text and its own text; none of it may
bypass approval or scope, crash the runtime, or leave a side effect outside the journal.
"""

from __future__ import annotations

import asyncio
import json
import logging
from decimal import Decimal
from typing import Any

import pytest

from bosun.data.store import Store
from bosun.errors import ModelUnavailable, ToolDefinitionError
from bosun.models.base import ModelRequest, ModelResponse, ToolCall, Usage
from bosun.runtime import Agent, Budget, ModelPlanner, RuleCritic, RunStatus, Runtime
from bosun.testing import Fault, ScriptedModel, reply
from bosun.tools import Secret, ToolExecutor, tool
from bosun.tools.secrets import MappingSecrets


def response(*calls: tuple[str, str, str], text: str | None = None) -> ModelResponse:
    """A response with raw (id, name, arguments-text) tool calls, exactly as a model sent them."""
    return ModelResponse(
        text=text,
        tool_calls=tuple(ToolCall(id=i, name=n, arguments=a) for i, n, a in calls),
        model="hostile",
        provider="scripted",
    )


def by_turn(*turns: ModelResponse | str) -> ScriptedModel:
    """A model whose answer depends only on how many turns it has had (survives resumes)."""
    items = [reply(t) if isinstance(t, str) else t for t in turns]
    return ScriptedModel(
        lambda request: items[sum(m.role == "assistant" for m in request.messages)]
    )


paid: list[float] = []


@tool(side_effect=True, risk="irreversible", requires_approval=True)
def refund(order: str, amount: float) -> str:
    """Refund an order."""
    paid.append(amount)
    return "refunded"


@tool
def lookup(q: str) -> str:
    """Read-only lookup."""
    return q


async def test_an_approval_cannot_be_reused_by_a_later_call_with_a_colliding_id(
    store: Store,
) -> None:
    paid.clear()
    model = by_turn(
        # The model plants the id that the old renaming scheme would give its next call ...
        response(("x", "lookup", '{"q":"a"}'), ("x_7", "refund", '{"order":"A","amount":1.0}')),
        # ... then reuses "x" for a huge refund, hoping to inherit the approval of 1.0.
        response(("x", "refund", '{"order":"A","amount":1000000}')),
        "done",
    )
    agent = Agent(name="refunder", tools=[refund, lookup], model=model)
    async with Runtime(store=store) as rt:
        first = await rt.run(agent, "refund")
        (held,) = first.waiting_for
        second = await rt.decide(first.run_id, held.id, approved=True, decided_by="bob")
    assert paid == [1.0]
    assert second.status is RunStatus.WAITING_APPROVAL  # the big refund needs its own decision
    (next_held,) = second.waiting_for
    assert next_held.id != held.id
    assert json.loads(next_held.arguments) == {"order": "A", "amount": 1000000}


async def test_duplicate_ids_in_one_response_are_two_distinct_calls(store: Store) -> None:
    paid.clear()
    model = by_turn(
        response(
            ("r", "refund", '{"order":"A","amount":0.5}'),
            ("r", "refund", '{"order":"A","amount":1000000}'),
        ),
    )
    async with Runtime(store=store) as rt:
        parked = await rt.run(Agent(name="refunder", tools=[refund], model=model), "x")
    assert len({c.id for c in parked.waiting_for}) == 2
    assert sorted(json.loads(c.arguments)["amount"] for c in parked.waiting_for) == [0.5, 1000000]
    assert paid == []


async def test_duplicate_json_keys_are_refused_not_resolved(store: Store) -> None:
    paid.clear()
    model = by_turn(response(("r", "refund", '{"order":"A","amount":1,"amount":1000000}')), "ok")
    async with Runtime(store=store) as rt:
        result = await rt.run(Agent(name="refunder", tools=[refund], model=model), "x")
    assert result.status is RunStatus.COMPLETED
    assert result.waiting_for == ()  # never shown to a reviewer with an ambiguous amount
    seen = json.loads(model.requests[1].messages[-1].content)  # type: ignore[union-attr]
    assert seen["error_kind"] == "invalid_arguments"
    assert "duplicate keys" in seen["guidance"]
    assert paid == []


async def test_arguments_nested_to_exhaust_the_parser_are_invalid_not_a_crash(
    store: Store,
) -> None:
    deep = '{"q":' + "[" * 100_000 + "]" * 100_000 + "}"
    model = by_turn(response(("a", "lookup", deep)), "ok")
    async with Runtime(store=store) as rt:
        result = await rt.run(Agent(name="deep", tools=[lookup], model=model), "x")
    assert result.status is RunStatus.COMPLETED
    seen = json.loads(model.requests[1].messages[-1].content)  # type: ignore[union-attr]
    assert seen["error_kind"] == "invalid_arguments"


async def test_lone_surrogates_never_reach_the_journal_or_crash_the_run(store: Store) -> None:
    @tool
    def echo(text: str) -> str:
        """Echo."""
        return text

    model = by_turn(
        response(("a", "echo", '{"text":"\\ud800"}')),  # valid JSON, invalid Unicode inside
        "fine",
    )
    sleeps: list[float] = []

    async def no_sleep(delay: float) -> None:
        sleeps.append(delay)

    async with Runtime(store=store, sleep=no_sleep) as rt:
        result = await rt.run(Agent(name="echo", tools=[echo], model=model), "x")
    assert result.status is RunStatus.COMPLETED
    seen = json.loads(model.requests[1].messages[-1].content)  # type: ignore[union-attr]
    assert seen["error_kind"] == "invalid_result"

    bad_text = ScriptedModel(["\ud800 hello", "clean answer"])
    async with Runtime(store=store, sleep=no_sleep) as rt:
        retried = await rt.run(Agent(name="talker", model=bad_text), "x")
    assert retried.status is RunStatus.COMPLETED
    assert retried.output == "clean answer"
    assert [s.status for s in store.journal(retried.run_id)][1] == "bad_response"


async def test_a_call_the_pipeline_refuses_leaves_no_started_marker(store: Store) -> None:
    charged: list[str] = []

    @tool(side_effect=True, risk="irreversible", scope="payments:charge")
    def charge(order: str) -> str:
        """Charge (not idempotent)."""
        charged.append(order)
        return "charged"

    model = by_turn(
        response(("a", "charge", '{"order":"A"}')), response(("b", "charge", '{"nope":1}')), "ok"
    )
    async with Runtime(store=store) as rt:
        result = await rt.run(Agent(name="charger", tools=[charge], model=model), "x", grants=[])
    kinds = [s.kind for s in store.journal(result.run_id)]
    assert "tool_started" not in kinds  # unauthorized and invalid calls never "maybe happened"
    assert charged == []
    # ... but attempts at side effects are audited, refused or not.
    refused = [
        json.loads(r["payload"])["result"]["error_kind"]
        for r in store.audit_rows(run_id=result.run_id)
        if r["action"] == "tool_call"
    ]
    assert refused == ["unauthorized", "invalid_arguments"]


async def test_hand_back_unblocks_a_loop_escalation_and_gives_a_fresh_budget(
    store: Store,
) -> None:
    same = response(("a", "lookup", '{"q":"x"}'))
    model = by_turn(same, same, same, "answered after the note")
    budget = Budget(max_steps=3, lifetime=False)  # a fresh allowance at each hand-back
    agent = Agent(name="looper", tools=[lookup], model=model, budget=budget)
    async with Runtime(store=store) as rt:
        escalated = await rt.run(agent, "x")
        assert escalated.status is RunStatus.ESCALATED
        assert "loop detected" in escalated.handoff.reason  # type: ignore[union-attr]
        done = await rt.hand_back(escalated.run_id, "stop searching, answer", by="carol")
    assert done.status is RunStatus.COMPLETED
    assert done.output == "answered after the note"
    last = model.requests[-1].messages
    not_run = json.loads(last[-2].content)  # type: ignore[union-attr]
    assert not_run["error_kind"] == "not_run"
    assert "stop searching" in (last[-1].content or "")


async def test_alternating_calls_are_a_loop_too(store: Store) -> None:
    a = response(("1", "lookup", '{"q":"a"}'))
    b = response(("2", "lookup", '{"q": "b"}'))
    model = by_turn(a, b, a, b, a, b, "never")
    async with Runtime(store=store) as rt:
        result = await rt.run(Agent(name="ab", tools=[lookup], model=model, loop_limit=3), "x")
    assert result.status is RunStatus.ESCALATED
    assert "loop detected" in result.handoff.reason  # type: ignore[union-attr]
    assert result.tool_calls == 4


async def test_usage_a_provider_omits_is_estimated_so_token_budgets_bind(store: Store) -> None:
    async def chatty(request: ModelRequest) -> ModelResponse:
        turn = sum(m.role == "assistant" for m in request.messages)
        return ModelResponse(
            text=None,
            tool_calls=(
                ToolCall(id="a", name="lookup", arguments=json.dumps({"q": f"{turn}" * 4000})),
            ),
            model="m",
            provider="p",
            usage=Usage(),  # the provider said nothing
        )

    agent = Agent(
        name="chatty",
        tools=[lookup],
        model=ScriptedModel(chatty),
        budget=Budget(max_tokens=5000, max_steps=50),
    )
    async with Runtime(store=store) as rt:
        result = await rt.run(agent, "x")
    assert result.status is RunStatus.ESCALATED
    assert "token budget" in result.handoff.reason  # type: ignore[union-attr]
    assert result.model_calls < 5


async def test_a_failing_planner_is_retried_then_escalates(store: Store) -> None:
    planner = ModelPlanner(ScriptedModel([], faults={i: Fault.server_error() for i in range(4)}))
    agent = Agent(name="planned", model=ScriptedModel(["never"]), planner=planner)

    async def no_sleep(_: float) -> None:
        return None

    async with Runtime(store=store, sleep=no_sleep) as rt:
        result = await rt.run(agent, "x")
    assert result.status is RunStatus.ESCALATED
    assert result.retries == 4
    assert "unavailable" in result.handoff.reason  # type: ignore[union-attr]


async def test_two_resumes_of_one_run_drive_it_once(store: Store) -> None:
    model = ScriptedModel(["only once"], latency_s=0.05)
    agent = Agent(name="once", model=model)
    async with Runtime(store=store) as rt:
        run_id = await rt.start(agent, "x")
        first, second = await asyncio.gather(rt.resume(run_id), rt.resume(run_id))
    assert first == second
    assert len(model.requests) == 1


async def test_concurrent_submissions_with_one_idempotency_key_make_one_run(
    store: Store,
) -> None:
    agent = Agent(name="idem", model=ScriptedModel(lambda request: reply("x")))
    for tenant in (None, "acme"):
        async with Runtime(store=store) as rt:
            ids = await asyncio.gather(
                *(rt.start(agent, "x", tenant=tenant, idempotency_key="k") for _ in range(10))
            )
        assert len(set(ids)) == 1
    assert len(store.list_runs()) == 2


def test_a_fallback_riskier_than_its_primary_is_refused() -> None:
    @tool(fallback="send_backup", side_effect=True, risk="write", idempotent=True)
    def send(to: str) -> str:
        """Send (deduplicates)."""
        return "sent"

    @tool(side_effect=True, risk="write")
    def send_backup(to: str) -> str:
        """Send through a backup that cannot deduplicate."""
        return "sent"

    with pytest.raises(ToolDefinitionError, match="not idempotent and the primary is"):
        ToolExecutor([send, send_backup])


async def test_a_credential_in_an_exception_stays_out_of_the_logs(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    @tool(credential="CRM_TOKEN")
    def crm(q: str, token: Secret) -> str:
        """Call the CRM."""
        raise RuntimeError(f"401 for https://crm.example/api?key={token.reveal()}")

    model = by_turn(response(("a", "crm", '{"q":"x"}')), "ok")
    secrets = MappingSecrets({"CRM_TOKEN": "sk-live-SUPERSECRET"})
    with caplog.at_level(logging.DEBUG):
        async with Runtime(store=store, secrets=secrets) as rt:
            result = await rt.run(Agent(name="crm", tools=[crm], model=model), "x")
    assert result.status is RunStatus.COMPLETED
    assert "SUPERSECRET" not in caplog.text
    assert all("SUPERSECRET" not in s.payload for s in store.journal(result.run_id))


async def test_an_unexpected_error_fails_the_run_instead_of_crashing_every_resume(
    store: Store,
) -> None:
    def broken_rule(call: Any, state: Any) -> None:
        raise RuntimeError("critic bug")

    model = by_turn(response(("a", "lookup", '{"q":"x"}')), "ok")
    agent = Agent(name="buggy", tools=[lookup], model=model, critic=RuleCritic([broken_rule]))
    async with Runtime(store=store) as rt:
        result = await rt.run(agent, "x")
    assert result.status is RunStatus.FAILED
    assert "critic bug" in (result.error or "")
    assert store.get_run(result.run_id).status == "failed"


async def test_cancelling_an_active_run_records_who_did_it(store: Store) -> None:
    started = asyncio.Event()

    async def hang(request: ModelRequest) -> ModelResponse:
        started.set()
        await asyncio.sleep(30)
        raise ModelUnavailable("unreachable")

    async with Runtime(store=store) as rt:
        run_id = await rt.start(Agent(name="hang", model=ScriptedModel(hang)), "x")
        task = asyncio.create_task(rt.resume(run_id))
        await asyncio.wait_for(started.wait(), 5)
        await rt.cancel(run_id, by="dave")
        with pytest.raises(asyncio.CancelledError):
            await task
    row = store.audit_rows(run_id=run_id)[-1]
    assert (row["action"], row["approver"]) == ("run_finished", "dave")
    assert store.get_run(run_id).error == "cancelled by dave"


async def test_cost_budget_counts_the_plan_too(store: Store) -> None:
    async def pricey(request: ModelRequest) -> ModelResponse:
        return ModelResponse(text="plan", model="m", provider="p", cost_usd=Decimal("1"))

    agent = Agent(
        name="pricey",
        model=ScriptedModel(["never"]),
        planner=ModelPlanner(ScriptedModel(pricey)),
        budget=Budget(max_cost_usd=Decimal("0.5")),
    )
    async with Runtime(store=store) as rt:
        result = await rt.run(agent, "x")
    assert result.status is RunStatus.ESCALATED
    assert "cost budget" in result.handoff.reason  # type: ignore[union-attr]


async def test_the_critic_screens_questions_for_people_and_denials_are_audited(
    store: Store,
) -> None:
    def rules(call: Any, state: Any) -> Any:
        from bosun.runtime import Verdict

        if call.name == "ask_human" and "password" in call.arguments:
            return Verdict.deny("never ask a person for credentials")
        if call.name == "refund":
            return Verdict.deny("refunds are handled by billing")
        return None

    paid.clear()
    model = by_turn(
        response(("1", "ask_human", '{"question":"What is the admin password?"}')),
        response(("2", "refund", '{"order":"A","amount":5}')),
        "ok",
    )
    agent = Agent(
        name="screened", tools=[refund], model=model, ask_human=True, critic=RuleCritic([rules])
    )
    async with Runtime(store=store) as rt:
        result = await rt.run(agent, "x")
    assert result.status is RunStatus.COMPLETED  # never parked for the hostile question
    denied = [
        json.loads(r["payload"])["result"]["error_kind"]
        for r in store.audit_rows(run_id=result.run_id)
        if r["action"] == "tool_call"
    ]
    assert denied == ["denied_by_critic"]  # the refused refund; questions are not effects
    assert paid == []
