"""`Tiers`: an agent's models from cheapest to best, each a model or a fallback chain.

```python
tiers = Tiers(
    cheap=["openai:gpt-4.1-nano", "anthropic:claude-haiku-4-5"],   # a chain: the next answers
    balanced="openai:gpt-4.1-mini",                                 # when one is down
    premium="anthropic:claude-sonnet-4-5",
)
```

Order is the keyword order, lowest first: promotion moves one step right. A tier given as a
sequence becomes a `FallbackChain` (so each tier has its own chain); a `Model` is used as is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from bosun.economy.fallback import FallbackChain
from bosun.errors import UserError
from bosun.models import infer_model
from bosun.models.base import Model
from bosun.tools.base import BreakerPolicy

__all__ = ["ModelSpec", "Tiers"]

ModelSpec = str | Model | Sequence[str | Model]
"""A model string, a `Model`, or a chain of them (tried in order)."""


class Tiers:
    """Named models, cheapest first (see the module doc)."""

    def __init__(self, *, breaker: BreakerPolicy | None = None, **tiers: ModelSpec) -> None:
        """`breaker` configures the breakers of the chains built from sequences."""
        if not tiers:
            raise UserError("give at least one tier, e.g. Tiers(cheap=..., balanced=...)")
        self._models: dict[str, Model] = {}
        for name, spec in tiers.items():
            if isinstance(spec, str | Model):
                self._models[name] = infer_model(spec)
            else:
                self._models[name] = FallbackChain(spec, breaker=breaker, tier=name)

    @classmethod
    def of(cls, models: dict[str, Model]) -> Tiers:
        """Tiers from models already built, in the mapping's order."""
        tiers = cls.__new__(cls)
        tiers._models = dict(models)
        return tiers

    @property
    def names(self) -> tuple[str, ...]:
        """Tier names, cheapest first."""
        return tuple(self._models)

    def __getitem__(self, name: str) -> Model:
        try:
            return self._models[name]
        except KeyError:
            raise UserError(f"no tier {name!r}; tiers are {list(self._models)}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._models)

    def __contains__(self, name: object) -> bool:
        return name in self._models

    def above(self, name: str) -> str | None:
        """The next tier up, or None at the top."""
        names = self.names
        i = names.index(name)
        return names[i + 1] if i + 1 < len(names) else None

    def rank(self, name: str) -> int:
        """0 for the cheapest tier."""
        return self.names.index(name)

    def wrapped(self, wrap: Callable[[str, Model], Model]) -> Tiers:
        """The same tiers with each model wrapped, e.g. in a `SemanticCache`."""
        return Tiers.of({name: wrap(name, model) for name, model in self._models.items()})
