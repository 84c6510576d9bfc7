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
from dataclasses import asdict, dataclass
from typing import Any

from bosun.data.scores import NewScore, ScoredRun, ScoreRows
from bosun.data.store import Store
from bosun.evals.checks import CaseTrace, judge
from bosun.evals.dataset import Judge
from bosun.models.base import Model

__all__ = ["SIGNALS", "OnlineEvaluator", "Signal", "aggregate", "signals_for"]

logger = logging.getLogger(__name__)

_FINISHED = ("completed", "failed", "escalated", "waiting_human")
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
        self._scores = ScoreRows(store)

    def sampled(self, run_id: str) -> bool:
        """Whether the judges score this run (sticky: a hash of the run id)."""
        bucket = int.from_bytes(hashlib.sha256(run_id.encode()).digest()[:8], "big") % 10_000
        return bucket < self.sample_rate * 10_000

    async def score_due(self, *, limit: int = 50) -> int:
        """Score finished runs not scored yet; returns how many were taken."""
        claimed = await asyncio.to_thread(self._claim, limit)
        for run in claimed:
            try:
                await self._score(run)
            except Exception:  # one run's scoring must not stop the others
                logger.exception("online evaluation of run %s failed", run.run_id)
        return len(claimed)

    def _claim(self, limit: int) -> list[ScoredRun]:
        return self._scores.claim_unscored(
            statuses=_FINISHED,
            agents=self.agents,
            limit=limit,
            now=self._clock(),
            judged=self.sampled,
        )

    async def _score(self, run: ScoredRun) -> None:
        rows: list[dict[str, Any]] = [
            {"kind": "signal", "name": s.name, "value": s.value, "reason": s.reason[:2000]}
            for s in await asyncio.to_thread(signals_for, self.store, run.run_id)
        ]
        if self.judges and self.judge_model is not None and self.sampled(run.run_id):
            trace = await asyncio.to_thread(_trace, self.store, run.run_id)
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
            NewScore(
                run_id=run.run_id,
                prompt_name=run.prompt_name,
                prompt_version=run.prompt_version,
                created_at=now,
                **r,
            )
            for r in rows
        ]
        self._scores.add(stamped)


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
    return [
        asdict(row)
        | {
            "signals": {k: round(v, 4) for k, v in row.signals.items()},
            "judges": {k: round(v, 4) for k, v in row.judges.items()},
        }
        for row in ScoreRows(store).per_prompt(prompt_name=prompt_name)
    ]
