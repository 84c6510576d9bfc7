"""Trust and verify: a reviewer checks another agent's proposed side effect before it runs.

`ReviewerCritic` is a runtime `Critic` (the seam every proposed tool call already passes
through, after loop detection and before scope and taint gates), so nothing new sits in
the loop. For the tools it watches (refunds, cancellations) it asks the reviewer, an agent
or a function, whether the call complies with policy given the evidence the run has seen;
a block escalates the run with the reviewer's reason (and so its pipeline stage), a pass
lets the call through to the usual gates. Any other tool passes unreviewed.

The reviewer agent's run is an ordinary run whose parent is the reviewed run, keyed by the
call (run, call id): a run resumed after a crash gets the same review back rather than a
second opinion. It sees the proposal and each piece of evidence with its own label, so an
untrusted email quoted in the evidence reaches it spotlighted as data. Its grants are the
reviewed run's narrowed to its own scopes. A reviewer that gives no clear verdict blocks.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Awaitable, Callable, Collection

from pydantic import BaseModel, ConfigDict

from bosun.models.base import ToolCall, ToolMessage
from bosun.orchestration.hops import parse_json, schema_of
from bosun.runtime.agent import Agent
from bosun.runtime.critic import Verdict
from bosun.runtime.runtime import Runtime
from bosun.runtime.state import RunState, RunStatus
from bosun.trust import Content, Trust

__all__ = ["Review", "ReviewFunction", "ReviewerCritic"]


class Review(BaseModel):
    """A reviewer's verdict on one proposed call."""

    model_config = ConfigDict(frozen=True)

    allow: bool
    """Let the call run."""
    reason: str = ""
    """Why (required in practice when blocking: it goes into the escalation)."""


ReviewFunction = Callable[[ToolCall, RunState], "Review | Awaitable[Review]"]
"""A reviewer written as code: ``fn(call, state) -> Review``, sync or async."""


class ReviewerCritic:
    """A critic that has a reviewer check the calls of `tools` before they run."""

    def __init__(
        self,
        reviewer: Agent | ReviewFunction,
        *,
        tools: Collection[str],
        policy: str = "",
        evidence: int = 20,
    ) -> None:
        """`policy` is given to a reviewer agent with each proposal (operator text, trusted);
        `evidence` caps how many of the run's latest tool results it sees."""
        self.reviewer = reviewer
        self.tools = frozenset(tools)
        self.policy = policy
        self.evidence = evidence
        self.runtime: Runtime | None = None

    def bind(self, runtime: Runtime) -> None:
        """The runtime the reviewer agent runs in (`Pipelines` binds it on registration)."""
        self.runtime = runtime
        if isinstance(self.reviewer, Agent):
            runtime.register(self.reviewer)

    async def review(self, call: ToolCall, state: RunState) -> Verdict:
        if call.name not in self.tools:
            return Verdict.allow()
        if isinstance(self.reviewer, Agent):
            review = await self._ask(self.reviewer, call, state)
        else:
            answer = self.reviewer(call, state)
            review = await answer if inspect.isawaitable(answer) else answer
        if review.allow:
            return Verdict.allow()
        return Verdict.escalate(f"reviewer blocked {call.name}: {review.reason or 'no reason'}")

    async def _ask(self, reviewer: Agent, call: ToolCall, state: RunState) -> Review:
        runtime = self.runtime
        if runtime is None:
            return Review(allow=False, reason="the reviewer is not bound to a runtime")
        run_id = await runtime.start(
            reviewer,
            self._parts(call, state),
            grants=sorted(state.grants & reviewer.scopes),
            principal=state.principal,
            tenant=state.tenant,
            idempotency_key=f"review:{state.run_id}:{call.id}",
            queued=False,
            parent=state.run_id,
        )
        result = await runtime.resume(run_id)
        if result.status is not RunStatus.COMPLETED:
            return Review(allow=False, reason=f"the reviewer run {run_id} {result.status.value}")
        try:
            return typing.cast(Review, parse_json(Review, result.output))
        except ValueError as exc:
            return Review(allow=False, reason=f"the reviewer gave no verdict: {exc}")

    def _parts(self, call: ToolCall, state: RunState) -> list[Content]:
        schema = schema_of(Review)
        header = (
            "Review the proposed action below against the policy and the evidence before it "
            "runs. Block it if it breaks the policy or the evidence does not support it. Your "
            f"final answer must be one JSON object matching this JSON schema:\n{schema}"
        )
        if self.policy:
            header += f"\n\nPolicy:\n{self.policy}"
        # The proposal is model output: as trusted as what the proposing run had read.
        label = Trust.UNTRUSTED if state.taint else Trust.USER
        parts = [
            Content(text=header, trust=Trust.TRUSTED, source="reviewer"),
            Content(text=f"Objective: {state.objective}", trust=label, source="objective"),
            Content(
                text=f"Proposed action: {call.name} {call.arguments}",
                trust=label,
                source="proposal",
            ),
        ]
        results = [m for m in state.messages if isinstance(m, ToolMessage)][-self.evidence :]
        for message in results:
            parts.append(
                Content(
                    text=f"Evidence, {message.name} returned: {message.content}",
                    trust=Trust(message.trust),
                    source=f"tool:{message.name}"[:64],
                )
            )
        return parts
