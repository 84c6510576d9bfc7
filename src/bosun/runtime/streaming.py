"""`TextHub`: the text of model answers, handed to whoever in this process follows the run.

Token deltas are not journaled: the journal keeps each model response whole, as before, so
durability costs the same with or without a listener. A listener that joins late, or
reconnects, gets only the deltas from then on (and the final answer with the run).

The driver streams a model call only when someone wants its text: a listener is attached to
the run, or the run was started expecting one (`expect`, e.g. ``POST /v1/runs`` with
``stream: true``). The text of an expected run is held until its listener comes (it gets it
all, in order), so a client that subscribes a moment after the worker started misses
nothing. Otherwise the driver calls `Model.request` exactly as before.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from bosun.errors import ModelBadResponse
from bosun.models.base import Model, ModelRequest, ModelResponse

__all__ = ["TextChunk", "TextHub", "streamed"]

_EXPECT_S = 300.0
"""How long an expectation lasts when no listener comes."""
_MAX_HELD = 10_000
"""Chunks held for an expected listener; beyond, they are dropped (the journal has all)."""


@dataclass(frozen=True, slots=True)
class TextChunk:
    """A piece of a model answer's text."""

    run_id: str
    """The run whose model wrote it."""
    step: int
    """The journal position the response will take: text of one answer shares it."""
    attempt: int
    """The call's attempt: text of a failed attempt is superseded by the next one's."""
    text: str
    """The new text."""


Listener = Callable[[TextChunk], None]


class TextHub:
    """In-process fan-out of text chunks by run. Used on one event loop."""

    def __init__(self) -> None:
        self._listeners: dict[str, list[Listener]] = {}
        self._expected: dict[str, float] = {}
        self._held: dict[str, list[TextChunk]] = {}

    def wants(self, run_id: str) -> bool:
        """Whether the next model call of `run_id` should stream."""
        if run_id in self._listeners:
            return True
        until = self._expected.get(run_id)
        if until is None:
            return False
        if until < time.monotonic():
            self.finished(run_id)
            return False
        return True

    def expect(self, run_id: str) -> None:
        """Stream `run_id`'s model calls from the first, for a listener about to attach."""
        now = time.monotonic()
        if len(self._expected) > 1000:  # runs nobody came for
            for stale in [r for r, t in self._expected.items() if t < now]:
                self.finished(stale)
        self._expected[run_id] = now + _EXPECT_S

    def listen(self, run_id: str, listener: Listener) -> Callable[[], None]:
        """Call `listener` with each chunk of `run_id`, starting with those held for it;
        returns the function that stops it."""
        self._listeners.setdefault(run_id, []).append(listener)
        self._expected.pop(run_id, None)
        for chunk in self._held.pop(run_id, ()):
            listener(chunk)

        def stop() -> None:
            listeners = self._listeners.get(run_id)
            if listeners is not None and listener in listeners:
                listeners.remove(listener)
                if not listeners:
                    del self._listeners[run_id]

        return stop

    def publish(self, chunk: TextChunk) -> None:
        """Hand `chunk` to the run's listeners; none: held if one is expected, else dropped."""
        listeners = self._listeners.get(chunk.run_id)
        if listeners:
            for listener in listeners:
                listener(chunk)
        elif chunk.run_id in self._expected:
            held = self._held.setdefault(chunk.run_id, [])
            if len(held) < _MAX_HELD:
                held.append(chunk)

    def finished(self, run_id: str) -> None:
        """The run stopped in this process: drop its expectation and held text."""
        self._expected.pop(run_id, None)
        self._held.pop(run_id, None)


async def streamed(
    model: Model, request: ModelRequest, hub: TextHub, *, run_id: str, step: int, attempt: int
) -> ModelResponse:
    """`model`'s answer to `request`, its text handed to `hub` as it comes."""
    events = model.stream(request)
    try:
        async for event in events:
            if isinstance(event, ModelResponse):
                return event
            hub.publish(TextChunk(run_id, step, attempt, event.text))
    finally:
        close = getattr(events, "aclose", None)  # an async generator left before its end
        if close is not None:
            await close()
    raise ModelBadResponse(
        "the model's stream ended without a response", provider="unknown", model=model.name
    )
