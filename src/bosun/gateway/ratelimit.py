"""Rate limits per principal and global: requests and model tokens per window.

Built on `limits` (sliding-window counters) with its asyncio storages: in process memory by
default, Redis when several API processes must share the counts (``redis://host:port``, needs
the `redis` package). One async API, so a Redis round trip never blocks the event loop.

Decisions a reader would otherwise have to reverse-engineer:

* **Sliding-window counter, not moving window.** A moving window stores one timestamp per unit
  consumed, so a token limit of 200,000/hour would keep up to 200,000 entries per principal (in
  memory or in a Redis list). The counter keeps two integers per key whatever the cost, and
  approximates the moving window by weighting the previous window's count.
* **Retry-After for a cost of n.** `limits` reports when the *next unit* frees; a request for
  5,000 tokens needs 5,000 free. `_wait_s` solves the counter's own admission rule for the
  time until `n` fit, from the same window numbers `limits` decides with (~20 lines of
  arithmetic, tested against the library's decision).
* **Tokens: reserve before, charge the rest after.** `reserve_tokens` consumes an estimate (the
  input's tokens) before a run and refuses when it does not fit, so concurrent runs cannot all
  slip into the same remaining room. `charge_tokens` adds what the run used beyond that once
  it is known, and never refuses: the tokens are spent. `limits` cannot exceed a limit (a hit
  that does not fit consumes nothing), so a charge that overflows fills the window to its limit
  and the principal waits out a whole window. There is no refund (`limits` cannot decrement), so
  an estimate should err low.
* **Refused requests count against the principal only.** Limits are checked per principal
  first, then globally: a principal over its own limit never consumes global room. A request
  refused by the global limit has used one unit of its principal's window.
* **Keys** name the kind, the scope and, per principal, the tenant and id, each
  percent-encoded so ``"a/b" + "c"`` and ``"a" + "b/c"`` cannot collide.
"""

from __future__ import annotations

import math
import types
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote

import limits
from limits.aio.storage import SlidingWindowCounterSupport
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.errors import ConfigurationError
from limits.errors import StorageError as LimitsStorageError
from limits.storage import storage_from_string

from bosun.errors import ConfigError, InvalidInput, MissingDependency, RateLimited, StoreError
from bosun.gateway.auth import Principal

if TYPE_CHECKING:
    import redis.asyncio

__all__ = ["RateLimitPolicy", "RateLimiter"]

_NAMESPACE: Final = "bosun"
_SCHEMES: Final = {"memory", "redis", "rediss"}


@dataclass(frozen=True, kw_only=True)
class RateLimitPolicy:
    """Limits in the `limits` notation (``"60/minute"``, ``"10/second;500/hour"``); `None` turns
    one off. Request limits count API requests; token limits count model tokens of runs."""

    principal_requests: str | None = "60/minute"
    """Requests one principal may make."""
    principal_tokens: str | None = "200000/hour"
    """Model tokens one principal's runs may use."""
    global_requests: str | None = None
    """Requests of all principals together."""
    global_tokens: str | None = None
    """Model tokens of all principals' runs together."""

    def __post_init__(self) -> None:
        for f in fields(self):
            _parse(f.name, getattr(self, f.name))


def _parse(name: str, spec: str | None) -> tuple[limits.RateLimitItem, ...]:
    if spec is None:
        return ()
    try:
        items = tuple(limits.parse_many(spec))
    except ValueError as exc:
        raise ConfigError(
            f"rate limit {name}={spec!r} is not in the limits notation, e.g. '60/minute' or "
            "'10/second;500/hour'"
        ) from exc
    if any(item.amount < 1 for item in items):
        raise ConfigError(f"rate limit {name}={spec!r}: amounts must be at least 1")
    return items


@dataclass(frozen=True, slots=True)
class _Limit:
    item: limits.RateLimitItem
    key: tuple[str, ...]
    what: str


class RateLimiter:
    """Enforces a `RateLimitPolicy`. Share one per process (and one Redis between processes).

    Use as ``async with RateLimiter(policy, storage_uri=...) as limiter:`` or call `aclose`.
    """

    def __init__(self, policy: RateLimitPolicy, *, storage_uri: str = "memory://") -> None:
        self.policy = policy
        scheme, separator, _ = storage_uri.partition("://")
        if scheme not in _SCHEMES or not separator:
            raise ConfigError(
                f"rate limit storage {storage_uri!r}: use 'memory://' or 'redis://host:port'"
            )
        self._pool: redis.asyncio.ConnectionPool | None = None
        options: dict[str, Any] = {"wrap_exceptions": True}
        if scheme != "memory":
            # bosun owns the connection pool, so `aclose` can close it: limits keeps its
            # client to itself, and an unclosed connection warns when collected.
            try:
                import redis.asyncio
            except ImportError as exc:
                raise MissingDependency(
                    "Redis rate-limit storage needs the redis package: pip install redis"
                ) from exc
            self._pool = redis.asyncio.ConnectionPool.from_url(storage_uri)
            options |= {"implementation": "redispy", "connection_pool": self._pool}
        try:
            storage = storage_from_string(f"async+{storage_uri}", **options)
        except ConfigurationError as exc:
            raise ConfigError(f"rate limit storage {storage_uri!r}: {exc}") from exc
        assert isinstance(storage, SlidingWindowCounterSupport)  # memory and Redis both are
        self._storage = storage
        self._limiter = SlidingWindowCounterRateLimiter(storage)
        self._principal_requests = _parse("principal_requests", policy.principal_requests)
        self._principal_tokens = _parse("principal_tokens", policy.principal_tokens)
        self._global_requests = _parse("global_requests", policy.global_requests)
        self._global_tokens = _parse("global_tokens", policy.global_tokens)

    async def __aenter__(self) -> RateLimiter:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the storage's connections (Redis); a no-op in memory."""
        if self._pool is not None:
            await self._pool.aclose()

    async def check_request(self, principal: Principal) -> None:
        """Count one request; `RateLimited` with `retry_after` seconds when over a limit."""
        await self._take(self._limits(principal, "requests"), 1)

    async def reserve_tokens(self, principal: Principal, n: int) -> None:
        """Consume `n` estimated tokens before a run; `RateLimited` when they do not fit now,
        `InvalidInput` (413) when they could never fit a window."""
        if n < 0:
            raise ValueError(f"token count must not be negative, got {n}")
        if n == 0:
            return
        checks = self._limits(principal, "tokens")
        for check in checks:
            if n > check.item.amount:
                raise InvalidInput(
                    f"this request needs about {n} tokens; the {check.what} limit allows "
                    f"{check.item.amount} per {_window(check.item)}",
                    status=413,
                )
        await self._take(checks, n)

    async def charge_tokens(self, principal: Principal, n: int, *, reserved: int = 0) -> None:
        """Record a run's actual token use, `n`, of which `reserved` was consumed up front.
        Never refuses (the tokens are spent); an overflow saturates the window."""
        extra = n - reserved
        if extra <= 0:
            return
        try:
            for check in self._limits(principal, "tokens"):
                if not await self._limiter.hit(check.item, *check.key, cost=extra):
                    room = (await self._limiter.get_window_stats(check.item, *check.key)).remaining
                    if room > 0:
                        await self._limiter.hit(check.item, *check.key, cost=room)
        except LimitsStorageError as exc:
            raise StoreError(f"the rate-limit storage failed: {exc}") from exc

    def _limits(self, principal: Principal, kind: str) -> list[_Limit]:
        own, shared = (
            (self._principal_requests, self._global_requests)
            if kind == "requests"
            else (self._principal_tokens, self._global_tokens)
        )
        tenant, id_ = quote(principal.tenant, safe=""), quote(principal.id, safe="")
        who = (_NAMESPACE, kind, "principal", tenant, id_)
        everyone = (_NAMESPACE, kind, "global")
        return [_Limit(item, who, f"per-principal {kind}") for item in own] + [
            _Limit(item, everyone, f"global {kind}") for item in shared
        ]

    async def _take(self, checks: list[_Limit], cost: int) -> None:
        try:
            for check in checks:
                if not await self._limiter.hit(check.item, *check.key, cost=cost):
                    wait = await self._wait_s(check, cost)
                    raise RateLimited(
                        f"rate limit exceeded: {check.what} limit of {check.item.amount} per "
                        f"{_window(check.item)}; retry in {wait} s",
                        retry_after=wait,
                    )
        except LimitsStorageError as exc:
            raise StoreError(f"the rate-limit storage failed: {exc}") from exc

    async def _wait_s(self, check: _Limit, cost: int) -> int:
        expiry = check.item.get_expiry()
        window = await self._storage.get_sliding_window(check.item.key_for(*check.key), expiry)
        # floor + 1, not ceil: the hit fits only once strictly more than the wait has passed.
        return max(1, math.floor(_wait_s(window, check.item.amount, expiry, cost)) + 1)


def _wait_s(window: tuple[int, float, int, float], limit: int, expiry: int, cost: int) -> float:
    """Seconds after which `cost` more fit a sliding-window counter; 0 when they fit now.

    `window` is the storage's ``(previous count, previous ttl, current count, current ttl)``:
    the previous window's count weighs ``previous ttl / expiry`` (the share of the current
    window still to run), the current one fully, and a hit is admitted when
    ``floor(weighted) + cost <= limit``, i.e. ``weighted < limit - cost + 1``. The current key
    lives one expiry past its window. The hit fits once strictly *more* than this has passed.
    """
    previous, previous_ttl, current, current_ttl = window
    if math.floor(previous * previous_ttl / expiry) + current + cost <= limit:
        return 0.0
    left = previous_ttl if previous else max(current_ttl - expiry, 0.0)
    allowed = limit - cost + 1  # the weighted count must fall below this
    if current < allowed:
        # The current window alone leaves room: wait for the previous one's weight to fade.
        wait = previous_ttl - (allowed - current) * expiry / previous
    else:
        # The current window alone is too full: it must roll over and then fade in turn.
        wait = left + expiry * (1 - allowed / current)
    # It does not fit now, so the answer is never 0 even when the weight reaches the limit
    # exactly now (hypothesis found previous=1, ttl=expiry, limit=cost=1).
    return max(wait, 1e-9 * expiry)


def _window(item: limits.RateLimitItem) -> str:
    unit = item.GRANULARITY.name
    return unit if item.multiples == 1 else f"{item.multiples} {unit}s"
