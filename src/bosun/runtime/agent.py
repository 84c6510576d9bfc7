"""`Agent`: what a team writes — instructions, typed tools, a model, budgets and policies."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from bosun.errors import ToolDefinitionError, UserError
from bosun.knowledge.grounding import ConfidencePolicy
from bosun.memory.threads import ThreadMemory
from bosun.models.base import Model, ModelSettings, ToolDefinition
from bosun.runtime.budget import Budget
from bosun.runtime.critic import Critic
from bosun.runtime.planner import Planner
from bosun.runtime.taint import TaintPolicy
from bosun.tools.base import RetryPolicy
from bosun.tools.pipeline import AnyTool

if TYPE_CHECKING:
    from bosun.runtime.runtime import RunResult

__all__ = ["ASK_HUMAN", "Agent", "InstructionSource", "ModelPolicy", "ResolvedInstructions"]

ASK_HUMAN = ToolDefinition(
    name="ask_human",
    description=(
        "Ask a person a question when you lack information or cannot proceed safely. The run "
        "pauses until they answer; their answer is this tool's result."
    ),
    parameters={
        "type": "object",
        "properties": {"question": {"type": "string", "description": "What you need to know."}},
        "required": ["question"],
        "additionalProperties": False,
    },
)
"""The built-in tool offered to agents created with ``ask_human=True``."""

_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,200}$")


@dataclass(frozen=True, kw_only=True)
class ModelPolicy:
    """How the runtime treats model failures."""

    retry: RetryPolicy = field(
        default_factory=lambda: RetryPolicy(attempts=4, initial_delay_s=0.5, max_delay_s=20.0)
    )
    """Backoff for retryable model errors (rate limit, timeout, unavailable, bad response)."""
    max_rate_limit_wait_s: float = 60.0
    """A provider's Retry-After longer than this escalates instead of waiting."""
    settings: ModelSettings = field(default_factory=ModelSettings)
    """Sampling settings sent with every call."""


@dataclass(frozen=True, slots=True)
class ResolvedInstructions:
    """Instructions for one run, and where they came from."""

    text: str
    """The system instructions, rendered."""
    source: Mapping[str, Any]
    """Journaled with the run as ``prompt`` (e.g. name, version, label, digest), so traces,
    evaluations and drift can say which prompt version a run used."""
    model_settings: Mapping[str, Any] = field(default_factory=dict)
    """`ModelSettings` fields the prompt version sets (temperature, max_tokens, ...): they
    override the agent's for this run's model calls."""


@runtime_checkable
class InstructionSource(Protocol):
    """Instructions chosen per run, e.g. a prompt registry's label with a canary rollout
    (`bosun.prompts.registry`). `key` is the run's conversation (or the run id): the same key
    must get the same version, so a conversation never switches prompts midway."""

    def resolve(self, *, key: str) -> ResolvedInstructions:
        """The instructions for the run keyed `key`."""
        ...


class Agent:
    """An agent definition. Stateless: every run's state lives in the journal."""

    def __init__(
        self,
        *,
        name: str,
        instructions: str | InstructionSource | None = None,
        tools: Sequence[AnyTool] = (),
        model: str | Model | None = None,
        budget: Budget | None = None,
        critic: Critic | None = None,
        planner: Planner | None = None,
        ask_human: bool = False,
        loop_limit: int = 3,
        model_policy: ModelPolicy | None = None,
        taint_policy: TaintPolicy | None = None,
        memory: ThreadMemory | None = None,
        confidence: ConfidencePolicy | None = None,
    ) -> None:
        """`instructions` is text, or an `InstructionSource` resolved as each run starts (the
        prompt version it picks is journaled with the run). `taint_policy` decides what runs
        may still do once untrusted content is in their context (default: side effects held
        for approval, ungrounded outbound values refused).
        `ask_human=True` offers the model a built-in ``ask_human(question)`` tool: the run
        parks as ``waiting_human`` and the person's answer (`Runtime.hand_back`) becomes the
        tool's result. `memory` configures session memory (how a run of a thread starts from
        the turns before it) and the token ceiling over which stale tool output is pruned
        from requests; runs with a thread use the defaults without it. `confidence` checks
        a final answer drawn from the knowledge base against the passages retrieved
        (`bosun.knowledge.grounding`): below its threshold the run escalates, the passages in
        the handoff package, instead of completing."""
        if not _NAME.match(name):
            raise UserError(f"agent name {name!r} must match {_NAME.pattern}")
        names = [t.name for t in tools]
        if ask_human and ASK_HUMAN.name in names:
            raise ToolDefinitionError(f"{ASK_HUMAN.name!r} is built in when ask_human=True")
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ToolDefinitionError(f"agent {name!r} has duplicate tool names: {duplicates}")
        if loop_limit < 2:
            raise UserError("loop_limit must be at least 2 (the same call twice in a row)")
        self.name = name
        self.instructions = instructions
        self.tools = tuple(tools)
        self.model = model
        self.budget = budget or Budget()
        self.critic = critic
        self.planner = planner
        self.ask_human = ask_human
        self.loop_limit = loop_limit
        self.model_policy = model_policy or ModelPolicy()
        self.taint_policy = taint_policy or TaintPolicy()
        self.memory = memory
        self.confidence = confidence
        self._resolved: Model | None = None

    @property
    def scopes(self) -> frozenset[str]:
        """Every scope the agent's tools need: the grants of a locally started run."""
        return frozenset(t.policy.scope for t in self.tools)

    def resolve_model(self, default: str | None = None) -> Model:
        """The model object, resolving a model string once."""
        if isinstance(self.model, Model):
            return self.model
        if self._resolved is None:
            from bosun.models import infer_model

            spec = self.model or default
            if spec is None:
                raise UserError(
                    f"agent {self.name!r} has no model: pass model=... or set BOSUN_MODEL"
                )
            self._resolved = infer_model(spec)
        return self._resolved

    def with_model(self, model: str | Model) -> Agent:
        """A copy of this agent that uses another model."""
        return Agent(
            name=self.name,
            instructions=self.instructions,
            tools=self.tools,
            model=model,
            budget=self.budget,
            critic=self.critic,
            planner=self.planner,
            ask_human=self.ask_human,
            loop_limit=self.loop_limit,
            model_policy=self.model_policy,
            taint_policy=self.taint_policy,
            memory=self.memory,
            confidence=self.confidence,
        )

    async def run(self, input: str, **options: Any) -> RunResult:
        """Run once on a fresh `Runtime` with the default store; see `Runtime.run`."""
        from bosun.runtime.runtime import Runtime

        async with Runtime() as runtime:
            return await runtime.run(self, input, **options)

    def __repr__(self) -> str:
        return f"Agent(name={self.name!r}, tools={[t.name for t in self.tools]})"
