"""What drift detection reads and keeps: per-run behaviour counted with SQL aggregates over
``runs`` and ``steps``, and the ``drift_baselines`` table.

A run's prompt is read from the ``prompt`` key of its first journal entry (``run_started``),
with the database's own JSON functions, so no journal payload is parsed in Python.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from bosun.data._repo import Repository
from bosun.data.schema import drift_baselines, runs, steps

__all__ = ["BaselineRow", "DriftRows", "FeatureRow", "VersionRow", "WindowRows"]


@dataclass(frozen=True, slots=True, kw_only=True)
class VersionRow:
    """An (agent, prompt version) pair with runs in the store."""

    agent: str
    """The agent."""
    prompt_name: str | None
    """The prompt its instructions came from (None: plain instructions)."""
    prompt_version: str | None
    """The prompt's version."""
    runs: int
    """Runs counted."""
    first_at: float
    """When the first was created."""
    last_at: float
    """When the last was created."""


@dataclass(frozen=True, slots=True, kw_only=True)
class FeatureRow:
    """One run's row facts and journal counts."""

    run_id: str
    """The run."""
    created_at: float
    """When it was created."""
    status: str
    """Its status."""
    has_handoff: bool
    """An escalation package is stored."""
    chars: int | None
    """Length of its output; None without one."""
    cost_usd: Decimal | None
    """Its cost; None when unknown."""
    model_calls: int
    """Model responses journaled."""
    tool_calls: int
    """Tool results journaled."""
    handovers: int
    """Questions to a person, and a finish as escalated, journaled."""


@dataclass(frozen=True, slots=True, kw_only=True)
class WindowRows:
    """The runs of one window, read in one snapshot."""

    runs: tuple[FeatureRow, ...]
    """The window's runs, in the order asked for."""
    tool_counts: dict[str, int]
    """Tool results by tool name, over the window's runs."""
    available: int
    """Runs in the window's range before the size limit."""


@dataclass(frozen=True, slots=True, kw_only=True)
class BaselineRow:
    """A baseline as stored."""

    agent: str
    """The agent."""
    prompt_version: str
    """``name@version``, ``""`` for unversioned instructions."""
    created_at: float
    """When it was made."""
    runs: int
    """Runs it summarises."""
    stats: str
    """JSON: the window's statistics."""


class DriftRows(Repository):
    """Reads run behaviour for drift detection and keeps baselines."""

    def prompt_versions(self, *, statuses: Sequence[str], agent: str | None) -> list[VersionRow]:
        """The (agent, prompt version) pairs with runs in `statuses` (of one `agent`)."""
        joined, name, version = self._runs_with_prompt()
        query = (
            sa.select(
                runs.c.agent,
                name.label("prompt_name"),
                version.label("prompt_version"),
                sa.func.count().label("runs"),
                sa.func.min(runs.c.created_at).label("first_at"),
                sa.func.max(runs.c.created_at).label("last_at"),
            )
            .select_from(joined)
            .where(runs.c.status.in_(statuses))
            .group_by(runs.c.agent, name, version)
        )
        if agent is not None:
            query = query.where(runs.c.agent == agent)
        with self._read() as conn:
            return [VersionRow(**r._mapping) for r in conn.execute(query).all()]

    def window(
        self,
        agent: str,
        prompt_name: str | None,
        prompt_version: str | None,
        *,
        statuses: Sequence[str],
        after: tuple[float, str] | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int | None = None,
        newest: bool = False,
    ) -> WindowRows:
        """Runs of `agent` in `statuses` with the prompt (both None: plain instructions):
        those created after the run `after` (created_at, id), in [since, until), at most
        `limit` of them: the oldest, or the newest with `newest`.

        Three queries (per-run counts, tool mix, runs available) read one snapshot, so a run
        that finishes meanwhile cannot be counted by one and not the others."""
        joined, name, version = self._runs_with_prompt()
        conditions = [
            runs.c.agent == agent,
            runs.c.status.in_(statuses),
            _same(name, prompt_name),
            _same(version, prompt_version),
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
        order: list[Any] = [runs.c.created_at, runs.c.id]
        if newest:
            order = [column.desc() for column in order]
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
        with self._read() as conn:
            if self._postgres:
                conn = conn.execution_options(isolation_level="REPEATABLE READ")
            # One transaction: SQLite's WAL read snapshot and PostgreSQL's repeatable read
            # both hold from the first query to the last.
            with conn.begin():
                rows = conn.execute(_counts(selected)).all()
                tools = conn.execute(_tool_mix(selected)).all()
                total = conn.execute(
                    sa.select(sa.func.count()).select_from(joined).where(*conditions)
                ).scalar_one()
        return WindowRows(
            runs=tuple(_feature_row(r) for r in rows),
            tool_counts={str(t.tool): int(t.n) for t in tools},
            available=int(total),
        )

    def baseline(self, agent: str, prompt_version: str) -> BaselineRow | None:
        """The stored baseline of `agent` on `prompt_version`, if any."""
        table = drift_baselines
        query = sa.select(table).where(
            table.c.agent == agent, table.c.prompt_version == prompt_version
        )
        with self._read() as conn:
            row = conn.execute(query).first()
        return None if row is None else BaselineRow(**row._mapping)

    def put_baseline(self, row: BaselineRow, *, replace: bool) -> None:
        """Store `row`, replacing a stored one with `replace`, else keeping it (two processes
        giving a version its automatic baseline at once agree on the first)."""
        table = drift_baselines
        insert = (pg_insert if self._postgres else sqlite_insert)(table).values(
            agent=row.agent,
            prompt_version=row.prompt_version,
            created_at=row.created_at,
            runs=row.runs,
            stats=row.stats,
        )
        keys = [table.c.agent, table.c.prompt_version]
        with self.transaction() as conn:
            if replace:
                values = {k: insert.excluded[k] for k in ("created_at", "runs", "stats")}
                conn.execute(insert.on_conflict_do_update(index_elements=keys, set_=values))
            else:
                conn.execute(insert.on_conflict_do_nothing(index_elements=keys))

    def _runs_with_prompt(self) -> tuple[Any, Any, Any]:
        """runs joined with their run_started entry; the prompt's name and version columns."""
        started = steps.alias("started")
        joined = runs.join(
            started,
            sa.and_(
                started.c.run_id == runs.c.id,
                started.c.seq == 0,
                started.c.kind == "run_started",
            ),
        )
        return joined, self._prompt_field(started, "name"), self._prompt_field(started, "version")

    def _prompt_field(self, started: Any, name: str) -> Any:
        if self._postgres:
            payload = sa.cast(started.c.payload, postgresql.JSON)
            return sa.func.json_extract_path_text(payload, "prompt", name)
        return sa.cast(sa.func.json_extract(started.c.payload, f"$.prompt.{name}"), sa.String)


def _same(column: Any, value: str | None) -> Any:
    return column.is_(None) if value is None else column == value


def _counts(selected: Any) -> Any:
    """Each selected run with its model calls, tool results and handovers."""
    counted = sa.func.sum(sa.case((steps.c.kind == "model_response", 1), else_=0))
    tooled = sa.func.sum(sa.case((steps.c.kind == "tool_result", 1), else_=0))
    handed_over = sa.func.sum(
        sa.case(
            (steps.c.kind == "human_requested", 1),
            (sa.and_(steps.c.kind == "run_finished", steps.c.status == "escalated"), 1),
            else_=0,
        )
    )
    return (
        sa.select(
            selected,
            counted.label("model_calls"),
            tooled.label("tool_calls"),
            handed_over.label("handovers"),
        )
        .select_from(selected.outerjoin(steps, steps.c.run_id == selected.c.id))
        .group_by(*selected.c)
    )


def _tool_mix(selected: Any) -> Any:
    """Tool results by tool name over the selected runs."""
    return (
        sa.select(steps.c.tool, sa.func.count().label("n"))
        .select_from(steps.join(selected, steps.c.run_id == selected.c.id))
        .where(steps.c.kind == "tool_result")
        .group_by(steps.c.tool)
    )


def _feature_row(row: Any) -> FeatureRow:
    return FeatureRow(
        run_id=row.id,
        created_at=float(row.created_at),
        status=row.status,
        has_handoff=bool(row.has_handoff),
        chars=None if row.chars is None else int(row.chars),
        cost_usd=row.cost_usd,
        model_calls=int(row.model_calls or 0),
        tool_calls=int(row.tool_calls or 0),
        handovers=int(row.handovers or 0),
    )
