"""Rate limits, the breaker, retries and timeouts as the executor applies them."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest

from bosun.errors import ModelRetry, PermanentToolError, TransientToolError
from bosun.tools import BreakerPolicy, ErrorKind, RetryPolicy, ToolResult, tool
from bosun.tools.breaker import BreakerState

NO_JITTER = RetryPolicy(attempts=4, initial_delay_s=0.5, max_delay_s=1.5, jitter_s=0.0)


class Script:
    """A tool body that raises or returns, in order, what it was given; counts its calls."""

    def __init__(self, *outcomes: Any) -> None:
        self.outcomes = list(outcomes)
        self.calls = 0

    def __call__(self) -> Any:
        self.calls += 1
        outcome = self.outcomes.pop(0) if len(self.outcomes) > 1 else self.outcomes[0]
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


def _tool(script: Script, **options: Any) -> Any:
    @tool(name="flaky", **options)
    def flaky() -> str:
        """Calls an unreliable service."""
        return script()  # type: ignore[no-any-return]

    return flaky


# --- rate limit -------------------------------------------------------------------------------


async def test_rate_limit_admits_exactly_the_limit(make_executor: Any, make_inv: Any) -> None:
    calls: list[int] = []

    @tool(rate_limit="3/minute")
    async def search(q: int) -> int:
        """Search."""
        calls.append(q)
        await asyncio.sleep(0)
        return q

    @tool
    def other() -> str:
        """Not limited."""
        return "ok"

    executor = make_executor(search, other)
    results = await asyncio.gather(
        *(executor.execute(make_inv("search", {"q": i}, call_id=f"c{i}")) for i in range(10))
    )

    assert sum(r.ok for r in results) == 3
    limited = [r for r in results if not r.ok]
    assert {r.error_kind for r in limited} == {ErrorKind.RATE_LIMITED}
    assert len(calls) == 3
    for result in limited:
        assert result.attempts == 0
        match = re.search(r"try again in (\d+) seconds", result.guidance or "")
        assert match is not None
        assert 1 <= int(match.group(1)) <= 60
    assert (await executor.execute(make_inv("other"))).ok  # limits are per tool


async def test_separate_executors_do_not_share_limits(make_executor: Any, make_inv: Any) -> None:
    @tool(rate_limit="1/minute")
    def once() -> int:
        """Once."""
        return 1

    first, second = make_executor(once), make_executor(once)

    assert (await first.execute(make_inv("once"))).ok
    assert (await second.execute(make_inv("once"))).ok
    assert (await first.execute(make_inv("once"))).error_kind is ErrorKind.RATE_LIMITED


# --- retry ------------------------------------------------------------------------------------


async def test_transient_failures_are_retried_up_to_the_attempts(
    make_executor: Any, make_inv: Any, sleeps: list[float]
) -> None:
    script = Script(TransientToolError("503"))
    executor = make_executor(_tool(script, retry=NO_JITTER, breaker=None))

    result = await executor.execute(make_inv("flaky"))

    assert result.error_kind is ErrorKind.TRANSIENT
    assert result.attempts == 4
    assert script.calls == 4
    assert sleeps == [0.5, 1.0, 1.5]  # exponential from the policy, capped at max_delay_s


async def test_retry_stops_at_the_first_success(
    make_executor: Any, make_inv: Any, sleeps: list[float]
) -> None:
    script = Script(ConnectionError("reset"), "done")
    executor = make_executor(_tool(script, retry=NO_JITTER))

    result = await executor.execute(make_inv("flaky"))

    assert result == ToolResult(ok=True, data="done", attempts=2)
    assert len(sleeps) == 1


async def test_jitter_stays_within_the_policy(
    make_executor: Any, make_inv: Any, sleeps: list[float]
) -> None:
    policy = RetryPolicy(attempts=3, initial_delay_s=0.2, max_delay_s=5.0, jitter_s=0.1)
    await make_executor(_tool(Script(TimeoutError()), retry=policy)).execute(make_inv("flaky"))

    assert len(sleeps) == 2
    assert 0.2 <= sleeps[0] <= 0.3
    assert 0.4 <= sleeps[1] <= 0.5


@pytest.mark.parametrize(
    "outcome",
    [PermanentToolError("gone"), ModelRetry("ask again"), ValueError("bug")],
    ids=["permanent", "model-retry", "unexpected"],
)
async def test_non_retryable_failures_run_once(
    make_executor: Any, make_inv: Any, sleeps: list[float], outcome: Exception
) -> None:
    script = Script(outcome)
    executor = make_executor(_tool(script, retry=NO_JITTER))

    result = await executor.execute(make_inv("flaky"))

    assert not result.ok
    assert result.attempts == 1
    assert script.calls == 1
    assert sleeps == []


async def test_invalid_arguments_never_reach_the_tool(make_executor: Any, make_inv: Any) -> None:
    script = Script("x")
    executor = make_executor(_tool(script, retry=NO_JITTER))

    result = await executor.execute(make_inv("flaky", {"unexpected": 1}))

    assert result.error_kind is ErrorKind.INVALID_ARGUMENTS
    assert (result.attempts, script.calls) == (0, 0)


async def test_retry_disabled_runs_once(make_executor: Any, make_inv: Any) -> None:
    script = Script(TransientToolError("503"))

    result = await make_executor(_tool(script, retry=None)).execute(make_inv("flaky"))

    assert (result.error_kind, result.attempts, script.calls) == (ErrorKind.TRANSIENT, 1, 1)


# --- timeout ----------------------------------------------------------------------------------


async def test_timeout_applies_per_attempt_and_is_retried(
    make_executor: Any, make_inv: Any
) -> None:
    started: list[int] = []

    @tool(timeout_s=0.05, retry=NO_JITTER)
    async def slow_once() -> str:
        """Hangs on the first attempt only."""
        started.append(len(started))
        if len(started) == 1:
            await asyncio.Event().wait()
        return "fast enough"

    result = await make_executor(slow_once).execute(make_inv("slow_once"))

    assert result == ToolResult(ok=True, data="fast enough", attempts=2)


async def test_timeout_on_every_attempt(make_executor: Any, make_inv: Any) -> None:
    @tool(timeout_s=0.01, retry=RetryPolicy(attempts=2, jitter_s=0.0))
    async def hangs() -> None:
        """Never answers."""
        await asyncio.Event().wait()

    result = await make_executor(hangs).execute(make_inv("hangs"))

    assert result.error_kind is ErrorKind.TIMEOUT
    assert result.attempts == 2
    assert result.guidance == "'hangs' did not answer within 0.01 seconds."


# --- breaker ----------------------------------------------------------------------------------

BREAKER = BreakerPolicy(failure_threshold=3, cooldown_s=60.0)


async def test_breaker_opens_and_fails_fast(make_executor: Any, make_inv: Any) -> None:
    script = Script(TransientToolError("down"))
    executor = make_executor(_tool(script, retry=None, breaker=BREAKER))

    for _ in range(3):
        assert (await executor.execute(make_inv("flaky"))).error_kind is ErrorKind.TRANSIENT
    blocked = await executor.execute(make_inv("flaky"))

    assert blocked.error_kind is ErrorKind.CIRCUIT_OPEN
    assert blocked.attempts == 0
    assert blocked.guidance is not None
    assert "try again in 60 seconds" in blocked.guidance
    assert script.calls == 3
    assert executor.breaker("flaky").state is BreakerState.OPEN


async def test_breaker_half_opens_and_closes_on_success(
    make_executor: Any, make_inv: Any, clock: Any
) -> None:
    script = Script(*[TransientToolError("down")] * 3, "back")
    executor = make_executor(_tool(script, retry=None, breaker=BREAKER))
    for _ in range(3):
        await executor.execute(make_inv("flaky"))

    clock.advance(59.0)
    assert (await executor.execute(make_inv("flaky"))).error_kind is ErrorKind.CIRCUIT_OPEN
    clock.advance(1.0)
    trial = await executor.execute(make_inv("flaky"))
    after = await executor.execute(make_inv("flaky"))

    assert trial.ok and after.ok
    assert script.calls == 5
    assert executor.breaker("flaky").state is BreakerState.CLOSED


async def test_breaker_reopens_on_a_failed_trial(
    make_executor: Any, make_inv: Any, clock: Any
) -> None:
    script = Script(PermanentToolError("still down"))
    executor = make_executor(_tool(script, retry=None, breaker=BREAKER))
    for _ in range(3):
        await executor.execute(make_inv("flaky"))

    clock.advance(60.0)
    trial = await executor.execute(make_inv("flaky"))
    blocked = await executor.execute(make_inv("flaky"))

    assert trial.error_kind is ErrorKind.FAILED
    assert blocked.error_kind is ErrorKind.CIRCUIT_OPEN
    assert script.calls == 4


async def test_half_open_lets_a_single_trial_through(
    make_executor: Any, make_inv: Any, clock: Any
) -> None:
    gate = asyncio.Event()
    mode = {"fail": True}
    calls: list[int] = []

    @tool(retry=None, breaker=BREAKER)
    async def svc() -> str:
        """A service."""
        calls.append(1)
        if mode["fail"]:
            raise TransientToolError("down")
        await gate.wait()
        return "ok"

    executor = make_executor(svc)
    for _ in range(3):
        await executor.execute(make_inv("svc"))
    mode["fail"] = False
    clock.advance(60.0)

    trial = asyncio.create_task(executor.execute(make_inv("svc", call_id="trial")))
    await asyncio.sleep(0)
    second = await executor.execute(make_inv("svc", call_id="second"))
    gate.set()

    assert second.error_kind is ErrorKind.CIRCUIT_OPEN
    assert (await trial).ok
    assert len(calls) == 4


async def test_retries_count_once_and_model_mistakes_not_at_all(
    make_executor: Any, make_inv: Any
) -> None:
    script = Script(ModelRetry("which order?"))
    retrying = Script(TransientToolError("down"))
    executor = make_executor(
        _tool(script, retry=None, breaker=BreakerPolicy(failure_threshold=2)),
    )
    other = make_executor(
        _tool(retrying, retry=NO_JITTER, breaker=BreakerPolicy(failure_threshold=2)),
    )

    for _ in range(5):
        await executor.execute(make_inv("flaky"))
        await executor.execute(make_inv("flaky", {"bad": 1}))
        await executor.execute(make_inv("flaky", grants=set()))
    first = await other.execute(make_inv("flaky"))

    assert executor.breaker("flaky").state is BreakerState.CLOSED
    assert script.calls == 5
    assert first.attempts == 4
    assert other.breaker("flaky").state is BreakerState.CLOSED  # 4 attempts, one failure
    await other.execute(make_inv("flaky"))
    assert other.breaker("flaky").state is BreakerState.OPEN


async def test_breaker_disabled(make_executor: Any, make_inv: Any) -> None:
    script = Script(TransientToolError("down"))
    executor = make_executor(_tool(script, retry=None, breaker=None))

    for _ in range(10):
        await executor.execute(make_inv("flaky"))

    assert script.calls == 10
    assert executor.breaker("flaky") is None


async def test_open_breaker_falls_back(make_executor: Any, make_inv: Any) -> None:
    script = Script(TransientToolError("down"))
    primary = _tool(
        script, retry=None, breaker=BreakerPolicy(failure_threshold=1), fallback="cache"
    )

    @tool
    def cache() -> str:
        """Cached answer."""
        return "cached"

    executor = make_executor(primary, cache)
    grants = {"tools:flaky", "tools:cache"}
    first = await executor.execute(make_inv("flaky", grants=grants))
    second = await executor.execute(make_inv("flaky", grants=grants))

    assert first.data == second.data == "cached"
    assert script.calls == 1
