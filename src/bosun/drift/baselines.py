"""Drift baselines: the behaviour of a window of runs, stored per agent and prompt version.

A baseline keeps what the tests in `bosun.drift.detector` need and no more: the tool counts, the
escalation and error counts with their n, and for each continuous metric its decile bin edges
and the counts in each bin (plus mean, median and p90 for people to read).
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bosun.data.drift import BaselineRow, DriftRows
from bosun.data.store import Store
from bosun.drift.features import (
    PromptRef,
    VersionSummary,
    Window,
    prompt_versions,
    read_window,
    values,
)
from bosun.drift.stats import bin_counts, quantile_edges
from bosun.errors import UserError

__all__ = [
    "CONTINUOUS",
    "Baseline",
    "get_baseline",
    "make_baseline",
    "save_baseline",
    "set_baseline",
    "summarise",
]

CONTINUOUS = ("response_length", "steps", "cost")
"""Metrics compared as binned distributions."""


@dataclass(frozen=True, slots=True)
class Baseline:
    """The behaviour a prompt version is compared against."""

    agent: str
    prompt_version: str
    """``name@version``, ``""`` for unversioned instructions."""
    created_at: float
    runs: int
    stats: dict[str, Any]
    """The window, the tool counts, rates with their n, and binned distributions."""

    @property
    def end(self) -> tuple[float, str]:
        """(created_at, id) of the baseline's last run: the current window starts after it."""
        window = self.stats["window"]
        return float(window["to"]), str(window["last_run"])


def set_baseline(
    store: Store,
    agent: str,
    prompt_version: str = "",
    *,
    runs: int | None = 200,
    since: float | None = None,
    until: float | None = None,
    bins: int = 10,
    now: float | None = None,
) -> Baseline:
    """Make the first `runs` finished runs of `agent` on `prompt_version` (``name@version``,
    ``""`` for unversioned) created in [since, until) its baseline, replacing any earlier one.
    ``runs=None`` takes every run in the range."""
    version = _find_version(store, agent, prompt_version)
    window = read_window(store, agent, version.prompt, since=since, until=until, limit=runs)
    if not window.runs:
        raise UserError(f"{agent} {prompt_version or '(unversioned)'}: no finished runs in range")
    baseline = make_baseline(agent, version.prompt, window, bins=bins, now=now)
    save_baseline(store, baseline)
    return baseline


def get_baseline(store: Store, agent: str, prompt_version: str = "") -> Baseline | None:
    """The stored baseline of `agent` on `prompt_version`, if any."""
    row = DriftRows(store).baseline(agent, prompt_version)
    if row is None:
        return None
    return Baseline(row.agent, row.prompt_version, row.created_at, row.runs, json.loads(row.stats))


def _find_version(store: Store, agent: str, prompt_version: str) -> VersionSummary:
    found = prompt_versions(store, agent)
    for version in found:
        if version.prompt.key == prompt_version:
            return version
    seen = ", ".join(repr(v.prompt.key) for v in found) or "none"
    raise UserError(
        f"agent {agent!r} has no finished runs on prompt version {prompt_version!r} "
        f"(versions with runs: {seen})"
    )


def make_baseline(
    agent: str, prompt: PromptRef, window: Window, *, bins: int, now: float | None
) -> Baseline:
    """A baseline of `window` (not stored)."""
    stats = {
        "format": 1,
        "prompt": {"name": prompt.name, "version": prompt.version},
        **summarise(window, bins=bins),
    }
    created = time.time() if now is None else now
    return Baseline(agent, prompt.key, created, len(window.runs), stats)


def save_baseline(store: Store, baseline: Baseline, *, replace: bool = True) -> Baseline:
    """Store `baseline`; with ``replace=False`` keep one stored first (two processes giving a
    version its automatic baseline at once agree on one). Returns the baseline stored."""
    row = BaselineRow(
        agent=baseline.agent,
        prompt_version=baseline.prompt_version,
        created_at=baseline.created_at,
        runs=baseline.runs,
        stats=json.dumps(baseline.stats, sort_keys=True),
    )
    DriftRows(store).put_baseline(row, replace=replace)
    if replace:
        return baseline
    stored = get_baseline(store, baseline.agent, baseline.prompt_version)
    assert stored is not None  # just written, and baselines are never deleted
    return stored


def summarise(
    window: Window, *, bins: int = 10, edges: Mapping[str, Sequence[float]] | None = None
) -> dict[str, Any]:
    """A window's statistics; continuous metrics binned at `edges` (the baseline's) or at
    the window's own quantiles."""
    runs = window.runs
    n = len(runs)
    summary: dict[str, Any] = {
        "window": {
            "runs": n,
            "from": runs[0].created_at if runs else None,
            "to": runs[-1].created_at if runs else None,
            "first_run": runs[0].run_id if runs else None,
            "last_run": runs[-1].run_id if runs else None,
        },
        "tool_mix": {
            "counts": dict(sorted(window.tool_counts.items())),
            "calls": sum(window.tool_counts.values()),
        },
        "escalation_rate": {"count": sum(r.escalated for r in runs), "n": n},
        "error_rate": {"count": sum(r.failed for r in runs), "n": n},
    }
    for metric in CONTINUOUS:
        observed = values(window, metric)
        cuts = list(edges[metric]) if edges is not None else quantile_edges(observed, bins)
        summary[metric] = {
            "edges": cuts,
            "counts": bin_counts(observed, cuts),
            "n": len(observed),
            **_describe(observed),
        }
    return summary


def _describe(observed: Sequence[float]) -> dict[str, float | None]:
    if not observed:
        return {"mean": None, "p50": None, "p90": None}
    ordered = sorted(observed)
    return {
        "mean": round(statistics.fmean(ordered), 6),
        "p50": ordered[(len(ordered) - 1) // 2],
        "p90": ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))],
    }
