"""What an evaluation produced: per-case verdicts and the aggregate, as stored in ``eval_runs``."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from bosun.data.evals import EvalRuns, NewEvalRun
from bosun.data.store import Store
from bosun.evals.checks import AssertionResult, ProposedCall
from bosun.evals.sandbox import RecordedCall

__all__ = ["CaseReport", "EvalReport", "save_report", "sum_known"]


@dataclass(frozen=True, kw_only=True)
class CaseReport:
    """One case's outcome."""

    id: str
    """Case id."""
    passed: bool
    """Every assertion held (and the case ran)."""
    critical: bool
    """Marked critical in the dataset."""
    status: str
    """The run's final status (``error`` when it could not run)."""
    output: str | None
    """The final answer."""
    assertions: tuple[AssertionResult, ...]
    """Each assertion's verdict."""
    cost_usd: Decimal | None
    """The run's cost (None: unknown)."""
    judge_cost_usd: Decimal | None
    """The judges' calls (None: none priced)."""
    latency_ms: float
    """Wall time of the run, approvals included, judges not."""
    steps: int
    """Model calls."""
    calls: tuple[ProposedCall, ...] = ()
    """Tool calls the model proposed."""
    recorded: tuple[RecordedCall, ...] = ()
    """Calls that reached the sandbox (side effects: recorded, not executed)."""
    run_id: str | None = None
    """The run, in the evaluation's run store."""
    error: str | None = None
    """Why the case could not run."""

    def to_json(self) -> dict[str, Any]:
        """JSON form for the stored report."""
        return {
            "id": self.id,
            "passed": self.passed,
            "critical": self.critical,
            "status": self.status,
            "output": self.output,
            "assertions": [a.to_json() for a in self.assertions],
            "cost_usd": _money(self.cost_usd),
            "judge_cost_usd": _money(self.judge_cost_usd),
            "latency_ms": round(self.latency_ms, 3),
            "steps": self.steps,
            "calls": [{"tool": c.tool, "arguments": c.arguments} for c in self.calls],
            "recorded": [r.to_json() for r in self.recorded],
            "run_id": self.run_id,
            "error": self.error,
        }


@dataclass(frozen=True, kw_only=True)
class EvalReport:
    """An evaluation of one agent (and prompt version) on one dataset."""

    id: str
    """The evaluation run's id (``eval_runs.id`` once saved)."""
    dataset: str
    """Dataset name."""
    dataset_path: str | None
    """Where it was read from."""
    dataset_digest: str
    """sha256 of the dataset."""
    agent: str
    """Agent name."""
    prompt_name: str | None
    """The prompt evaluated, if any."""
    prompt_version: str | None
    """Its version."""
    cases: tuple[CaseReport, ...]
    """Per case, in dataset order."""
    created_at: float = field(default_factory=time.time)
    """When it ran."""

    @property
    def passed(self) -> int:
        """Cases passed."""
        return sum(c.passed for c in self.cases)

    @property
    def pass_rate(self) -> float:
        """Share of cases passed."""
        return self.passed / len(self.cases) if self.cases else 0.0

    @property
    def cost_usd(self) -> Decimal | None:
        """Runs and judges together; None when nothing was priced."""
        costs = [c for case in self.cases for c in (case.cost_usd, case.judge_cost_usd)]
        known = [c for c in costs if c is not None]
        return sum(known, Decimal(0)) if known else None

    def latency_ms(self, quantile: float) -> float:
        """Nearest-rank percentile of case latency (``0.5``, ``0.95``)."""
        values = sorted(c.latency_ms for c in self.cases)
        if not values:
            return 0.0
        return values[max(math.ceil(quantile * len(values)) - 1, 0)]

    def outcomes(self) -> dict[str, CaseReport]:
        """Cases by id (what the gate pairs)."""
        return {c.id: c for c in self.cases}

    def aggregate(self) -> dict[str, Any]:
        """The summary numbers."""
        return {
            "cases": len(self.cases),
            "passed": self.passed,
            "pass_rate": self.pass_rate,
            "cost_usd": _money(self.cost_usd),
            "run_cost_usd": _money(sum_known(c.cost_usd for c in self.cases)),
            "judge_cost_usd": _money(sum_known(c.judge_cost_usd for c in self.cases)),
            "latency_p50_ms": round(self.latency_ms(0.5), 3),
            "latency_p95_ms": round(self.latency_ms(0.95), 3),
            "errors": sum(c.error is not None for c in self.cases),
        }

    def to_json(self) -> dict[str, Any]:
        """The stored report: per case and aggregate."""
        return {
            "dataset": self.dataset,
            "dataset_path": self.dataset_path,
            "agent": self.agent,
            "prompt": None
            if self.prompt_name is None
            else {"name": self.prompt_name, "version": self.prompt_version},
            "aggregate": self.aggregate(),
            "cases": [c.to_json() for c in self.cases],
        }


def save_report(
    store: Store,
    report: EvalReport,
    *,
    gate: Mapping[str, Any] | None = None,
    gate_passed: bool | None = None,
) -> str:
    """Store `report` as an ``eval_runs`` row (with a gate verdict, for a candidate)."""
    row = NewEvalRun(
        id=report.id,
        dataset=report.dataset,
        dataset_digest=report.dataset_digest,
        agent=report.agent,
        prompt_name=report.prompt_name,
        prompt_version=report.prompt_version,
        created_at=report.created_at,
        cases=len(report.cases),
        passed=report.passed,
        cost_usd=report.cost_usd,
        report=json.dumps(report.to_json(), ensure_ascii=False),
        gate=None if gate is None else json.dumps(gate, ensure_ascii=False),
        gate_passed=gate_passed,
    )
    return EvalRuns(store).add(row)


def sum_known(values: Iterable[Decimal | None]) -> Decimal | None:
    """The sum of the known values; None when none is known."""
    known = [v for v in values if v is not None]
    return sum(known, Decimal(0)) if known else None


def _money(value: Decimal | None) -> str | None:
    return None if value is None else str(value)
