"""Tiers, routing and the semantic cache built from settings (``[economy]`` in bosun.toml),
so that turning them on for served agents needs no code.

```toml
[economy]
tiers = { cheap = ["openai:gpt-4.1-nano", "anthropic:claude-haiku-4-5"],
          balanced = "openai:gpt-4.1-mini", premium = "anthropic:claude-sonnet-4-5" }
rules = { classify = "cheap", tool_followup = "cheap" }   # optional; see DEFAULT_RULES
[economy.cache]
enabled = true          # in the store, embedded by all-MiniLM-L6-v2 on the CPU
threshold = 0.95
```

`Economy.model_for(agent, model)` is the model an agent is served with: with tiers, a
`Router` over them (each tier a `FallbackChain` when it lists several models), each tier
wrapped in the cache when it is on; without tiers, the agent's own model in the cache. One
embedder and one cache backend serve every agent. Settings that cannot work (a rule naming
no tier, an unknown purpose or agent, a model string no provider reads) are a `ConfigError`
when the system is built, not a failure in the first run.
"""

from __future__ import annotations

from collections.abc import Callable, Collection

from bosun.config import EconomySettings
from bosun.data.store import Store
from bosun.economy.cache import (
    CachePolicy,
    Embedder,
    HashingEmbedder,
    MiniLmEmbedder,
    SemanticCache,
    StoreCacheBackend,
)
from bosun.economy.fallback import FallbackChain
from bosun.economy.routing import Check, Router, valid_tool_calls
from bosun.economy.tiers import Tiers
from bosun.errors import ConfigError, UserError
from bosun.models import infer_model
from bosun.models.base import Model
from bosun.models.context import Purpose

__all__ = ["Economy"]


class Economy:
    """What `EconomySettings` ask for, ready to wrap the served agents' models."""

    def __init__(self, settings: EconomySettings, *, store: Store) -> None:
        self.settings = settings
        """What it was built from."""
        self._rules = _rules(settings.rules)
        for tier in [*self._rules.values(), settings.default_tier]:
            if tier is not None and tier not in settings.tiers:
                raise ConfigError(
                    f"economy: a rule or default_tier names tier {tier!r}, but economy.tiers "
                    f"are {list(settings.tiers)}"
                )
        if settings.tiers and not self._rules:
            # The default rules name cheap and balanced: other names need rules of their own.
            missing = {"cheap", "balanced"} - set(settings.tiers)
            if missing:
                raise ConfigError(
                    f"economy.tiers are {list(settings.tiers)}: name tiers cheap and balanced "
                    "(and premium), or map each purpose to a tier in economy.rules"
                )
        cache = settings.cache
        self.backend = StoreCacheBackend(store) if cache.enabled else None
        """Where cached answers are kept (the store), or None with the cache off."""
        self.embedder: Embedder | None = None
        """The cache's embedder, shared by every agent (MiniLM loads on first use)."""
        if cache.enabled and cache.semantic:
            self.embedder = MiniLmEmbedder() if cache.embedder == "minilm" else HashingEmbedder()
        self._policy = CachePolicy(
            threshold=cache.threshold, ttl_s=cache.ttl_s, semantic=cache.semantic
        )
        self.router = self._router() if settings.tiers else None
        """The router over the tiers, shared by every agent (so are the fallback chains'
        circuit breakers: a provider that is down is down for all), or None without tiers."""

    def _router(self) -> Router:
        try:
            tiers = Tiers.of(
                {
                    name: infer_model(spec)
                    if isinstance(spec, str)
                    else FallbackChain(spec, tier=name)
                    for name, spec in self.settings.tiers.items()
                }
            )
        except UserError as exc:  # a model string no provider reads, a chain naming one twice
            raise ConfigError(f"economy.tiers: {exc}") from exc
        if self.backend is not None:
            tiers = tiers.wrapped(lambda _, m: self._cached(m))
        checks: list[Check] = (
            [valid_tool_calls] if self.settings.promote_on_invalid_tool_calls else []
        )
        return Router(
            tiers, rules=self._rules or None, default=self.settings.default_tier, checks=checks
        )

    def check_agents(self, served: Collection[str]) -> None:
        """Refuse `economy.agents` naming an agent that is not served (a typo would
        silently leave that agent at full price)."""
        unknown = sorted(set(self.settings.agents) - set(served))
        if unknown:
            raise ConfigError(
                f"economy.agents names {unknown}, which are not served (served: {sorted(served)})"
            )

    def applies_to(self, agent: str) -> bool:
        """Whether `agent` is served through tiers or the cache."""
        return self.settings.any and (not self.settings.agents or agent in self.settings.agents)

    def model_for(self, own: Callable[[], Model]) -> Model:
        """The model to serve in place of an agent's own (`own()`, resolved only without
        tiers: with them an agent needs no model of its own); see the module doc."""
        return self._cached(own()) if self.router is None else self.router

    @staticmethod
    def configured_in_code(model: object) -> bool:
        """Whether an agent's model is already a router or a cache (built in code, or by
        an earlier `model_for`): it is left as it is, never wrapped twice."""
        return isinstance(model, Router | SemanticCache)

    def _cached(self, model: Model) -> Model:
        if self.backend is None:
            return model
        return SemanticCache(
            model, backend=self.backend, embedder=self.embedder, policy=self._policy
        )


def _rules(rules: dict[str, str]) -> dict[Purpose, str]:
    known = [p.value for p in Purpose]
    out: dict[Purpose, str] = {}
    for purpose, tier in rules.items():
        if purpose not in known:
            raise ConfigError(
                f"economy.rules: unknown purpose {purpose!r}; use one of {', '.join(known)}"
            )
        out[Purpose(purpose)] = tier
    return out
