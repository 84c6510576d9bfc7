"""Traces derived from the journal: spans, timings, waits, guardrails, sub-agents, the CLI."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
import typer
from inline_snapshot import snapshot
from typer.testing import CliRunner

from bosun.cli.trace import trace_command
from bosun.data.store import Store
from bosun.errors import RunNotFound, TransientToolError
from bosun.observe.tracing import Trace, span_id_for, trace_id_for, trace_of
from bosun.runtime import Agent, Budget, RuleCritic, RunStatus, Runtime, Verdict
from bosun.runtime.agent import ResolvedInstructions
from bosun.testing import Fault, ScriptedModel, call, reply
from bosun.tools import RetryPolicy, ToolContext, tool


async def no_sleep(delay: float) -> None:
    pass


def outline(trace: Trace) -> list[dict[str, Any]]:
    """The trace with ids and times normalised: names, nesting, status, attributes."""
    spans = []
    for depth, span in trace.walk():
        attributes = dict(sorted(span.attributes.items()))
        if "bosun.run.id" in attributes:
            attributes["bosun.run.id"] = "<run>"
        entry: dict[str, Any] = {"span": "  " * depth + span.name, "kind": span.kind}
        if span.status == "error":
            entry["error"] = span.status_message
        entry["attributes"] = attributes
        if span.events:
            entry["events"] = [e.name for e in span.events]
        spans.append(entry)
    return spans


def assert_well_formed(trace: Trace) -> None:
    """Times nest and ids link up, whatever the clock said."""
    root = trace.root
    assert root.end is not None
    ids = {s.span_id for s in trace.spans}
    assert len(ids) == len(trace.spans)
    for span in trace.spans[1:]:
        assert span.parent_id in ids
        assert span.end is not None
        assert root.start <= span.start <= span.end <= root.end


# --- a multi-step run with failures and retries -------------------------------------------


def tools_failing_once() -> list[Any]:
    failures = ["CRM timed out"]

    @tool(retry=RetryPolicy(attempts=3, initial_delay_s=0, jitter_s=0))
    def lookup_customer(email: str) -> dict[str, str]:
        """Find a customer by email."""
        if failures:
            raise TransientToolError(failures.pop())
        return {"email": email, "tier": "gold"}

    @tool
    def open_ticket(subject: str) -> dict[str, int]:
        """Open a support ticket."""
        return {"ticket": 42}

    return [lookup_customer, open_ticket]


async def test_snapshot_of_a_run_with_a_model_retry_and_a_tool_retry(store: Store) -> None:
    model = ScriptedModel(
        [
            call("lookup_customer", {"email": "a@b.c"}),
            call("open_ticket", {"subject": "refund for a@b.c"}),
            reply("Ticket 42 opened."),
        ],
        faults={0: Fault.server_error()},
        cost_per_1k_tokens=Decimal("0.002"),
    )
    agent = Agent(
        name="support", instructions="Be helpful.", tools=tools_failing_once(), model=model
    )
    async with Runtime(store=store, sleep=no_sleep) as rt:
        result = await rt.run(agent, "Open a refund ticket for a@b.c")
    assert result.status is RunStatus.COMPLETED
    model.assert_consumed()

    trace = trace_of(store, result.run_id)
    assert trace.trace_id == trace_id_for(result.run_id)
    assert_well_formed(trace)
    _, failed, retried, lookup, proposes_ticket, ticket, last = trace.spans
    # The failed attempt ends before its retry starts; each tool runs after the response
    # that proposed it and before the next model call.
    assert failed.end is not None and retried.end is not None and lookup.end is not None
    assert failed.end <= retried.start and retried.end <= lookup.start
    assert lookup.end <= proposes_ticket.start <= ticket.start <= last.start
    assert outline(trace) == snapshot(
        [
            {
                "span": "invoke_agent support",
                "kind": "internal",
                "attributes": {
                    "bosun.cost_usd": 0.000166,
                    "bosun.model_calls": 3,
                    "bosun.retries": 2,
                    "bosun.run.id": "<run>",
                    "bosun.run.status": "completed",
                    "bosun.tool_calls": 2,
                    "gen_ai.agent.name": "support",
                    "gen_ai.operation.name": "invoke_agent",
                    "gen_ai.usage.input_tokens": 65,
                    "gen_ai.usage.output_tokens": 18,
                },
            },
            {
                "span": "  chat",
                "kind": "client",
                "error": "internal server error",
                "attributes": {
                    "bosun.attempt": 1,
                    "error.type": "unavailable",
                    "gen_ai.operation.name": "chat",
                },
            },
            {
                "span": "  chat scripted",
                "kind": "client",
                "attributes": {
                    "bosun.attempt": 2,
                    "bosun.cost_usd": 3.2e-05,
                    "gen_ai.operation.name": "chat",
                    "gen_ai.provider.name": "scripted",
                    "gen_ai.request.model": "scripted",
                    "gen_ai.response.finish_reasons": ("tool_calls",),
                    "gen_ai.response.model": "scripted",
                    "gen_ai.usage.input_tokens": 11,
                    "gen_ai.usage.output_tokens": 5,
                },
            },
            {
                "span": "  execute_tool lookup_customer",
                "kind": "internal",
                "attributes": {
                    "bosun.retries": 1,
                    "bosun.tool.attempts": 2,
                    "bosun.tool.status": "ok",
                    "gen_ai.operation.name": "execute_tool",
                    "gen_ai.tool.call.id": "call_2_0",
                    "gen_ai.tool.name": "lookup_customer",
                    "gen_ai.tool.type": "function",
                },
            },
            {
                "span": "  chat scripted",
                "kind": "client",
                "attributes": {
                    "bosun.attempt": 1,
                    "bosun.cost_usd": 6.2e-05,
                    "gen_ai.operation.name": "chat",
                    "gen_ai.provider.name": "scripted",
                    "gen_ai.request.model": "scripted",
                    "gen_ai.response.finish_reasons": ("tool_calls",),
                    "gen_ai.response.model": "scripted",
                    "gen_ai.usage.input_tokens": 23,
                    "gen_ai.usage.output_tokens": 8,
                },
            },
            {
                "span": "  execute_tool open_ticket",
                "kind": "internal",
                "attributes": {
                    "bosun.retries": 0,
                    "bosun.tool.attempts": 1,
                    "bosun.tool.status": "ok",
                    "gen_ai.operation.name": "execute_tool",
                    "gen_ai.tool.call.id": "call_4_0",
                    "gen_ai.tool.name": "open_ticket",
                    "gen_ai.tool.type": "function",
                },
            },
            {
                "span": "  chat scripted",
                "kind": "client",
                "attributes": {
                    "bosun.attempt": 1,
                    "bosun.cost_usd": 7.2e-05,
                    "gen_ai.operation.name": "chat",
                    "gen_ai.provider.name": "scripted",
                    "gen_ai.request.model": "scripted",
                    "gen_ai.response.finish_reasons": ("stop",),
                    "gen_ai.response.model": "scripted",
                    "gen_ai.usage.input_tokens": 31,
                    "gen_ai.usage.output_tokens": 5,
                },
            },
        ]
    )


# --- waits ---------------------------------------------------------------------------------


@tool(side_effect=True, risk="irreversible", requires_approval=True)
def refund(order: str, amount: float) -> str:
    """Refund an order."""
    return f"refunded {amount}"


async def test_an_approval_wait_is_open_while_parked_and_closed_by_the_decision(
    store: Store,
) -> None:
    model = ScriptedModel([call("refund", {"order": "A1", "amount": 5.0}), reply("done")])
    agent = Agent(name="refunder", tools=[refund], model=model)
    async with Runtime(store=store) as rt:
        parked = await rt.run(agent, "refund A1")
        assert parked.status is RunStatus.WAITING_APPROVAL
        waiting = trace_of(store, parked.run_id)
        assert waiting.root.end is None  # the run is not over
        (wait,) = [s for s in waiting.spans if s.name == "await_approval refund"]
        assert wait.end is None
        assert wait.attributes["bosun.wait.outcome"] == "pending"
        assert wait.attributes["bosun.approval.reason"] == "the tool requires approval"
        await rt.decide(parked.run_id, parked.waiting_for[0].id, approved=True, decided_by="bob")

    trace = trace_of(store, parked.run_id)
    assert_well_formed(trace)
    (wait,) = [s for s in trace.spans if s.name == "await_approval refund"]
    (executed,) = [s for s in trace.spans if s.name == "execute_tool refund"]
    assert wait.end is not None and wait.end <= executed.start
    assert wait.span_id == span_id_for(
        parked.run_id, f"approval:{executed.attributes['gen_ai.tool.call.id']}"
    )
    assert (
        wait.attributes["bosun.approval.approved"],
        wait.attributes["bosun.approval.decided_by"],
    ) == (True, "bob")
    assert trace.root.attributes["bosun.run.status"] == "completed"


@tool
def ping(n: int) -> int:
    """Ping."""
    return n


async def test_human_waits_for_an_escalation_and_for_ask_human(store: Store) -> None:
    model = ScriptedModel(
        [
            call("ping", {"n": 1}),
            call("ask_human", {"question": "Which account?"}),
            reply("done with help"),
        ]
    )
    small = Agent(
        name="pinger", tools=[ping], model=model, budget=Budget(max_steps=1), ask_human=True
    )
    async with Runtime(store=store) as rt:
        escalated = await rt.run(small, "x")
    assert escalated.status is RunStatus.ESCALATED
    parked = trace_of(store, escalated.run_id)
    (wait,) = [s for s in parked.spans if s.name == "await_human"]
    assert wait.end is None and "step" in str(wait.attributes["bosun.human.reason"])
    assert [e.name for e in parked.root.events] == ["escalated"]

    bigger = Agent(
        name="pinger", tools=[ping], model=model, budget=Budget(max_steps=5), ask_human=True
    )
    async with Runtime(store=store, agents=[bigger]) as rt:
        asking = await rt.hand_back(escalated.run_id, "go ahead", by="carol")
        assert asking.status is RunStatus.WAITING_HUMAN
        done = await rt.hand_back(escalated.run_id, "account 7", by="dan")
    assert done.status is RunStatus.COMPLETED

    trace = trace_of(store, escalated.run_id)
    assert_well_formed(trace)
    waits = [s for s in trace.spans if s.name == "await_human"]
    assert [
        (w.attributes["bosun.human.answered_by"], w.attributes["bosun.human.handed_back_with"])
        for w in waits
    ] == [("carol", "note"), ("dan", "answer")]
    assert waits[1].attributes["bosun.human.question"] == "Which account?"
    assert waits[1].attributes["gen_ai.tool.name"] == "ask_human"


# --- guardrails ------------------------------------------------------------------------------


@tool(scope="mail:send", side_effect=True, risk="write", outbound=["to"])
def send_email(to: str, body: str) -> str:
    """Send an email."""
    return "sent"


def no_competitors(c: Any, state: Any) -> Verdict | None:
    return Verdict.deny("do not look up competitors") if "competitor" in c.arguments else None


async def test_guardrails_are_spans(store: Store) -> None:
    model = ScriptedModel(
        [
            call("send_email", {"to": "mallory@evil.example", "body": "hi"}),
            call("ping", {"n": 1, "note": "competitor"}),
            reply("ok"),
        ]
    )
    agent = Agent(
        name="mailer",
        tools=[send_email, ping],
        model=model,
        critic=RuleCritic([no_competitors]),
    )
    finding = {
        "part": 0,
        "source": "input:user",
        "trust": "user",
        "verdict": "suspicious",
        "score": 0.61,
        "signals": ["ignore previous"],
    }
    async with Runtime(store=store) as rt:
        run_id = await rt.start(agent, "email bob@example.com", gateway={"screening": [finding]})
        result = await rt.resume(run_id)
        assert result.status is RunStatus.COMPLETED
        await rt.audit(
            run_id, "output_guardrail", {"action": "redact", "reasons": ["pii"]}, actor="alice"
        )

    trace = trace_of(store, run_id)
    guards = {
        s.name + " <- " + next(p.name for p in trace.spans if p.span_id == s.parent_id): s
        for s in trace.spans
        if s.name.startswith("guardrail")
    }
    assert sorted(guards) == [
        "guardrail critic <- execute_tool ping",
        "guardrail injection_screen <- invoke_agent mailer",
        "guardrail output <- invoke_agent mailer",
        "guardrail taint_policy <- execute_tool send_email",
    ]
    screen = guards["guardrail injection_screen <- invoke_agent mailer"].attributes
    assert (
        screen["bosun.guardrail.verdict"],
        screen["bosun.guardrail.score"],
        screen["bosun.guardrail.action"],
    ) == ("suspicious", 0.61, "flag")
    taint = guards["guardrail taint_policy <- execute_tool send_email"].attributes
    assert taint["bosun.guardrail.action"] == "refuse"
    assert "did not come from trusted or user content" in str(taint["bosun.guardrail.reason"])
    output = guards["guardrail output <- invoke_agent mailer"].attributes
    assert (output["bosun.guardrail.action"], output["bosun.guardrail.reasons"]) == (
        "redact",
        ("pii",),
    )
    (refused,) = [s for s in trace.spans if s.name == "execute_tool send_email"]
    assert (refused.status, refused.attributes["error.type"]) == ("error", "blocked_by_policy")


# --- sub-agents ----------------------------------------------------------------------------


async def test_a_sub_agent_run_joins_its_parent_trace_under_the_tool_span(store: Store) -> None:
    calls_seen: list[ToolContext] = []

    @tool
    def delegate(task: str, ctx: ToolContext) -> str:
        """Hand a task to a sub-agent."""
        calls_seen.append(ctx)
        return "delegated"

    parent = Agent(
        name="boss",
        tools=[delegate],
        model=ScriptedModel([call("delegate", {"task": "t"}), reply("ok")]),
    )
    child = Agent(name="helper", model=ScriptedModel([reply("one"), reply("two")]))
    async with Runtime(store=store) as rt:
        top = await rt.run(parent, "x")
        (ctx,) = calls_seen
        link = {"parent_run_id": top.run_id, "parent_call_id": ctx.call_id}
        child_id = await rt.start(child, "sub task", gateway=link, queued=False)
        await rt.resume(child_id)
        # A grandchild names only its parent run: it hangs under that run's root span.
        grandchild_id = await rt.start(
            child, "sub sub task", gateway={"parent_run_id": child_id}, queued=False
        )
        await rt.resume(grandchild_id)

    parent_trace = trace_of(store, top.run_id)
    child_trace = trace_of(store, child_id)
    grandchild_trace = trace_of(store, grandchild_id)
    (tool_span,) = [s for s in parent_trace.spans if s.name == "execute_tool delegate"]
    assert child_trace.trace_id == grandchild_trace.trace_id == parent_trace.trace_id
    assert child_trace.root.parent_id == tool_span.span_id
    assert grandchild_trace.root.parent_id == child_trace.root.span_id
    assert parent_trace.root.parent_id is None


# --- prompt versions -------------------------------------------------------------------------


class Registry:
    """Instructions from a prompt registry's label, as the runtime journals them."""

    def resolve(self, *, key: str) -> ResolvedInstructions:
        source = {"name": "support", "version": "1.2.0", "label": "production", "digest": "d"}
        return ResolvedInstructions(text="Be brief.", source=source)


async def test_model_calls_and_the_run_carry_the_prompt_version(store: Store) -> None:
    agent = Agent(name="brief", instructions=Registry(), model=ScriptedModel([reply("ok")]))
    async with Runtime(store=store) as rt:
        run_id = await rt.start(agent, "hi", conversation="conv-9", queued=False)
        await rt.resume(run_id)
    root, chat = trace_of(store, run_id).spans
    for span in (root, chat):
        assert {k: v for k, v in span.attributes.items() if k.startswith("bosun.prompt")} == {
            "bosun.prompt.name": "support",
            "bosun.prompt.version": "1.2.0",
            "bosun.prompt.label": "production",
        }
    assert root.attributes["gen_ai.conversation.id"] == "conv-9"


# --- ids, errors, the command --------------------------------------------------------------


async def test_deriving_twice_gives_the_same_trace(store: Store) -> None:
    agent = Agent(name="a", model=ScriptedModel([reply("x")]))
    async with Runtime(store=store) as rt:
        result = await rt.run(agent, "x")
    assert trace_of(store, result.run_id) == trace_of(store, result.run_id)
    assert trace_of(store, result.run_id).trace_id != trace_id_for("another run")
    with pytest.raises(RunNotFound):
        trace_of(store, "no-such-run")


async def test_a_failed_run_has_an_error_root(store: Store) -> None:
    agent = Agent(name="a", model=ScriptedModel([Fault.auth()]))
    async with Runtime(store=store) as rt:
        result = await rt.run(agent, "x")
    assert result.status is RunStatus.FAILED
    trace = trace_of(store, result.run_id)
    assert (trace.root.status, trace.root.attributes["error.type"]) == ("error", "run_failed")
    assert "authentication" in (trace.root.status_message or "")
    (attempt,) = trace.spans[1:]
    assert (attempt.status, attempt.attributes["error.type"]) == ("error", "auth")


def cli() -> typer.Typer:
    app = typer.Typer()
    app.command()(trace_command)
    return app


async def test_the_trace_command_prints_a_tree_and_json(db_url: str) -> None:
    model = ScriptedModel(
        [Fault.server_error(), call("ping", {"n": 3}), reply("pong")],
        cost_per_1k_tokens=Decimal("0.01"),
    )
    agent = Agent(name="pinger", tools=[ping], model=model)
    async with Runtime(store=db_url, sleep=no_sleep) as rt:
        result = await rt.run(agent, "ping 3")

    runner = CliRunner()
    shown = runner.invoke(cli(), [result.run_id, "--db", db_url], env={"COLUMNS": "200"})
    assert shown.exit_code == 0, shown.output
    header, *lines = shown.output.splitlines()
    assert header == f"trace {trace_id_for(result.run_id)}  run {result.run_id}"
    assert lines[0].startswith("invoke_agent pinger  +0.0 ms")
    assert lines[0].endswith("completed")
    assert "✗ unavailable: internal server error" in lines[1]
    assert "execute_tool ping" in lines[3] and "tok" not in lines[3]
    assert "tok" in lines[2] and "$0.0" in lines[2] and "attempt 2" in lines[2]

    as_json = runner.invoke(cli(), [result.run_id, "--db", db_url, "--json"])
    assert as_json.exit_code == 0, as_json.output
    data = json.loads(as_json.output)
    root = data["root"]
    assert (data["trace_id"], root["name"], root["offset_s"]) == (
        trace_id_for(result.run_id),
        "invoke_agent pinger",
        0,
    )
    assert [c["name"] for c in root["children"]] == [
        "chat",
        "chat scripted",
        "execute_tool ping",
        "chat scripted",
    ]
    assert all(c["parent_span_id"] == root["span_id"] for c in root["children"])
    assert root["attributes"]["gen_ai.usage.input_tokens"] == sum(
        c["attributes"].get("gen_ai.usage.input_tokens", 0) for c in root["children"]
    )
    assert root["children"][2]["attributes"]["gen_ai.tool.name"] == "ping"

    missing = runner.invoke(cli(), ["nope", "--db", db_url])
    assert missing.exit_code == 1
