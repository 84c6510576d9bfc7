"""Prices from genai-prices; `None` whenever the provider or the model is unknown."""

from __future__ import annotations

from decimal import Decimal

import genai_prices

from bosun.models import Usage
from bosun.models.pricing import price, provider_for_url

USAGE = Usage(input_tokens=10_000, output_tokens=2_000, cache_read_tokens=4_000)


def _expected(provider: str, model: str, **counts: int) -> Decimal:
    result: Decimal = genai_prices.calc_price(
        genai_prices.Usage(**counts), model_ref=model, provider_id=provider
    ).total_price
    return result


def test_a_known_model_is_priced_with_cached_tokens_at_the_cache_rate() -> None:
    cost = price("openai", "gpt-4.1-mini", USAGE)
    assert cost == _expected(
        "openai", "gpt-4.1-mini", input_tokens=10_000, output_tokens=2_000, cache_read_tokens=4_000
    )
    uncached = price("openai", "gpt-4.1-mini", Usage(input_tokens=10_000, output_tokens=2_000))
    assert cost is not None and uncached is not None
    assert 0 < cost < uncached


def test_dated_model_ids_resolve() -> None:
    assert price("anthropic", "claude-sonnet-4-5-20250929", USAGE) == price(
        "anthropic", "claude-sonnet-4-5", USAGE
    )


def test_cache_writes_cost_more_than_plain_input() -> None:
    plain = price("anthropic", "claude-sonnet-4-5", USAGE)
    written = price("anthropic", "claude-sonnet-4-5", USAGE, cache_write_tokens=3_000)
    assert plain is not None and written is not None
    assert written > plain


def test_unknown_model_provider_or_empty_name_is_none() -> None:
    assert price("openai", "qwen", USAGE) is None
    assert price("openai", "claude-sonnet-4-5", USAGE) is None
    assert price("no-such-provider", "gpt-4.1-mini", USAGE) is None
    assert price("openai", "", USAGE) is None


def test_zero_usage_costs_zero_not_none() -> None:
    assert price("openai", "gpt-4.1-mini", Usage()) == 0


def test_providers_are_recognised_by_their_api_url() -> None:
    assert provider_for_url("https://api.openai.com/v1") == "openai"
    assert provider_for_url("https://api.anthropic.com") == "anthropic"
    assert provider_for_url("https://api.groq.com/openai/v1") == "groq"
    assert provider_for_url("http://127.0.0.1:8088/v1") is None
