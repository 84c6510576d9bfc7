"""Turning a journal entry into state and store writes, in one place.

`record` applies the entry to the run's state first (so the state always equals the fold of
the journal, live or replayed) and returns the operations that make it durable: the step,
the run row's changes, and an audit row when the entry is an auditable decision or action.
"""

from __future__ import annotations

import json
import time
from typing import Any

from pydantic_core import to_json

from bosun.data.store import AuditEvent, RunUpdate, Step, WriteOp
from bosun.models.base import parse_arguments
from bosun.runtime.state import Entry, RunState

__all__ = ["canonical_arguments", "record", "safe_text", "totals", "valid_text"]


def record(
    state: RunState,
    kind: str,
    payload: dict[str, Any],
    *,
    elapsed_s: float,
    value: Any = None,
    run_update: dict[str, Any] | None = None,
    audit: str | None = None,
    approver: str | None = None,
    **columns: Any,
) -> list[WriteOp]:
    """Apply one entry to `state` and return the writes that journal it.

    `columns` fill the step's typed columns (tool, call_id, model, status, tokens, cost,
    latency); `value` is the live object the payload came from, spared re-validation.
    """
    payload["t"] = round(elapsed_s, 4)
    seq = state.next_seq
    # Serialise before applying: content that cannot be journaled (a lone surrogate, say)
    # raises here and leaves the state as it was, never ahead of the journal.
    # pydantic-core's serializer takes live models as they are (no model_dump first).
    text = to_json(payload).decode()
    usage = state.usage
    state.apply(Entry(seq, kind, payload, value))
    now = time.time()
    ops: list[WriteOp] = [
        Step(run_id=state.run_id, seq=seq, kind=kind, payload=text, created_at=now, **columns)
    ]
    if state.usage is not usage:
        # The run row's totals move in the same commit as the step that spent them, so they
        # equal the sum of its steps at every moment: running, parked or finished.
        run_update = {**(run_update or {}), **totals(state)}
    if run_update:
        ops.append(RunUpdate(run_id=state.run_id, values=run_update))
    if audit is not None:
        ops.append(
            AuditEvent(
                action=audit,
                payload=text,
                created_at=now,
                run_id=state.run_id,
                seq=seq,
                actor=state.principal,
                approver=approver,
            )
        )
    return ops


def totals(state: RunState) -> dict[str, Any]:
    """The run row's token and cost columns as the state has them."""
    return {
        "input_tokens": state.usage.input_tokens,
        "output_tokens": state.usage.output_tokens,
        "cost_usd": None if state.cost_unknown and not state.cost_usd else state.cost_usd,
    }


def valid_text(text: str) -> bool:
    """Whether `text` is valid Unicode (no lone surrogates): what the journal takes."""
    try:
        text.encode()
    except UnicodeEncodeError:  # lone surrogates
        return False
    return True


def safe_text(text: str) -> str:
    """`text` with anything that is not valid Unicode replaced, so it can be journaled."""
    return text if valid_text(text) else text.encode("utf-8", "replace").decode()


def canonical_arguments(arguments: str) -> str:
    """Tool-call arguments as compact canonical JSON (unchanged when not JSON), journalable."""
    try:
        text = json.dumps(parse_arguments(arguments), ensure_ascii=False, separators=(",", ":"))
    except ValueError:
        return arguments
    try:
        text.encode()
    except UnicodeEncodeError:  # lone surrogates: keep them escaped so the journal takes them
        text = json.dumps(parse_arguments(arguments), separators=(",", ":"))
    return text
