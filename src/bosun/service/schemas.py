"""The REST API's request and response bodies (they are the published OpenAPI schema)."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from bosun.data.store import RunRow, StepRow
from bosun.gateway.gateway import Approval, GatewayResult

__all__ = [
    "ApprovalDecision",
    "ApprovalOut",
    "EscalationOut",
    "EscalationResolution",
    "FeedbackIn",
    "FeedbackOut",
    "InputPart",
    "Page",
    "Problem",
    "RunCreate",
    "RunOut",
    "RunSummary",
    "StepOut",
]

_STRICT = ConfigDict(extra="forbid")
Id = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Note = Annotated[str, StringConstraints(min_length=1, max_length=20_000)]


class Problem(BaseModel):
    """An error, as RFC 9457 problem details (``application/problem+json``)."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    errors: list[dict[str, Any]] | None = None
    """Field errors of a malformed request."""
    retry_after: float | None = None
    """Seconds to wait, on 429 and 503 (also the Retry-After header)."""


class InputPart(BaseModel):
    """One labelled part of a run's input."""

    model_config = _STRICT

    text: str
    trust: Literal["user", "untrusted"] = "user"
    """``untrusted``: content from a third party (an email, a web page): screened and
    spotlighted, and side effects in its run need grounding or approval. Clients cannot
    label content ``trusted``."""
    source: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:@/-]{1,64}$")] = "input"
    """Where the text came from (``email``, ``web:example.com``, ...)."""


class RunCreate(BaseModel):
    """``POST /v1/runs``."""

    model_config = _STRICT

    agent: Id
    input: str | list[InputPart]
    idempotency_key: Id | None = None
    """A repeated key returns the run it first created (also the Idempotency-Key header)."""
    conversation_id: Id | None = None
    """Groups the runs of one conversation: a prompt rollout keeps a conversation on one
    prompt version."""
    thread_id: Id | None = None
    """Makes the run a turn of this thread (within the caller's tenant): it starts from the
    thread's summary and most recent turns. Also the conversation when none is given."""
    stream: bool = False
    """Stream the model's text from its first call, for ``GET /v1/runs/{id}/events?text=true``
    (text streams only when the run is driven in the API's process)."""


class StepOut(BaseModel):
    """One journal entry, without its payload."""

    seq: int
    kind: str
    created_at: float
    tool: str | None = None
    call_id: str | None = None
    model: str | None = None
    status: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: str | None = None
    latency_ms: float | None = None

    @classmethod
    def of(cls, step: StepRow) -> StepOut:
        """From a stored step."""
        return cls(
            seq=step.seq,
            kind=step.kind,
            created_at=step.created_at,
            tool=step.tool,
            call_id=step.call_id,
            model=step.model,
            status=step.status,
            input_tokens=step.input_tokens,
            output_tokens=step.output_tokens,
            cost_usd=None if step.cost_usd is None else str(step.cost_usd),
            latency_ms=step.latency_ms,
        )


class RunSummary(BaseModel):
    """A run in a list."""

    id: str
    agent: str
    status: str
    created_at: float
    updated_at: float
    input_tokens: int
    output_tokens: int
    cost_usd: str | None
    assignee: str | None = None
    thread_id: str | None = None

    @classmethod
    def of(cls, row: RunRow) -> RunSummary:
        """From a stored run row."""
        return cls(
            id=row.id,
            agent=row.agent,
            status=row.status,
            created_at=row.created_at,
            updated_at=row.updated_at,
            input_tokens=row.input_tokens,
            output_tokens=row.output_tokens,
            cost_usd=None if row.cost_usd is None else str(row.cost_usd),
            assignee=row.assignee,
            thread_id=row.thread_id,
        )


class HeldCall(BaseModel):
    """A call waiting for a decision."""

    call_id: str
    tool: str
    arguments: str


class RunOut(RunSummary):
    """``GET /v1/runs/{id}``: status, outcome, steps and cost."""

    output: str | None = None
    """The final answer after output guardrails (PII resolved only with ``pii:read``)."""
    guardrail: str | None = None
    """allow / redact / block / escalate, when output guardrails ran."""
    error: str | None = None
    handoff: dict[str, Any] | None = None
    """The escalation package, when a person is needed."""
    model_calls: int = 0
    tool_calls: int = 0
    retries: int = 0
    waiting_for: list[HeldCall] = Field(default_factory=list)
    confidence: float | None = None
    """The answer's confidence, when the agent checks it against the knowledge base."""
    citations: list[dict[str, Any]] = Field(default_factory=list)
    """The passages the answer draws on: ref, document_id, title, version, span."""
    corpus_version: int | None = None
    """The knowledge base's corpus version the answer was drawn from."""
    steps: list[StepOut] = Field(default_factory=list)

    @classmethod
    def build(cls, row: RunRow, steps: list[StepRow], result: GatewayResult) -> RunOut:
        """From the run row, the gateway's view of the run and its journal."""
        run = result.run
        return cls(
            **RunSummary.of(row).model_dump(),
            output=result.output,
            guardrail=None if result.guardrail is None else result.guardrail.action,
            error=run.error,
            handoff=None if run.handoff is None else run.handoff.model_dump(mode="json"),
            model_calls=run.model_calls,
            tool_calls=run.tool_calls,
            retries=run.retries,
            waiting_for=[
                HeldCall(call_id=c.id, tool=c.name, arguments=c.arguments) for c in run.waiting_for
            ],
            confidence=run.confidence,
            citations=[dict(c) for c in run.citations],
            corpus_version=run.corpus_version,
            steps=[StepOut.of(s) for s in steps],
        )


class Page(BaseModel):
    """A page of runs, newest first."""

    items: list[RunSummary]
    next_cursor: str | None = None
    """Pass as ``cursor`` for the next (older) page; None on the last page."""


class ApprovalOut(BaseModel):
    """A call held for approval."""

    id: str
    run_id: str
    agent: str
    call_id: str
    tool: str
    arguments: str
    reasons: Any = None
    requested_at: float

    @classmethod
    def of(cls, approval: Approval) -> ApprovalOut:
        """From the gateway's view."""
        return cls(
            id=approval.id,
            run_id=approval.run_id,
            agent=approval.agent,
            call_id=approval.call_id,
            tool=approval.tool,
            arguments=approval.arguments,
            reasons=approval.reasons,
            requested_at=approval.requested_at,
        )


class ApprovalDecision(BaseModel):
    """``POST /v1/approvals/{id}``."""

    model_config = _STRICT

    decision: Literal["approve", "reject"]
    reason: Annotated[str, StringConstraints(max_length=2000)] | None = None
    arguments: dict[str, Any] | None = None
    """Edited arguments to run the call with instead (approve only)."""


class EscalationOut(BaseModel):
    """A run waiting for a person."""

    run_id: str
    agent: str
    status: str
    handoff: dict[str, Any] | None
    assignee: str | None
    escalated_at: float

    @classmethod
    def of(cls, row: RunRow) -> EscalationOut:
        """From a stored run row."""
        handoff = json.loads(row.handoff) if row.handoff else None
        return cls(
            run_id=row.id,
            agent=row.agent,
            status=row.status,
            handoff=handoff if isinstance(handoff, dict) else None,
            assignee=row.assignee,
            escalated_at=row.updated_at,
        )


class EscalationResolution(BaseModel):
    """``POST /v1/escalations/{run_id}/resolve``."""

    model_config = _STRICT

    action: Literal["hand_back", "close"]
    """``hand_back``: the agent continues with the note in context; ``close``: the note is
    the run's outcome."""
    note: Note


class FeedbackIn(BaseModel):
    """``POST /v1/runs/{id}/feedback``."""

    model_config = _STRICT

    rating: Literal["up", "down"] | None = None
    correction: Annotated[str, StringConstraints(max_length=100_000)] | None = None
    """What the answer should have been."""
    comment: Annotated[str, StringConstraints(max_length=10_000)] | None = None

    @model_validator(mode="after")
    def _something(self) -> FeedbackIn:
        if self.rating is None and not self.correction and not self.comment:
            raise ValueError("feedback needs a rating, a correction or a comment")
        return self


class FeedbackOut(BaseModel):
    """Stored feedback."""

    id: int
    run_id: str
