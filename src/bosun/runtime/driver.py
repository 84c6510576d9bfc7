"""The agent loop of one run: model proposes -> critic checks -> tools run -> observe -> repeat.

Every decision is appended to the journal before the run moves on. The driver keeps no state
of its own that matters: it reads `RunState`, which is the fold of the journal, so the same
code drives a fresh run and a run resumed after a crash.
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
from bosun.errors import ModelAuthError, ModelBadResponse, ModelError, ModelRateLimited, StoreError
from bosun.models.base import (
    Model,
    ModelRequest,
    ModelResponse,
    ModelSettings,
    ToolCall,
    estimate_usage,
    parse_arguments,
)
from bosun.runtime.agent import ASK_HUMAN
from bosun.runtime.budget import SpendGuard
from bosun.runtime.recording import record, totals
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
    from bosun.runtime.planner import Planner

__all__ = ["RunDriver"]

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


class RunDriver:
    """Drives one run until it finishes, parks for a person, or escalates."""

    def __init__(
        self,
        *,
        agent: Agent,
        state: RunState,
        model: Model,
        executor: ToolExecutor,
        write: Write,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        privacy: Privacy | None = None,
        screen: ContentScreen | None = None,
        spend: SpendGuard | None = None,
    ) -> None:
        self.agent = agent
        self.privacy = privacy
        self.screen = screen
        self.spend = spend
        self._holds: dict[str, str] = {}
        self._label_lock = asyncio.Lock()
        self.state = state
        self.model = model
        self.executor = executor
        self._write = write
        self._sleep = sleep
        self._t0 = time.monotonic()
        self._base_elapsed = state.elapsed_s
        self._run_update: dict[str, Any] = {}
        self._deferred: list[WriteOp] = []
        builtin = (ASK_HUMAN,) if agent.ask_human else ()
        self._tools = (*executor.definitions(), *builtin)
        self.cancelled_by: str | None = None
        """Set by `Runtime.cancel` before it cancels the driving task."""
        settings = agent.model_policy.settings
        if state.model_settings:  # the prompt version's settings win over the agent's
            known = {
                k: v for k, v in state.model_settings.items() if k in ModelSettings.model_fields
            }
            settings = settings.model_copy(update=known)
        self._settings = settings

    # --- the loop ---------------------------------------------------------------------------

    async def drive(self) -> RunState:
        """Run the loop; returns the state it stopped in."""
        state = self.state
        if state.status.terminal or state.status is RunStatus.WAITING_APPROVAL:
            return state
        self._run_update["status"] = RunStatus.RUNNING.value
        try:
            while not state.status.terminal and not state.status.parked:
                if state.answer is not None:
                    await self._finish(RunStatus.COMPLETED, output=state.answer)
                elif self.agent.planner is not None and state.plan is None:
                    await self._make_plan(self.agent.planner)
                elif state.pending:
                    await self._run_tools()
                elif reason := await self._over_budget():
                    await self._escalate(reason)
                else:
                    await self._call_model()
        except asyncio.CancelledError:
            if self.cancelled_by is not None:
                await asyncio.shield(
                    self._finish(
                        RunStatus.CANCELLED,
                        error=f"cancelled by {self.cancelled_by}",
                        approver=self.cancelled_by,
                    )
                )
            raise
        except StoreError:
            raise  # the journal is unreachable: the run stays resumable from what is durable
        except ExceptionGroup as group:  # from parallel tool calls
            if group.subgroup(StoreError) is not None:
                raise
            await self._fail_unexpectedly(group)
        except Exception as exc:
            await self._fail_unexpectedly(exc)
        return state

    async def _fail_unexpectedly(self, exc: Exception) -> None:
        # Last resort: a bug or content nothing anticipated must not leave the run "running"
        # forever, crashing every resume the same way. Deferred entries are kept: record()
        # already serialised them, and dropping them would leave a gap in the journal.
        logger.exception("run %s failed unexpectedly", self.state.run_id)
        error = f"internal error ({type(exc).__name__}): {exc}"[:500]
        await self._finish(RunStatus.FAILED, error=_text(error))

    async def _make_plan(self, planner: Planner) -> None:
        attempt = 0
        while True:
            attempt += 1
            t0 = time.monotonic()
            try:
                plan = await planner.plan(self.state.objective, self.executor.definitions())
                break
            except ModelError as exc:  # the same retries, journaling and escalation as a step
                delay = await self._model_failed(exc, attempt, t0)
                if delay is None:
                    return
                await self._sleep(delay)
        await self._append(
            "plan",
            {"plan": _text(plan.text), "usage": plan.usage, "cost_usd": plan.cost_usd},
            defer=True,  # durable with the next entry; a crash before it just plans again
            input_tokens=plan.usage.input_tokens,
            output_tokens=plan.usage.output_tokens,
            cost_usd=plan.cost_usd,
        )

    def elapsed(self) -> float:
        """Active seconds of the run, across processes."""
        return self._base_elapsed + (time.monotonic() - self._t0)

    # --- model ------------------------------------------------------------------------------

    async def _over_budget(self) -> str | None:
        """Why the next model call may not happen: the run's budget, then spend caps across
        runs (checked before the call, so a cap is never overshot by a call it could stop)."""
        reason = self.agent.budget.before_model_call(self.state, self.elapsed())
        if reason is None and self.spend is not None:
            reason = await self.spend.before_model_call(self.state)
        return reason

    async def _call_model(self) -> ModelResponse | None:
        request = ModelRequest(
            messages=tuple(self.state.messages),
            tools=self._tools,
            settings=self._settings,
        )
        attempt = 0
        while True:
            attempt += 1
            wall = self.agent.budget.max_wall_s
            spent = self.elapsed() - self.state.budget_base.elapsed_s
            t0 = time.monotonic()
            try:
                async with asyncio.timeout(None if wall is None else max(wall - spent, 0)):
                    response = await self.model.request(request)
            except TimeoutError:
                spent = self.elapsed() - self.state.budget_base.elapsed_s
                await self._escalate(self.agent.budget.wall_time(spent) or "wall time")
                return None
            except ModelError as exc:
                delay = await self._model_failed(exc, attempt, t0)
                if delay is None:
                    return None
                await self._sleep(delay)
                continue
            latency_ms = (time.monotonic() - t0) * 1000
            response = self._normalise(response)
            # Durable together with the next entry: before any tool it proposes can act, and in
            # the same commit as run_finished for a final answer. A crash before that re-asks
            # the model; nothing outside the process has seen this response yet.
            try:
                await self._append(
                    "model_response",
                    {"response": response, "latency_ms": latency_ms},
                    value=response,
                    defer=True,
                    model=response.model,
                    input_tokens=response.usage.input_tokens,
                    output_tokens=response.usage.output_tokens,
                    cost_usd=response.cost_usd,
                    latency_ms=latency_ms,
                    status="ok",
                )
            except PydanticSerializationError:
                bad = ModelBadResponse(
                    "the response contains text that is not valid Unicode",
                    provider=response.provider,
                    model=response.model,
                )
                delay = await self._model_failed(bad, attempt, t0)
                if delay is None:
                    return None
                await self._sleep(delay)
                continue
            if self.spend is not None and response.cost_usd:
                await self.spend.charged(self.state, response.cost_usd)
            return response

    def _normalise(self, response: ModelResponse) -> ModelResponse:
        """Give calls bosun-owned ids and canonical arguments before anything sees them.

        Ids key approvals, reconciliation and idempotency keys, so they must be unique in the
        run whatever the model sends: ``call_<seq>_<i>`` is, because the journal position is.
        Arguments are re-serialised from their strict parse, so the text journaled, shown to
        the critic and to an approver is exactly what executes; text that does not parse is
        kept as sent and the tool pipeline refuses it. Usage a provider did not report is
        estimated (about 4 characters a token) so token budgets still bind.
        """
        seq = self.state.next_seq
        calls = tuple(
            ToolCall(id=f"call_{seq}_{i}", name=call.name, arguments=_canonical(call.arguments))
            for i, call in enumerate(response.tool_calls)
        )
        update: dict[str, Any] = {"tool_calls": calls}
        if not response.usage.total_tokens:
            update["usage"] = estimate_usage(self.state.messages, response.text, calls)
        return response.model_copy(update=update)

    async def _model_failed(self, exc: ModelError, attempt: int, t0: float) -> float | None:
        """Journal the failure; return the delay before retrying, or None when the run stopped."""
        latency_ms = (time.monotonic() - t0) * 1000
        await self._append(
            "model_error",
            {
                "kind": exc.kind,
                "message": _text(str(exc)),
                "attempt": attempt,
                "latency_ms": latency_ms,
            },
            model=exc.model,
            status=exc.kind,
            latency_ms=latency_ms,
        )
        policy = self.agent.model_policy
        if isinstance(exc, ModelAuthError):
            await self._finish(RunStatus.FAILED, error=f"model authentication failed: {exc}")
            return None
        if not exc.retryable:
            await self._escalate(f"the model call failed ({exc.kind}): {exc}")
            return None
        if attempt >= policy.retry.attempts:
            await self._escalate(
                f"the model kept failing ({exc.kind}) after {attempt} attempts; last: {exc}"
            )
            return None
        if isinstance(exc, ModelRateLimited) and exc.retry_after is not None:
            if exc.retry_after > policy.max_rate_limit_wait_s:
                await self._escalate(f"the provider asked to wait {exc.retry_after:.0f} s")
                return None
            return exc.retry_after
        return min(policy.retry.initial_delay_s * 2.0 ** (attempt - 1), policy.retry.max_delay_s)

    # --- tools ------------------------------------------------------------------------------

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
        if not isinstance(question, str) or not question.strip() or not _valid_text(question):
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
        untrusted = tool is not None and tool.policy.untrusted_output
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
            _canonical(json.dumps(approval.arguments))
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

    # --- endings ----------------------------------------------------------------------------

    async def _escalate(self, reason: str, *, question: str | None = None) -> None:
        handoff = self._handoff(reason, question or "How should this request be handled?")
        await self._finish(RunStatus.ESCALATED, handoff=handoff)

    def _handoff(self, reason: str, question: str) -> Handoff:
        state = self.state
        failed = sum(not a.ok for a in state.actions)
        last_text = next(
            (m.content for m in reversed(state.messages) if m.role == "assistant" and m.content),
            None,
        )
        summary = (
            f"Objective: {state.objective[:500]}\n"
            f"Progress: {state.model_calls} model calls, {state.tool_calls} tool calls "
            f"({failed} failed)."
        )
        if last_text:
            summary += f"\nLast model message: {last_text[:500]}"
        return Handoff(
            reason=_text(reason),  # reasons quote provider and tool messages
            summary=_text(summary),
            actions_taken=tuple(state.actions),
            pending_question=_text(question),
        )

    async def _finish(
        self,
        status: RunStatus,
        *,
        output: str | None = None,
        handoff: Handoff | None = None,
        error: str | None = None,
        approver: str | None = None,
    ) -> None:
        state = self.state
        handoff_json = None if handoff is None else handoff.model_dump(mode="json")
        self._run_update.update(
            status=status.value,
            output=output,
            handoff=None if handoff_json is None else json.dumps(handoff_json),
            error=error,
            **totals(state),
        )
        await self._append(
            "run_finished",
            {"status": status.value, "output": output, "handoff": handoff_json, "error": error},
            status=status.value,
            audit="run_finished",
            approver=approver,
        )

    # --- journal ----------------------------------------------------------------------------

    async def _append(
        self,
        kind: str,
        payload: dict[str, Any],
        *,
        defer: bool = False,
        value: Any = None,
        audit: str | None = None,
        approver: str | None = None,
        **columns: Any,
    ) -> None:
        """Apply an entry to the state now, and return once it is durable (with `defer`, once
        it is queued to be written with the next entry)."""
        written = record(
            self.state,
            kind,
            payload,
            elapsed_s=self.elapsed(),
            value=value,
            run_update=self._run_update,
            audit=audit,
            approver=approver,
            **columns,
        )
        ops, self._deferred, self._run_update = [*self._deferred, *written], [], {}
        if defer:
            self._deferred = ops
        else:
            await self._write(ops)


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


def _valid_text(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:  # lone surrogates
        return False
    return True


def _text(text: str) -> str:
    """`text` with anything that is not valid Unicode replaced, so it can be journaled."""
    return text if _valid_text(text) else text.encode("utf-8", "replace").decode()


def _compact(arguments: dict[str, Any]) -> str:
    return _text(json.dumps(arguments, ensure_ascii=False, separators=(",", ":")))


def _executed_arguments(call: ToolCall, approval: ApprovalDecision | None) -> dict[str, Any]:
    if approval is not None and approval.arguments is not None:
        return approval.arguments
    return _arguments(call)


def _canonical(arguments: str) -> str:
    try:
        text = json.dumps(parse_arguments(arguments), ensure_ascii=False, separators=(",", ":"))
    except ValueError:
        return arguments
    try:
        text.encode()
    except UnicodeEncodeError:  # lone surrogates: keep them escaped so the journal takes them
        text = json.dumps(parse_arguments(arguments), separators=(",", ":"))
    return text


def _arguments(call: ToolCall) -> dict[str, Any]:
    try:
        return call.parsed_arguments()
    except ValueError:
        return {}
