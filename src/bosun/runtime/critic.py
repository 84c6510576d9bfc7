"""The critic: checks each tool call the model proposes before it runs.

A critic is any object with ``async review(call, state) -> Verdict``. `RuleCritic` runs plain
functions in order (first non-allow verdict wins); a model-based critic plugs in the same way.
Loop detection is not left to the critic: the runtime always applies it (see `driver`).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from bosun.models.base import ToolCall
from bosun.runtime.state import RunState

__all__ = ["Critic", "Rule", "RuleCritic", "Verdict"]


@dataclass(frozen=True, slots=True)
class Verdict:
    """A critic's decision on one proposed tool call."""

    action: Literal["allow", "deny", "escalate"]
    """allow: run it; deny: return `reason` to the model; escalate: stop for a human."""
    reason: str | None = None
    """Shown to the model on deny, put in the handoff on escalate."""

    @classmethod
    def allow(cls) -> Verdict:
        """Let the call run."""
        return _ALLOW

    @classmethod
    def deny(cls, reason: str) -> Verdict:
        """Refuse the call; the model sees `reason` and may try something else."""
        return cls("deny", reason)

    @classmethod
    def escalate(cls, reason: str) -> Verdict:
        """Stop the run and hand it to a human."""
        return cls("escalate", reason)


_ALLOW = Verdict("allow")


class Critic(Protocol):
    """Reviews proposed tool calls."""

    async def review(self, call: ToolCall, state: RunState) -> Verdict:
        """Decide on `call` given the run so far."""
        ...


Rule = Callable[[ToolCall, RunState], "Verdict | None | Awaitable[Verdict | None]"]
"""A rule returns a verdict, or None for no opinion; it may be a coroutine function."""


class RuleCritic:
    """Applies rules in order; the first deny or escalate wins."""

    def __init__(self, rules: Sequence[Rule] = ()) -> None:
        self.rules = tuple(rules)

    async def review(self, call: ToolCall, state: RunState) -> Verdict:
        for rule in self.rules:
            verdict = rule(call, state)
            if inspect.isawaitable(verdict):
                verdict = await verdict
            if verdict is not None and verdict.action != "allow":
                return verdict
        return _ALLOW
