"""Training and evaluating the learned router (`bosun router train|evaluate`).

Labelled traffic is a CSV of ``text,category`` (banking77's layout); `intent_tiers.yaml`
maps each category to the tier it needs. Every fifth message of each intent, chosen by a
hash of its text (stable across runs and machines), is held out for evaluation; the rest
trains a multinomial logistic regression (scikit-learn, extra ``bosun[train]``) over the
features of `bosun.economy.learned.features` that occur at least twice. Weights are
rounded and small ones dropped, so the file is small and the same data gives the same file.

Evaluation reports accuracy, how often a request is sent *below* the tier it needs (the
quality risk), and the cost of the routed traffic against sending everything to the
balanced tier, at relative prices per tier (cheap 0.1, balanced 1, premium 5 by default).
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bosun.economy.learned import TIERS_PATH, IntentRouter, features
from bosun.errors import MissingDependency, UserError

__all__ = ["RouterReport", "evaluate", "load_traffic", "train"]

PRICES: Mapping[str, float] = {"cheap": 0.1, "balanced": 1.0, "premium": 5.0}
"""Relative price of a request per tier (balanced = 1)."""

_C = 4.0
_MIN_WEIGHT = 0.01


@dataclass(frozen=True, slots=True)
class Example:
    text: str
    intent: str
    tier: str
    held_out: bool


@dataclass(frozen=True, slots=True)
class RouterReport:
    """How the router does on held-out traffic."""

    examples: int
    accuracy: float
    under_routed: float
    """Share sent to a cheaper tier than the one it needs."""
    over_routed: float
    """Share sent to a dearer tier than needed."""
    cost_vs_balanced: float
    """Cost of the routed traffic / cost of sending all of it to the balanced tier."""
    oracle_vs_balanced: float
    """The same for a perfect router."""
    per_tier: dict[str, tuple[int, float]]
    """Per needed tier: examples and recall."""


def load_traffic(
    csv_path: Path, mapping_path: Path = TIERS_PATH
) -> tuple[list[str], list[Example]]:
    """The tiers (cheapest first) and every labelled example, with its split."""
    try:
        mapping = yaml.safe_load(mapping_path.read_text("utf-8"))
        with csv_path.open(encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f))
    except OSError as exc:
        raise UserError(f"cannot read labelled traffic: {exc}") from exc
    tiers = list(mapping["tiers"])
    tier_of = {intent: tier for tier, intents in mapping["intents"].items() for intent in intents}
    unknown = sorted({r["category"] for r in rows} - set(tier_of))
    if unknown:
        raise UserError(f"{mapping_path} gives no tier for: {', '.join(unknown)}")
    examples = [
        Example(r["text"], r["category"], tier_of[r["category"]], _held_out(r["text"]))
        for r in rows
    ]
    return tiers, examples


def _held_out(text: str) -> bool:
    return hashlib.sha256(text.encode()).digest()[0] % 5 == 0


def train(tiers: Sequence[str], examples: Sequence[Example]) -> dict[str, Any]:
    """Fit on the training split; returns the weights file's content."""
    try:
        from scipy.sparse import csr_matrix
        from sklearn.linear_model import LogisticRegression
    except ImportError as exc:
        raise MissingDependency(
            "training the router needs scikit-learn: pip install 'bosun[train]'"
        ) from exc
    fit = [e for e in examples if not e.held_out]
    counts = Counter(f for e in fit for f in set(features(e.text)))
    vocabulary = sorted(f for f, n in counts.items() if n >= 2)
    column = {f: i for i, f in enumerate(vocabulary)}
    rows, cols = [], []
    for i, example in enumerate(fit):
        for f in set(features(example.text)):
            if f in column:
                rows.append(i)
                cols.append(column[f])
    matrix = csr_matrix(([1.0] * len(rows), (rows, cols)), shape=(len(fit), len(vocabulary)))
    labels = [tiers.index(e.tier) for e in fit]
    model = LogisticRegression(C=_C, max_iter=2000, class_weight="balanced")
    model.fit(matrix, labels)
    weights = {}
    for f, i in column.items():
        row = [round(float(model.coef_[k][i]), 4) for k in range(len(tiers))]
        if max(abs(w) for w in row) >= _MIN_WEIGHT:
            weights[f] = row
    return {
        "version": 1,
        "tiers": list(tiers),
        "bias": [round(float(b), 4) for b in model.intercept_],
        "weights": weights,
        "meta": {"examples": len(fit), "features": len(weights), "C": _C},
    }


def write(model: Mapping[str, Any], path: Path) -> None:
    """Write weights deterministically (sorted keys, one line)."""
    path.write_text(json.dumps(model, sort_keys=True, separators=(",", ":")) + "\n", "utf-8")


def evaluate(
    router: IntentRouter, examples: Sequence[Example], prices: Mapping[str, float] = PRICES
) -> RouterReport:
    """Score `router` on the held-out examples."""
    held = [e for e in examples if e.held_out]
    if not held:
        raise UserError("no held-out examples to evaluate on")
    rank = {t: i for i, t in enumerate(router.tiers)}
    right = under = over = 0
    cost = oracle = 0.0
    per: dict[str, list[int]] = {t: [0, 0] for t in router.tiers}
    for example in held:
        decision = router.classify(example.text)
        tier = decision.tier if decision is not None else "balanced"
        per[example.tier][0] += 1
        if tier == example.tier:
            right += 1
            per[example.tier][1] += 1
        elif rank[tier] < rank[example.tier]:
            under += 1
        else:
            over += 1
        cost += prices[tier]
        oracle += prices[example.tier]
    n = len(held)
    baseline = prices["balanced"] * n
    return RouterReport(
        examples=n,
        accuracy=right / n,
        under_routed=under / n,
        over_routed=over / n,
        cost_vs_balanced=cost / baseline,
        oracle_vs_balanced=oracle / baseline,
        per_tier={t: (c[0], c[1] / c[0] if c[0] else 0.0) for t, c in per.items()},
    )
