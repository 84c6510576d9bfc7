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
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from bosun.data.schema import runs, steps
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


def _prompt_field(dialect: str, payload: Any, name: str) -> Any:
    if dialect == "postgresql":
        return sa.func.json_extract_path_text(sa.cast(payload, postgresql.JSON), "prompt", name)
    return sa.cast(sa.func.json_extract(payload, f"$.prompt.{name}"), sa.String)


def _started() -> Any:
    return steps.alias("started")


def _runs_with_prompt(dialect: str) -> tuple[Any, Any, Any]:
    """runs joined with their run_started entry; the prompt's name and version columns."""
    started = _started()
    joined = runs.join(
        started,
        sa.and_(
            started.c.run_id == runs.c.id,
            started.c.seq == 0,
            started.c.kind == "run_started",
        ),
    )
    name = _prompt_field(dialect, started.c.payload, "name")
    version = _prompt_field(dialect, started.c.payload, "version")
    return joined, name, version


def prompt_versions(store: Store, agent: str | None = None) -> list[VersionSummary]:
    """The (agent, prompt version) pairs with finished runs, by agent then first run."""
    joined, name, version = _runs_with_prompt(store.dialect)
    query = (
        sa.select(
            runs.c.agent,
            name.label("name"),
            version.label("version"),
            sa.func.count().label("n"),
            sa.func.min(runs.c.created_at).label("first_at"),
            sa.func.max(runs.c.created_at).label("last_at"),
        )
        .select_from(joined)
        .where(runs.c.status.in_(FINISHED))
        .group_by(runs.c.agent, name, version)
    )
    if agent is not None:
        query = query.where(runs.c.agent == agent)
    with store.engine.connect() as conn:
        rows = conn.execute(query).all()
    found = [
        VersionSummary(r.agent, PromptRef(r.name, r.version), r.n, r.first_at, r.last_at)
        for r in rows
    ]
    return sorted(found, key=lambda v: (v.agent, v.first_at, v.prompt.key))


def _same(column: Any, value: str | None) -> Any:
    return column.is_(None) if value is None else column == value


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
    with `newest`.

    Two aggregate queries (per-run step counts, tool mix) read one snapshot, so a run that
    finishes meanwhile cannot be counted by one and not the other."""
    joined, name, version = _runs_with_prompt(store.dialect)
    conditions = [
        runs.c.agent == agent,
        runs.c.status.in_(FINISHED),
        _same(name, prompt.name),
        _same(version, prompt.version),
    ]
    if after is not None:
        at, run_id = after
        conditions.append(
            sa.or_(runs.c.created_at > at, sa.and_(runs.c.created_at == at, runs.c.id > run_id))
        )
    if since is not None:
        conditions.append(runs.c.created_at >= since)
    if until is not None:
        conditions.append(runs.c.created_at < until)
    order = (
        (runs.c.created_at.desc(), runs.c.id.desc())
        if newest
        else (
            runs.c.created_at,
            runs.c.id,
        )
    )
    selected = (
        sa.select(
            runs.c.id,
            runs.c.created_at,
            runs.c.status,
            runs.c.handoff.is_not(None).label("has_handoff"),
            sa.func.length(runs.c.output).label("chars"),
            runs.c.cost_usd,
        )
        .select_from(joined)
        .where(*conditions)
        .order_by(*order)
        .limit(limit)
        .cte("window_runs")
    )
    counted = sa.func.sum(sa.case((steps.c.kind == "model_response", 1), else_=0))
    tooled = sa.func.sum(sa.case((steps.c.kind == "tool_result", 1), else_=0))
    handed_over = sa.func.sum(
        sa.case(
            (steps.c.kind == "human_requested", 1),
            (sa.and_(steps.c.kind == "run_finished", steps.c.status == "escalated"), 1),
            else_=0,
        )
    )
    features = (
        sa.select(
            selected,
            counted.label("model_calls"),
            tooled.label("tool_calls"),
            handed_over.label("handovers"),
        )
        .select_from(selected.outerjoin(steps, steps.c.run_id == selected.c.id))
        .group_by(*selected.c)
    )
    mix = (
        sa.select(steps.c.tool, sa.func.count().label("n"))
        .select_from(steps.join(selected, steps.c.run_id == selected.c.id))
        .where(steps.c.kind == "tool_result")
        .group_by(steps.c.tool)
    )
    available = sa.select(sa.func.count()).select_from(joined).where(*conditions)
    with store.engine.connect() as conn:
        if store.dialect == "postgresql":
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        # One transaction: SQLite's WAL read snapshot and PostgreSQL's repeatable read both
        # hold from the first query to the last.
        with conn.begin():
            rows = conn.execute(features).all()
            tools = conn.execute(mix).all()
            total = conn.execute(available).scalar_one()
    return Window(
        runs=tuple(sorted((_features(r) for r in rows), key=lambda f: (f.created_at, f.run_id))),
        tool_counts={str(t.tool): int(t.n) for t in tools},
        available=int(total),
    )


def _features(row: Any) -> RunFeatures:
    return RunFeatures(
        run_id=row.id,
        created_at=float(row.created_at),
        status=row.status,
        escalated=row.status in ESCALATED or bool(row.has_handoff) or bool(row.handovers),
        failed=row.status == "failed",
        response_chars=None if row.chars is None else int(row.chars),
        model_calls=int(row.model_calls or 0),
        tool_calls=int(row.tool_calls or 0),
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
