"""Budgets the runtime enforces, whatever the model does."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from bosun.runtime.state import BudgetBase, RunState

__all__ = ["Budget", "SpendGuard"]


class SpendGuard(Protocol):
    """Spend limits beyond one run (per agent or tenant and day), checked before every model
    call of every run: `bosun.observe.cost.CostGuard`."""

    async def before_model_call(self, state: RunState) -> str | None:
        """The cap a new model call would break, as a reason (the run escalates), or None."""
        ...

    async def charged(self, state: RunState, cost_usd: Decimal) -> None:
        """A call of the run cost `cost_usd` (journaled already)."""
        ...


@dataclass(frozen=True, kw_only=True)
class Budget:
    """Limits for one run; `None` means unlimited. Checked before every model and tool call."""

    max_steps: int | None = 20
    """Model calls."""
    max_tokens: int | None = None
    """Input plus output tokens over all model calls."""
    max_cost_usd: Decimal | None = None
    """Spend in USD. Calls whose price is unknown count as zero and are flagged in the state."""
    max_tool_calls: int | None = 50
    """Tool calls, failed ones included."""
    max_wall_s: float | None = 600.0
    """Seconds spent running (time parked waiting for a person does not count)."""
    lifetime: bool = True
    """The limits hold for the run's whole life, across hand-backs and resumes. False gives
    the agent a fresh allowance each time a person hands the run back (usage then counts
    from the last hand-back, `RunState.budget_base`)."""

    def base(self, state: RunState) -> BudgetBase:
        """Where usage counts from: the run's start, or its last hand-back."""
        return state.budget_base if not self.lifetime else _START

    def before_model_call(self, state: RunState, elapsed_s: float) -> str | None:
        """The limit a new model call would break, as a reason, or None (usage counted as
        `lifetime` says)."""
        base = self.base(state)
        steps = state.model_calls - base.model_calls
        tokens = state.usage.total_tokens - base.tokens
        cost = state.cost_usd - base.cost_usd
        if self.max_steps is not None and steps >= self.max_steps:
            return f"step budget exhausted ({steps} of {self.max_steps} model calls)"
        if self.max_tokens is not None and tokens >= self.max_tokens:
            return f"token budget exhausted ({tokens} of {self.max_tokens})"
        if self.max_cost_usd is not None and cost >= self.max_cost_usd:
            return f"cost budget exhausted (${cost} of ${self.max_cost_usd})"
        return self.wall_time(elapsed_s - base.elapsed_s)

    def before_tool_calls(self, state: RunState, count: int, elapsed_s: float) -> str | None:
        """The limit running `count` more tool calls would break, or None."""
        base = self.base(state)
        done = state.tool_calls - base.tool_calls
        if self.max_tool_calls is not None and done + count > self.max_tool_calls:
            return (
                f"tool-call budget exhausted ({done} done, {count} more proposed, "
                f"limit {self.max_tool_calls})"
            )
        return self.wall_time(elapsed_s - base.elapsed_s)

    def wall_time(self, elapsed_s: float) -> str | None:
        """The wall-time reason, if over."""
        if self.max_wall_s is not None and elapsed_s >= self.max_wall_s:
            return f"wall-time budget exhausted ({elapsed_s:.1f} s of {self.max_wall_s} s)"
        return None


_START = BudgetBase()
