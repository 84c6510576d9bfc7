"""Prices of model calls, from `genai-prices`.

A price is either what genai-prices knows for this provider and model, or `None`: bosun never
makes one up. Lookups are cached because they sit on the hot path of every model call; a model
genai-prices does not know (a local ``qwen``) costs a scan of its tables the first time only.
"""

from __future__ import annotations

import functools
from decimal import Decimal

import genai_prices
from genai_prices.data_snapshot import get_snapshot

from bosun.models.base import Usage

__all__ = ["price", "provider_for_url"]


def price(
    provider: str, model: str, usage: Usage, *, cache_write_tokens: int = 0
) -> Decimal | None:
    """Price in USD of one call of `model` at `provider` (a genai-prices provider id).

    `cache_write_tokens` are input tokens written to the provider's prompt cache (Anthropic bills
    them above the input rate); they are part of ``usage.input_tokens``. Returns `None` when
    genai-prices knows neither the provider nor the model, or cannot price this usage.
    """
    if not model or not _known(provider, model):
        return None
    counts = genai_prices.Usage(
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cache_read_tokens=usage.cache_read_tokens,
        cache_write_tokens=cache_write_tokens,
    )
    try:
        calculation = genai_prices.calc_price(counts, model_ref=model, provider_id=provider)
    except (LookupError, ValueError):
        # ValueError: genai-prices cannot price this combination of counts; unknown, not zero.
        return None
    total: Decimal = calculation.total_price
    return total


@functools.lru_cache(maxsize=1024)
def _known(provider: str, model: str) -> bool:
    try:
        genai_prices.calc_price(genai_prices.Usage(), model_ref=model, provider_id=provider)
    except (LookupError, ValueError):
        return False
    return True


@functools.lru_cache(maxsize=256)
def provider_for_url(api_url: str) -> str | None:
    """The genai-prices provider id whose API lives at `api_url`, or `None` (a local server)."""
    try:
        provider = get_snapshot().find_provider(None, None, api_url)
    except LookupError:
        return None
    provider_id: str = provider.id
    return provider_id
