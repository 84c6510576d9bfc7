"""Stage failures, and what the exception handler answers about them.

A stage execution fails when its function raises, its run fails or gives an answer that is
not its output type, or it times out. It is retried per its `StagePolicy`; a failure retries
did not fix goes to the pipeline's exception handler, which knows the known failure modes
(a field it can look up, an address to normalise, an out-of-stock item to substitute by
policy) and answers with a `Resolution`: run the stage again with a fixed input, take this
output instead, or escalate with a reason. A run that escalated (a reviewer blocked its
action, it waits for a person) is never retried nor handed to the handler: it already asked
for a person.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

__all__ = ["FailureKind", "Resolution", "StageError", "StageFailure"]

FailureKind = Literal["error", "timeout", "invalid_output", "escalated", "budget"]


class StageFailure(BaseModel):
    """What the exception handler is told about a failed stage execution."""

    model_config = ConfigDict(frozen=True)

    pipeline_id: str
    """The pipeline."""
    pipeline: str
    """Its name."""
    stage: str
    """The stage that failed."""
    item: int | None
    """The fan-out index, if the stage fans out."""
    kind: FailureKind
    """What went wrong."""
    error: str
    """How, in a sentence (the exception, the run's error, the validation message)."""
    input: dict[str, Any]
    """The execution's input, as JSON."""
    attempts: int
    """Attempts made so far."""
    run_id: str | None = None
    """The failed attempt's run, for an agent stage."""


class Resolution(BaseModel):
    """The exception handler's answer."""

    model_config = ConfigDict(frozen=True)

    action: Literal["retry", "resolve", "escalate"]
    """retry: run the stage again with `input`; resolve: `output` is the stage's output;
    escalate: a person must handle it (`reason` says why)."""
    input: dict[str, Any] | None = None
    """The fixed input, for ``retry`` (validated against the stage's input type)."""
    output: dict[str, Any] | None = None
    """The output, for ``resolve`` (validated against the stage's output type)."""
    reason: str = ""
    """What the handler found, for the journal, the audit log and the handoff."""

    @classmethod
    def retry(cls, input: BaseModel | dict[str, Any], reason: str = "") -> Resolution:
        """Run the stage again with a fixed input."""
        data = input.model_dump(mode="json") if isinstance(input, BaseModel) else input
        return cls(action="retry", input=data, reason=reason)

    @classmethod
    def resolve(cls, output: BaseModel | dict[str, Any], reason: str = "") -> Resolution:
        """Use `output` as the stage's output."""
        data = output.model_dump(mode="json") if isinstance(output, BaseModel) else output
        return cls(action="resolve", output=data, reason=reason)

    @classmethod
    def escalate(cls, reason: str) -> Resolution:
        """Hand the pipeline to a person."""
        return cls(action="escalate", reason=reason)


class StageError(Exception):
    """One failed attempt, inside the driver."""

    def __init__(
        self,
        kind: FailureKind,
        message: str,
        *,
        run_id: str | None = None,
        usage: dict[str, Any] | None = None,
        handoff: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.kind: FailureKind = kind
        self.message = message
        self.run_id = run_id
        self.usage = usage or {}
        self.handoff = handoff
