"""The circuit breaker on its own, with a clock the test moves."""

from __future__ import annotations

from typing import Any

from bosun.tools import BreakerPolicy
from bosun.tools.breaker import BreakerState, CircuitBreaker

POLICY = BreakerPolicy(failure_threshold=3, cooldown_s=30.0)


def _opened(clock: Any) -> CircuitBreaker:
    breaker = CircuitBreaker(POLICY, clock=clock)
    for _ in range(3):
        assert breaker.allow()
        breaker.record_failure()
    return breaker


def test_opens_after_consecutive_failures(clock: Any) -> None:
    breaker = CircuitBreaker(POLICY, clock=clock)

    breaker.record_failure()
    breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED
    assert breaker.allow()

    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    assert not breaker.allow()


def test_a_success_resets_the_count(clock: Any) -> None:
    breaker = CircuitBreaker(POLICY, clock=clock)

    for _ in range(5):
        breaker.record_failure()
        breaker.record_failure()
        breaker.record_success()

    assert breaker.state is BreakerState.CLOSED


def test_half_opens_after_cooldown_and_lets_one_trial_through(clock: Any) -> None:
    breaker = _opened(clock)

    clock.advance(29.0)
    assert not breaker.allow()
    assert breaker.retry_after() == 1.0

    clock.advance(1.0)
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.allow()
    assert not breaker.allow()  # the trial is in flight


def test_successful_trial_closes(clock: Any) -> None:
    breaker = _opened(clock)
    clock.advance(30.0)
    assert breaker.allow()

    breaker.record_success()

    assert breaker.state is BreakerState.CLOSED
    assert breaker.allow()
    assert breaker.allow()


def test_failed_trial_reopens_with_a_fresh_cooldown(clock: Any) -> None:
    breaker = _opened(clock)
    clock.advance(30.0)
    assert breaker.allow()

    breaker.record_failure()

    assert breaker.state is BreakerState.OPEN
    assert breaker.retry_after() == 30.0
    clock.advance(29.0)
    assert not breaker.allow()


def test_released_trial_frees_the_slot(clock: Any) -> None:
    breaker = _opened(clock)
    clock.advance(30.0)
    assert breaker.allow()

    breaker.release()

    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.allow()


def test_late_outcomes_while_open_are_ignored(clock: Any) -> None:
    breaker = _opened(clock)

    breaker.record_success()
    breaker.record_failure()
    clock.advance(10.0)

    assert breaker.state is BreakerState.OPEN
    assert breaker.retry_after() == 20.0
