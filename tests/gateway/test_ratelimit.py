"""Rate limits: per principal, global, tokens, Retry-After, and shared through a real Redis."""

from __future__ import annotations

import math
import socket
import time

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from bosun.errors import ConfigError, InvalidInput, RateLimited, StoreError, UserError
from bosun.gateway.auth import Principal
from bosun.gateway.ratelimit import RateLimiter, RateLimitPolicy, _wait_s

Window = tuple[int, float, int, float]
"""(previous count, previous ttl, current count, current ttl), as the storage reports."""

ALICE = Principal(id="alice", tenant="acme")
BOB = Principal(id="bob", tenant="acme")
CAROL = Principal(id="carol", tenant="globex")
OFF = {"principal_requests": None, "principal_tokens": None}


async def refused(limiter: RateLimiter, principal: Principal) -> RateLimited:
    with pytest.raises(RateLimited) as caught:
        await limiter.check_request(principal)
    return caught.value


# --- policy --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        {"principal_requests": "sixty a minute"},
        {"principal_tokens": "100/fortnight"},
        {"global_requests": "0/minute"},
        {"global_tokens": ""},
    ],
)
def test_policy_strings_are_validated(bad: dict[str, str]) -> None:
    name = next(iter(bad))
    with pytest.raises(ConfigError, match=name):
        RateLimitPolicy(**bad)  # type: ignore[arg-type]
    assert issubclass(ConfigError, UserError)


def test_policy_accepts_several_limits_per_field() -> None:
    policy = RateLimitPolicy(principal_requests="10/second;100/minute", global_tokens=None)
    assert policy.principal_requests == "10/second;100/minute"


@pytest.mark.parametrize("uri", ["memcached://localhost", "http://x", "redis"])
def test_unknown_storage_is_a_config_error(uri: str) -> None:
    with pytest.raises(ConfigError, match="memory://"):
        RateLimiter(RateLimitPolicy(), storage_uri=uri)


# --- requests ------------------------------------------------------------------------------------


async def test_each_principal_has_its_own_request_window() -> None:
    async with RateLimiter(RateLimitPolicy(principal_requests="3/minute")) as limiter:
        for _ in range(3):
            await limiter.check_request(ALICE)
        limited = await refused(limiter, ALICE)

        await limiter.check_request(BOB)
        # The same id in another tenant is another principal.
        await limiter.check_request(Principal(id="alice", tenant="globex"))

    assert limited.status == 429
    assert isinstance(limited.retry_after, int)
    assert 1 <= limited.retry_after <= 60
    assert f"retry in {limited.retry_after} s" in str(limited)
    assert "per-principal requests limit of 3 per minute" in str(limited)


async def test_ids_with_separators_do_not_share_a_window() -> None:
    async with RateLimiter(RateLimitPolicy(principal_requests="1/minute")) as limiter:
        await limiter.check_request(Principal(id="c", tenant="a/b"))
        await limiter.check_request(Principal(id="b/c", tenant="a"))
        await refused(limiter, Principal(id="c", tenant="a/b"))


async def test_the_global_limit_spans_principals() -> None:
    policy = RateLimitPolicy(principal_requests="2/minute", global_requests="3/minute")
    async with RateLimiter(policy) as limiter:
        await limiter.check_request(ALICE)
        await limiter.check_request(ALICE)
        own = await refused(limiter, ALICE)  # alice's own limit: costs the others nothing
        await refused(limiter, ALICE)
        await limiter.check_request(BOB)
        shared = await refused(limiter, CAROL)

    assert "per-principal" in str(own)
    assert "global requests limit of 3 per minute" in str(shared)
    assert 1 <= shared.retry_after <= 60


async def test_retry_after_is_when_the_window_frees() -> None:
    async with RateLimiter(RateLimitPolicy(principal_requests="1/2 hours")) as limiter:
        await limiter.check_request(ALICE)
        limited = await refused(limiter, ALICE)

    # In memory the counter's windows start at multiples of their length since the epoch;
    # with a limit of 1 the hit made a moment ago stops counting when its window ends.
    window_ends_in = 7200 - time.time() % 7200
    assert window_ends_in - 2 <= limited.retry_after <= window_ends_in + 2
    assert "per 2 hours" in str(limited)


async def test_no_limits_means_no_refusals() -> None:
    async with RateLimiter(RateLimitPolicy(**OFF)) as limiter:  # type: ignore[arg-type]
        for _ in range(1000):
            await limiter.check_request(ALICE)
            await limiter.reserve_tokens(ALICE, 10**9)


# --- tokens --------------------------------------------------------------------------------------


async def test_tokens_are_reserved_then_charged() -> None:
    policy = RateLimitPolicy(principal_tokens="1000/hour")
    async with RateLimiter(policy) as limiter:
        await limiter.reserve_tokens(ALICE, 600)
        with pytest.raises(RateLimited) as over:
            await limiter.reserve_tokens(ALICE, 600)
        await limiter.charge_tokens(ALICE, 900, reserved=600)  # the run used 300 more
        with pytest.raises(RateLimited):
            await limiter.reserve_tokens(ALICE, 101)
        await limiter.reserve_tokens(ALICE, 100)
        await limiter.reserve_tokens(BOB, 1000)

    # A sliding-window counter may need the current window to roll over and then fade:
    # up to two windows, depending on where in the hour the test runs.
    assert 1 <= over.value.retry_after <= 2 * 3600
    assert "per-principal tokens limit of 1000 per hour" in str(over.value)


async def test_a_charge_never_refuses_and_saturates_the_window() -> None:
    async with RateLimiter(RateLimitPolicy(principal_tokens="1000/hour")) as limiter:
        await limiter.reserve_tokens(ALICE, 10)
        await limiter.charge_tokens(ALICE, 50_000, reserved=10)
        await limiter.charge_tokens(ALICE, 50_000)
        await limiter.charge_tokens(ALICE, 5, reserved=10)  # used less: nothing to charge
        with pytest.raises(RateLimited):
            await limiter.reserve_tokens(ALICE, 1)


async def test_a_reservation_larger_than_any_window_is_refused_as_too_large() -> None:
    policy = RateLimitPolicy(principal_tokens=None, global_tokens="5000/hour")
    async with RateLimiter(policy) as limiter:
        with pytest.raises(InvalidInput, match="5000 per hour") as too_large:
            await limiter.reserve_tokens(ALICE, 5001)
        await limiter.reserve_tokens(ALICE, 5000)  # the refused one consumed nothing
        with pytest.raises(RateLimited, match="global tokens"):
            await limiter.reserve_tokens(BOB, 1)
        with pytest.raises(ValueError, match="negative"):
            await limiter.reserve_tokens(ALICE, -1)
    assert too_large.value.status == 413


async def test_requests_and_tokens_are_separate_windows() -> None:
    policy = RateLimitPolicy(principal_requests="2/minute", principal_tokens="2/minute")
    async with RateLimiter(policy) as limiter:
        await limiter.reserve_tokens(ALICE, 2)
        await limiter.check_request(ALICE)
        await limiter.check_request(ALICE)


# --- Retry-After arithmetic against the counter's own admission rule -----------------------------


def admitted(window: Window, limit: int, expiry: int, cost: int) -> bool:
    previous, previous_ttl, current, _ = window
    return math.floor(previous * previous_ttl / expiry) + current + cost <= limit


def later(window: Window, expiry: int, t: float) -> Window:
    """The same counter `t` seconds on, with no hits in between."""
    previous, previous_ttl, current, current_ttl = window
    left = current_ttl - expiry
    if t < left:
        return previous, previous_ttl - t if previous else 0.0, current, current_ttl - t
    into = t - left
    if into >= expiry:
        return 0, 0.0, 0, 2 * expiry - (into - expiry)
    return current, expiry - into if current else 0.0, 0, 2 * expiry - into


@st.composite
def windows(draw: st.DrawFn) -> tuple[Window, int, int, int]:
    expiry = draw(st.sampled_from([1, 60, 3600, 86400]))
    limit = draw(st.integers(1, 10_000))
    left = draw(st.floats(0.001, expiry, allow_nan=False))
    previous = draw(st.integers(0, 2 * limit))
    current = draw(st.integers(0, limit))
    cost = draw(st.integers(1, limit))
    window = (previous, left if previous else 0.0, current, left + expiry)
    return window, limit, expiry, cost


@example(((1, 60.0, 0, 120.0), 1, 60, 1))  # the weight is exactly the limit right now
@given(windows())
def test_the_wait_is_zero_exactly_when_a_hit_fits(
    case: tuple[Window, int, int, int],
) -> None:
    window, limit, expiry, cost = case
    assert (_wait_s(window, limit, expiry, cost) == 0) == admitted(window, limit, expiry, cost)


@given(windows())
def test_after_the_wait_the_hit_fits(
    case: tuple[Window, int, int, int],
) -> None:
    window, limit, expiry, cost = case
    wait = _wait_s(window, limit, expiry, cost)
    assert 0 <= wait <= 2 * expiry
    assert admitted(later(window, expiry, wait + 1e-6 * expiry), limit, expiry, cost)
    if wait > 1e-6 * expiry:
        # ... and not much sooner: a slot's worth of fading earlier it does not.
        slot = expiry / max(window[0], window[2], 1)
        assert not admitted(later(window, expiry, max(0.0, wait - slot)), limit, expiry, cost)


# --- shared through Redis (redis_url: tests/conftest.py) -------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_two_processes_share_limits_through_redis(redis_url: str) -> None:
    policy = RateLimitPolicy(principal_requests="3/minute", principal_tokens="1000/hour")
    # Two API processes: two limiters with nothing in common but the Redis server.
    async with (
        RateLimiter(policy, storage_uri=redis_url) as first,
        RateLimiter(policy, storage_uri=redis_url) as second,
    ):
        await first.check_request(ALICE)
        await second.check_request(ALICE)
        await first.check_request(ALICE)
        limited = await refused(second, ALICE)
        await refused(first, ALICE)
        await second.check_request(BOB)

        await first.reserve_tokens(ALICE, 700)
        with pytest.raises(RateLimited):
            await second.reserve_tokens(ALICE, 400)
        await second.charge_tokens(ALICE, 1000, reserved=700)
        with pytest.raises(RateLimited):
            await first.reserve_tokens(ALICE, 1)

    assert 1 <= limited.retry_after <= 60


async def test_an_unreachable_redis_is_a_store_error() -> None:
    policy = RateLimitPolicy(principal_requests="3/minute")
    async with RateLimiter(policy, storage_uri=f"redis://127.0.0.1:{free_port()}") as limiter:
        with pytest.raises(StoreError, match="rate-limit storage"):
            await limiter.check_request(ALICE)
