"""Failure handling: retries, the exception agent, the reviewer, timeouts, hand-backs, resume.

Each test can fail: the exception agent must really fix the input (the stage fails without
it), the reviewer must really stop the tool (its side effects are counted), a finished
branch must not run again (its executions are counted across the escalation and hand-back).
"""

from __future__ import annotations

import asyncio
from typing import Any

from helpers import Checked, Order, Paid, PayIn, json_agent, stage_data
from pydantic import BaseModel

from bosun.data.store import Store
from bosun.models.base import ModelRequest
from bosun.orchestration import (
    Pipeline,
    Pipelines,
    PipelineStatus,
    Resolution,
    ReviewerCritic,
    StageFailure,
    StagePolicy,
    agent_stage,
    agent_tool,
    bind_agent_tools,
    function_stage,
)
from bosun.runtime import Agent, RunStatus, Runtime
from bosun.testing import ScriptedModel, call, reply
from bosun.tools import ToolContext, tool
from bosun.trust import Trust


def validate(order: Order) -> Order:
    if not order.order_id.startswith("#"):
        raise ValueError(f"order {order.order_id!r} not found")
    return order


def pay(checks: PayIn) -> Paid:
    return Paid(order_id=checks.stock.order_id, stock=checks.stock, fraud=checks.fraud)


async def test_exception_agent_fixes_a_known_failure(store: Store) -> None:
    lookups: list[str] = []

    @tool
    def find_order(ref: str) -> str:
        """Look an order up by a loose reference."""
        lookups.append(ref)
        return f"#{ref.lstrip('#')}"

    def fixer_plan(request: ModelRequest) -> Any:
        done = any(m.role == "tool" for m in request.messages)
        data = stage_data(request)
        return None if done else call("find_order", {"ref": data["input"]["order_id"]})

    def resolution(data: dict[str, Any]) -> Resolution:
        assert data["kind"] == "error" and "not found" in data["error"]
        fixed = {**data["input"], "order_id": f"#{data['input']['order_id']}"}
        return Resolution.retry(fixed, reason="order ids start with '#'")

    fixer = json_agent("fixer", resolution, tools=(find_order,), plan=fixer_plan)
    pipeline = Pipeline(
        name="fixable",
        input=Order,
        stages=[function_stage("validate", validate, policy=StagePolicy(attempts=2))],
        exception_handler=fixer,
    )
    async with Runtime(store=store) as runtime:
        pipelines = Pipelines(runtime, [pipeline])
        result = await pipelines.run(pipeline, Order(order_id="W5442520"))
        assert result.status is PipelineStatus.COMPLETED, result.handoff
        assert result.output["order_id"] == "#W5442520"
        assert lookups == ["W5442520"]
        state = await pipelines.state(result.pipeline_id)
        assert state.failures[("validate", None)] == 2  # both attempts, then the handler
        assert state.rounds[("validate", None)] == 1
        (fixer_run,) = result.runs
        assert (await runtime.result(fixer_run)).status is RunStatus.COMPLETED

        # Without the handler the same input escalates, with the reason in the handoff.
        bare = Pipeline(name="bare", input=Order, stages=[function_stage("validate", validate)])
        pipelines.register(bare)
        failed = await pipelines.run(bare, Order(order_id="W5442520"))
        assert failed.status is PipelineStatus.ESCALATED
        assert failed.handoff is not None
        assert "not found" in failed.handoff["reason"]


async def test_a_function_handler_can_resolve_or_escalate(store: Store) -> None:
    def handler(failure: StageFailure) -> Resolution:
        if failure.input["order_id"] == "sub":
            return Resolution.resolve({**failure.input, "order_id": "#substitute"}, "by policy")
        return Resolution.escalate("unknown order")

    pipeline = Pipeline(
        name="handled",
        input=Order,
        stages=[function_stage("validate", validate)],
        exception_handler=handler,
    )
    async with Runtime(store=store) as runtime:
        pipelines = Pipelines(runtime, [pipeline])
        resolved = await pipelines.run(pipeline, Order(order_id="sub"))
        assert (resolved.status, resolved.output["order_id"]) == (
            PipelineStatus.COMPLETED,
            "#substitute",
        )
        escalated = await pipelines.run(pipeline, Order(order_id="nope"))
        assert escalated.status is PipelineStatus.ESCALATED
        assert escalated.handoff is not None
        assert escalated.handoff["reason"].endswith("exception handler: unknown order")


class Refund(BaseModel):
    order_id: str
    amount: float


class Done(BaseModel):
    refunded: bool


async def test_reviewer_blocks_a_policy_breaking_action(store: Store) -> None:
    refunds: list[tuple[str, float]] = []

    @tool(side_effect=True, risk="write", idempotent=True)
    def refund(ctx: ToolContext, order_id: str, amount: float) -> str:
        """Refund an order."""
        refunds.append((order_id, amount))
        return "refunded"

    def refund_plan(request: ModelRequest) -> Any:
        if any(m.role == "tool" for m in request.messages):
            return None
        data = stage_data(request)
        return call("refund", {"order_id": data["order_id"], "amount": data["amount"]})

    def verdict(data: dict[str, Any]) -> dict[str, Any]:
        return {"allow": True, "reason": "ok"}

    async def review(request: ModelRequest) -> Any:
        proposal = next(
            line
            for m in request.messages
            if m.role == "user"
            for line in m.content.splitlines()
            if line.startswith("Proposed action:")
        )
        amount = float(proposal.split('"amount":')[1].split(",")[0].rstrip("}"))
        if amount > 100:
            return reply('{"allow": false, "reason": "refunds over 100 need a manager"}')
        return reply('{"allow": true, "reason": "within policy"}')

    reviewer = Agent(name="reviewer", model=ScriptedModel(review))
    critic = ReviewerCritic(reviewer, tools={"refund"}, policy="Refunds over 100 need a manager.")
    base = json_agent("refunder", lambda d: Done(refunded=True), tools=(refund,), plan=refund_plan)
    refunder = Agent(name="refunder", model=base.model, tools=[refund], critic=critic)
    pipeline = Pipeline(
        name="refunds",
        input=Refund,
        stages=[agent_stage("refund", refunder, input=Refund, output=Done)],
    )
    async with Runtime(store=store) as runtime:
        pipelines = Pipelines(runtime, [pipeline])
        blocked = await pipelines.run(pipeline, Refund(order_id="#W1", amount=500))
        assert blocked.status is PipelineStatus.ESCALATED
        assert refunds == []  # the tool never ran
        assert blocked.handoff is not None
        failure = blocked.handoff["failures"][0]
        assert failure["kind"] == "escalated"
        assert "reviewer blocked refund: refunds over 100 need a manager" in failure["reason"]
        stage_run = failure["run_id"]
        assert (await runtime.result(stage_run)).status is RunStatus.ESCALATED
        (review_run,) = pipelines.rows.descendants(stage_run)
        assert (await runtime.result(review_run)).status is RunStatus.COMPLETED

        allowed = await pipelines.run(pipeline, Refund(order_id="#W2", amount=20))
        assert allowed.status is PipelineStatus.COMPLETED, allowed.handoff
        assert refunds == [("#W2", 20.0)]


async def test_a_failed_branch_does_not_rerun_the_others(store: Store) -> None:
    ran: list[str] = []

    def stock(order: Order) -> Checked:
        ran.append("stock")
        return Checked(order_id=order.order_id)

    def fraud(order: Order) -> Checked:
        ran.append("fraud")
        raise RuntimeError("fraud service down")

    pipeline = Pipeline(
        name="branches",
        input=Order,
        stages=[
            function_stage("stock", stock),
            function_stage("fraud", fraud, policy=StagePolicy(attempts=2)),
            function_stage("payment", pay, after=["stock", "fraud"]),
        ],
    )
    async with Runtime(store=store) as runtime:
        pipelines = Pipelines(runtime, [pipeline])
        result = await pipelines.run(pipeline, Order(order_id="#W9"))
        assert result.status is PipelineStatus.ESCALATED
        assert result.handoff is not None
        assert result.handoff["finished_stages"] == ["stock"]
        assert sorted(ran) == ["fraud", "fraud", "stock"]
        # A person supplies the fraud verdict: payment runs, stock does not run again.
        done = await pipelines.hand_back(
            result.pipeline_id,
            by="ops@example.com",
            stage="fraud",
            output=Checked(order_id="#W9", note="checked by hand"),
        )
        assert done.status is PipelineStatus.COMPLETED, done.handoff
        assert done.output["fraud"]["note"] == "checked by hand"
        assert sorted(ran) == ["fraud", "fraud", "stock"]
        state = await pipelines.state(result.pipeline_id)
        assert state.outputs[("fraud", None)].trust is Trust.TRUSTED


async def test_a_stage_that_never_returns_times_out_and_escalates(store: Store) -> None:
    async def hang(order: Order) -> Checked:
        await asyncio.Event().wait()
        raise AssertionError

    async def slow_model(request: ModelRequest) -> Any:
        await asyncio.Event().wait()

    stuck = Agent(name="stuck", model=ScriptedModel(slow_model))
    quick = StagePolicy(timeout_s=0.2)
    pipeline = Pipeline(
        name="stuck",
        input=Order,
        stages=[
            function_stage("hang", hang, policy=quick),
            agent_stage("think", stuck, input=Order, output=Checked, policy=quick),
        ],
        output="hang",
    )
    async with Runtime(store=store) as runtime:
        result = await Pipelines(runtime, [pipeline]).run(pipeline, Order(order_id="#W1"))
        assert result.status is PipelineStatus.ESCALATED
        assert result.handoff is not None
        kinds = {f["stage"]: f["kind"] for f in result.handoff["failures"]}
        assert kinds == {"hang": "timeout", "think": "timeout"}
        (think_run,) = result.runs
        cancelled = await runtime.result(think_run)
        assert cancelled.status is RunStatus.CANCELLED  # the run stopped for good


async def test_a_resumed_pipeline_skips_finished_stages(store: Store) -> None:
    ran: list[str] = []
    gate, entered = asyncio.Event(), asyncio.Event()

    def first(order: Order) -> Order:
        ran.append("first")
        return order

    async def second(order: Order) -> Checked:
        ran.append("second")
        entered.set()
        await gate.wait()
        return Checked(order_id=order.order_id)

    pipeline = Pipeline(
        name="resumable",
        input=Order,
        stages=[function_stage("first", first), function_stage("second", second, after=["first"])],
    )
    async with Runtime(store=store) as runtime:
        pipelines = Pipelines(runtime, [pipeline])
        pipeline_id = await pipelines.start(pipeline, Order(order_id="#W1"), queued=False)
        task = asyncio.create_task(pipelines.resume(pipeline_id))
        await asyncio.wait_for(entered.wait(), 5)
        await pipelines.abandon(pipeline_id)  # the process stops driving it mid-stage
        task.cancel()
    gate.set()
    async with Runtime(store=store) as runtime:
        result = await Pipelines(runtime, [pipeline]).resume(pipeline_id)
    assert result.status is PipelineStatus.COMPLETED
    assert ran == ["first", "second", "second"]  # first was not run again


class Question(BaseModel):
    topic: str


@tool(scope="kb:read", untrusted_output=True)
def kb(topic: str) -> str:
    """Read the knowledge base (pages written by customers: untrusted)."""
    return f"facts about {topic}"


@tool(scope="kb:write", side_effect=True, risk="write", idempotent=True)
def kb_write(text: str) -> str:
    """Write to the knowledge base."""
    return "written"


async def test_an_agent_called_as_a_tool_never_gets_wider_scopes(store: Store) -> None:
    def child_plan(request: ModelRequest) -> Any:
        if any(m.role == "tool" for m in request.messages):
            return reply("the answer")
        return call("kb", {"topic": "x"})

    child = Agent(name="researcher", model=ScriptedModel(child_plan), tools=[kb, kb_write])
    ask = agent_tool(child, input=Question)

    def parent_plan(request: ModelRequest) -> Any:
        if any(m.role == "tool" for m in request.messages):
            return reply("done")
        return call("researcher", {"topic": "refunds"})

    parent = Agent(name="lead", model=ScriptedModel(parent_plan), tools=[ask])
    async with Runtime(store=store) as runtime:
        bind_agent_tools(runtime, parent)
        # The lead holds the agent tool's scope and kb:read, not kb:write.
        result = await runtime.run(parent, "go", grants=["agents:researcher", "kb:read"])
        assert result.status is RunStatus.COMPLETED
        (child_run,) = [r.id for r in store.list_runs(agent="researcher")]
        child_state = await runtime.state(child_run)
        assert child_state.grants == frozenset({"kb:read"})
        assert child_state.taint == ["tool:kb"]
        # The child read untrusted pages: its answer taints the lead, though the agent tool
        # itself is not declared untrusted_output.
        lead = await runtime.state(result.run_id)
        assert lead.taint == ["tool:researcher"]
        assert not ask.policy.untrusted_output
        answers = [m.content for m in lead.messages if m.role == "tool"]
        assert len(answers) == 1 and "the answer" in answers[0]
        assert not any("the answer" in text for text in lead.grounding)  # grounds nothing
