"""A circuit breaker for one tool, shared by every run in the process.

```
            N consecutive failures              cooldown elapsed, next call
  CLOSED ───────────────────────────▶ OPEN ───────────────────────────▶ HALF_OPEN
    ▲                                  ▲   (fails fast: CIRCUIT_OPEN)     │ one trial;
    │                                  └──────────── trial fails ─────────┤ others fail
    └──────────────────────────────────────────── trial succeeds ────────┘ fast
```

Hand-written rather than taken from ``pybreaker``: pybreaker has no asyncio support (its
``call`` wraps synchronous functions, its only async path, ``call_async``, needs Tornado; see
danielfm/pybreaker#7, native asyncio is still an unmerged pull request), and what bosun needs
is about a hundred lines: count the outcomes the pipeline reports, with an injectable clock so
tests move time instead of sleeping.

The breaker is not a wrapper around the call: the pipeline asks `allow`, runs the call, and
reports the outcome with `record_success`, `record_failure` or `release` (an outcome that says
nothing about the tool's health, such as a model mistake or a cancelled call). All methods are
synchronous and never await, so on one event loop they are atomic without a lock.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import StrEnum

from bosun.tools.base import BreakerPolicy

__all__ = ["BreakerState", "CircuitBreaker"]


class BreakerState(StrEnum):
    """Where a breaker stands. Stable strings: exported as metrics."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """Closed → open after `failure_threshold` consecutive failures → half-open after cooldown.

    Outcomes reported while open come from calls admitted before the breaker opened; they are
    ignored, because the breaker has already decided and the cooldown must run its course.
    """

    def __init__(
        self, policy: BreakerPolicy, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.policy = policy
        """Threshold and cooldown."""
        self._clock = clock
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._trial_in_flight = False

    @property
    def state(self) -> BreakerState:
        """The current state; an open breaker whose cooldown has elapsed reads as half-open."""
        if self._state is BreakerState.OPEN and self._cooldown_left() <= 0:
            return BreakerState.HALF_OPEN
        return self._state

    def retry_after(self) -> float:
        """Seconds until an open breaker lets a trial through (0 when not open)."""
        return max(self._cooldown_left(), 0.0) if self._state is BreakerState.OPEN else 0.0

    def allow(self) -> bool:
        """Whether a call may run now. In half-open, only the first caller gets the trial."""
        if self._state is BreakerState.CLOSED:
            return True
        if self._state is BreakerState.OPEN:
            if self._cooldown_left() > 0:
                return False
            self._state = BreakerState.HALF_OPEN
            self._trial_in_flight = False
        if self._trial_in_flight:
            return False
        self._trial_in_flight = True
        return True

    def record_success(self) -> None:
        """The call worked: a half-open breaker closes, a closed one forgets its failures."""
        if self._state is BreakerState.OPEN:
            return
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._trial_in_flight = False

    def record_failure(self) -> None:
        """The call failed: a failed trial reopens, the N-th consecutive failure opens."""
        if self._state is BreakerState.OPEN:
            return
        if self._state is BreakerState.HALF_OPEN:
            self._open()
            return
        self._failures += 1
        if self._failures >= self.policy.failure_threshold:
            self._open()

    def release(self) -> None:
        """The call ended without saying anything about the tool's health (frees the trial)."""
        if self._state is BreakerState.HALF_OPEN:
            self._trial_in_flight = False

    def _open(self) -> None:
        self._state = BreakerState.OPEN
        self._opened_at = self._clock()
        self._failures = 0
        self._trial_in_flight = False

    def _cooldown_left(self) -> float:
        return self._opened_at + self.policy.cooldown_s - self._clock()

    def __repr__(self) -> str:
        return f"CircuitBreaker(state={self.state.value!r}, failures={self._failures})"
