"""Types shared by the tool layer and the runtime: policies, results, call context."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "ApprovalDecision",
    "ApprovalRequired",
    "BreakerPolicy",
    "ErrorKind",
    "Reconciliation",
    "RetryPolicy",
    "Risk",
    "ToolContext",
    "ToolPolicy",
    "ToolResult",
    "idempotency_key",
]


class Risk(StrEnum):
    """How much damage a call can do."""

    READ = "read"
    WRITE = "write"
    IRREVERSIBLE = "irreversible"


class ErrorKind(StrEnum):
    """Why a tool call did not return data. Stable strings: journaled and shown to the model."""

    UNKNOWN_TOOL = "unknown_tool"
    INVALID_ARGUMENTS = "invalid_arguments"
    UNAUTHORIZED = "unauthorized"
    APPROVAL_REJECTED = "approval_rejected"
    DENIED_BY_CRITIC = "denied_by_critic"
    BLOCKED_BY_POLICY = "blocked_by_policy"
    RATE_LIMITED = "rate_limited"
    CIRCUIT_OPEN = "circuit_open"
    TIMEOUT = "timeout"
    TRANSIENT = "transient"
    FAILED = "failed"
    RETRY_WITH_GUIDANCE = "retry_with_guidance"
    INVALID_RESULT = "invalid_result"
    INTERCEPTED = "intercepted"
    NOT_RUN = "not_run"
    OUTCOME_UNKNOWN = "outcome_unknown"

    @property
    def retryable(self) -> bool:
        """Whether the retry layer may try the same call again."""
        return self in _RETRYABLE


_RETRYABLE = frozenset({ErrorKind.TIMEOUT, ErrorKind.TRANSIENT})


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """Exponential backoff with jitter, applied only to retryable error kinds."""

    attempts: int = 3
    """Total attempts, the first included."""
    initial_delay_s: float = 0.2
    """Delay before the second attempt."""
    max_delay_s: float = 5.0
    """Cap on any single delay."""
    jitter_s: float = 0.1
    """Random extra delay up to this many seconds."""


@dataclass(frozen=True, kw_only=True)
class BreakerPolicy:
    """Circuit breaker: opens after `failure_threshold` consecutive failures."""

    failure_threshold: int = 5
    """Consecutive failures that open the breaker."""
    cooldown_s: float = 30.0
    """Seconds open before one trial call is let through (half-open)."""


@dataclass(frozen=True, kw_only=True)
class ToolPolicy:
    """What a tool may do and how it is protected. Attached by ``@bosun.tool``."""

    scope: str
    """Permission a run must hold to call the tool (least privilege is per tool)."""
    risk: Risk = Risk.READ
    """Damage a call can do."""
    side_effect: bool = False
    """Whether the call changes the world outside the run."""
    requires_approval: bool = False
    """Hold every call for a human decision before it runs."""
    timeout_s: float = 30.0
    """Per attempt."""
    retry: RetryPolicy | None = field(default_factory=RetryPolicy)
    """`None` disables retries."""
    rate_limit: str | None = None
    """Per-tool limit in the `limits` notation, e.g. ``"10/second"``."""
    breaker: BreakerPolicy | None = field(default_factory=BreakerPolicy)
    """`None` disables the breaker."""
    idempotent: bool = False
    """The tool deduplicates by the idempotency key, so an uncertain replay may run it again."""
    credential: str | None = None
    """Name of the secret injected at call time; the model never sees it."""
    fallback: str | None = None
    """Name of a tool to call with the same arguments when this one fails."""
    untrusted_output: bool = False
    """The tool reads the outside world (mail, web, documents): its results are labelled
    untrusted, shown to the model as data, and taint the run."""
    outbound: tuple[str, ...] = ()
    """Arguments that carry data outward (recipients, URLs, amounts, account ids): their
    values must appear in trusted or user content, per the agent's `TaintPolicy`."""
    pii: frozenset[str] = frozenset()
    """PII entity types (``EMAIL_ADDRESS``, ...) the tool receives in clear; other
    placeholders reach it as placeholders."""


class ToolResult(BaseModel):
    """What the model gets back from a tool call: data, or an error kind and guidance."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ok: bool
    """Whether the call succeeded."""
    data: Any = None
    """The tool's return value (JSON-compatible) when `ok`."""
    error_kind: ErrorKind | None = None
    """Why it failed, when not `ok`."""
    guidance: str | None = None
    """What the model can do about the failure. Never a traceback."""
    attempts: int = 1
    """How many times the tool ran (retries included)."""
    untrusted: bool = Field(default=False, exclude=True)
    """The tool labelled this result untrusted itself (it returned a `bosun.trust.Content`
    so labelled: an agent called as a tool whose run saw untrusted content), whatever its
    policy's `untrusted_output` says. Never serialised: the journal keeps the label as the
    entry's ``trust``."""

    @classmethod
    def success(cls, data: Any, *, attempts: int = 1, untrusted: bool = False) -> ToolResult:
        """A successful result."""
        return cls(ok=True, data=data, attempts=attempts, untrusted=untrusted)

    @classmethod
    def failure(cls, kind: ErrorKind, guidance: str, *, attempts: int = 1) -> ToolResult:
        """A failed result with guidance for the model."""
        return cls(ok=False, error_kind=kind, guidance=guidance, attempts=attempts)

    def for_model(self) -> str:
        """The JSON text put in the tool message (no attempt count: it is bookkeeping)."""
        return self.model_dump_json(exclude={"attempts"}, exclude_none=True)


@dataclass(frozen=True, kw_only=True)
class ToolContext:
    """Facts about the call, passed to tools that ask for a ``ctx: ToolContext`` parameter."""

    run_id: str
    """The run making the call."""
    step: int
    """Journal position of the model response that proposed the call."""
    call_id: str
    """Id of the tool call within that response."""
    principal: str | None = None
    """Who the run acts for."""

    @property
    def idempotency_key(self) -> str:
        """Stable across replays of the same call: derived from (run, step, call id)."""
        return idempotency_key(self.run_id, self.step, self.call_id)


def idempotency_key(run_id: str, step: int, call_id: str) -> str:
    """The idempotency key of a tool call: 32 hex chars of sha256(run, step, call)."""
    return hashlib.sha256(f"{run_id}\x1f{step}\x1f{call_id}".encode()).hexdigest()[:32]


@dataclass(frozen=True, kw_only=True)
class ApprovalDecision:
    """A human's decision on a call held for approval."""

    approved: bool
    """Whether the call may run."""
    decided_by: str
    """Who decided."""
    reason: str | None = None
    """Why, shown to the model on rejection."""
    arguments: dict[str, Any] | None = None
    """Edited arguments to use instead of the model's, if the approver changed them."""


class ApprovalRequired(Exception):
    """Raised by the pipeline when a call needs a human decision that has not been made."""

    def __init__(self, tool: str, call_id: str) -> None:
        super().__init__(f"tool {tool!r} call {call_id!r} requires approval")
        self.tool = tool
        self.call_id = call_id


@dataclass(frozen=True, kw_only=True)
class Reconciliation:
    """A tool's answer, after a crash, to "did this interrupted call take effect?"."""

    done: bool | None
    """True: it happened (see `data`); False: it did not, safe to run; None: cannot tell."""
    data: Any = None
    """The call's result when `done` is True."""
