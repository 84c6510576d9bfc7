"""Two-sample statistics for drift detection: pure functions on counts.

`bosun.drift.detector` explains which metric gets which test and why. Everything here compares
a baseline sample with a current one and returns a `Comparison`: the test used, its statistic
and p-value, and an effect size (PSI or Cohen's h) that says whether the difference matters.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats

__all__ = [
    "Comparison",
    "bin_counts",
    "compare_counts",
    "compare_rates",
    "psi",
    "quantile_edges",
]

_EMPTY_CELL = 0.5
"""An empty bin counts as half an observation in PSI, whose log ratio is infinite at zero."""


@dataclass(frozen=True, slots=True)
class Comparison:
    """The outcome of one two-sample test."""

    test: str
    """``chi-square``, ``fisher exact``, ``two-proportion z`` or ``none`` (nothing to test)."""
    statistic: float | None
    """Chi-square, z, or Fisher's odds ratio; None when not finite or not tested."""
    p_value: float
    """Two-sided; 1.0 when nothing could differ."""
    effect: float
    """PSI for distributions, Cohen's h (current minus baseline) for rates."""
    detail: dict[str, Any] = field(default_factory=dict)
    """Degrees of freedom, the categories as tested (after merging sparse ones), ..."""


def quantile_edges(values: Sequence[float], bins: int) -> list[float]:
    """Inner bin edges at the sample's quantiles 1/bins ... (bins-1)/bins, deduplicated.

    Quantiles are observed values (inverted CDF), so integer metrics (steps) get integer
    edges and a constant sample gets one edge. Bins are right-closed: (-inf, e0], (e0, e1],
    ..., (e_last, inf)."""
    if not values:
        return []
    qs = np.quantile(
        np.asarray(values, dtype=float), np.arange(1, bins) / bins, method="inverted_cdf"
    )
    return sorted({float(q) for q in qs})


def bin_counts(values: Sequence[float], edges: Sequence[float]) -> list[int]:
    """How many of `values` fall in each bin that `edges` delimit (len(edges) + 1 bins)."""
    index = np.searchsorted(np.asarray(edges, dtype=float), np.asarray(values, dtype=float))
    return [int(c) for c in np.bincount(index, minlength=len(edges) + 1)]


def psi(base: Sequence[int], current: Sequence[int]) -> float:
    """Population stability index: sum of (c - b) * ln(c / b) over the bins' shares."""
    n_base, n_cur = sum(base), sum(current)
    if not n_base or not n_cur:
        return 0.0
    total = 0.0
    for b, c in zip(base, current, strict=True):
        pb = max(b, _EMPTY_CELL) / n_base
        pc = max(c, _EMPTY_CELL) / n_cur
        total += (pc - pb) * math.log(pc / pb)
    return total


def compare_counts(
    labels: Sequence[str],
    base: Sequence[int],
    current: Sequence[int],
    *,
    ordered: bool,
    min_expected: float = 5.0,
) -> Comparison:
    """Chi-square test of homogeneity of two count vectors, with PSI as the effect size.

    Cells whose expected count is under `min_expected` make the chi-square approximation
    unreliable, so sparse columns are merged first: with their neighbour when the bins are
    `ordered` (quantile bins), with the next rarest category otherwise (tool names). The
    merging looks only at pooled counts, never at the difference being tested. A 2x2 table
    still too sparse is tested exactly (Fisher)."""
    groups = [[label] for label, b, c in zip(labels, base, current, strict=True) if b + c]
    b_cols = [b for b, c in zip(base, current, strict=True) if b + c]
    c_cols = [c for b, c in zip(base, current, strict=True) if b + c]
    n_small = min(sum(b_cols), sum(c_cols))
    total = sum(b_cols) + sum(c_cols)
    while len(groups) > 2:
        pooled = [b + c for b, c in zip(b_cols, c_cols, strict=True)]
        j = int(np.argmin(pooled))
        if n_small * pooled[j] / total >= min_expected:
            break
        k = _merge_partner(pooled, j, ordered=ordered)
        keep, drop = min(j, k), max(j, k)
        groups[keep] += groups.pop(drop)
        b_cols[keep] += b_cols.pop(drop)
        c_cols[keep] += c_cols.pop(drop)
    tested = {"/".join(g): [b, c] for g, b, c in zip(groups, b_cols, c_cols, strict=True)}
    effect = psi(b_cols, c_cols)
    if len(groups) < 2 or not n_small:
        return Comparison("none", None, 1.0, effect, {"categories": tested})
    table = np.array([b_cols, c_cols])
    pooled = [b + c for b, c in zip(b_cols, c_cols, strict=True)]
    if len(groups) == 2 and n_small * min(pooled) / total < min_expected:
        odds, p = stats.fisher_exact(table)
        return Comparison("fisher exact", _finite(odds), float(p), effect, {"categories": tested})
    result = stats.chi2_contingency(table, correction=False)
    return Comparison(
        "chi-square",
        float(result.statistic),
        float(result.pvalue),
        effect,
        {"dof": int(result.dof), "categories": tested},
    )


def _merge_partner(pooled: list[int], j: int, *, ordered: bool) -> int:
    if not ordered:
        return min((k for k in range(len(pooled)) if k != j), key=lambda k: pooled[k])
    if j == 0:
        return 1
    if j == len(pooled) - 1:
        return j - 1
    return j - 1 if pooled[j - 1] <= pooled[j + 1] else j + 1


def compare_rates(
    base_hits: int, base_n: int, cur_hits: int, cur_n: int, *, min_expected: float = 5.0
) -> Comparison:
    """Two-sided test that two proportions are equal, with Cohen's h as the effect size.

    The pooled two-proportion z-test when every expected cell count reaches `min_expected`;
    Fisher's exact test otherwise (rare events: a 1% error rate over 100 runs)."""
    p_base, p_cur = base_hits / base_n, cur_hits / cur_n
    h = 2 * math.asin(math.sqrt(p_cur)) - 2 * math.asin(math.sqrt(p_base))
    pooled = (base_hits + cur_hits) / (base_n + cur_n)
    detail = {"baseline_rate": p_base, "current_rate": p_cur}
    if min(base_n, cur_n) * min(pooled, 1 - pooled) < min_expected:
        table = [[base_hits, base_n - base_hits], [cur_hits, cur_n - cur_hits]]
        odds, p = stats.fisher_exact(table)
        return Comparison("fisher exact", _finite(odds), float(p), h, detail)
    se = math.sqrt(pooled * (1 - pooled) * (1 / base_n + 1 / cur_n))
    z = (p_cur - p_base) / se
    return Comparison("two-proportion z", z, math.erfc(abs(z) / math.sqrt(2)), h, detail)


def _finite(value: Any) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None
