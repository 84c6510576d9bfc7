"""The learned router: a linear classifier over words and word pairs that names the tier a
request needs. Trained offline (`bosun router train`, scikit-learn, `bosun.economy.training`);
at run time it is a dictionary of weights and a softmax, no scikit-learn.

```
text -> casefolded words + adjacent pairs -> sum of per-tier weights + bias -> softmax
     -> TierDecision(tier, p): the router uses it for the agent's loop calls
```

`min_confidence` guards the cheap side: a prediction below it moves one tier up, so an
unsure classifier costs money rather than quality.

The shipped weights (`router_model.json`) are trained on banking77 customer messages as
stand-in traffic, labelled with the tier each intent needs (`intent_tiers.yaml`, where the
reasons are written); retrain on your own labelled traffic with the same command.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from bosun.economy.routing import TierDecision
from bosun.errors import UserError

__all__ = ["MODEL_PATH", "TIERS_PATH", "IntentRouter", "features", "load_router"]

MODEL_PATH = Path(__file__).with_name("router_model.json")
"""The shipped weights."""
TIERS_PATH = Path(__file__).with_name("intent_tiers.yaml")
"""banking77 intents -> the tier each needs (the training labels)."""

_WORD = re.compile(r"[^\W\d_]+|\d+")


def features(text: str) -> list[str]:
    """Words (digits collapsed to ``0``) and adjacent word pairs, casefolded."""
    words = ["0" if w.isdigit() else w for w in _WORD.findall(text.casefold())]
    return [*words, *(f"{a} {b}" for a, b in zip(words, words[1:], strict=False))]


class IntentRouter:
    """A `TierClassifier` from exported weights (see the module doc)."""

    def __init__(
        self,
        *,
        tiers: Iterable[str],
        bias: Iterable[float],
        weights: dict[str, list[float]],
        min_confidence: float = 0.5,
        meta: dict[str, Any] | None = None,
    ) -> None:
        self.tiers = tuple(tiers)
        """Tier names, cheapest first (the classes)."""
        self.bias = tuple(bias)
        self.weights = weights
        self.min_confidence = min_confidence
        """Below this probability the prediction moves one tier up."""
        self.meta = meta or {}
        """What the file says about its training."""
        if len(self.bias) != len(self.tiers):
            raise UserError("router weights: one bias per tier")

    @classmethod
    def load(cls, path: str | Path = MODEL_PATH, *, min_confidence: float = 0.5) -> IntentRouter:
        """Weights written by `bosun router train`."""
        try:
            data = json.loads(Path(path).read_text("utf-8"))
        except (OSError, ValueError) as exc:
            raise UserError(f"cannot read router weights {path}: {exc}") from exc
        return cls(
            tiers=data["tiers"],
            bias=data["bias"],
            weights=data["weights"],
            min_confidence=min_confidence,
            meta=data.get("meta"),
        )

    def probabilities(self, text: str) -> list[float]:
        """P(tier) for each tier, in `tiers` order."""
        scores = list(self.bias)
        for feature in features(text):
            row = self.weights.get(feature)
            if row is not None:
                scores = [s + w for s, w in zip(scores, row, strict=True)]
        top = max(scores)
        exps = [math.exp(s - top) for s in scores]
        total = sum(exps)
        return [e / total for e in exps]

    def classify(self, text: str) -> TierDecision | None:
        """The tier `text` needs."""
        probs = self.probabilities(text)
        best = max(range(len(probs)), key=probs.__getitem__)
        label = f"needs {self.tiers[best]}"
        if probs[best] < self.min_confidence and best + 1 < len(self.tiers):
            return TierDecision(self.tiers[best + 1], probs[best], f"{label}, unsure: one tier up")
        return TierDecision(self.tiers[best], probs[best], label)


def load_router(path: str | Path = MODEL_PATH, *, min_confidence: float = 0.5) -> IntentRouter:
    """The learned router from `path` (default: the shipped weights)."""
    return IntentRouter.load(path, min_confidence=min_confidence)
