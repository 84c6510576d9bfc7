"""The ``eval_runs`` table: offline evaluations of an agent (and prompt version) on a dataset,
with the gate verdict of those run as a candidate for production."""

from __future__ import annotations

from dataclasses import dataclass, fields
from decimal import Decimal

import sqlalchemy as sa

from bosun.data._repo import Repository, values_of
from bosun.data.schema import eval_runs

__all__ = ["EvalRunRow", "EvalRuns", "NewEvalRun"]


@dataclass(frozen=True, slots=True, kw_only=True)
class EvalRunRow:
    """An evaluation run as stored, without its per-case report."""

    id: str
    """The evaluation's id."""
    dataset: str
    """Dataset name."""
    dataset_digest: str
    """sha256 of the dataset."""
    agent: str
    """The agent evaluated."""
    prompt_name: str | None
    """The prompt evaluated, if any."""
    prompt_version: str | None
    """Its version."""
    created_at: float
    """When it ran."""
    cases: int
    """Cases in the dataset."""
    passed: int
    """Cases passed."""
    cost_usd: Decimal | None
    """Runs and judges together; None when nothing was priced."""
    gate: str | None
    """JSON: the comparison with the production version, when gated."""
    gate_passed: bool | None
    """The gate's verdict; None when not gated."""


@dataclass(frozen=True, slots=True, kw_only=True)
class NewEvalRun(EvalRunRow):
    """An evaluation run to store."""

    report: str
    """JSON: per case and aggregate."""


_SUMMARY = [eval_runs.c[f.name] for f in fields(EvalRunRow)]


class EvalRuns(Repository):
    """Stores evaluation runs and reads them back by prompt."""

    def add(self, run: NewEvalRun) -> str:
        """Store `run`; returns its id."""
        with self.transaction() as conn:
            conn.execute(eval_runs.insert().values(values_of(run)))
        return run.id

    def for_prompt(self, name: str, version: str | None = None) -> list[EvalRunRow]:
        """Evaluation runs of prompt `name` (of one `version`, when given), newest first."""
        query = sa.select(*_SUMMARY).where(eval_runs.c.prompt_name == name)
        if version is not None:
            query = query.where(eval_runs.c.prompt_version == version)
        query = query.order_by(eval_runs.c.created_at.desc(), eval_runs.c.id.desc())
        with self._read() as conn:
            return [EvalRunRow(**r._mapping) for r in conn.execute(query).all()]

    def get(self, id: str) -> NewEvalRun | None:
        """One evaluation run with its per-case report, if stored."""
        with self._read() as conn:
            row = conn.execute(sa.select(eval_runs).where(eval_runs.c.id == id)).first()
        return None if row is None else NewEvalRun(**row._mapping)
