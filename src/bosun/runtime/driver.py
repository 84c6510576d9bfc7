"""The agent loop of one run: model proposes -> critic checks -> tools run -> observe -> repeat.

Every decision is appended to the journal before the run moves on. The driver keeps no state
of its own that matters: it reads `RunState`, which is the fold of the journal, so the same
code drives a fresh run and a run resumed after a crash.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

from pydantic_core import PydanticSerializationError

from bosun.data.store import WriteOp
from bosun.errors import (
    ModelAuthError,
    ModelBadResponse,
    ModelError,
    ModelRateLimited,
    ModelRefusal,
    StoreError,
    UserError,
)
from bosun.knowledge.grounding import Passage, assess
from bosun.memory.pruning import prune_stale_tool_output
from bosun.memory.threads import ThreadMemory
from bosun.models.base import (
    Message,
    Model,
    ModelRequest,
    ModelResponse,
    ModelSettings,
    ToolCall,
    UserMessage,
    estimate_usage,
)
from bosun.runtime.agent import ASK_HUMAN
from bosun.runtime.budget import SpendGuard
from bosun.runtime.model_calls import attempt_entries, call_context, failure_entries
from bosun.runtime.recording import canonical_arguments, record, safe_text, totals
from bosun.runtime.state import Handoff, HandoffPassage, RunState, RunStatus
from bosun.runtime.streaming import TextHub, streamed
from bosun.runtime.tool_calls import ToolCalls, Write
from bosun.tools.pipeline import ToolExecutor
from bosun.tools.privacy import Privacy
from bosun.trust import ContentScreen

if TYPE_CHECKING:
    from bosun.runtime.agent import Agent
    from bosun.runtime.planner import Planner
    from bosun.runtime.threads import ThreadContexts

__all__ = ["RunDriver", "Step", "handoff_for", "needs_check", "next_step"]

logger = logging.getLogger("bosun.runtime")

Step = Literal["check", "finish", "thread", "plan", "tools", "model"]
"""A step of the loop: check the answer's confidence, finish with the answer, build a
thread's context, plan, run one response's tool calls, or call the model (budgets checked
first)."""


def next_step(state: RunState, agent: Agent) -> Step | None:
    """The step the loop takes next for `state`; None once it finished or waits for a person."""
    if state.status.terminal or state.status.parked:
        return None
    if state.answer is not None:
        return "check" if needs_check(state, agent) else "finish"
    if state.thread is not None and not state.thread_ready:
        return "thread"
    if agent.planner is not None and state.plan is None:
        return "plan"
    if state.pending:
        return "tools"
    return "model"


def needs_check(state: RunState, agent: Agent) -> bool:
    """Whether the final answer still needs its confidence check: the agent asks for one,
    it was not made yet, no person has taken the run over, and the run searched the
    knowledge base (or the policy checks every answer)."""
    policy = agent.confidence
    if policy is None or state.answer_check is not None or state.handed_back:
        return False
    # Any call counts, failed or withheld ones too: an answer after a search whose
    # passages were withheld as an injection has nothing to stand on, and must say so.
    return policy.always or any(a.tool == policy.tool for a in state.actions)


def handoff_for(state: RunState, reason: str, question: str) -> Handoff:
    """What a person gets with a run handed to them: the reason, the objective and progress
    (with the model's last message), the actions taken, and the question left open."""
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
        reason=safe_text(reason),  # reasons quote provider and tool messages
        summary=safe_text(summary),
        actions_taken=tuple(state.actions),
        pending_question=safe_text(question),
    )


class RunDriver(ToolCalls):
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
        threads: ThreadContexts | None = None,
        hub: TextHub | None = None,
    ) -> None:
        self.agent = agent
        self.hub = hub
        self.threads = threads
        self.memory = agent.memory
        self._prune_ceiling = None if agent.memory is None else agent.memory.prune_ceiling
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
        self._side_effect_tools = frozenset(t.name for t in agent.tools if t.policy.side_effect)
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
        return await self._loop(until_stopped=True)

    async def advance(self) -> RunState:
        """Take one step of the loop and make it durable before returning: for an engine that
        schedules each step itself and may hand the next to another process (Temporal).

        A step is what `next_step` names: one model call, one response's tool calls, or the
        bookkeeping between them. A final answer is finished in the step that received it,
        so the answer and ``run_finished`` still share one commit.
        """
        state = await self._loop(until_stopped=False)
        if self._deferred:  # the next step may run elsewhere: nothing may wait in memory
            await self._flush()
        return state

    def next_step(self) -> Step | None:
        """What the loop does next; None once the run finished or waits for a person."""
        return next_step(self.state, self.agent)

    async def _loop(self, *, until_stopped: bool) -> RunState:
        state = self.state
        if state.status.terminal or state.status is RunStatus.WAITING_APPROVAL:
            return state
        self._run_update["status"] = RunStatus.RUNNING.value
        try:
            while (step := next_step(state, self.agent)) is not None:
                await self._take(step)
                if not until_stopped and state.answer is None:
                    break
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

    async def _take(self, step: Step) -> None:
        state = self.state
        if step == "check":
            await self._check_answer()
        elif step == "finish":
            await self._finish(RunStatus.COMPLETED, output=state.answer)
        elif step == "thread":
            await self._start_thread()
        elif step == "plan":
            assert self.agent.planner is not None
            await self._make_plan(self.agent.planner)
        elif step == "tools":
            await self._run_tools()
        elif reason := await self._over_budget():
            await self._escalate(reason)
        else:
            await self._call_model()

    async def _fail_unexpectedly(self, exc: Exception) -> None:
        # Last resort: a bug or content nothing anticipated must not leave the run "running"
        # forever, crashing every resume the same way. Deferred entries are kept: record()
        # already serialised them, and dropping them would leave a gap in the journal.
        logger.exception("run %s failed unexpectedly", self.state.run_id)
        error = f"internal error ({type(exc).__name__}): {exc}"[:500]
        await self._finish(RunStatus.FAILED, error=safe_text(error))

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
            {"plan": safe_text(plan.text), "usage": plan.usage, "cost_usd": plan.cost_usd},
            defer=True,  # durable with the next entry; a crash before it just plans again
            input_tokens=plan.usage.input_tokens,
            output_tokens=plan.usage.output_tokens,
            cost_usd=plan.cost_usd,
        )

    async def _start_thread(self) -> None:
        """Journal the thread context the run starts from (summary, window of turns)."""
        if self.threads is None:
            raise UserError("a run with a thread needs a durable runtime (a store)")
        memory = self.memory or ThreadMemory()
        payload, columns = await self.threads.build(
            self.state, memory, memory.summarizer_for(self.model)
        )
        # Durable with the next entry: a crash before it builds the context again, from the
        # summary this attempt stored.
        await self._append("thread_context", payload, defer=True, **columns)

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
        messages: Sequence[Message] = self.state.messages
        pruned = 0
        if self._prune_ceiling is not None:
            # A pure function of the state: a resumed run builds the same request.
            messages, pruned = prune_stale_tool_output(messages, ceiling=self._prune_ceiling)
        request = ModelRequest(
            messages=tuple(messages),
            tools=self._tools,
            settings=self._settings,
            context=call_context(self.state, side_effect_tools=self._side_effect_tools),
        )
        attempt = 0
        refused = False
        while True:
            attempt += 1
            wall = self.agent.budget.max_wall_s
            spent = self.elapsed() - self.agent.budget.base(self.state).elapsed_s
            t0 = time.monotonic()
            hub, run_id = self.hub, self.state.run_id
            if hub is not None and hub.wants(run_id):  # someone follows the text
                step = self.state.next_seq
                call = streamed(self.model, request, hub, run_id=run_id, step=step, attempt=attempt)
            else:
                call = self.model.request(request)
            try:
                async with asyncio.timeout(None if wall is None else max(wall - spent, 0)):
                    response = await call
            except TimeoutError:
                spent = self.elapsed() - self.agent.budget.base(self.state).elapsed_s
                await self._escalate(self.agent.budget.wall_time(spent) or "wall time")
                return None
            except ModelError as exc:
                delay = await self._model_failed(exc, attempt, t0, retry_refusal=not refused)
                if delay is None:
                    return None
                if isinstance(exc, ModelRefusal):
                    # Refusals are often spurious (a filter tripped by a word): ask once more,
                    # telling the model what it said, before a person has to look.
                    refused = True
                    request = _with_refusal_noted(request, exc)
                    continue  # at once: a refusal is not load, no backoff
                await self._sleep(delay)
                continue
            latency_ms = (time.monotonic() - t0) * 1000
            response = self._normalise(response)
            if response.attempts:  # a wrapper's earlier attempts: each journaled and budgeted
                for entry, columns in attempt_entries(response.attempts, attempt=attempt):
                    await self._append("model_error", entry, defer=True, **columns)
            # Durable together with the next entry: before any tool it proposes can act, and in
            # the same commit as run_finished for a final answer. A crash before that re-asks
            # the model; nothing outside the process has seen this response yet.
            try:
                payload: dict[str, Any] = {"response": response, "latency_ms": latency_ms}
                if pruned:
                    payload["pruned"] = pruned  # stale tool results stubbed in the request
                await self._append(
                    "model_response",
                    payload,
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
            # A tenant's spend counts what the wrapper's rejected attempts cost too.
            charged = sum((a.cost_usd or 0 for a in response.attempts), response.cost_usd or 0)
            if self.spend is not None and charged:
                await self.spend.charged(self.state, Decimal(charged))
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
            ToolCall(
                id=f"call_{seq}_{i}", name=call.name, arguments=canonical_arguments(call.arguments)
            )
            for i, call in enumerate(response.tool_calls)
        )
        update: dict[str, Any] = {"tool_calls": calls}
        served = response.route is not None and response.route.source == "cache"
        if not response.usage.total_tokens and not served:  # a cache hit spent nothing
            update["usage"] = estimate_usage(self.state.messages, response.text, calls)
        return response.model_copy(update=update)

    async def _model_failed(
        self, exc: ModelError, attempt: int, t0: float, *, retry_refusal: bool = False
    ) -> float | None:
        """Journal the failure; return the delay before retrying, or None when the run stopped.
        With `retry_refusal`, a refusal is retried at once (the caller notes it in the request)."""
        latency_ms = (time.monotonic() - t0) * 1000
        # One entry per model an exhausted fallback chain tried, each with its model id.
        for entry, columns in failure_entries(exc, attempt=attempt, latency_ms=latency_ms):
            await self._append("model_error", entry, **columns)
        policy = self.agent.model_policy
        if isinstance(exc, ModelAuthError):
            await self._finish(RunStatus.FAILED, error=f"model authentication failed: {exc}")
            return None
        if isinstance(exc, ModelRefusal) and retry_refusal:
            return 0.0
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

    # --- the answer's confidence -----------------------------------------------------------

    async def _check_answer(self) -> None:
        """Score the answer against the passages retrieved; journal the score, its citations
        and the corpus version; escalate below the threshold with the passages."""
        policy = self.agent.confidence
        assert policy is not None and self.state.answer is not None
        passages: dict[str, Passage] = {}
        versions: list[int] = []
        for tool, data in self.state.retrieved:
            if tool != policy.tool:
                continue
            version = int(data.get("corpus_version") or 0)
            versions.append(version)
            for item in data.get("passages") or ():
                passage = Passage.from_json(item, corpus_version=version)
                passages.setdefault(passage.ref, passage)
        found = assess(self.state.answer, list(passages.values()), policy)
        low = found.confidence < policy.threshold
        payload = {
            **found.to_json(),
            "threshold": policy.threshold,
            "corpus_version": max(versions, default=None),
            "passages": len(passages),
            "escalated": low,
        }
        # Durable with run_finished, in the same commit.
        await self._append("answer_check", payload, defer=True, status="low" if low else "ok")
        if not low:
            return
        cited = {p.ref for p in found.cited}
        shown = sorted(passages.values(), key=lambda p: (p.ref not in cited, -p.relevance))
        reason = (
            f"low confidence: {found.confidence:.2f} is below {policy.threshold:.2f} "
            f"({found.supported} of {found.checked} sentences supported by "
            f"{len(passages)} passage(s))"
        )
        handoff = self._handoff(
            reason,
            "Check the draft answer against the passages: send, correct or answer it yourself?",
        )
        handoff = handoff.model_copy(
            update={
                "confidence": round(found.confidence, 4),
                "passages": tuple(
                    HandoffPassage(
                        ref=p.ref,
                        document_id=p.document_id,
                        title=p.title,
                        version=p.version,
                        span=(p.start, p.end),
                        relevance=p.relevance,
                        cited=p.ref in cited,
                        text=safe_text(p.text),
                    )
                    for p in shown[:8]
                ),
            }
        )
        await self._finish(RunStatus.ESCALATED, handoff=handoff)

    # --- endings ----------------------------------------------------------------------------

    async def _escalate(self, reason: str, *, question: str | None = None) -> None:
        handoff = self._handoff(reason, question or "How should this request be handled?")
        await self._finish(RunStatus.ESCALATED, handoff=handoff)

    def _handoff(self, reason: str, question: str) -> Handoff:
        return handoff_for(self.state, reason, question)

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


def _with_refusal_noted(request: ModelRequest, refusal: ModelRefusal) -> ModelRequest:
    """The request again, with a note that the model declined it and what it said."""
    note = UserMessage(
        content=(
            "Your previous reply declined this request: "
            f"{safe_text(str(refusal))[:500]!r}. If the request is legitimate, answer it; "
            "if it truly cannot be done, say why in plain words."
        )
    )
    return request.model_copy(update={"messages": (*request.messages, note)})
