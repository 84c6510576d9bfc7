"""A ``thread_context`` entry as messages: what a run of a thread is shown of the turns before.

Pure: from the journaled payload and the run's spotlight boundary to the messages placed
before the run's own input, the taint sources they bring and the text that may ground
outbound values. `RunState` applies the result, live and on replay alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bosun.memory.summary import Turn
from bosun.models.base import AssistantMessage, Message, UserMessage
from bosun.runtime.taint import spotlight
from bosun.trust import Trust

__all__ = ["ThreadView", "thread_view"]

_ANSWER_NOTE = "[Your answer then, written with untrusted content in context]"


@dataclass
class ThreadView:
    """What a thread context adds to a run."""

    messages: list[Message] = field(default_factory=list)
    """Placed before the run's own input, oldest first."""
    taint: list[str] = field(default_factory=list)
    """Untrusted sources they bring (``thread:summary``, ``thread:email``, ...)."""
    grounding: list[str] = field(default_factory=list)
    """Earlier user and trusted input: it grounded outbound values then, and still does.
    Model-written text (the summary, earlier answers) never does."""


def thread_view(payload: Mapping[str, Any], *, boundary: str) -> ThreadView:
    """The messages, taint and grounding of a ``thread_context`` payload."""
    view = ThreadView()

    def marked(text: str, trust: Trust, what: str) -> UserMessage:
        if trust is not Trust.UNTRUSTED:
            return UserMessage(content=text, trust=trust)
        source = f"thread:{what}"
        view.taint.append(source)
        body = spotlight(text, source=source, boundary=boundary)
        return UserMessage(content=body, trust=Trust.UNTRUSTED)

    summary = payload.get("summary")
    if summary is not None:
        head = f"[Summary of the {summary['turns']} earlier turns of this conversation]"
        text = f"{head}\n{summary['text']}"
        view.messages.append(marked(text, Trust(summary["trust"]), "summary"))
    for item in payload.get("window", ()):
        turn = Turn.from_json(item)
        rendered = ["[Earlier in this conversation]"]
        lowest = Trust.USER
        for part in turn.parts:
            if part.trust is Trust.UNTRUSTED:
                source = f"thread:{part.source}"
                rendered.append(spotlight(part.text, source=source, boundary=boundary))
                view.taint.append(source)
                lowest = Trust.UNTRUSTED
            else:
                rendered.append(part.text)
                view.grounding.append(part.text)
        view.messages.append(UserMessage(content="\n\n".join(rendered), trust=lowest))
        if turn.answer and turn.tainted:
            # That run may have followed its untrusted content: its words are data now.
            view.messages.append(
                marked(f"{_ANSWER_NOTE}\n{turn.answer}", Trust.UNTRUSTED, "answer")
            )
        elif turn.answer:
            view.messages.append(AssistantMessage(content=turn.answer))
    return view
