"""Tiers, routing rules, promotion, fallback chains and the learned router, through real runs
on both backends: what answered is journaled, every attempt counted, nothing spent hidden."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from bosun import Agent, Budget, Runtime, Store, tool
from bosun.economy import (
    FallbackChain,
    Router,
    Tiers,
    load_router,
    output_schema,
    valid_tool_calls,
)
from bosun.errors import ModelsExhausted, UserError
from bosun.memory.summary import ModelSummarizer, Turn
from bosun.models.base import ModelRequest, ModelResponse
from bosun.models.context import CallContext, Purpose
from bosun.observe.tracing import trace_of
from bosun.runtime.agent import ModelPolicy
from bosun.runtime.critic import RuleCritic, Verdict
from bosun.runtime.state import RunState, RunStatus
from bosun.testing import Fault, ScriptedModel, call, reply
from bosun.tools.base import BreakerPolicy, RetryPolicy
from bosun.trust import Content, Trust

CHEAP = Decimal("0.1")
BALANCED = Decimal("1")


@tool
def lookup(q: str) -> str:
    """Look something up."""
    return f"found {q}"


async def no_sleep(_: float) -> None:
    return None


def priced(
    script: list[str | ModelResponse], name: str, rate: Decimal, **kw: object
) -> ScriptedModel:
    return ScriptedModel(script, name=name, cost_per_1k_tokens=rate, **kw)  # type: ignore[arg-type]


def steps(store: Store, run_id: str) -> list[tuple[str, str | None, str | None]]:
    return [(s.kind, s.model, s.status) for s in store.journal(run_id)]


# --- rules by step ------------------------------------------------------------------------


async def test_each_step_goes_to_the_tier_its_rule_names(store: Store) -> None:
    cheap = priced([reply("summary of the turns")], "cheap", CHEAP)
    balanced = priced([call("lookup", {"q": "x"}), reply("done")], "balanced", BALANCED)
    router = Router(Tiers(cheap=cheap, balanced=balanced))
    agent = Agent(name="routed", tools=[lookup], model=router)
    async with Runtime(store=store) as rt:
        result = await rt.run(agent, "find x")
    assert result.status is RunStatus.COMPLETED
    assert [r.context.purpose for r in balanced.requests if r.context] == [
        Purpose.ANSWER,
        Purpose.TOOL_FOLLOWUP,
    ]
    # A summary (a thread fold, a long run's fold) asks the cheap tier.
    summarizer = ModelSummarizer(router)
    part = Content(text="hi", trust=Trust.USER, source="input")
    turn = Turn(run_id="r1", parts=(part,), answer="ok", status="completed")
    draft = await summarizer.summarize(None, [turn])
    assert draft.model == "cheap" and cheap.requests[0].context is not None
    assert cheap.requests[0].context.tier == "cheap"
    # The trace says which tier answered and why.
    payloads = [json.loads(s.payload) for s in store.journal(result.run_id)]
    routes = [p["response"]["route"] for p in payloads if "response" in p]
    assert routes == [
        {"tier": "balanced", "reason": "rule: answer -> balanced", "source": "model"},
        {"tier": "balanced", "reason": "rule: tool_followup -> balanced", "source": "model"},
    ]


def test_rules_must_name_tiers_that_exist() -> None:
    with pytest.raises(UserError, match="tier 'cheap'"):
        Router(Tiers(small=ScriptedModel([]), large=ScriptedModel([])))
    Router(
        Tiers(small=ScriptedModel([]), large=ScriptedModel([])),
        rules={Purpose.ANSWER: "small"},
        default="large",
    )


# --- promotion ------------------------------------------------------------------------------


async def test_a_cheap_answer_that_fails_a_check_is_paid_for_and_promoted(store: Store) -> None:
    # The cheap model proposes a tool that does not exist: the check rejects it, the
    # balanced tier answers, and the rejected answer's tokens and price are in the run's.
    cheap = priced([call("no_such_tool", {"q": "x"})], "cheap", CHEAP)
    balanced = priced([reply('{"answer": 42}')], "balanced", BALANCED)
    router = Router(
        Tiers(cheap=cheap, balanced=balanced),
        rules={p: "cheap" for p in Purpose},
        checks=[valid_tool_calls, output_schema({"type": "object", "required": ["answer"]})],
    )
    agent = Agent(name="promoted", tools=[lookup], model=router)
    async with Runtime(store=store) as rt:
        result = await rt.run(agent, "answer in JSON")
    assert result.output == '{"answer": 42}'
    journal = store.journal(result.run_id)
    assert [(s.kind, s.model, s.status) for s in journal[1:3]] == [
        ("model_error", "cheap", "rejected"),
        ("model_response", "balanced", "ok"),
    ]
    rejected, answered = journal[1], journal[2]
    assert "unknown tool 'no_such_tool'" in json.loads(rejected.payload)["message"]
    assert rejected.cost_usd and rejected.cost_usd > 0
    spent = Decimal(str(rejected.cost_usd)) + Decimal(str(answered.cost_usd))
    assert result.cost_usd == pytest.approx(spent)
    tokens = (rejected.input_tokens or 0) + (answered.input_tokens or 0)
    row = store.get_run(result.run_id)
    assert row.input_tokens == tokens
    route = json.loads(answered.payload)["response"]["route"]
    assert route["tier"] == "balanced" and "promoted after cheap" in route["reason"]
    # The trace shows both attempts, the tier of each, and why the second was asked.
    chats = [
        s.attributes
        for s in trace_of(store, result.run_id).spans
        if s.attributes.get("gen_ai.operation.name") == "chat"
    ]
    by_tier = {a.get("bosun.route.tier"): a for a in chats}
    assert sorted(by_tier, key=str) == ["balanced", "cheap"]
    assert by_tier["cheap"]["error.type"] == "rejected"
    assert by_tier["cheap"]["gen_ai.usage.input_tokens"] == rejected.input_tokens
    assert "promoted after cheap" in str(by_tier["balanced"]["bosun.route.reason"])


class Ledger:
    """A spend guard that only records what it is charged."""

    def __init__(self) -> None:
        self.amounts: list[Decimal] = []

    async def before_model_call(self, state: RunState) -> str | None:
        return None

    async def charged(self, state: RunState, cost_usd: Decimal) -> None:
        self.amounts.append(cost_usd)


async def test_tenant_spend_counts_a_rejected_answer_too(store: Store) -> None:
    cheap = priced([reply("not JSON")], "cheap", CHEAP)
    balanced = priced([reply('{"answer": 42}')], "balanced", BALANCED)
    router = Router(
        Tiers(cheap=cheap, balanced=balanced),
        rules={p: "cheap" for p in Purpose},
        checks=[output_schema({"type": "object", "required": ["answer"]})],
    )
    ledger = Ledger()
    async with Runtime(store=store, spend=ledger) as rt:
        result = await rt.run(Agent(name="spent", model=router), "answer in JSON")
    assert result.cost_usd and sum(ledger.amounts) == pytest.approx(result.cost_usd)
    assert sum(ledger.amounts) > Decimal(str(store.journal(result.run_id)[2].cost_usd))


async def test_a_proposal_the_critic_denied_sends_the_next_call_one_tier_up(store: Store) -> None:
    def deny_first(call: object, state: object) -> Verdict | None:
        return Verdict.deny("lookups of secret are not allowed")

    cheap = priced([call("lookup", {"q": "secret"}), reply("never")], "cheap", CHEAP)
    balanced = priced([reply("answered without the lookup")], "balanced", BALANCED)
    router = Router(Tiers(cheap=cheap, balanced=balanced), rules={p: "cheap" for p in Purpose})
    agent = Agent(name="criticised", tools=[lookup], model=router, critic=RuleCritic([deny_first]))
    async with Runtime(store=store) as rt:
        result = await rt.run(agent, "look up secret")
    assert result.output == "answered without the lookup"
    context = balanced.requests[0].context
    assert context is not None and context.promote is not None
    assert "denied_by_critic" in context.promote


# --- fallback chains ------------------------------------------------------------------------


async def test_a_429_and_a_5xx_fall_over_and_each_attempt_is_journaled(store: Store) -> None:
    first = ScriptedModel([], name="first", faults={0: Fault.rate_limit(retry_after=2)})
    second = ScriptedModel([], name="second", faults={0: Fault.server_error()})
    third = priced(["third answers"], "third", BALANCED)
    agent = Agent(name="chained", model=FallbackChain([first, second, third]))
    async with Runtime(store=store, sleep=no_sleep) as rt:
        result = await rt.run(agent, "hello")
    assert result.output == "third answers"
    assert steps(store, result.run_id)[1:4] == [
        ("model_error", "first", "rate_limited"),
        ("model_error", "second", "unavailable"),
        ("model_response", "third", "ok"),
    ]
    assert result.model_calls == 1  # failed attempts are not answers
    state = await Runtime(store=store).state(result.run_id)
    assert state.retries == 2


async def test_an_open_breaker_skips_the_model_until_its_cooldown(store: Store) -> None:
    now = [0.0]
    flaky = ScriptedModel([], name="flaky", faults={i: Fault.server_error() for i in range(2)})
    backup = priced(["b1", "b2", "b3"], "backup", BALANCED)
    chain = FallbackChain(
        [flaky, backup],
        breaker=BreakerPolicy(failure_threshold=2, cooldown_s=60),
        clock=lambda: now[0],
    )
    agent = Agent(name="breaker", model=chain)
    async with Runtime(store=store) as rt:
        await rt.run(agent, "one")
        await rt.run(agent, "two")
        third = await rt.run(agent, "three")
    assert len(flaky.requests) == 2  # the third run never asked it
    assert steps(store, third.run_id)[1:3] == [
        ("model_error", "flaky", "circuit_open"),
        ("model_response", "backup", "ok"),
    ]
    assert chain.breaker("flaky") == "open"


async def test_every_model_failing_escalates_with_each_reason_and_the_budget_intact(
    store: Store,
) -> None:
    # Both models down for every attempt the runtime makes: the run escalates, the handoff
    # names each model and its error, every attempt is journaled, and the budget counts
    # what was spent before (one answered step), nothing more.
    first = ScriptedModel([], name="first", faults={i: Fault.server_error() for i in range(9)})
    second = ScriptedModel([], name="second", faults={i: Fault.timeout() for i in range(9)})
    router = Router(
        Tiers(
            cheap=priced([call("lookup", {"q": "x"})], "cheap", CHEAP),
            balanced=FallbackChain([first, second], tier="balanced"),
        ),
        rules={Purpose.ANSWER: "cheap", Purpose.TOOL_FOLLOWUP: "balanced"},
    )
    policy = ModelPolicy(retry=RetryPolicy(attempts=2, initial_delay_s=0, max_delay_s=0))
    agent = Agent(
        name="down",
        tools=[lookup],
        model=router,
        model_policy=policy,
        budget=Budget(max_steps=5, max_cost_usd=Decimal("1")),
    )
    async with Runtime(store=store, sleep=no_sleep) as rt:
        result = await rt.run(agent, "find x")
    assert result.status is RunStatus.ESCALATED
    assert result.handoff is not None
    reason = result.handoff.reason
    assert "first: unavailable" in reason and "second: timeout" in reason
    errors = [(m, s) for k, m, s in steps(store, result.run_id) if k == "model_error"]
    assert errors == [("first", "unavailable"), ("second", "timeout")] * 2
    assert result.model_calls == 1
    row = store.get_run(result.run_id)
    answered = [s for s in store.journal(result.run_id) if s.kind == "model_response"]
    assert row.input_tokens == answered[0].input_tokens
    assert result.cost_usd == pytest.approx(Decimal(str(answered[0].cost_usd)))


async def test_an_exhausted_chain_is_one_error_with_every_failure() -> None:
    chain = FallbackChain(
        [
            ScriptedModel([], name="a", faults={0: Fault.rate_limit()}),
            ScriptedModel([], name="b", faults={0: Fault.auth()}),
        ]
    )
    request = ModelRequest(messages=(), context=CallContext())
    with pytest.raises(ModelsExhausted) as caught:
        await chain.request(request)
    assert [f.kind for f in caught.value.failures] == ["rate_limited", "auth"]
    assert not caught.value.retryable  # the last failure was an auth error


# --- the learned router ---------------------------------------------------------------------


def test_the_shipped_router_sends_each_kind_of_request_to_its_tier() -> None:
    router = load_router()
    assert router.tiers == ("cheap", "balanced", "premium")
    picks = {
        text: decision.tier
        for text in (
            "What are the fees for topping up with a card?",
            "My transfer from yesterday is still pending, why?",
            "Someone stole my card, please block it now",
        )
        if (decision := router.classify(text)) is not None
    }
    assert list(picks.values()) == ["cheap", "balanced", "premium"]


async def test_the_classifier_picks_the_tier_of_the_agent_loop(store: Store) -> None:
    cheap = priced(["the fee is 1%"], "cheap", CHEAP)
    premium = priced(["card blocked"], "premium", Decimal(5))
    router = Router(
        Tiers(cheap=cheap, balanced=priced([], "balanced", BALANCED), premium=premium),
        classifier=load_router(),
    )
    agent = Agent(name="classified", model=router)
    async with Runtime(store=store) as rt:
        easy = await rt.run(agent, "What are the fees for topping up with a card?")
        hard = await rt.run(agent, "Someone stole my card, please block it now")
    assert (easy.output, hard.output) == ("the fee is 1%", "card blocked")
    payload = json.loads(store.journal(hard.run_id)[1].payload)
    assert payload["response"]["route"]["reason"].startswith("classifier: needs premium")


async def test_a_response_from_a_plain_model_has_no_route() -> None:
    response = await ScriptedModel(["x"]).request(ModelRequest(messages=()))
    assert isinstance(response, ModelResponse) and response.route is None
