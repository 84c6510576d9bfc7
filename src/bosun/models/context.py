"""What a model call is for, and what wrappers of a model may know about it.

The runtime fills a `CallContext` on every request it sends (`ModelRequest.context`); the
adapters ignore it. Wrappers that have the `Model` interface read it: a router picks a tier
by `purpose` and promotes on `promote`, a cache scopes its key by tenant, agent, prompt and
corpus versions and refuses what `tainted` or `acted` forbid (`bosun.economy`).

A wrapper that tried other models before the one that answered says so on the response:
`ModelResponse.attempts` (each failed or rejected attempt, with its own usage and price) and
`ModelResponse.route` (which tier answered and why). The runtime journals every attempt as a
``model_error`` entry with the attempt's model id, and counts its tokens and cost in the
run's budget, so nothing a wrapper spends is invisible.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

__all__ = ["Attempt", "CallContext", "Purpose", "Route"]

_FROZEN = ConfigDict(frozen=True, extra="forbid")


class Purpose(StrEnum):
    """The kind of step a model call serves. Stable strings: journaled and routed on."""

    ANSWER = "answer"
    """The agent's loop, with the latest input from a person last: answer or act on it."""
    TOOL_FOLLOWUP = "tool_followup"
    """The agent's loop after tool results: the next action, or the final answer."""
    PLAN = "plan"
    """A planner writing the run's plan."""
    SUMMARISE = "summarise"
    """Folding turns into a summary (threads, long runs)."""
    CLASSIFY = "classify"
    """A label out of a fixed set (triage, intent), asked by an agent's own code."""


class CallContext(BaseModel):
    """Who a model call is for and why; filled by the runtime, read by model wrappers."""

    model_config = _FROZEN

    purpose: Purpose | None = None
    """The step this call serves; None when the caller did not say."""
    run_id: str | None = None
    """The run making the call."""
    agent: str | None = None
    """The agent's name."""
    tenant: str | None = None
    """The run's tenant (None: the default tenant)."""
    prompt_version: str | None = None
    """The version of the instructions (a registry version, else a digest of the text)."""
    corpus_version: str | None = None
    """The version of the knowledge base the run reads (a cache key must change with it)."""
    tainted: bool = False
    """Untrusted content is in the run's context: anything the model says may derive from it."""
    acted: bool = False
    """A side-effecting tool has run in this run: an answer may report what it did."""
    tier: str | None = None
    """The tier a router chose for this call (set by the router on what it passes down, so a
    cache inside a tier keys on it)."""
    promote: str | None = None
    """Why the previous step of the run failed a check (a critic, a guardrail, invalid
    arguments): a router starts this call one tier higher."""


class Attempt(BaseModel):
    """A model call a wrapper made before the one that answered: failed, or rejected."""

    model_config = _FROZEN

    model: str
    """The model tried, as bosun names it."""
    kind: str
    """The error kind (``rate_limited``, ``unavailable``, ``timeout``, ``circuit_open``, ...)
    or ``rejected`` for an answer a check refused (the router then promoted)."""
    message: str
    """Why, in one line."""
    tier: str | None = None
    """The tier the model belongs to, when a router tried it."""
    latency_ms: float = 0.0
    """How long the attempt took."""
    input_tokens: int = 0
    """Prompt tokens it spent (zero for most failures)."""
    output_tokens: int = 0
    """Completion tokens it spent."""
    cost_usd: Decimal | None = None
    """Its price, when known (a rejected answer was paid for)."""


class Route(BaseModel):
    """Which tier answered a call and why (shown in the trace)."""

    model_config = _FROZEN

    tier: str
    """The tier that answered."""
    reason: str
    """The rule, promotion or classifier decision that chose it."""
    source: str = "model"
    """``model`` when a model answered, ``cache`` when the semantic cache did."""
