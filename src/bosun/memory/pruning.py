"""Stale tool output pruned from a request before it outgrows the token budget.

A pure function of the messages: the runtime calls it on the run's state before each model
call, so a resumed run builds exactly the request the crashed one would have (nothing to
journal). Under the ceiling it only sums lengths. Over it, tool results older than the
model's latest turn are replaced, oldest first, by a stub that keeps their ids, amounts,
dates and contacts word for word, until the request fits or nothing stale is left. Results
under `MIN_PRUNED_CHARS` stay whole: stubbing a customer record saves a hundred tokens and
loses what a later step reads in full, and when a huge input (a pasted 200 KB log) is what
overflows, stubbing every small result could never make the request fit anyway. An
untrusted result's stub stays inside its spotlight markers: what it keeps is still data.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from bosun.memory.verbatim import extract
from bosun.models.base import AssistantMessage, Message, ToolMessage

__all__ = ["MIN_PRUNED_CHARS", "estimate_tokens", "prune_stale_tool_output"]

MIN_PRUNED_CHARS = 1024
"""Tool results shorter than this (about 250 tokens) are never stubbed."""

_MAX_KEPT = 20
_MAX_STUBS = 4096
_STUBS: dict[tuple[str, bytes], str] = {}


def estimate_tokens(messages: Sequence[Message]) -> int:
    """About 4 characters a token, as `bosun.models.base.estimate_usage` counts."""
    chars = 0
    for m in messages:
        chars += len(m.content or "")
        if isinstance(m, AssistantMessage):
            chars += sum(len(c.arguments) for c in m.tool_calls)
    return chars // 4


def prune_stale_tool_output(
    messages: Sequence[Message], *, ceiling: int
) -> tuple[Sequence[Message], int]:
    """The messages with stale tool output stubbed until they fit `ceiling` (estimated
    tokens), and how many results were stubbed. Under the ceiling: `messages` itself."""
    total = estimate_tokens(messages)
    if total <= ceiling:
        return messages, 0
    last_turn = max(
        (i for i, m in enumerate(messages) if isinstance(m, AssistantMessage)), default=-1
    )
    out = list(messages)
    pruned = 0
    for i in range(last_turn):
        message = out[i]
        if not isinstance(message, ToolMessage) or message.content.startswith("[tool output"):
            continue
        if len(message.content) < MIN_PRUNED_CHARS:
            continue
        stub = _stub(message.name, message.content)
        if len(stub) >= len(message.content):
            continue
        total -= (len(message.content) - len(stub)) // 4
        out[i] = message.model_copy(update={"content": stub})
        pruned += 1
        if total <= ceiling:
            break
    return out, pruned


def _stub(name: str, content: str) -> str:
    # Memoised by digest (stubs are small, results may be large): every later request of
    # the run stubs the same stale results again, and finding what to keep is a few
    # regular-expression passes over each.
    key = (name, hashlib.blake2b(content.encode(), digest_size=16).digest())
    stub = _STUBS.get(key)
    if stub is None:
        if len(_STUBS) >= _MAX_STUBS:
            _STUBS.clear()
        stub = _STUBS[key] = _make_stub(name, content)
    return stub


def _make_stub(name: str, content: str) -> str:
    head = tail = ""
    lines = content.split("\n")
    if content.startswith("<<untrusted ") and len(lines) >= 2:
        head, tail = lines[0] + "\n", "\n" + lines[-1]
        content = "\n".join(lines[1:-1])
    kept = [k.text for k in extract(content, atoms_only=True)][:_MAX_KEPT]
    note = f"; kept: {', '.join(kept)}" if kept else ""
    return f"{head}[tool output of {name} pruned: {len(content)} chars{note}]{tail}"
