"""The wrapper stages of the tool pipeline, outermost first: authorize, approve, fallback,
rate limit, breaker, retry, timeout (why in this order: see the package docstring)."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from typing import Final

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

from bosun.models.base import ToolCall
from bosun.tools.base import ApprovalRequired, ErrorKind, ToolResult
from bosun.tools.breaker import CircuitBreaker
from bosun.tools.pipeline.invocation import AnyTool, Invocation, Next, explain, fail

__all__ = ["Breaker", "Fallback", "RateLimit", "Retry", "approve", "authorize", "timeout"]

logger = logging.getLogger(__name__)

_BREAKER_FAILURES: Final = frozenset({ErrorKind.TRANSIENT, ErrorKind.TIMEOUT, ErrorKind.FAILED})
_FALLBACK_KINDS: Final = _BREAKER_FAILURES | {ErrorKind.CIRCUIT_OPEN, ErrorKind.RATE_LIMITED}


async def authorize(inv: Invocation, tool: AnyTool, args: BaseModel, call_next: Next) -> ToolResult:
    """UNAUTHORIZED unless the run holds the tool's scope."""
    if tool.policy.scope not in inv.grants:
        logger.warning(
            "call %s: run %s lacks scope %r", inv.call.id, inv.ctx.run_id, tool.policy.scope
        )
        return fail(ErrorKind.UNAUTHORIZED, f"This run is not permitted to use {tool.name!r}.")
    return await call_next(inv, tool, args)


async def approve(inv: Invocation, tool: AnyTool, args: BaseModel, call_next: Next) -> ToolResult:
    """Holds the call for a person unless decided; applies the decision and edited arguments."""
    if not (tool.policy.requires_approval or inv.force_approval):
        return await call_next(inv, tool, args)
    decision = inv.approval
    if decision is None:
        raise ApprovalRequired(tool.name, inv.call.id)
    if not decision.approved:
        reason = f": {decision.reason}" if decision.reason else "."
        return fail(ErrorKind.APPROVAL_REJECTED, f"A human reviewer rejected this call{reason}")
    if decision.arguments is not None:
        try:
            args = tool.validate_arguments(decision.arguments)
        except ValidationError as exc:
            return fail(ErrorKind.INVALID_ARGUMENTS, explain(tool.name, exc, by="reviewer"))
    return await call_next(inv, tool, args)


class Fallback:
    """Runs `policy.fallback` through the whole pipeline when the call ends in a fallback kind."""

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


class RateLimit:
    """Refuses a call over its tool's rate limit at once, with the seconds to wait."""

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
        return fail(
            ErrorKind.RATE_LIMITED,
            f"{tool.name!r} is over its rate limit; try again in {wait} seconds.",
        )


class Breaker:
    """CIRCUIT_OPEN while the tool's breaker is open; feeds it one outcome per logical call."""

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
            return fail(
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


class Retry:
    """Retries retryable kinds with exponential backoff and jitter; sets `attempts`."""

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


async def timeout(inv: Invocation, tool: AnyTool, args: BaseModel, call_next: Next) -> ToolResult:
    """TIMEOUT when one attempt outlasts `policy.timeout_s`."""
    try:
        async with asyncio.timeout(tool.policy.timeout_s):
            return await call_next(inv, tool, args)
    except TimeoutError:
        logger.warning("call %s: tool %r timed out", inv.call.id, tool.name)
        return ToolResult.failure(
            ErrorKind.TIMEOUT,
            f"{tool.name!r} did not answer within {tool.policy.timeout_s:g} seconds.",
        )
