"""Spending less without getting worse: tiers and routing, fallback chains, a semantic cache.

Every piece is a `Model` wrapping other models, so they compose in any order and the runtime
needs to know none of them:

```python
from bosun.economy import FallbackChain, Router, SemanticCache, StoreCacheBackend, Tiers

tiers = Tiers(cheap=["openai:gpt-4.1-nano", "anthropic:claude-haiku-4-5"],
              balanced="openai:gpt-4.1-mini", premium="anthropic:claude-sonnet-4-5")
cache = StoreCacheBackend(store)
tiers = tiers.wrapped(lambda name, model: SemanticCache(model, backend=cache, embedder=e))
agent = Agent(..., model=Router(tiers, checks=[valid_tool_calls]))
```

The runtime tells wrappers what a call is for (`bosun.models.context.CallContext`: purpose,
tenant, prompt version, taint, side effects, why to promote), and journals every attempt a
wrapper reports (`ModelResponse.attempts`) as a ``model_error`` entry counted in the budget.
Placed below the runtime and above memory and tools (it uses the tools' circuit breaker and
the store's cache table).
"""

from bosun.economy.cache import (
    CacheBackend,
    CachePolicy,
    CacheStats,
    Embedder,
    HashingEmbedder,
    MiniLmEmbedder,
    RedisCacheBackend,
    SemanticCache,
    StoreCacheBackend,
)
from bosun.economy.fallback import FallbackChain
from bosun.economy.learned import IntentRouter, load_router
from bosun.economy.routing import (
    DEFAULT_RULES,
    Router,
    TierClassifier,
    TierDecision,
    low_confidence,
    output_schema,
    valid_tool_calls,
)
from bosun.economy.tiers import Tiers

__all__ = [
    "DEFAULT_RULES",
    "CacheBackend",
    "CachePolicy",
    "CacheStats",
    "Embedder",
    "FallbackChain",
    "HashingEmbedder",
    "IntentRouter",
    "MiniLmEmbedder",
    "RedisCacheBackend",
    "Router",
    "SemanticCache",
    "StoreCacheBackend",
    "TierClassifier",
    "TierDecision",
    "Tiers",
    "load_router",
    "low_confidence",
    "output_schema",
    "valid_tool_calls",
]
