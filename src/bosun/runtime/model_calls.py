"""What the driver tells a model about a call, and what it journals of a wrapper's attempts.

Two pure helpers kept out of `driver.py`:

- `call_context`: the `CallContext` of the next call of a run (purpose, tenant, agent,
  prompt version, taint, side effects, and why a router should promote), from the state.
- `attempt_entries`: the ``model_error`` entries for the attempts a wrapper made before
  its answer (a fallback chain's failures, a router's rejected answer), or for each failure
  of an exhausted chain, each with its model id and whatever it spent.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from bosun.errors import ModelError, ModelsExhausted
from bosun.models.base import AssistantMessage, ToolMessage
from bosun.models.context import Attempt, CallContext, Purpose
from bosun.runtime.recording import safe_text
from bosun.runtime.state import RunState

__all__ = ["PROMOTING_ERRORS", "attempt_entries", "call_context", "failure_entries"]

PROMOTING_ERRORS = frozenset(
    {"denied_by_critic", "blocked_by_policy", "invalid_arguments", "unknown_tool"}
)
"""Tool results that mean the model's last proposal failed a check: the next call of the
run asks a router to promote (``CallContext.promote``)."""

Entry = tuple[dict[str, Any], dict[str, Any]]
"""A ``model_error`` payload and its step columns."""


def call_context(state: RunState, *, side_effect_tools: frozenset[str]) -> CallContext:
    """The context of the run's next call in its loop."""
    messages = state.messages
    last = messages[-1] if messages else None
    purpose = Purpose.TOOL_FOLLOWUP if isinstance(last, ToolMessage) else Purpose.ANSWER
    return CallContext(
        purpose=purpose,
        run_id=state.run_id,
        agent=state.agent,
        tenant=state.tenant,
        prompt_version=state.prompt_version,
        tainted=bool(state.taint),
        acted=any(a.tool in side_effect_tools for a in state.actions),
        promote=_why_promote(state) if purpose is Purpose.TOOL_FOLLOWUP else None,
    )


def _why_promote(state: RunState) -> str | None:
    proposed = next((m for m in reversed(state.messages) if isinstance(m, AssistantMessage)), None)
    if proposed is None or not proposed.tool_calls:
        return None
    recent = state.actions[-len(proposed.tool_calls) :]
    failed = sorted({a.error_kind for a in recent if a.error_kind in PROMOTING_ERRORS})
    return f"the previous proposal failed a check ({', '.join(failed)})" if failed else None


def attempt_entries(attempts: Iterable[Attempt], *, attempt: int) -> list[Entry]:
    """``model_error`` entries for a wrapper's attempts before its answer."""
    entries = []
    for n, tried in enumerate(attempts):
        payload: dict[str, Any] = {
            "kind": tried.kind,
            "message": safe_text(tried.message),
            "attempt": attempt,
            "fallback": n,
            "latency_ms": tried.latency_ms,
        }
        if tried.tier is not None:
            payload["tier"] = tried.tier
        columns: dict[str, Any] = {
            "model": tried.model,
            "status": tried.kind,
            "latency_ms": tried.latency_ms,
        }
        if tried.input_tokens or tried.output_tokens or tried.cost_usd:
            # Spent, so budgeted: RunState adds a model_error's usage to the run's.
            payload["usage"] = {
                "input_tokens": tried.input_tokens,
                "output_tokens": tried.output_tokens,
            }
            payload["cost_usd"] = tried.cost_usd
            columns.update(
                input_tokens=tried.input_tokens,
                output_tokens=tried.output_tokens,
                cost_usd=tried.cost_usd,
            )
        entries.append((payload, columns))
    return entries


def failure_entries(exc: ModelError, *, attempt: int, latency_ms: float) -> list[Entry]:
    """``model_error`` entries for a failed call: one, or one per model of an exhausted
    chain (the last carrying the call's latency)."""
    failures: tuple[ModelError, ...] = (
        exc.failures if isinstance(exc, ModelsExhausted) and exc.failures else (exc,)
    )
    entries = []
    for n, failure in enumerate(failures):
        last = n == len(failures) - 1
        payload: dict[str, Any] = {
            "kind": failure.kind,
            "message": safe_text(str(failure)),
            "attempt": attempt,
            "latency_ms": latency_ms if last else 0.0,
        }
        if len(failures) > 1:
            payload["fallback"] = n
        columns = {
            "model": failure.model,
            "status": failure.kind,
            "latency_ms": latency_ms if last else 0.0,
        }
        entries.append((payload, columns))
    return entries
