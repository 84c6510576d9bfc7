"""The ``run_scores`` table: judge scores, implicit signals and shadow comparisons of live runs,
and the explicit ``feedback`` joined to them when aggregating per prompt version.

Online evaluation claims a run by writing a marker row (kind ``online``, name ``processed``)
in the transaction that checks for one, so workers sweeping together score a run at most
once per race; on PostgreSQL the runs read are locked ``FOR UPDATE SKIP LOCKED``, so
concurrent sweeps take different runs instead of waiting on each other.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from bosun.data._repo import Repository, values_of
from bosun.data.schema import feedback, run_scores, runs
from bosun.data.traces import started_payload

__all__ = ["NewScore", "PromptScores", "ScoreRow", "ScoreRows", "ScoredRun"]

_ONLINE = "online"
_PROCESSED = "processed"


@dataclass(frozen=True, slots=True, kw_only=True)
class NewScore:
    """A score of a run to store."""

    run_id: str
    """The run scored."""
    kind: str
    """``judge``, ``signal``, ``shadow`` (``online``: the marker of a claimed run)."""
    name: str
    """The rubric, signal or comparison."""
    value: float | None
    """The score, 0..1 (a signal: 1.0 when it happened)."""
    reason: str | None
    """Why (for a shadow comparison: its differences as JSON)."""
    prompt_name: str | None
    """The prompt the run's instructions came from."""
    prompt_version: str | None
    """Its version (for a shadow comparison: the shadow's)."""
    created_at: float
    """When it was scored."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ScoreRow(NewScore):
    """A score as stored."""

    id: int
    """Its row id: higher is newer."""


@dataclass(frozen=True, slots=True)
class ScoredRun:
    """A finished run claimed for online evaluation, with the prompt it ran."""

    run_id: str
    """The run."""
    prompt_name: str | None
    """Its prompt, from its first journal entry (None: plain instructions)."""
    prompt_version: str | None
    """The prompt's version."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PromptScores:
    """Online evaluation of one prompt version: its runs' scores and feedback."""

    prompt_name: str | None
    """The prompt (None: plain instructions)."""
    prompt_version: str | None
    """Its version."""
    runs: int
    """Runs claimed for scoring."""
    signals: dict[str, float] = field(default_factory=dict)
    """Mean of each signal: the share of runs where it happened."""
    judges: dict[str, float] = field(default_factory=dict)
    """Mean score of each judge."""
    thumbs_up: int = 0
    """Positive ratings."""
    thumbs_down: int = 0
    """Negative ratings."""
    corrections: int = 0
    """Feedback rows with a corrected answer."""


class ScoreRows(Repository):
    """Stores scores of live runs and reads them back."""

    def add(self, scores: Sequence[NewScore]) -> None:
        """Store `scores` in one transaction."""
        if not scores:
            return
        with self.transaction() as conn:
            conn.execute(run_scores.insert(), [values_of(s) for s in scores])

    def newest(self, *, kind: str, prompt_name: str, limit: int) -> list[ScoreRow]:
        """Scores of one `kind` on runs of prompt `prompt_name`, newest first."""
        query = (
            sa.select(run_scores)
            .where(run_scores.c.kind == kind, run_scores.c.prompt_name == prompt_name)
            .order_by(run_scores.c.id.desc())
            .limit(limit)
        )
        with self._read() as conn:
            return [ScoreRow(**r._mapping) for r in conn.execute(query).all()]

    def unscored(
        self, *, agent: str, statuses: Sequence[str], kind: str, prompt_version: str, limit: int
    ) -> list[str]:
        """Runs of `agent` in one of `statuses` without a score of `kind` for
        `prompt_version`, newest first."""
        done = sa.select(run_scores.c.run_id).where(
            run_scores.c.kind == kind, run_scores.c.prompt_version == prompt_version
        )
        query = (
            sa.select(runs.c.id)
            .where(runs.c.agent == agent, runs.c.status.in_(statuses), runs.c.id.not_in(done))
            .order_by(runs.c.created_at.desc())
            .limit(limit)
        )
        with self._read() as conn:
            return list(conn.execute(query).scalars())

    def claim_unscored(
        self,
        *,
        statuses: Sequence[str],
        agents: Sequence[str] | None,
        limit: int,
        now: float,
        judged: Callable[[str], bool],
    ) -> list[ScoredRun]:
        """Claim up to `limit` runs in `statuses` (of `agents`, when given) not claimed yet,
        least recently updated first: each gets a marker row recording whether the judges
        score it (`judged`), written in the transaction that found it unclaimed."""
        done = sa.select(run_scores.c.run_id).where(
            run_scores.c.kind == _ONLINE, run_scores.c.name == _PROCESSED
        )
        query = (
            sa.select(runs.c.id)
            .where(runs.c.status.in_(statuses), runs.c.id.not_in(done))
            .order_by(runs.c.updated_at)
            .limit(limit)
        )
        if agents is not None:
            query = query.where(runs.c.agent.in_(agents))
        if self._postgres:
            query = query.with_for_update(skip_locked=True, of=runs)
        claimed = []
        with self.transaction() as conn:
            for run_id in conn.execute(query).scalars():
                scored = ScoredRun(run_id, *_prompt_of(started_payload(conn, run_id)))
                judge = judged(run_id)
                marker = NewScore(
                    run_id=run_id,
                    kind=_ONLINE,
                    name=_PROCESSED,
                    value=1.0 if judge else 0.0,
                    reason="judged" if judge else "signals only",
                    prompt_name=scored.prompt_name,
                    prompt_version=scored.prompt_version,
                    created_at=now,
                )
                conn.execute(run_scores.insert().values(values_of(marker)))
                claimed.append(scored)
        return claimed

    def per_prompt(self, *, prompt_name: str | None = None) -> list[PromptScores]:
        """Per prompt version (of `prompt_name`, when given): runs claimed, mean signal and
        judge scores, thumbs and corrections; sorted by prompt name, then version."""
        marker = run_scores.alias("marker")
        scored = sa.select(marker.c.run_id, marker.c.prompt_name, marker.c.prompt_version).where(
            marker.c.kind == _ONLINE, marker.c.name == _PROCESSED
        )
        if prompt_name is not None:
            scored = scored.where(marker.c.prompt_name == prompt_name)
        sq = scored.subquery()
        key = (sq.c.prompt_name, sq.c.prompt_version)
        with_feedback = sq.join(feedback, feedback.c.run_id == sq.c.run_id)
        with self._read() as conn:
            totals = conn.execute(sa.select(*key, sa.func.count()).group_by(*key)).all()
            metric = (run_scores.c.kind, run_scores.c.name)
            means = conn.execute(
                sa.select(*key, *metric, sa.func.avg(run_scores.c.value))
                .select_from(sq.join(run_scores, run_scores.c.run_id == sq.c.run_id))
                .where(run_scores.c.kind.in_(("signal", "judge")))
                .group_by(*key, *metric)
            ).all()
            thumbs = conn.execute(
                sa.select(*key, feedback.c.rating, sa.func.count())
                .select_from(with_feedback)
                .where(feedback.c.rating.is_not(None))
                .group_by(*key, feedback.c.rating)
            ).all()
            corrections = conn.execute(
                sa.select(*key, sa.func.count())
                .select_from(with_feedback)
                .where(feedback.c.correction.is_not(None))
                .group_by(*key)
            ).all()
        found: dict[tuple[Any, Any], dict[str, Any]] = {
            (name, version): {"runs": int(n), "signals": {}, "judges": {}}
            for name, version, n in totals
        }
        for name, version, kind, title, mean in means:
            bucket = "signals" if kind == "signal" else "judges"
            found[(name, version)][bucket][title] = float(mean)
        for name, version, rating, n in thumbs:
            side = "thumbs_up" if rating > 0 else "thumbs_down"
            found[(name, version)][side] = found[(name, version)].get(side, 0) + int(n)
        for name, version, n in corrections:
            found[(name, version)]["corrections"] = int(n)
        scores = [PromptScores(prompt_name=n, prompt_version=v, **f) for (n, v), f in found.items()]
        return sorted(scores, key=lambda s: (str(s.prompt_name), str(s.prompt_version)))

    def add_feedback(
        self,
        run_id: str,
        *,
        principal: str | None,
        rating: int | None,
        correction: str | None,
        comment: str | None,
    ) -> int:
        """Store feedback on a run; returns its id."""
        with self.transaction() as conn:
            result = conn.execute(
                feedback.insert().values(
                    run_id=run_id,
                    principal=principal,
                    rating=rating,
                    correction=correction,
                    comment=comment,
                    created_at=time.time(),
                )
            )
        key = result.inserted_primary_key
        return int(key[0]) if key else 0

    def feedback(self, run_id: str) -> list[dict[str, Any]]:
        """Feedback given on a run, oldest first."""
        with self._read() as conn:
            rows = conn.execute(
                sa.select(feedback).where(feedback.c.run_id == run_id).order_by(feedback.c.id)
            ).all()
        return [dict(r._mapping) for r in rows]


def _prompt_of(payload: str | None) -> tuple[str | None, str | None]:
    prompt = (json.loads(payload).get("prompt") or {}) if payload else {}
    return prompt.get("name"), prompt.get("version")
