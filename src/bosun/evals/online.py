"""Online evaluation: live runs scored after they finish, and aggregated per prompt version.

```
finished run -> signals from its journal (every run):
                  approval_rejected   a person rejected a held call
                  human_edited        a person approved a call with edited arguments
                  write_rejected      a side-effecting tool refused the write (error result)
                  escalated           the run ended with a person
             -> judges (a sampled share, sticky by run id): a judge model scores the
                  output against each rubric, 0..1 with a reason
             -> rows in run_scores, stamped with the run's prompt name and version
explicit feedback (POST /v1/runs/{id}/feedback) is joined in when aggregating
```

Scoring is asynchronous: `OnlineEvaluator.score_due` is called by the worker's sweep (or
``bosun online score``), never on a run's path. A run is scored once: a ``processed`` row
marks it, so several workers sweeping together score it at most once per race (the marker
is written first, in the same transaction that checks for it).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from bosun.data.schema import feedback, run_scores, runs, steps
from bosun.data.store import Store
from bosun.evals.checks import CaseTrace, judge
from bosun.evals.dataset import Judge
from bosun.models.base import Model

__all__ = ["SIGNALS", "OnlineEvaluator", "Signal", "aggregate", "signals_for"]

logger = logging.getLogger(__name__)

_FINISHED = ("completed", "failed", "escalated", "waiting_human")
_PROCESSED = "processed"
_WRITE_ERRORS = ("failed", "invalid_arguments", "invalid_result", "unauthorized")
SIGNALS = ("approval_rejected", "human_edited", "write_rejected", "escalated")
"""The implicit signals, in report order."""


@dataclass(frozen=True, slots=True)
class Signal:
    """An implicit judgement of a run, read from what happened to it."""

    name: str
    value: float
    reason: str


def signals_for(store: Store, run_id: str) -> list[Signal]:
    """The implicit signals of one run (see the module doc): each 1.0 when it happened and
    0.0 when not, so their means per prompt version are rates."""
    journal = store.journal(run_id)
    seen: dict[str, list[str]] = {name: [] for name in SIGNALS}
    for step in journal:
        if step.kind == "approval_decided":
            p = json.loads(step.payload)
            who = p.get("decided_by")
            if not p.get("approved"):
                seen["approval_rejected"].append(f"{who}: {p.get('reason') or ''}")
            elif p.get("arguments") is not None:
                seen["human_edited"].append(f"{who} edited {p.get('call_id')}")
    side_effects = {
        row["seq"]
        for row in store.audit_rows(run_id=run_id)
        if row["action"] == "tool_call" and row["seq"] is not None
    }
    for step in journal:
        if step.kind == "tool_result" and step.seq in side_effects and step.status in _WRITE_ERRORS:
            seen["write_rejected"].append(f"{step.tool}: {step.status}")
    status = store.get_run(run_id).status
    if status in ("escalated", "waiting_human") or any(
        s.kind == "human_requested" for s in journal
    ):
        seen["escalated"].append(status)
    return [
        Signal(name, 1.0 if reasons else 0.0, "; ".join(reasons)[:2000])
        for name, reasons in seen.items()
    ]


class OnlineEvaluator:
    """Scores finished runs: signals for all, judges for a sampled share."""

    def __init__(
        self,
        store: Store,
        *,
        judges: Sequence[Judge] = (),
        judge_model: Model | None = None,
        sample_rate: float = 0.1,
        agents: Sequence[str] | None = None,
        clock: Any = time.time,
    ) -> None:
        if not 0 <= sample_rate <= 1:
            raise ValueError("sample_rate is a share between 0 and 1")
        if judges and judge_model is None:
            raise ValueError("judges need a judge_model")
        self.store = store
        self.judges = tuple(judges)
        self.judge_model = judge_model
        self.sample_rate = sample_rate
        self.agents = None if agents is None else tuple(agents)
        self._clock = clock

    def sampled(self, run_id: str) -> bool:
        """Whether the judges score this run (sticky: a hash of the run id)."""
        bucket = int.from_bytes(hashlib.sha256(run_id.encode()).digest()[:8], "big") % 10_000
        return bucket < self.sample_rate * 10_000

    async def score_due(self, *, limit: int = 50) -> int:
        """Score finished runs not scored yet; returns how many were taken."""
        claimed = await asyncio.to_thread(self._claim, limit)
        for run_id, prompt in claimed:
            try:
                await self._score(run_id, prompt)
            except Exception:  # one run's scoring must not stop the others
                logger.exception("online evaluation of run %s failed", run_id)
        return len(claimed)

    def _claim(self, limit: int) -> list[tuple[str, tuple[str | None, str | None]]]:
        done = sa.select(run_scores.c.run_id).where(
            run_scores.c.kind == "online", run_scores.c.name == _PROCESSED
        )
        query = (
            sa.select(runs.c.id)
            .where(runs.c.status.in_(_FINISHED), runs.c.id.not_in(done))
            .order_by(runs.c.updated_at)
            .limit(limit)
        )
        if self.agents is not None:
            query = query.where(runs.c.agent.in_(self.agents))
        if self.store.dialect == "postgresql":
            query = query.with_for_update(skip_locked=True, of=runs)
        claimed = []
        now = self._clock()
        with self.store._write() as conn:
            for run_id in conn.execute(query).scalars():
                prompt = _prompt_of(conn, run_id)
                judged = self.sampled(run_id)
                conn.execute(
                    run_scores.insert().values(
                        run_id=run_id,
                        kind="online",
                        name=_PROCESSED,
                        value=1.0 if judged else 0.0,
                        reason="judged" if judged else "signals only",
                        prompt_name=prompt[0],
                        prompt_version=prompt[1],
                        created_at=now,
                    )
                )
                claimed.append((run_id, prompt))
        return claimed

    async def _score(self, run_id: str, prompt: tuple[str | None, str | None]) -> None:
        rows: list[dict[str, Any]] = [
            {"kind": "signal", "name": s.name, "value": s.value, "reason": s.reason[:2000]}
            for s in await asyncio.to_thread(signals_for, self.store, run_id)
        ]
        if self.judges and self.judge_model is not None and self.sampled(run_id):
            trace = await asyncio.to_thread(_trace, self.store, run_id)
            for spec in self.judges:
                verdict = await judge(spec, trace, self.judge_model)
                rows.append(
                    {
                        "kind": "judge",
                        "name": spec.name or spec.rubric[:200],
                        "value": verdict.score,
                        "reason": verdict.reason[:2000],
                    }
                )
        now = self._clock()
        stamped = [
            {**r, "run_id": run_id, "prompt_name": prompt[0], "prompt_version": prompt[1]}
            | {"created_at": now}
            for r in rows
        ]
        with self.store._write() as conn:
            conn.execute(run_scores.insert(), stamped)


def _prompt_of(conn: sa.Connection, run_id: str) -> tuple[str | None, str | None]:
    payload = conn.execute(
        sa.select(steps.c.payload).where(steps.c.run_id == run_id, steps.c.seq == 0)
    ).scalar()
    prompt = (json.loads(payload).get("prompt") or {}) if payload else {}
    return prompt.get("name"), prompt.get("version")


def _trace(store: Store, run_id: str) -> CaseTrace:
    row = store.get_run(run_id)
    return CaseTrace(
        input=row.input,
        status=row.status,
        output=row.output,
        escalated=row.status in ("escalated", "waiting_human"),
        calls=(),
        cost_usd=row.cost_usd,
        steps=0,
    )


def aggregate(store: Store, *, prompt_name: str | None = None) -> list[dict[str, Any]]:
    """Per prompt version: runs scored, mean judge scores, signal rates, thumbs."""
    marker = run_scores.alias("marker")
    scored = sa.select(marker.c.run_id, marker.c.prompt_name, marker.c.prompt_version).where(
        marker.c.kind == "online", marker.c.name == _PROCESSED
    )
    if prompt_name is not None:
        scored = scored.where(marker.c.prompt_name == prompt_name)
    scored_sq = scored.subquery()
    key = (scored_sq.c.prompt_name, scored_sq.c.prompt_version)
    with store.engine.connect() as conn:
        totals = conn.execute(sa.select(*key, sa.func.count()).group_by(*key)).all()
        means = conn.execute(
            sa.select(*key, run_scores.c.kind, run_scores.c.name, sa.func.avg(run_scores.c.value))
            .select_from(scored_sq.join(run_scores, run_scores.c.run_id == scored_sq.c.run_id))
            .where(run_scores.c.kind.in_(("signal", "judge")))
            .group_by(*key, run_scores.c.kind, run_scores.c.name)
        ).all()
        thumbs = conn.execute(
            sa.select(*key, feedback.c.rating, sa.func.count())
            .select_from(scored_sq.join(feedback, feedback.c.run_id == scored_sq.c.run_id))
            .where(feedback.c.rating.is_not(None))
            .group_by(*key, feedback.c.rating)
        ).all()
        corrections = conn.execute(
            sa.select(*key, sa.func.count())
            .select_from(scored_sq.join(feedback, feedback.c.run_id == scored_sq.c.run_id))
            .where(feedback.c.correction.is_not(None))
            .group_by(*key)
        ).all()
    out: dict[tuple[Any, Any], dict[str, Any]] = {}
    for name, version, n in totals:
        out[(name, version)] = {
            "prompt_name": name,
            "prompt_version": version,
            "runs": int(n),
            "signals": {},
            "judges": {},
            "thumbs_up": 0,
            "thumbs_down": 0,
            "corrections": 0,
        }
    for name, version, kind, metric, mean in means:
        bucket = "signals" if kind == "signal" else "judges"
        out[(name, version)][bucket][metric] = round(float(mean), 4)
    for name, version, rating, n in thumbs:
        out[(name, version)]["thumbs_up" if rating > 0 else "thumbs_down"] += int(n)
    for name, version, n in corrections:
        out[(name, version)]["corrections"] = int(n)
    return sorted(out.values(), key=lambda r: (str(r["prompt_name"]), str(r["prompt_version"])))
