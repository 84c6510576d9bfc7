"""Per-run behaviour features for drift detection, read from the store with SQL aggregates.

A run's features come from its row (status, handoff, output length, cost) and from counts
over its journal (model calls, tool results by tool name); no journal payload is parsed in
Python. The prompt version is read from the ``prompt`` key of the run's first entry
(``run_started``), which the runtime writes when the agent's instructions came from an
`InstructionSource` such as the prompt registry.

Only finished runs count: completed, failed, escalated, and waiting for a person (the agent
handed the run over: an escalation). Cancelled runs are left out: an operator ended them, so
they say nothing about the agent's behaviour. Runs waiting for an approval are left out until
decided: their outcome is not known yet.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from bosun.data.drift import DriftRows, FeatureRow
from bosun.data.store import Store

__all__ = [
    "ESCALATED",
    "FINISHED",
    "PromptRef",
    "RunFeatures",
    "VersionSummary",
    "Window",
    "prompt_versions",
    "read_window",
    "values",
]

FINISHED = ("completed", "failed", "escalated", "waiting_human")
"""Run statuses whose behaviour is counted."""
ESCALATED = ("escalated", "waiting_human")
"""Statuses that mean the agent handed the run to a person."""

_KEY_LIMIT = 64  # drift_baselines.prompt_version


@dataclass(frozen=True, slots=True)
class PromptRef:
    """The prompt a run's instructions came from (both None: plain instructions)."""

    name: str | None
    version: str | None

    @property
    def key(self) -> str:
        """``name@version``, or ``""`` for runs with no versioned prompt. Keys longer than
        the baseline table's column keep a readable prefix and a digest of the whole."""
        if self.name is None and self.version is None:
            return ""
        raw = f"{self.name or ''}@{self.version or ''}"
        if len(raw) <= _KEY_LIMIT:
            return raw
        digest = hashlib.sha256(raw.encode()).hexdigest()[:8]
        return f"{raw[: _KEY_LIMIT - 9]}~{digest}"


@dataclass(frozen=True, slots=True)
class VersionSummary:
    """An (agent, prompt version) pair seen in the store, with its finished runs."""

    agent: str
    prompt: PromptRef
    runs: int
    first_at: float
    last_at: float


@dataclass(frozen=True, slots=True)
class RunFeatures:
    """What drift detection measures of one finished run."""

    run_id: str
    created_at: float
    status: str
    escalated: bool
    """Handed to a person at some point: status escalated or waiting_human, a handoff package
    stored, or an escalation or question to a person in the journal (a run handed back and
    completed afterwards still escalated once)."""
    failed: bool
    """Status failed."""
    response_chars: int | None
    """Length of the output in characters; None when the run produced none."""
    model_calls: int
    """Model responses journaled: the run's reasoning steps. Retries of a failed call and
    journal bookkeeping (tool_started, approvals) do not count, so the metric moves when the
    agent's behaviour does, not when a provider is flaky (the error rate sees that)."""
    tool_calls: int
    """Tool results journaled."""
    cost_usd: float | None
    """The run's cost; None when unknown."""


@dataclass(frozen=True, slots=True)
class Window:
    """The finished runs of one agent and prompt version in a window, oldest first."""

    runs: tuple[RunFeatures, ...]
    tool_counts: dict[str, int]
    """Tool results by tool name, over the window's runs."""
    available: int
    """Finished runs in the window's range before the size limit was applied."""


def prompt_versions(store: Store, agent: str | None = None) -> list[VersionSummary]:
    """The (agent, prompt version) pairs with finished runs, by agent then first run."""
    rows = DriftRows(store).prompt_versions(statuses=FINISHED, agent=agent)
    found = [
        VersionSummary(
            r.agent, PromptRef(r.prompt_name, r.prompt_version), r.runs, r.first_at, r.last_at
        )
        for r in rows
    ]
    return sorted(found, key=lambda v: (v.agent, v.first_at, v.prompt.key))


def read_window(
    store: Store,
    agent: str,
    prompt: PromptRef,
    *,
    after: tuple[float, str] | None = None,
    since: float | None = None,
    until: float | None = None,
    limit: int | None = None,
    newest: bool = False,
) -> Window:
    """Finished runs of `agent` with `prompt`: those created after the run `after`
    (created_at, id), in [since, until), at most `limit` of them: the oldest, or the newest
    with `newest`. Per-run counts and the tool mix are read in one snapshot."""
    rows = DriftRows(store).window(
        agent,
        prompt.name,
        prompt.version,
        statuses=FINISHED,
        after=after,
        since=since,
        until=until,
        limit=limit,
        newest=newest,
    )
    features = sorted((_features(r) for r in rows.runs), key=lambda f: (f.created_at, f.run_id))
    return Window(
        runs=tuple(features),
        tool_counts=rows.tool_counts,
        available=rows.available,
    )


def _features(row: FeatureRow) -> RunFeatures:
    return RunFeatures(
        run_id=row.run_id,
        created_at=row.created_at,
        status=row.status,
        escalated=row.status in ESCALATED or row.has_handoff or bool(row.handovers),
        failed=row.status == "failed",
        response_chars=row.chars,
        model_calls=row.model_calls,
        tool_calls=row.tool_calls,
        cost_usd=None if row.cost_usd is None else float(row.cost_usd),
    )


def values(window: Window, metric: str) -> Sequence[float]:
    """The window's observed values of a continuous metric (runs without one are skipped)."""
    if metric == "response_length":
        return [float(r.response_chars) for r in window.runs if r.response_chars is not None]
    if metric == "steps":
        return [float(r.model_calls) for r in window.runs]
    if metric == "cost":
        return [r.cost_usd for r in window.runs if r.cost_usd is not None]
    raise ValueError(f"unknown metric {metric!r}")
