"""Drift detection: does an agent, on one prompt version, still behave as it did?

For each (agent, prompt version) a **baseline** summarises a window of finished runs (by
default the version's first 200): the tool-call mix, the escalation and error rates, and the
distributions of response length, steps (model calls) and cost per run, binned at the
baseline's own deciles. `check_drift` compares the **current window** (the latest 200 finished
runs after the baseline, or those since a time) with it, metric by metric:

==================  ==========================================  ============================
metric              test                                        effect size (must also pass)
==================  ==========================================  ============================
tool_mix            chi-square test of homogeneity, 2 x tools   PSI over tool shares > 0.2
escalation_rate     two-proportion z-test (Fisher's exact when  Cohen's h, abs >= 0.1
error_rate          an expected count is under 5)
response_length     chi-square on the baseline's decile bins    PSI over those bins > 0.2
steps, cost         (same)                                      (same)
==================  ==========================================  ============================

Why these tests:

- Tool mix is categorical, so a chi-square test of homogeneity asks whether both windows draw
  tools from the same distribution; tools too rare for the chi-square approximation (expected
  count under 5) are merged first. Calls of one run are not independent, which makes the test
  somewhat anti-conservative: the PSI floor guards against alerting on a statistically
  visible but small change.
- Rates are proportions of runs, independent between runs: the pooled two-proportion z-test is
  the standard test, and Fisher's exact test replaces it when events are rare.
- Length, steps and cost are continuous or small integers with many ties. A baseline stores
  only its bin edges and counts (not every run's value), and the chi-square test on those
  same bins is valid with ties, unlike a KS test on a discrete metric. PSI on the bins is the
  effect size operations teams already read (under 0.1 stable, over 0.2 a real shift).

False alarms: all six tests run at once, so each must reach p < alpha / m with alpha = 0.01
and m the number of metrics with enough data (Bonferroni: at most a 1% chance per check
that a window drawn from the baseline's own behaviour alerts). A significant p-value alone is
not enough: the effect must also pass its floor, so large windows do not alert on trivial
differences. Below `min_runs` finished runs (30) in either window, or 30 tool calls for the
tool mix, the verdict is "insufficient data", never an alert.

A finding writes one alert per (agent, prompt version) naming the drifted metrics, with every
statistic, count and p-value as evidence (`bosun.observe.alerts`). Its dedupe key holds the
baseline, the drifted metrics and the window's epoch (one per `window_runs` new runs, or the
time window's start), so re-checking the same window never re-alerts; a drift that persists
is reported again once a whole new window of runs has arrived.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from bosun.data.store import Store
from bosun.drift.baselines import (
    CONTINUOUS,
    Baseline,
    get_baseline,
    make_baseline,
    save_baseline,
    set_baseline,
    summarise,
)
from bosun.drift.features import PromptRef, VersionSummary, prompt_versions, read_window
from bosun.drift.stats import Comparison, compare_counts, compare_rates
from bosun.observe.alerts import Alert, Notifier, raise_alert

__all__ = [
    "METRICS",
    "Baseline",
    "DriftConfig",
    "DriftReport",
    "MetricResult",
    "check_drift",
    "check_drift_and_notify",
    "get_baseline",
    "set_baseline",
]

logger = logging.getLogger(__name__)

METRICS = ("tool_mix", "escalation_rate", "error_rate", "response_length", "steps", "cost")
"""What drift detection compares, in report order."""
_RATES = ("escalation_rate", "error_rate")


@dataclass(frozen=True, slots=True, kw_only=True)
class DriftConfig:
    """Window sizes and thresholds."""

    window_runs: int = 200
    """The current window: the latest this many finished runs after the baseline."""
    baseline_runs: int = 200
    """An automatic baseline's size: the version's first this many finished runs."""
    auto_baseline: bool = True
    """Give a version without a baseline one once it has `baseline_runs` finished runs."""
    min_runs: int = 30
    """Fewer finished runs (or tool calls, for the tool mix) in a window: insufficient data."""
    alpha: float = 0.01
    """Family-wise false-alarm rate of one check, split across metrics (Bonferroni)."""
    psi_threshold: float = 0.2
    """Distributions must also shift by more than this PSI."""
    min_rate_effect: float = 0.1
    """Rates must also differ by at least this Cohen's h (5% -> 10% is h = 0.19)."""
    critical_effect: float = 0.5
    """A drifted metric with PSI or |h| this large makes the alert critical, not a warning."""
    bins: int = 10
    """Quantile bins of a continuous metric's baseline."""
    min_expected: float = 5.0
    """Sparser chi-square cells are merged (or tested exactly)."""


@dataclass(frozen=True, slots=True)
class MetricResult:
    """One metric's comparison."""

    name: str
    verdict: str
    """``ok``, ``drift`` or ``insufficient data``."""
    test: str
    statistic: float | None
    p_value: float | None
    effect_name: str
    """``psi`` or ``cohen_h``."""
    effect: float | None
    threshold: str
    """What a drift verdict needs, e.g. ``p < 0.0017 and psi > 0.2``."""
    baseline: dict[str, Any]
    current: dict[str, Any]
    detail: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The result as JSON (alert evidence, ``bosun drift --json``)."""
        return {
            "verdict": self.verdict,
            "test": self.test,
            "statistic": self.statistic,
            "p_value": self.p_value,
            self.effect_name: self.effect,
            "threshold": self.threshold,
            "baseline": self.baseline,
            "current": self.current,
            **self.detail,
        }


@dataclass(frozen=True, slots=True)
class DriftReport:
    """The state of one agent and prompt version."""

    agent: str
    prompt_version: str
    prompt: PromptRef
    status: str
    """``ok``, ``drift``, ``insufficient data`` or ``no baseline``."""
    runs: int
    """Finished runs of this version in the store."""
    baseline: Baseline | None
    window: dict[str, Any] | None
    """The current window: runs, first and last run and their times."""
    metrics: tuple[MetricResult, ...] = ()
    alert: Alert | None = None
    """The alert for this drift (raised now or earlier: see `alert_new`)."""
    alert_new: bool = False

    @property
    def subject(self) -> str:
        """The alerts' subject: ``agent/prompt_version``."""
        return f"{self.agent}/{self.prompt_version}"

    @property
    def drifted(self) -> list[str]:
        """Names of the metrics that drifted."""
        return [m.name for m in self.metrics if m.verdict == "drift"]

    def to_json(self) -> dict[str, Any]:
        """The report as JSON."""
        baseline = None
        if self.baseline is not None:
            baseline = {
                "created_at": self.baseline.created_at,
                "runs": self.baseline.runs,
                "window": self.baseline.stats["window"],
            }
        return {
            "agent": self.agent,
            "prompt_version": self.prompt_version,
            "prompt": {"name": self.prompt.name, "version": self.prompt.version},
            "status": self.status,
            "runs": self.runs,
            "baseline": baseline,
            "window": self.window,
            "metrics": {m.name: m.to_json() for m in self.metrics},
            "alert": None if self.alert is None else self.alert.to_json(),
            "alert_new": self.alert_new,
        }


# --- checking ---------------------------------------------------------------------------------


def check_drift(
    store: Store,
    agent: str | None = None,
    *,
    prompt_version: str | None = None,
    config: DriftConfig | None = None,
    since: float | None = None,
    record: bool = True,
    notify: Callable[[Alert], None] | None = None,
    now: float | None = None,
) -> list[DriftReport]:
    """Compare each (agent, prompt version) with finished runs, or the ones asked for, with
    its baseline. The current window is the latest `config.window_runs` runs after the
    baseline, or every run since `since` (unix time).

    With `record`, automatic baselines are stored and each drift finding raises an alert
    (deduplicated); `notify` is called with each alert that is new, after it is stored (pass
    an adapter around a webhook; an exception it raises is logged, not propagated, since the
    alert is stored already). ``record=False`` only looks."""
    config = config or DriftConfig()
    reports = []
    for version in prompt_versions(store, agent):
        if prompt_version is not None and version.prompt.key != prompt_version:
            continue
        report = _check(store, version, config, since=since, record=record, now=now)
        reports.append(report)
        if report.alert_new and report.alert is not None and notify is not None:
            try:
                notify(report.alert)
            except Exception:
                logger.exception("drift alert notification failed for %s", report.subject)
    return reports


async def check_drift_and_notify(
    store: Store, notifier: Notifier, agent: str | None = None, **options: Any
) -> list[DriftReport]:
    """`check_drift` off the event loop, then `notifier` (e.g. `AlertWebhook`) awaited for
    each new alert."""
    reports = await asyncio.to_thread(check_drift, store, agent, **options)
    for report in reports:
        if report.alert_new and report.alert is not None:
            try:
                await notifier(report.alert)
            except Exception:
                logger.exception("drift alert notification failed for %s", report.subject)
    return reports


def _check(
    store: Store,
    version: VersionSummary,
    config: DriftConfig,
    *,
    since: float | None,
    record: bool,
    now: float | None,
) -> DriftReport:
    agent, prompt = version.agent, version.prompt
    baseline = get_baseline(store, agent, prompt.key)
    if baseline is None and config.auto_baseline and version.runs >= config.baseline_runs:
        first = read_window(store, agent, prompt, limit=config.baseline_runs)
        baseline = make_baseline(agent, prompt, first, bins=config.bins, now=now)
        if record:
            baseline = save_baseline(store, baseline, replace=False)
    if baseline is None:
        return DriftReport(agent, prompt.key, prompt, "no baseline", version.runs, None, None)
    current = read_window(
        store,
        agent,
        prompt,
        after=baseline.end,
        since=since,
        limit=None if since is not None else config.window_runs,
        newest=True,
    )
    edges = {m: baseline.stats[m]["edges"] for m in CONTINUOUS}
    summary = summarise(current, edges=edges)
    window = summary["window"]
    enough = min(baseline.runs, len(current.runs)) >= config.min_runs
    metrics = _compare(baseline.stats, summary, config, enough=enough)
    drifted = [m for m in metrics if m.verdict == "drift"]
    status = "drift" if drifted else "ok" if enough else "insufficient data"
    report = DriftReport(
        agent, prompt.key, prompt, status, version.runs, baseline, window, tuple(metrics)
    )
    if not drifted:
        return report
    epoch = (
        f"since {since}"
        if since is not None
        else f"{(current.available - 1) // config.window_runs}"
    )
    alert = _alert(report, drifted, config, epoch=epoch)
    new = raise_alert(store, alert, now=now) if record else False
    return replace(report, alert=alert, alert_new=new)


def _compare(
    base: Mapping[str, Any], cur: Mapping[str, Any], config: DriftConfig, *, enough: bool
) -> list[MetricResult]:
    """Every metric's test, then verdicts at the Bonferroni-corrected level."""
    tested: dict[str, tuple[Comparison | None, dict[str, Any], dict[str, Any]]] = {}
    tested["tool_mix"] = _tool_mix(base["tool_mix"], cur["tool_mix"], config, enough=enough)
    for metric in _RATES:
        b, c = base[metric], cur[metric]
        comparison = None
        if enough and min(b["n"], c["n"]) >= config.min_runs:
            comparison = compare_rates(
                b["count"], b["n"], c["count"], c["n"], min_expected=config.min_expected
            )
        tested[metric] = comparison, _rate(b), _rate(c)
    for metric in CONTINUOUS:
        b, c = base[metric], cur[metric]
        comparison = None
        if enough and min(b["n"], c["n"]) >= config.min_runs:
            labels = _bin_labels(b["edges"])
            comparison = compare_counts(
                labels, b["counts"], c["counts"], ordered=True, min_expected=config.min_expected
            )
        tested[metric] = comparison, _shape(b), _shape(c)
    m = sum(comparison is not None for comparison, _, _ in tested.values())
    level = config.alpha / max(m, 1)
    return [_verdict(name, *tested[name], level=level, config=config) for name in METRICS]


def _tool_mix(
    b: Mapping[str, Any], c: Mapping[str, Any], config: DriftConfig, *, enough: bool
) -> tuple[Comparison | None, dict[str, Any], dict[str, Any]]:
    comparison = None
    if enough and min(b["calls"], c["calls"]) >= config.min_runs:
        names = sorted(set(b["counts"]) | set(c["counts"]))
        comparison = compare_counts(
            names,
            [b["counts"].get(t, 0) for t in names],
            [c["counts"].get(t, 0) for t in names],
            ordered=False,
            min_expected=config.min_expected,
        )
    return comparison, _shares(b), _shares(c)


def _verdict(
    name: str,
    comparison: Comparison | None,
    base: dict[str, Any],
    cur: dict[str, Any],
    *,
    level: float,
    config: DriftConfig,
) -> MetricResult:
    rate = name in _RATES
    effect_name = "cohen_h" if rate else "psi"
    floor = config.min_rate_effect if rate else config.psi_threshold
    threshold = f"p < {level:.2g} and {'|h| >= ' if rate else 'psi > '}{floor:g}"
    if comparison is None:
        return MetricResult(
            name, "insufficient data", "none", None, None, effect_name, None, threshold, base, cur
        )
    large = abs(comparison.effect) >= floor if rate else comparison.effect > floor
    verdict = "drift" if comparison.p_value < level and large else "ok"
    return MetricResult(
        name,
        verdict,
        comparison.test,
        comparison.statistic,
        comparison.p_value,
        effect_name,
        comparison.effect,
        threshold,
        base,
        cur,
        comparison.detail,
    )


def _rate(stats: Mapping[str, Any]) -> dict[str, Any]:
    n = stats["n"]
    return {"rate": stats["count"] / n if n else None, "count": stats["count"], "n": n}


def _shape(stats: Mapping[str, Any]) -> dict[str, Any]:
    return {key: stats[key] for key in ("n", "mean", "p50", "p90")}


def _shares(stats: Mapping[str, Any]) -> dict[str, Any]:
    calls = stats["calls"]
    shares = {t: round(k / calls, 4) for t, k in stats["counts"].items()} if calls else {}
    return {"calls": calls, "counts": dict(stats["counts"]), "shares": shares}


def _bin_labels(edges: Sequence[float]) -> list[str]:
    if not edges:
        return ["all"]
    inner = [f"({lo:g}, {hi:g}]" for lo, hi in zip(edges, edges[1:], strict=False)]
    return [f"<= {edges[0]:g}", *inner, f"> {edges[-1]:g}"]


# --- alerts -----------------------------------------------------------------------------------


def _alert(
    report: DriftReport, drifted: list[MetricResult], config: DriftConfig, *, epoch: str
) -> Alert:
    assert report.baseline is not None and report.window is not None
    names = [m.name for m in drifted]
    critical = any(
        m.effect is not None and abs(m.effect) >= config.critical_effect for m in drifted
    )
    key = json.dumps(
        [report.agent, report.prompt_version, report.baseline.created_at, epoch, names]
    )
    parts = [_describe_drift(m) for m in drifted]
    version = report.prompt_version or "(unversioned)"
    return Alert(
        kind="drift",
        subject=report.subject,
        severity="critical" if critical else "warning",
        message=f"{report.agent} {version} drifted from its baseline: " + "; ".join(parts),
        evidence={
            "agent": report.agent,
            "prompt_version": report.prompt_version,
            "drifted": names,
            "alpha": config.alpha,
            "baseline": {
                "created_at": report.baseline.created_at,
                "runs": report.baseline.runs,
                "window": report.baseline.stats["window"],
            },
            "window": report.window,
            "epoch": epoch,
            "metrics": {m.name: m.to_json() for m in report.metrics},
        },
        dedupe_key="drift:" + hashlib.sha256(key.encode()).hexdigest(),
    )


def _describe_drift(m: MetricResult) -> str:
    if m.name in _RATES:
        change = f"{m.baseline['rate']:.1%} -> {m.current['rate']:.1%}"
    elif m.name == "tool_mix":
        change = f"psi {m.effect:.2f}"
    else:
        change = f"mean {m.baseline['mean']:g} -> {m.current['mean']:g}, psi {m.effect:.2f}"
    return f"{m.name} ({change}, {m.test} p={m.p_value:.2g})"
