"""The promotion gate: is a candidate prompt version worse than production on a dataset?

Both versions run the same cases with the same agent and fixtures, so the outcomes are
**paired**: case *i* passed or failed under each version. Pairing is what makes a small
dataset informative: cases both versions pass (or both fail) say nothing about the
difference, and only the *discordant* cases do. Of those, *b* are regressions (baseline
passed, candidate failed) and *c* improvements.

**The test: exact one-sided McNemar.** If the versions were equally good, each discordant case
would be as likely to fall either way, so *b* ~ Binomial(*b* + *c*, 1/2). The p-value is
P(X >= *b*), summed exactly from the binomial; the gate fails when p < alpha (0.05). Golden
datasets are small (tens of cases) and discordant pairs fewer still, where the chi-square
approximation of McNemar's test is unreliable; the exact binomial holds at any size. It is
one-sided because the gate asks only "is the candidate worse?". Unpaired tests (comparing two
pass rates as independent proportions) would waste the pairing and need far more cases.

**Two more rules, because a small dataset has little power.** With 10 cases even 4
regressions and no improvement give p = 0.0625, not significant, yet losing 40% of the cases
should not ship. So the gate also fails when the candidate's pass rate is lower than the
baseline's by more than `GateConfig.margin` (5 points by default), and whenever a case marked
``critical: true`` regresses. The statistical test catches consistent small regressions on
large datasets; the margin catches large ones on small datasets; critical cases are hard
constraints.

Without a production version to compare with, the candidate is judged alone: every critical
case must pass and the pass rate must reach `GateConfig.min_pass_rate`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = ["GateConfig", "GateVerdict", "Outcome", "compare", "mcnemar_exact_p"]


@dataclass(frozen=True, kw_only=True)
class GateConfig:
    """When a candidate fails the gate."""

    alpha: float = 0.05
    """Significance level of the one-sided exact McNemar test."""
    margin: float = 0.05
    """Largest tolerated drop in pass rate (0.05: five percentage points)."""
    min_pass_rate: float = 0.0
    """Pass rate a candidate needs when there is no baseline to compare with."""

    def __post_init__(self) -> None:
        for name in ("alpha", "margin", "min_pass_rate"):
            value = getattr(self, name)
            if not 0 <= value <= 1:
                raise ValueError(f"{name} must be between 0 and 1, got {value}")


class Outcome(Protocol):
    """A case's result, as the gate needs it."""

    @property
    def id(self) -> str:
        """Case id."""
        ...

    @property
    def passed(self) -> bool:
        """Whether every assertion held."""
        ...

    @property
    def critical(self) -> bool:
        """Whether the case is critical."""
        ...


@dataclass(frozen=True, kw_only=True)
class GateVerdict:
    """The comparison, its numbers and the decision."""

    passed: bool
    """Whether the candidate may be promoted."""
    reasons: tuple[str, ...]
    """Why it failed (empty when it passed)."""
    cases: int
    """Paired cases."""
    candidate_pass_rate: float
    """Share of cases the candidate passed."""
    baseline_pass_rate: float | None
    """Share the baseline passed; None without a baseline."""
    regressions: tuple[str, ...] = ()
    """Case ids the baseline passed and the candidate failed."""
    improvements: tuple[str, ...] = ()
    """Case ids the candidate passed and the baseline failed."""
    critical_regressions: tuple[str, ...] = ()
    """Regressions among critical cases."""
    p_value: float | None = None
    """One-sided exact McNemar p-value; None without a baseline."""
    config: GateConfig = field(default_factory=GateConfig)
    """The thresholds applied."""

    def to_json(self) -> dict[str, Any]:
        """JSON form, stored with the candidate's evaluation run."""
        return {
            "passed": self.passed,
            "reasons": list(self.reasons),
            "test": "mcnemar_exact_one_sided",
            "cases": self.cases,
            "candidate_pass_rate": self.candidate_pass_rate,
            "baseline_pass_rate": self.baseline_pass_rate,
            "regressions": list(self.regressions),
            "improvements": list(self.improvements),
            "critical_regressions": list(self.critical_regressions),
            "p_value": self.p_value,
            "alpha": self.config.alpha,
            "margin": self.config.margin,
            "min_pass_rate": self.config.min_pass_rate,
        }


def mcnemar_exact_p(regressions: int, improvements: int) -> float:
    """P(X >= regressions) for X ~ Binomial(regressions + improvements, 1/2): the one-sided
    exact McNemar p-value that the candidate is worse. 1.0 when there are no discordant
    pairs."""
    n = regressions + improvements
    if n == 0 or regressions == 0:
        return 1.0
    from scipy.stats import binomtest  # imported here: scipy takes a second to import

    return min(1.0, float(binomtest(regressions, n, 0.5, alternative="greater").pvalue))


def compare(
    candidate: Mapping[str, Outcome],
    baseline: Mapping[str, Outcome] | None,
    config: GateConfig | None = None,
) -> GateVerdict:
    """The gate's verdict on `candidate` against `baseline` (case id -> outcome). Both must
    cover the same cases."""
    config = config or GateConfig()
    if not candidate:
        raise ValueError("the gate needs at least one case")
    rate = _pass_rate(candidate)
    if baseline is None:
        return _alone(candidate, rate, config)
    if set(candidate) != set(baseline):
        raise ValueError("the candidate and the baseline must cover the same cases")
    regressions = tuple(i for i in candidate if baseline[i].passed and not candidate[i].passed)
    improvements = tuple(i for i in candidate if candidate[i].passed and not baseline[i].passed)
    critical = tuple(i for i in regressions if candidate[i].critical or baseline[i].critical)
    p_value = mcnemar_exact_p(len(regressions), len(improvements))
    base_rate = _pass_rate(baseline)
    reasons = []
    if p_value < config.alpha:
        reasons.append(
            f"significant regression: {len(regressions)} case(s) regressed and "
            f"{len(improvements)} improved (exact McNemar p = {p_value:.4f} < {config.alpha})"
        )
    drop = base_rate - rate
    # Rounded so that float noise (0.05000000000000004) does not fail an exact-margin drop.
    if round(drop, 9) > config.margin:
        reasons.append(
            f"pass rate fell from {base_rate:.1%} to {rate:.1%}, more than the "
            f"{config.margin:.1%} margin"
        )
    if critical:
        reasons.append(f"critical case(s) regressed: {', '.join(critical)}")
    return GateVerdict(
        passed=not reasons,
        reasons=tuple(reasons),
        cases=len(candidate),
        candidate_pass_rate=rate,
        baseline_pass_rate=base_rate,
        regressions=regressions,
        improvements=improvements,
        critical_regressions=critical,
        p_value=p_value,
        config=config,
    )


def _alone(candidate: Mapping[str, Outcome], rate: float, config: GateConfig) -> GateVerdict:
    failed_critical = tuple(i for i, o in candidate.items() if o.critical and not o.passed)
    reasons = []
    if failed_critical:
        reasons.append(f"critical case(s) failed: {', '.join(failed_critical)}")
    if rate < config.min_pass_rate:
        reasons.append(f"pass rate {rate:.1%} is below the required {config.min_pass_rate:.1%}")
    return GateVerdict(
        passed=not reasons,
        reasons=tuple(reasons),
        cases=len(candidate),
        candidate_pass_rate=rate,
        baseline_pass_rate=None,
        critical_regressions=failed_critical,
        config=config,
    )


def _pass_rate(outcomes: Mapping[str, Outcome]) -> float:
    return sum(o.passed for o in outcomes.values()) / len(outcomes)
