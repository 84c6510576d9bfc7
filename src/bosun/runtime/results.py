"""What the runtime hands back about a run: its result, a stored snapshot, and the observer
protocol that sees its durable entries."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

from bosun.data.store import RunRow, StepRow, WriteOp
from bosun.models.base import ToolCall, Usage
from bosun.runtime.state import Handoff, RunState, RunStatus

if TYPE_CHECKING:
    from bosun.runtime.driver import Step

__all__ = ["JournalObserver", "RunResult", "RunSnapshot", "StepResult"]


@dataclass(frozen=True, slots=True)
class RunResult:
    """How a run stands after the runtime stopped driving it."""

    run_id: str
    """The run."""
    agent: str
    """Agent name."""
    status: RunStatus
    """Completed, escalated, waiting for approval, ..."""
    output: str | None
    """Final answer, when completed."""
    handoff: Handoff | None
    """The package for a person, when escalated."""
    error: str | None
    """What went wrong, when failed."""
    usage: Usage
    """Tokens over all model calls."""
    cost_usd: Decimal | None
    """Spend; None when some call's price is unknown and nothing was priced."""
    model_calls: int
    """Model calls made."""
    tool_calls: int
    """Tool calls made."""
    retries: int
    """Model and tool retries."""
    waiting_for: tuple[ToolCall, ...] = ()
    """Calls held for a person's decision (`Runtime.decide` takes their ids)."""
    tainted: bool = False
    """Untrusted content reached the run's context: its output is untrusted too."""
    confidence: float | None = None
    """The final answer's confidence (`Agent(confidence=...)`), when it was checked."""
    citations: tuple[dict[str, Any], ...] = ()
    """The passages the answer draws on: ref, document_id, title, version, span."""
    corpus_version: int | None = None
    """The knowledge base's corpus version the answer was drawn from, when it was checked."""

    @classmethod
    def of(cls, state: RunState) -> RunResult:
        """Snapshot a run state."""
        check = state.answer_check
        return cls(
            run_id=state.run_id,
            agent=state.agent,
            status=state.status,
            output=state.output,
            handoff=state.handoff,
            error=state.error,
            usage=state.usage,
            cost_usd=None if state.cost_unknown and not state.cost_usd else state.cost_usd,
            model_calls=state.model_calls,
            tool_calls=state.tool_calls,
            retries=state.retries,
            waiting_for=tuple(c for c in state.pending if c.id in state.awaiting_approval),
            tainted=bool(state.taint),
            confidence=None if check is None else check.get("confidence"),
            citations=tuple(check.get("citations") or ()) if check else (),
            corpus_version=None if check is None else check.get("corpus_version"),
        )


@dataclass(frozen=True, slots=True)
class StepResult:
    """How a run stands after one step (`Runtime.step`)."""

    result: RunResult
    """The run after the step."""
    next: Step | None
    """The step that comes next; None when the run finished or waits for a person."""
    seq: int
    """The journal position after the step: hand it to the next `Runtime.step`."""


@dataclass(frozen=True, slots=True)
class RunSnapshot:
    """A stored run read once: its row, its journal, and the state folded from the journal."""

    row: RunRow
    """The run row (tenant, timestamps, assignee, totals)."""
    steps: list[StepRow]
    """Every journal entry, in order."""
    state: RunState
    """The fold of `steps`."""


class JournalObserver(Protocol):
    """Sees each batch of a run's journal entries once it is durable (metrics)."""

    def observe(self, agent: str, ops: Sequence[WriteOp]) -> None:
        """Called on the event loop: keep it to counters, never I/O."""
        ...
