"""The rows the store reads and the operations it writes, as plain typed values.

Writes arrive as batches of `WriteOp` (`NewRun`, `Step`, `RunUpdate`, `AuditEvent`, and a
pipeline's `PipelineEntry` and `PipelineUpdate`) committed in one transaction; reads return
`RunRow`, `StepRow`, `PrincipalRow`, `ApiKeyRow`. Nothing here touches the database: the
planes above build and read these without importing SQLAlchemy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

__all__ = [
    "ApiKeyRow",
    "AuditEvent",
    "NewRun",
    "PipelineEntry",
    "PipelineUpdate",
    "PrincipalRow",
    "RunRow",
    "RunUpdate",
    "Step",
    "StepRow",
    "WriteOp",
    "as_dict",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class NewRun:
    """Insert a run row."""

    id: str
    agent: str
    status: str
    input: str
    grants: str
    principal: str | None = None
    tenant: str | None = None
    idempotency_key: str | None = None
    request_digest: str | None = None
    thread_id: str | None = None
    parent_id: str | None = None
    created_at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Step:
    """Append one journal entry."""

    run_id: str
    seq: int
    kind: str
    payload: str
    created_at: float
    tool: str | None = None
    call_id: str | None = None
    model: str | None = None
    status: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: Decimal | None = None
    latency_ms: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RunUpdate:
    """Update columns of a run row."""

    run_id: str
    values: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditEvent:
    """Append one row to the hash-chained audit log."""

    action: str
    payload: str
    created_at: float
    run_id: str | None = None
    seq: int | None = None
    actor: str | None = None
    approver: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PipelineEntry:
    """One entry of a pipeline's journal."""

    pipeline_id: str
    """The pipeline."""
    seq: int
    """Position in its journal, from 0."""
    kind: str
    """``pipeline_started``, ``stage_finished``, ``stage_failed``, ``exception_resolved``,
    ``pipeline_finished``, ``handed_back``."""
    payload: str
    """JSON."""
    created_at: float
    """Unix seconds."""
    stage: str | None = None
    """The stage the entry is about."""
    item: int | None = None
    """The fan-out index within the stage (None for a stage that does not fan out)."""
    run_id: str | None = None
    """The stage's run, for an agent stage."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PipelineUpdate:
    """Update columns of a pipeline row (`bosun.data.pipelines`)."""

    pipeline_id: str
    values: dict[str, Any] = field(default_factory=dict)


WriteOp = NewRun | Step | RunUpdate | AuditEvent | PipelineEntry | PipelineUpdate


@dataclass(frozen=True, slots=True)
class RunRow:
    """A run as stored."""

    id: str
    agent: str
    status: str
    input: str
    output: str | None
    handoff: str | None
    error: str | None
    principal: str | None
    tenant: str | None
    grants: str
    idempotency_key: str | None
    created_at: float
    updated_at: float
    input_tokens: int
    output_tokens: int
    cost_usd: Decimal | None
    assignee: str | None = None
    """Who claimed the run's escalation, if anyone."""
    request_digest: str | None = None
    """Digest of the (agent, input) submitted with the idempotency key; None without a key
    and for runs stored before migration 0005."""
    thread_id: str | None = None
    """The thread (conversation) the run is a turn of, if any."""


@dataclass(frozen=True, slots=True)
class StepRow:
    """A journal entry as stored."""

    run_id: str
    seq: int
    kind: str
    created_at: float
    tool: str | None
    call_id: str | None
    model: str | None
    status: str | None
    input_tokens: int | None
    output_tokens: int | None
    cost_usd: Decimal | None
    latency_ms: float | None
    payload: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PrincipalRow:
    """A principal as stored (`bosun.gateway.auth` resolves its roles to scopes)."""

    id: str
    tenant: str
    roles: str  # JSON list of role names
    created_at: float
    disabled: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class ApiKeyRow:
    """An API key as stored: a digest of the secret, never the secret."""

    key_id: str
    principal_id: str
    hash: str
    name: str | None
    created_at: float
    expires_at: float | None = None
    revoked_at: float | None = None
    last_used_at: float | None = None


def as_dict(
    op: NewRun | Step | AuditEvent | PipelineEntry | PrincipalRow | ApiKeyRow,
) -> dict[str, Any]:
    """The row's columns by name."""
    return {name: getattr(op, name) for name in op.__slots__}
