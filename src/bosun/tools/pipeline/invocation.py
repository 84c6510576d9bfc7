"""What every stage of the tool pipeline sees: the `Invocation`, the stage types, and the
failures decided before the tool runs (``attempts=0``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

from pydantic import BaseModel, ValidationError

from bosun.models.base import ToolCall
from bosun.tools.base import ApprovalDecision, ErrorKind, ToolContext, ToolResult
from bosun.tools.decorator import Tool

__all__ = ["AnyTool", "Invocation", "Next", "Stage", "explain", "fail"]

AnyTool = Tool[..., Any]
Next = Callable[["Invocation", AnyTool, BaseModel], Awaitable[ToolResult]]
"""The rest of the pipeline, as seen by a stage."""
Stage = Callable[["Invocation", AnyTool, BaseModel, Next], Awaitable[ToolResult]]
"""One wrapper: may answer itself or call ``call_next`` (with other arguments, even)."""

_MAX_ERRORS: Final = 10


@dataclass(frozen=True, kw_only=True)
class Invocation:
    """One tool call to execute, with everything the pipeline decides on."""

    call: ToolCall
    """The call as the model proposed it (raw JSON arguments)."""
    ctx: ToolContext
    """Run, step and call id; handed to tools that ask for it."""
    grants: frozenset[str]
    """Scopes the run's principal holds."""
    approval: ApprovalDecision | None = None
    """The human decision on this call, once there is one."""
    force_approval: bool = False
    """Hold the call for approval even if the tool's policy does not (e.g. tainted context)."""
    reveal: Callable[[Any, frozenset[str]], Any] | None = None
    """Swaps PII placeholders in the arguments for the originals of the given entity types;
    used only for tools whose policy names PII types, inside the call stage."""


def fail(kind: ErrorKind, guidance: str) -> ToolResult:
    """A failure decided before the tool ran."""
    return ToolResult.failure(kind, guidance, attempts=0)


def explain(tool: str, exc: ValidationError, *, by: str = "model") -> str:
    """Validation errors as guidance: which field, what was expected. No input echoed back."""
    errors = exc.errors(include_url=False, include_context=False, include_input=False)
    lines = [
        f"- {'.'.join(str(part) for part in error['loc']) or '(arguments)'}: {error['msg']}"
        for error in errors[:_MAX_ERRORS]
    ]
    if len(errors) > _MAX_ERRORS:
        lines.append(f"- and {len(errors) - _MAX_ERRORS} more")
    who = "The arguments" if by == "model" else "The arguments the reviewer approved"
    return (
        f"{who} for {tool!r} are invalid:\n"
        + "\n".join(lines)
        + "\nFix these arguments and call the tool again."
    )
