"""Planning: an optional first step that writes a short plan for the run.

A planner is any object with ``async plan(objective, tools) -> Plan``. The plan is journaled
once (entry ``plan``), kept in `RunState.plan`, and appended to the objective (the user's
message, not the system message: it is model output derived from user text) in every later
model call, so a resumed run follows the plan it made rather than a new one. A planner that
fails with a model error is retried, journaled and escalated like any model call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from bosun.models.base import (
    Model,
    ModelRequest,
    ModelSettings,
    SystemMessage,
    ToolDefinition,
    Usage,
    UserMessage,
)
from bosun.models.context import CallContext, Purpose

__all__ = ["ModelPlanner", "Plan", "Planner"]

_PROMPT = (
    "You plan the work of an agent. Write a short numbered plan (at most {steps} steps) to "
    "achieve the objective with the tools listed. Do not carry out the plan. Tools:\n{tools}"
)


@dataclass(frozen=True, slots=True)
class Plan:
    """A plan and what making it cost."""

    text: str
    """The plan, as shown to the model in later calls."""
    usage: Usage = Usage()
    """Tokens spent planning (counted against the run's budget)."""
    cost_usd: Decimal | None = None
    """Price of planning; None when unknown."""


class Planner(Protocol):
    """Writes a plan for a run."""

    async def plan(self, objective: str, tools: Sequence[ToolDefinition]) -> Plan:
        """Plan how to reach `objective` with `tools`."""
        ...


class ModelPlanner:
    """Asks a model for a plan (often a cheaper model than the agent's)."""

    def __init__(self, model: Model, *, max_steps: int = 6) -> None:
        self.model = model
        self.max_steps = max_steps

    async def plan(self, objective: str, tools: Sequence[ToolDefinition]) -> Plan:
        listing = "\n".join(
            f"- {t.name}: {t.description.splitlines()[0] if t.description else ''}" for t in tools
        )
        request = ModelRequest(
            messages=(
                SystemMessage(content=_PROMPT.format(steps=self.max_steps, tools=listing or "-")),
                UserMessage(content=objective),
            ),
            settings=ModelSettings(temperature=0),
            context=CallContext(purpose=Purpose.PLAN),
        )
        response = await self.model.request(request)
        return Plan(
            text=(response.text or "").strip(), usage=response.usage, cost_usd=response.cost_usd
        )
