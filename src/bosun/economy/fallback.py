"""`FallbackChain`: models tried in order; the next answers when one is down.

```
request -> model 1 --429 / 5xx / timeout / breaker open--> model 2 --...--> model N
              | answers                                       | answers
              v                                               v
           response (attempts: what failed before it, each with its model id)
every model failed -> ModelsExhausted(failures=...) -> the runtime retries or escalates
```

The chain is a `Model`, so it wraps any model and is wrapped by a router (one chain per
tier) or a cache. It does not retry a model itself: the runtime owns retries, with backoff,
and journals each failed attempt; the chain reports its own failures on the response
(`ModelResponse.attempts`) or in the error (`ModelsExhausted.failures`), and the runtime
journals each one as a ``model_error`` with the model id, counted in the run's budget.

Each model has a circuit breaker (`bosun.tools.breaker`, the one tools use), shared by every
run that uses this chain object: after `BreakerPolicy.failure_threshold` consecutive
failures (5xx, timeouts; a 429 says the provider is busy, not broken, so it falls over
without counting) the model is skipped until its cooldown has passed. Other errors (auth,
refusal, a context too long, a 4xx) are not the provider being down: they end the chain.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from bosun.errors import (
    ModelError,
    ModelRateLimited,
    ModelsExhausted,
    ModelTimeout,
    ModelUnavailable,
    UserError,
)
from bosun.models import infer_model
from bosun.models.base import Model, ModelRequest, ModelResponse
from bosun.models.context import Attempt
from bosun.tools.base import BreakerPolicy
from bosun.tools.breaker import BreakerState, CircuitBreaker

__all__ = ["FallbackChain"]

_FALL_OVER = (ModelRateLimited, ModelUnavailable, ModelTimeout)
_BREAKING = (ModelUnavailable, ModelTimeout)


class FallbackChain(Model):
    """Models tried in order until one answers (see the module doc)."""

    def __init__(
        self,
        models: Sequence[str | Model],
        *,
        breaker: BreakerPolicy | None = None,
        tier: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`breaker` configures each model's circuit breaker (default: open after 5
        consecutive failures, for 30 s); `tier` names the tier the chain serves, for the
        attempts it reports."""
        if not models:
            raise UserError("a fallback chain needs at least one model")
        self.models = tuple(infer_model(m) for m in models)
        """The chain, in order."""
        names = [m.name for m in self.models]
        if len(set(names)) != len(names):
            raise UserError(f"a fallback chain names a model twice: {names}")
        self.tier = tier
        self.name = " > ".join(names)
        policy = breaker or BreakerPolicy()
        self._breakers = {m.name: CircuitBreaker(policy, clock=clock) for m in self.models}

    def breaker(self, model: str) -> BreakerState:
        """The state of `model`'s breaker."""
        return self._breakers[model].state

    async def request(self, request: ModelRequest) -> ModelResponse:
        attempts: list[Attempt] = []
        failures: list[ModelError] = []
        for model in self.models:
            breaker = self._breakers[model.name]
            if not breaker.allow():
                message = f"circuit open for {model.name} (failing; skipped)"
                attempts.append(Attempt(model=model.name, kind="circuit_open", message=message))
                failures.append(ModelUnavailable(message, model=model.name))
                continue
            t0 = time.monotonic()
            try:
                response = await model.request(request)
            except _FALL_OVER as exc:
                if isinstance(exc, _BREAKING):
                    breaker.record_failure()
                else:
                    breaker.release()
                if exc.model is None:
                    exc.model = model.name
                attempts.append(_failed(model.name, exc, self.tier, t0))
                failures.append(exc)
                continue
            except ModelError as exc:
                breaker.release()
                if not failures:
                    raise
                if exc.model is None:
                    exc.model = model.name
                failures.append(exc)
                raise self._exhausted(failures) from exc
            except BaseException:
                breaker.release()
                raise
            breaker.record_success()
            if attempts:
                response = response.model_copy(update={"attempts": (*attempts, *response.attempts)})
            return response
        raise self._exhausted(failures)

    def _exhausted(self, failures: list[ModelError]) -> ModelsExhausted:
        reasons = "; ".join(f"{f.model}: {f.kind} ({f})" for f in failures)
        error = ModelsExhausted(
            f"every model of the chain failed: {reasons}",
            failures=tuple(failures),
            model=self.name,
        )
        # Worth retrying only if the last failure was (an auth error after a 429 is not).
        error.retryable = failures[-1].retryable
        return error


def _failed(model: str, exc: ModelError, tier: str | None, t0: float) -> Attempt:
    return Attempt(
        model=model,
        kind=exc.kind,
        message=str(exc)[:500],
        tier=tier,
        latency_ms=(time.monotonic() - t0) * 1000,
    )
