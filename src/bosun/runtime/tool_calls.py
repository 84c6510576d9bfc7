"""The tool half of a run's loop: one response's tool calls, from proposal to journaled result.

```
for each proposed call (concurrently):  loop detection -> critic -> scope, arguments and taint
    gates -> tool_started marker (non-idempotent side effects) -> ToolExecutor pipeline ->
    result labelled, screened, PII-masked -> tool_result entry (+ audit for side effects)
then: escalate, or park for approval / a person, or go back to the model
```

`RunDriver` (driver.py) extends `ToolCalls`: the loop, the model calls, the journal and the
run's endings are the driver's, declared here as the attributes this half calls.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from pydantic_core import PydanticSerializationError

from bosun.data.store import RunUpdate, WriteOp
from bosun.models.base import ToolCall
from bosun.runtime.agent import ASK_HUMAN
from bosun.runtime.recording import canonical_arguments, safe_text, valid_text
from bosun.runtime.state import LOOP_WINDOW, Handoff, RunState, RunStatus
from bosun.runtime.taint import Labelled, gate, label_result
from bosun.tools.base import (
    ApprovalDecision,
    ApprovalRequired,
    ErrorKind,
    Reconciliation,
    ToolContext,
    ToolResult,
)
from bosun.tools.pipeline import AnyTool, Invocation, ToolExecutor
from bosun.tools.privacy import Privacy, reveal_placeholders
from bosun.trust import ContentScreen

if TYPE_CHECKING:
    from bosun.runtime.agent import Agent

__all__ = ["ToolCalls", "Write"]

logger = logging.getLogger("bosun.runtime")

Write = Callable[[Sequence[WriteOp]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class _Escalation:
    reason: str
    question: str | None = None


@dataclass(frozen=True, slots=True)
class _NeedsApproval:
    call: ToolCall


@dataclass(frozen=True, slots=True)
class _AskHuman:
    call: ToolCall
    question: str


class ToolCalls:
    """Runs the pending tool calls of a run's latest model response."""

    agent: Agent
    state: RunState
    executor: ToolExecutor
    privacy: Privacy | None
    screen: ContentScreen | None
    _holds: dict[str, str]
    _label_lock: asyncio.Lock
    _run_update: dict[str, Any]
    _deferred: list[WriteOp]
    _write: Write

    # The driver's: the run's clock, its journal and its endings.
    elapsed: Callable[[], float]
    _append: Callable[..., Awaitable[None]]
    _escalate: Callable[..., Awaitable[None]]
    _handoff: Callable[[str, str], Handoff]

    async def _run_tools(self) -> None:
        calls = list(self.state.pending)
        reason = self.agent.budget.before_tool_calls(self.state, len(calls), self.elapsed())
        if reason is not None:
            await self._escalate(reason)
            return
        if self._deferred and any(self._side_effecting(c) for c in calls):
            # The response proposing a side effect is durable before the effect can happen,
            # so every side effect has its cause in the journal (and in the audit log).
            await self._flush()
        if len(calls) == 1:  # the common case needs no task
            outcomes = [await self._run_call(calls[0])]
        else:
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(self._run_call(call)) for call in calls]
            outcomes = [t.result() for t in tasks]
        escalation = next((o for o in outcomes if isinstance(o, _Escalation)), None)
        if escalation is not None:
            await self._escalate(escalation.reason, question=escalation.question)
            return
        waiting = [o.call for o in outcomes if isinstance(o, _NeedsApproval)]
        if waiting:
            self._run_update["status"] = RunStatus.WAITING_APPROVAL.value
            # Why each call is held, for the approver and the audit log: the tool's policy,
            # or taint gating.
            reasons = {c.id: self._holds.pop(c.id, "the tool requires approval") for c in waiting}
            await self._append(
                "approval_requested",
                {"calls": [c.model_dump(mode="json") for c in waiting], "reasons": reasons},
                audit="approval_requested",
            )
            return
        ask = next((o for o in outcomes if isinstance(o, _AskHuman)), None)
        if ask is not None:
            handoff = self._handoff("the agent asked a person", ask.question)
            self._run_update.update(
                status=RunStatus.WAITING_HUMAN.value, handoff=handoff.model_dump_json()
            )
            await self._append(
                "human_requested",
                {"call_id": ask.call.id, "question": ask.question, "handoff": handoff},
                audit="human_requested",
            )

    def _would_run(self, tool: AnyTool, call: ToolCall, approval: ApprovalDecision | None) -> bool:
        """Whether the pipeline's own checks (scope, arguments) would let the call through.
        A refused call must leave no `tool_started` marker and never be reconciled."""
        if tool.policy.scope not in self.state.grants:
            return False
        if approval is not None and not approval.approved:
            return False
        try:
            edited = approval.arguments if approval is not None else None
            tool.validate_arguments(edited if edited is not None else call.parsed_arguments())
        except (ValueError, ValidationError):
            return False
        return True

    def _side_effecting(self, call: ToolCall) -> bool:
        tool = self.executor.get(call.name)
        return tool is not None and tool.policy.side_effect

    async def _flush(self) -> None:
        ops, self._deferred = self._deferred, []
        if self._run_update:
            ops.append(RunUpdate(run_id=self.state.run_id, values=self._run_update))
            self._run_update = {}
        await self._write(ops)

    async def _run_call(self, call: ToolCall) -> _Escalation | _NeedsApproval | _AskHuman | None:
        state = self.state
        streak = state.loop_streak.get(call.id, 1)
        if streak >= self.agent.loop_limit:
            return _Escalation(
                f"loop detected: {call.name} proposed {streak} times with the same arguments "
                f"within the last {LOOP_WINDOW} calls"
            )
        if self.agent.critic is not None:
            verdict = await self.agent.critic.review(call, state)
            if verdict.action == "escalate":
                return _Escalation(f"critic: {verdict.reason}")
            if verdict.action == "deny":
                reason = verdict.reason or "not allowed"
                await self._tool_result(
                    call,
                    ToolResult.failure(ErrorKind.DENIED_BY_CRITIC, reason, attempts=0),
                    audit=self._side_effecting(call),  # a refused effect is a decision too
                )
                return None
        # After loop detection and the critic: a question shown to a person is screened too.
        if self.agent.ask_human and call.name == ASK_HUMAN.name:
            return await self._ask_human(call)
        tool = self.executor.get(call.name)
        ctx = ToolContext(
            run_id=state.run_id, step=state.last_step, call_id=call.id, principal=state.principal
        )
        side_effect = tool is not None and tool.policy.side_effect
        approval = state.approvals.get(call.id)
        held = False
        if tool is not None and approval is None:
            gated = await self._taint_gate(call, tool)
            if gated == "refused":
                return None
            held = gated == "held"
        # A call the pipeline will refuse before the tool runs needs no marker and no
        # reconciliation; it is still audited below, as an attempted side effect.
        may_act = tool is not None and side_effect and self._would_run(tool, call, approval)
        # What executes: an approver's edit replaces the model's arguments. The marker, the
        # reconcile question and the escalation all speak of these, never of the proposal.
        executed = _executed_arguments(call, approval)
        if tool is not None and may_act and call.id in state.started:
            if not tool.policy.idempotent:
                reconciled = await self._reconcile_chain(tool, executed, ctx)
                if reconciled.done is None:
                    return _Escalation(
                        f"{call.name} was interrupted mid-call and cannot tell whether it took "
                        "effect; a person must check before it runs again",
                        question=f"Did {call.name}({_compact(executed)}) take effect?",
                    )
                if reconciled.done:
                    await self._tool_result(call, ToolResult.success(reconciled.data), audit=True)
                    return None
        elif (
            tool is not None
            and may_act
            and not tool.policy.idempotent
            and not ((tool.policy.requires_approval or held) and approval is None)
        ):
            # Journaled (and audited: an attempted effect) before the call, so a crash mid-call
            # is seen as "maybe happened". An idempotent tool needs no marker: replay simply
            # calls it again with the same key.
            await self._append(
                "tool_started",
                {"call_id": call.id, "tool": call.name, "arguments": _compact(executed)},
                tool=call.name,
                call_id=call.id,
                audit="tool_started",
                approver=None if approval is None else approval.decided_by,
            )
        t0 = time.monotonic()
        try:
            result = await self.executor.execute(
                Invocation(
                    call=call,
                    ctx=ctx,
                    grants=state.grants,
                    approval=approval,
                    # A person's decision binds whatever asked for it (policy or taint).
                    force_approval=held or approval is not None,
                    reveal=self._reveal if self.privacy is not None and state.vault else None,
                )
            )
        except ApprovalRequired:
            return _NeedsApproval(call)
        flagged = await self._tool_result(
            call, result, latency_ms=(time.monotonic() - t0) * 1000, audit=side_effect
        )
        if flagged and self.agent.taint_policy.on_injection == "escalate":
            return _Escalation(f"{call.name} returned content flagged as a prompt injection")
        return None

    def _reveal(self, value: Any, allowed: frozenset[str]) -> Any:
        privacy, run_id = self.privacy, self.state.run_id
        if privacy is None:  # pragma: no cover - only handed to the pipeline with a privacy
            return value
        return reveal_placeholders(
            value, self.state.vault, allowed, lambda entry: privacy.reveal(run_id, entry)
        )

    async def _taint_gate(self, call: ToolCall, tool: AnyTool) -> str:
        """Apply the agent's `TaintPolicy` to a call no person has decided on: ``refused``
        (the refusal is journaled and audited), ``held`` (for approval) or ``ok``. A call
        outside the run's grants is left to the pipeline's authorization."""
        state = self.state
        if tool.policy.scope not in state.grants:
            return "ok"
        decision = gate(
            self.agent.taint_policy,
            tool.policy,
            _arguments(call),
            taint=state.taint,
            grounding=state.grounding,
        )
        if decision is None:
            return "ok"
        if decision.action == "approve":
            self._holds[call.id] = decision.reason
            return "held"
        # The reason quotes argument values: it goes to the journal (masked), not the log.
        logger.warning("run %s: %s refused by taint policy", state.run_id, call.name)
        refused = ToolResult.failure(
            ErrorKind.BLOCKED_BY_POLICY, f"Refused by policy: {decision.reason}.", attempts=0
        )
        await self._tool_result(call, refused, audit=True)
        return "refused"

    async def _reconcile_chain(
        self, tool: AnyTool, arguments: dict[str, Any], ctx: ToolContext
    ) -> Reconciliation:
        """Ask the tool and every fallback behind it whether the interrupted call took effect:
        a fallback may have acted while the primary failed. Done if any says done; cannot
        tell if any cannot tell; not done only if all agree."""
        verdicts = []
        current: AnyTool | None = tool
        seen: set[str] = set()
        while current is not None and current.name not in seen:
            seen.add(current.name)
            verdict = await current.reconcile(arguments, ctx)
            if verdict.done:
                return verdict
            verdicts.append(verdict)
            fallback = current.policy.fallback
            current = None if fallback is None else self.executor.get(fallback)
        if any(v.done is None for v in verdicts):
            return Reconciliation(done=None)
        return Reconciliation(done=False)

    async def _ask_human(self, call: ToolCall) -> _AskHuman | None:
        try:
            question = call.parsed_arguments().get("question")
        except ValueError:
            question = None
        if not isinstance(question, str) or not question.strip() or not valid_text(question):
            guidance = 'call ask_human with {"question": "<what you need to know>"}'
            await self._tool_result(
                call, ToolResult.failure(ErrorKind.INVALID_ARGUMENTS, guidance, attempts=0)
            )
            return None
        return _AskHuman(call, question.strip())

    async def _tool_result(
        self,
        call: ToolCall,
        result: ToolResult,
        *,
        latency_ms: float | None = None,
        audit: bool = False,
    ) -> bool:
        """Journal a call's result (PII masked, labelled, screened); True when the screen
        flagged it as an injection."""
        tool = self.executor.get(call.name)
        untrusted = tool is not None and (tool.policy.untrusted_output or result.untrusted)
        label = functools.partial(
            label_result,
            result,
            run_id=self.state.run_id,
            untrusted=untrusted,
            vault=self.state.vault,
            privacy=self.privacy,
            screen=self.screen,
            policy=self.agent.taint_policy,
        )
        # Masking and screening are CPU work proportional to the result's size: off the loop
        # when there is any, inline (no thread hop) when there is none. Parallel calls take
        # turns, so two results never number a new placeholder from the same vault.
        if self.privacy is None and (self.screen is None or not untrusted):
            labelled = label()
        else:
            async with self._label_lock:
                labelled = await asyncio.to_thread(label)
                return await self._journal_result(call, labelled, latency_ms, audit)
        return await self._journal_result(call, labelled, latency_ms, audit)

    async def _journal_result(
        self, call: ToolCall, labelled: Labelled, latency_ms: float | None, audit: bool
    ) -> bool:
        result = labelled.result
        action = "tool_call" if audit else "injection_flagged" if labelled.flagged else None
        approval = self.state.approvals.get(call.id)
        edited = approval is not None and approval.arguments is not None
        # What executed: an approver's edit replaces the model's arguments.
        arguments = (
            canonical_arguments(json.dumps(approval.arguments))
            if edited and approval is not None
            else call.arguments
        )

        async def write(result: ToolResult) -> None:
            await self._append(
                "tool_result",
                {
                    "call_id": call.id,
                    "tool": call.name,
                    "arguments": arguments,
                    "edited": edited,
                    "result": result,
                    "latency_ms": latency_ms,
                    **labelled.extra,
                },
                value=result,
                tool=call.name,
                call_id=call.id,
                status="ok" if result.ok else str(result.error_kind),
                latency_ms=latency_ms,
                audit=action,
                approver=None if approval is None else approval.decided_by,
            )

        try:
            await write(result)
        except PydanticSerializationError:
            # Text that is not valid Unicode (a lone surrogate echoed from hostile input)
            # cannot be journaled. record() serialises before applying, so nothing was
            # recorded: journal a result that says so instead.
            await write(_unjournalable(call.name, result, side_effect=audit))
        return labelled.flagged


def _unjournalable(tool: str, result: ToolResult, *, side_effect: bool) -> ToolResult:
    if result.ok and side_effect:
        # The effect happened: say so, or the model would do it again.
        withheld = "[result withheld: the tool returned text that is not valid Unicode]"
        return ToolResult.success(withheld, attempts=result.attempts)
    if result.ok:
        return ToolResult.failure(
            ErrorKind.INVALID_RESULT,
            f"{tool!r} returned text that is not valid Unicode. This is a fault in the tool, "
            "not in your call.",
            attempts=result.attempts,
        )
    guidance = (result.guidance or "").encode("utf-8", "replace").decode()
    return result.model_copy(update={"guidance": guidance})


def _compact(arguments: dict[str, Any]) -> str:
    return safe_text(json.dumps(arguments, ensure_ascii=False, separators=(",", ":")))


def _executed_arguments(call: ToolCall, approval: ApprovalDecision | None) -> dict[str, Any]:
    if approval is not None and approval.arguments is not None:
        return approval.arguments
    return _arguments(call)


def _arguments(call: ToolCall) -> dict[str, Any]:
    try:
        return call.parsed_arguments()
    except ValueError:
        return {}
