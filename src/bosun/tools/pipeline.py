"""The tool pipeline: one `ToolExecutor` per process runs every tool call of every run.

A call passes through small stages, each ``async (inv, tool, args, call_next) -> ToolResult``,
folded around the call like starlette middleware. Outermost first:

```
stage        answers (attempts=0 unless the tool ran)
-----------  -------------------------------------------------------------------------
lookup       UNKNOWN_TOOL (lists the tools this run may use)      } entry: turns the call
validate     INVALID_ARGUMENTS (which fields, what was expected)  } into a Tool + arguments
authorize    UNAUTHORIZED (no workaround offered)
approve      raises ApprovalRequired; APPROVAL_REJECTED; edited arguments re-validated
fallback     on TRANSIENT/TIMEOUT/FAILED/CIRCUIT_OPEN/RATE_LIMITED runs policy.fallback
rate limit   RATE_LIMITED with the seconds to wait (per tool, `limits` moving window)
breaker      CIRCUIT_OPEN without calling the tool
retry        tenacity, only on retryable kinds (TIMEOUT, TRANSIENT); sets `attempts`
timeout      TIMEOUT, per attempt
call         credential → function → exception mapping → result checked against its type
```

Decisions a reader would otherwise have to reverse-engineer:

* **Timeout inside retry.** DESIGN.md reads "timeout → retry with backoff"; taken literally the
  timeout would bound all attempts together, and an attempt that hangs would use up the budget
  so that nothing is retried. ``policy.timeout_s`` is *per attempt*, so a timed-out attempt is a
  retryable TIMEOUT like any other transient failure.
* **Breaker outside retry.** One logical call is one success or failure for the breaker, so
  ``failure_threshold`` counts calls, not attempts. Only TRANSIENT, TIMEOUT and FAILED count;
  model mistakes (invalid arguments, `ModelRetry` guidance) and refusals never reach it or
  leave it as it was, and so does INVALID_RESULT (a fault in the tool's code, not an outage).
* **Rate limit outside retry.** A call uses one slot however many attempts it takes; a limited
  call is refused at once (non-blocking) with the seconds to wait, read from the window.
* **Fallback after approval.** The fallback gets the arguments that were actually approved
  (edited ones included) and runs the *whole* pipeline under its own name: its own scope must
  be granted and its own approval policy applies. The human decision in the `Invocation` is for
  the call, so it carries over; if only the fallback needs approval, `ApprovalRequired` names
  the fallback tool. Fallback chains are checked for cycles when the executor is built.
* **Failures before the call report ``attempts=0``**: the tool did not run.
* **Credentials are resolved inside the call stage**, per attempt, and reach the tool as a
  `Secret`. Guidance that quotes the value is redacted and a result that contains it is
  withheld, so a careless tool cannot hand its credential to the model.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final

import limits
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from pydantic import BaseModel, ValidationError
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_result,
    stop_after_attempt,
    wait_exponential_jitter,
)

from bosun.errors import ModelRetry, ToolDefinitionError, ToolFailure
from bosun.models.base import ToolCall, ToolDefinition
from bosun.tools.base import (
    ApprovalDecision,
    ApprovalRequired,
    ErrorKind,
    Risk,
    ToolContext,
    ToolResult,
)
from bosun.tools.breaker import CircuitBreaker
from bosun.tools.decorator import Tool
from bosun.tools.secrets import Secret, SecretsProvider

__all__ = ["Invocation", "ToolExecutor"]

logger = logging.getLogger(__name__)

AnyTool = Tool[..., Any]
Next = Callable[["Invocation", AnyTool, BaseModel], Awaitable[ToolResult]]
"""The rest of the pipeline, as seen by a stage."""
Stage = Callable[["Invocation", AnyTool, BaseModel, Next], Awaitable[ToolResult]]
"""One wrapper: may answer itself or call ``call_next`` (with other arguments, even)."""

_BREAKER_FAILURES: Final = frozenset({ErrorKind.TRANSIENT, ErrorKind.TIMEOUT, ErrorKind.FAILED})
_FALLBACK_KINDS: Final = _BREAKER_FAILURES | {ErrorKind.CIRCUIT_OPEN, ErrorKind.RATE_LIMITED}
_MAX_ERRORS: Final = 10


@dataclass(frozen=True, kw_only=True)
class Invocation:
    """One tool call to execute, with everything the pipeline decides on."""

    call: ToolCall
    """The call as the model proposed it (raw JSON arguments)."""
    ctx: ToolContext
    """Run, step and call id; handed to tools that ask for it."""
    grants: frozenset[str]
    """Scopes the run's principal holds."""
    approval: ApprovalDecision | None = None
    """The human decision on this call, once there is one."""
    force_approval: bool = False
    """Hold the call for approval even if the tool's policy does not (e.g. tainted context)."""
    reveal: Callable[[Any, frozenset[str]], Any] | None = None
    """Swaps PII placeholders in the arguments for the originals of the given entity types;
    used only for tools whose policy names PII types, inside the call stage."""


class ToolExecutor:
    """Runs tool calls through the pipeline. Lives for the process: breakers and rate limits
    are per tool and shared by every run."""

    def __init__(
        self,
        tools: Sequence[AnyTool],
        *,
        secrets: SecretsProvider | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._tools = _index(tools)
        self._breakers = {
            t.name: CircuitBreaker(t.policy.breaker, clock=clock)
            for t in tools
            if t.policy.breaker is not None
        }
        stages: list[Stage] = [
            _authorize,
            _approve,
            _Fallback(self.execute, self._tools),
            _RateLimit(tools),
            _Breaker(self._breakers),
            _Retry(sleep),
            _timeout,
        ]
        self._handler = _compose(stages, _Call(secrets))

    def definitions(self) -> tuple[ToolDefinition, ...]:
        """Every tool as the model is told about it, in the order given."""
        return tuple(t.definition() for t in self._tools.values())

    def get(self, name: str) -> AnyTool | None:
        """The tool called `name`, if the executor has it."""
        return self._tools.get(name)

    def breaker(self, name: str) -> CircuitBreaker | None:
        """The breaker of tool `name` (for metrics and dashboards); `None` when it has none."""
        return self._breakers.get(name)

    async def execute(self, inv: Invocation) -> ToolResult:
        """Run one call to a structured result.

        Every failure of the call comes back as a `ToolResult`; the only exception meant to
        leave is `ApprovalRequired`, a signal for the runtime to ask a human.
        """
        tool = self._tools.get(inv.call.name)
        if tool is None:
            return _fail(ErrorKind.UNKNOWN_TOOL, self._unknown_tool(inv))
        try:
            raw = inv.call.parsed_arguments()
        except (ValueError, RecursionError) as exc:
            return _fail(
                ErrorKind.INVALID_ARGUMENTS,
                f"The arguments for {tool.name!r} are not a JSON object ({exc}). Call the tool "
                "again with a JSON object that matches its parameters.",
            )
        try:
            args = tool.validate_arguments(raw)
        except ValidationError as exc:
            return _fail(ErrorKind.INVALID_ARGUMENTS, _explain(tool.name, exc))
        return await self._handler(inv, tool, args)

    def _unknown_tool(self, inv: Invocation) -> str:
        names = sorted(t.name for t in self._tools.values() if t.policy.scope in inv.grants)
        available = f"Available tools: {', '.join(names)}." if names else "No tools are available."
        return f"There is no tool named {inv.call.name[:64]!r}. {available}"


# --- stages -----------------------------------------------------------------------------------


async def _authorize(
    inv: Invocation, tool: AnyTool, args: BaseModel, call_next: Next
) -> ToolResult:
    if tool.policy.scope not in inv.grants:
        logger.warning(
            "call %s: run %s lacks scope %r", inv.call.id, inv.ctx.run_id, tool.policy.scope
        )
        return _fail(ErrorKind.UNAUTHORIZED, f"This run is not permitted to use {tool.name!r}.")
    return await call_next(inv, tool, args)


async def _approve(inv: Invocation, tool: AnyTool, args: BaseModel, call_next: Next) -> ToolResult:
    if not (tool.policy.requires_approval or inv.force_approval):
        return await call_next(inv, tool, args)
    decision = inv.approval
    if decision is None:
        raise ApprovalRequired(tool.name, inv.call.id)
    if not decision.approved:
        reason = f": {decision.reason}" if decision.reason else "."
        return _fail(ErrorKind.APPROVAL_REJECTED, f"A human reviewer rejected this call{reason}")
    if decision.arguments is not None:
        try:
            args = tool.validate_arguments(decision.arguments)
        except ValidationError as exc:
            return _fail(ErrorKind.INVALID_ARGUMENTS, _explain(tool.name, exc, by="reviewer"))
    return await call_next(inv, tool, args)


class _Fallback:
    def __init__(
        self, execute: Callable[[Invocation], Awaitable[ToolResult]], tools: Mapping[str, AnyTool]
    ) -> None:
        self._execute = execute
        self._tools = tools

    async def __call__(
        self, inv: Invocation, tool: AnyTool, args: BaseModel, call_next: Next
    ) -> ToolResult:
        result = await call_next(inv, tool, args)
        target = tool.policy.fallback
        if result.ok or result.error_kind not in _FALLBACK_KINDS or target not in self._tools:
            return result
        logger.warning(
            "call %s: tool %r ended %s; falling back to %r",
            inv.call.id,
            tool.name,
            result.error_kind,
            target,
        )
        arguments = args.model_dump(mode="json", by_alias=True, exclude_unset=True)
        call = ToolCall(id=inv.call.id, name=target, arguments=json.dumps(arguments))
        return await self._execute(replace(inv, call=call))


class _RateLimit:
    def __init__(self, tools: Sequence[AnyTool]) -> None:
        self._items = {
            t.name: limits.parse(t.policy.rate_limit) for t in tools if t.policy.rate_limit
        }
        # The in-memory storage is synchronous and never blocks, so a hit is atomic on the
        # event loop; it is created only when some tool has a limit (it starts a timer thread).
        self._limiter = MovingWindowRateLimiter(MemoryStorage()) if self._items else None

    async def __call__(
        self, inv: Invocation, tool: AnyTool, args: BaseModel, call_next: Next
    ) -> ToolResult:
        item = self._items.get(tool.name)
        if item is None or self._limiter is None or self._limiter.hit(item, tool.name):
            return await call_next(inv, tool, args)
        # limits keeps wall-clock timestamps, so the wait is measured against time.time().
        reset = self._limiter.get_window_stats(item, tool.name).reset_time
        wait = max(1, math.ceil(reset - time.time()))
        return _fail(
            ErrorKind.RATE_LIMITED,
            f"{tool.name!r} is over its rate limit; try again in {wait} seconds.",
        )


class _Breaker:
    def __init__(self, breakers: Mapping[str, CircuitBreaker]) -> None:
        self._breakers = breakers

    async def __call__(
        self, inv: Invocation, tool: AnyTool, args: BaseModel, call_next: Next
    ) -> ToolResult:
        breaker = self._breakers.get(tool.name)
        if breaker is None:
            return await call_next(inv, tool, args)
        if not breaker.allow():
            wait = max(1, math.ceil(breaker.retry_after()))
            return _fail(
                ErrorKind.CIRCUIT_OPEN,
                f"{tool.name!r} is failing and temporarily disabled; try again in {wait} "
                "seconds or continue without it.",
            )
        try:
            result = await call_next(inv, tool, args)
        except BaseException:
            breaker.release()
            raise
        if result.ok:
            breaker.record_success()
        elif result.error_kind in _BREAKER_FAILURES:
            breaker.record_failure()
        else:
            breaker.release()
        return result


class _Retry:
    def __init__(self, sleep: Callable[[float], Awaitable[None]]) -> None:
        self._sleep = sleep

    async def __call__(
        self, inv: Invocation, tool: AnyTool, args: BaseModel, call_next: Next
    ) -> ToolResult:
        policy = tool.policy.retry
        first = await call_next(inv, tool, args)
        if policy is None or policy.attempts <= 1 or not _retryable(first):
            return first  # the common case pays nothing for tenacity
        attempts = 1

        async def attempt() -> ToolResult:
            nonlocal attempts
            attempts += 1
            return await call_next(inv, tool, args)

        # Attempt n waits initial * 2**(n-1) before it; tenacity numbers its own attempts from 1,
        # so the first wait is slept here and tenacity's multiplier is doubled.
        await self._sleep(
            min(policy.initial_delay_s + random.uniform(0, policy.jitter_s), policy.max_delay_s)
        )
        retrying = AsyncRetrying(
            sleep=self._sleep,
            stop=stop_after_attempt(policy.attempts - 1),
            # ``multiplier`` is the first delay (tenacity deprecated its old name, ``initial``).
            wait=wait_exponential_jitter(
                multiplier=policy.initial_delay_s * 2,
                max=policy.max_delay_s,
                jitter=policy.jitter_s,
            ),
            retry=retry_if_result(_retryable),
            retry_error_callback=_last_result,
        )
        result: ToolResult = await retrying(attempt)
        return result.model_copy(update={"attempts": attempts})


def _retryable(result: ToolResult) -> bool:
    return result.error_kind is not None and result.error_kind.retryable


def _last_result(state: RetryCallState) -> ToolResult:
    if state.outcome is None:  # pragma: no cover - tenacity calls this only after an attempt
        raise RuntimeError("retry ended without an attempt")
    result: ToolResult = state.outcome.result()
    return result


async def _timeout(inv: Invocation, tool: AnyTool, args: BaseModel, call_next: Next) -> ToolResult:
    try:
        async with asyncio.timeout(tool.policy.timeout_s):
            return await call_next(inv, tool, args)
    except TimeoutError:
        logger.warning("call %s: tool %r timed out", inv.call.id, tool.name)
        return ToolResult.failure(
            ErrorKind.TIMEOUT,
            f"{tool.name!r} did not answer within {tool.policy.timeout_s:g} seconds.",
        )


class _Call:
    """The innermost stage: credential, the call itself, exception mapping, result check."""

    def __init__(self, secrets: SecretsProvider | None) -> None:
        self._secrets = secrets

    async def __call__(self, inv: Invocation, tool: AnyTool, args: BaseModel) -> ToolResult:
        secret: Secret | None = None
        try:
            if tool.policy.credential is not None:
                value = self._secrets.get(tool.policy.credential) if self._secrets else None
                if not value:
                    logger.error(
                        "tool %r: credential %r is not set", tool.name, tool.policy.credential
                    )
                    return ToolResult.failure(
                        ErrorKind.FAILED, f"{tool.name!r} is not configured and cannot run now."
                    )
                secret = Secret(value)
            if inv.reveal is not None and tool.policy.pii:
                # Only here, per attempt: the journal, the approver and the model keep
                # placeholders; only a tool allowed a PII type sees its real values.
                dumped = args.model_dump(mode="json", by_alias=True, exclude_unset=True)
                args = tool.validate_arguments(inv.reveal(dumped, tool.policy.pii))
            output = await tool.invoke(args, ctx=inv.ctx, secret=secret)
        except Exception as exc:
            result = _classify(inv, tool, exc)
        else:
            result = _check_result(tool, output)
        return result if secret is None else _withhold(tool, result, secret)


def _classify(inv: Invocation, tool: AnyTool, exc: Exception) -> ToolResult:
    """Map what the tool raised to an error kind; the model sees guidance, never a traceback."""
    name = tool.name
    if isinstance(exc, ModelRetry):
        return ToolResult.failure(ErrorKind.RETRY_WITH_GUIDANCE, exc.message)
    if tool.policy.credential is not None:
        # The exception may quote the credential (a URL, a header): log only its type.
        logger.warning("call %s: tool %r raised %s", inv.call.id, name, type(exc).__name__)
    if isinstance(exc, ToolFailure):
        if tool.policy.credential is None:
            logger.warning("call %s: tool %r raised %r", inv.call.id, name, exc)
        if exc.retryable:
            return ToolResult.failure(ErrorKind.TRANSIENT, f"{name!r} failed temporarily: {exc}")
        return ToolResult.failure(ErrorKind.FAILED, str(exc))
    kind_name = type(exc).__name__
    traceback = exc if tool.policy.credential is None else None
    if isinstance(exc, TimeoutError | ConnectionError):
        if traceback is not None:
            logger.warning("call %s: tool %r raised %s", inv.call.id, name, kind_name, exc_info=exc)
        return ToolResult.failure(
            ErrorKind.TRANSIENT, f"{name!r} failed temporarily ({kind_name})."
        )
    if traceback is not None:
        logger.error("call %s: tool %r failed unexpectedly", inv.call.id, name, exc_info=exc)
    return ToolResult.failure(
        ErrorKind.FAILED, f"{name!r} failed with an internal error ({kind_name})."
    )


def _check_result(tool: AnyTool, output: Any) -> ToolResult:
    try:
        data = tool.serialize_result(output)
    except Exception as exc:  # ValidationError, PydanticSerializationError, a custom serializer
        logger.error("tool %r returned an invalid result: %s", tool.name, exc)
        return ToolResult.failure(
            ErrorKind.INVALID_RESULT,
            f"{tool.name!r} returned a result that does not match its declared type. This is a "
            "fault in the tool, not in your call.",
        )
    return ToolResult.success(data)


def _withhold(tool: AnyTool, result: ToolResult, secret: Secret) -> ToolResult:
    value = secret.reveal()
    escaped = json.dumps(value, ensure_ascii=False)[1:-1]
    if result.guidance and (value in result.guidance or escaped in result.guidance):
        guidance = result.guidance.replace(value, "[redacted]").replace(escaped, "[redacted]")
        result = result.model_copy(update={"guidance": guidance})
    if result.ok and escaped in json.dumps(result.data, ensure_ascii=False):
        logger.error("tool %r returned its own credential; the result was withheld", tool.name)
        return ToolResult.failure(
            ErrorKind.FAILED,
            f"{tool.name!r} returned data that cannot be shown. This is a fault in the tool.",
        )
    return result


# --- assembly ---------------------------------------------------------------------------------


def _compose(stages: Sequence[Stage], terminal: Next) -> Next:
    handler = terminal
    for stage in reversed(stages):
        handler = _bind(stage, handler)
    return handler


def _bind(stage: Stage, call_next: Next) -> Next:
    async def handler(inv: Invocation, tool: AnyTool, args: BaseModel) -> ToolResult:
        return await stage(inv, tool, args, call_next)

    return handler


def _index(tools: Sequence[AnyTool]) -> dict[str, AnyTool]:
    by_name: dict[str, AnyTool] = {}
    for item in tools:
        if not isinstance(item, Tool):
            raise ToolDefinitionError(f"{item!r} is not a tool; decorate it with @bosun.tools.tool")
        if item.name in by_name:
            raise ToolDefinitionError(f"two tools are named {item.name!r}; names must be unique")
        by_name[item.name] = item
    for item in by_name.values():
        _check_fallback_chain(item, by_name)
    return by_name


def _check_fallback_chain(start: AnyTool, tools: Mapping[str, AnyTool]) -> None:
    seen = [start.name]
    current: AnyTool | None = start
    while current is not None and current.policy.fallback is not None:
        target = current.policy.fallback
        if target not in tools:
            logger.warning("tool %r: fallback %r is not in this executor", current.name, target)
            return
        if target in seen:
            chain = " -> ".join([*seen, target])
            raise ToolDefinitionError(f"fallback chain loops: {chain}")
        _check_fallback_contract(current, tools[target])
        seen.append(target)
        current = tools.get(target)


_RISK_ORDER = {Risk.READ: 0, Risk.WRITE: 1, Risk.IRREVERSIBLE: 2}


def _check_fallback_contract(primary: AnyTool, fallback: AnyTool) -> None:
    """A fallback runs under its primary's journaling, approval and audit, so it must not
    promise less: no side effect behind a read-only tool, no non-idempotent effect behind an
    idempotent one (no tool_started marker would guard it), no approval or risk the primary
    does not already carry."""
    p, f = primary.policy, fallback.policy
    problems = []
    if f.side_effect and not p.side_effect:
        problems.append("it has side effects and the primary has none")
    if f.side_effect and not f.idempotent and p.idempotent:
        problems.append("it is not idempotent and the primary is")
    if f.requires_approval and not p.requires_approval:
        problems.append("it requires approval and the primary does not")
    if f.untrusted_output and not p.untrusted_output:
        problems.append("it reads untrusted content and the primary does not")
    if _RISK_ORDER[f.risk] > _RISK_ORDER[p.risk]:
        problems.append(f"its risk ({f.risk}) is above the primary's ({p.risk})")
    if problems:
        raise ToolDefinitionError(
            f"fallback {fallback.name!r} of {primary.name!r} is riskier than the tool it stands "
            f"in for: {'; '.join(problems)}"
        )


def _fail(kind: ErrorKind, guidance: str) -> ToolResult:
    """A failure decided before the tool ran."""
    return ToolResult.failure(kind, guidance, attempts=0)


def _explain(tool: str, exc: ValidationError, *, by: str = "model") -> str:
    """Validation errors as guidance: which field, what was expected. No input echoed back."""
    errors = exc.errors(include_url=False, include_context=False, include_input=False)
    lines = [
        f"- {'.'.join(str(part) for part in error['loc']) or '(arguments)'}: {error['msg']}"
        for error in errors[:_MAX_ERRORS]
    ]
    if len(errors) > _MAX_ERRORS:
        lines.append(f"- and {len(errors) - _MAX_ERRORS} more")
    who = "The arguments" if by == "model" else "The arguments the reviewer approved"
    return (
        f"{who} for {tool!r} are invalid:\n"
        + "\n".join(lines)
        + "\nFix these arguments and call the tool again."
    )
