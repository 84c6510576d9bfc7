"""A pipeline's state, folded from its journal: what each stage produced, what failed, what
a person or the exception handler decided.

```
pipeline_started    input, its trust label, grants, principal, tenant
stage_finished      stage, item, output (JSON), trust, run, usage      (by the stage, the
                    exception handler or a person)
stage_failed        stage, item, attempt, kind, error, run
exception_resolved  stage, item, round, action (retry | resolve | escalate), fixed input
pipeline_finished   status, output, handoff, error
handed_back         a person's answer for a stage, or "carry on": the pipeline resumes
```

The same `apply` runs live and on resume, so a resumed pipeline knows exactly which stage
executions finished (they are never run again) and which attempt each other one is at (its
idempotency key names that attempt, so its run is resumed rather than started twice).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any

from bosun.data.pipelines import PipelineEntry
from bosun.trust import Trust

__all__ = ["Key", "PipelineState", "PipelineStatus", "StageOutput", "lowest"]

Key = tuple[str, int | None]
"""(stage, fan-out index): one execution of a stage."""

_RANK = {Trust.TRUSTED: 2, Trust.USER: 1, Trust.UNTRUSTED: 0}


def lowest(labels: Any) -> Trust:
    """The least trusted of `labels` (trusted when there are none)."""
    return min(labels, key=_RANK.__getitem__, default=Trust.TRUSTED)


class PipelineStatus(StrEnum):
    """Where a pipeline is in its life."""

    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    ESCALATED = "escalated"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        """Finished for good."""
        return self in (PipelineStatus.COMPLETED, PipelineStatus.FAILED, PipelineStatus.CANCELLED)


@dataclass(frozen=True, slots=True)
class StageOutput:
    """What one stage execution produced."""

    value: Any
    """The output as JSON data."""
    trust: Trust
    """Its label: untrusted when anything untrusted went into it."""
    run_id: str | None = None
    """The run that produced it (agent stages, an exception handler's run)."""
    by: str = "stage"
    """``stage``, ``exception`` (the handler resolved it) or the person who handed it in."""


@dataclass
class PipelineState:
    """Everything the driver knows about a pipeline. Only `apply` changes it."""

    pipeline_id: str
    name: str
    status: PipelineStatus = PipelineStatus.QUEUED
    input: Any = None
    trust: Trust = Trust.USER
    grants: frozenset[str] = frozenset()
    principal: str | None = None
    tenant: str | None = None
    created_at: float = 0.0
    next_seq: int = 0
    outputs: dict[Key, StageOutput] = field(default_factory=dict)
    failures: dict[Key, int] = field(default_factory=dict)
    """Failed attempts per execution (an escalated run is not an attempt used up): the
    attempt index of the next try."""
    since_round: dict[Key, int] = field(default_factory=dict)
    """Failed attempts since the exception handler last had the execution."""
    rounds: dict[Key, int] = field(default_factory=dict)
    """Times the exception handler had the execution."""
    inputs: dict[Key, Any] = field(default_factory=dict)
    """Inputs the exception handler fixed (JSON), used instead of the upstream's."""
    last_failure: dict[Key, dict[str, Any]] = field(default_factory=dict)
    model_calls: int = 0
    tokens: int = 0
    cost_usd: Decimal = Decimal(0)
    runs: list[str] = field(default_factory=list)
    """Stage and exception-handler runs, in journal order."""
    output: Any = None
    handoff: dict[str, Any] | None = None
    error: str | None = None

    def apply(self, entry: PipelineEntry) -> None:
        """Fold one journal entry into the state."""
        p = json.loads(entry.payload)
        key: Key = (entry.stage or "", entry.item)
        kind = entry.kind
        if kind == "pipeline_started":
            self.input = p["input"]
            self.trust = Trust(p.get("trust", Trust.USER))
            self.grants = frozenset(p.get("grants", ()))
            self.principal = p.get("principal")
            self.tenant = p.get("tenant")
            self.created_at = entry.created_at
            self.status = PipelineStatus.RUNNING
        elif kind == "stage_finished":
            self.outputs[key] = StageOutput(
                p["output"], Trust(p["trust"]), entry.run_id, p.get("by", "stage")
            )
            usage = p.get("usage") or {}
            self.model_calls += int(usage.get("model_calls", 0))
            self.tokens += int(usage.get("tokens", 0))
            self.cost_usd += Decimal(str(usage.get("cost_usd") or 0))
        elif kind == "stage_failed":
            if p["kind"] != "escalated":  # a run waiting for a person is kept, not retried
                self.failures[key] = self.failures.get(key, 0) + 1
                self.since_round[key] = self.since_round.get(key, 0) + 1
            self.last_failure[key] = {**p, "run_id": entry.run_id}
            usage = p.get("usage") or {}
            self.model_calls += int(usage.get("model_calls", 0))
            self.tokens += int(usage.get("tokens", 0))
            self.cost_usd += Decimal(str(usage.get("cost_usd") or 0))
        elif kind == "exception_resolved":
            self.rounds[key] = self.rounds.get(key, 0) + 1
            self.since_round[key] = 0
            if p["action"] == "retry":
                self.inputs[key] = p["input"]
        elif kind == "pipeline_finished":
            self.status = PipelineStatus(p["status"])
            self.output = p.get("output")
            self.handoff = p.get("handoff")
            self.error = p.get("error")
        elif kind == "handed_back":
            if entry.stage is not None:  # a person's output for the failed stage
                self.outputs[key] = StageOutput(p["output"], Trust.TRUSTED, None, p["by"])
            self.status = PipelineStatus.RUNNING
            self.handoff = None
            self.error = None
        if entry.run_id is not None and entry.run_id not in self.runs:
            self.runs.append(entry.run_id)
        self.next_seq = entry.seq + 1

    def stage_done(self, stage: str, items: int | None) -> bool:
        """Whether every execution of `stage` finished (`items`: its fan-out size)."""
        if items is None:
            return (stage, None) in self.outputs
        return all((stage, i) in self.outputs for i in range(items))
