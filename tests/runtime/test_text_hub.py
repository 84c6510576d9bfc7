"""`TextHub`: text of an expected run is held for its listener; nobody's text is dropped;
`streamed` hands a model's text to the hub and returns its whole response."""

from __future__ import annotations

from bosun.models.base import ModelRequest, UserMessage
from bosun.runtime.streaming import TextChunk, TextHub, streamed
from bosun.testing import ScriptedModel, reply


def chunk(run_id: str, text: str, step: int = 1) -> TextChunk:
    return TextChunk(run_id, step, 0, text)


def test_text_of_an_expected_run_waits_for_its_listener() -> None:
    hub = TextHub()
    assert not hub.wants("r1")
    hub.expect("r1")
    assert hub.wants("r1")
    hub.publish(chunk("r1", "Hel"))
    hub.publish(chunk("r2", "nobody asked"))
    got: list[str] = []
    stop = hub.listen("r1", lambda c: got.append(c.text))
    hub.publish(chunk("r1", "lo"))
    assert got == ["Hel", "lo"]
    stop()
    assert not hub.wants("r1"), "the expectation ends when its listener comes"
    hub.publish(chunk("r1", "gone"))
    assert got == ["Hel", "lo"]


def test_a_finished_run_drops_what_was_held() -> None:
    hub = TextHub()
    hub.expect("r1")
    hub.publish(chunk("r1", "held"))
    hub.finished("r1")
    got: list[str] = []
    hub.listen("r1", lambda c: got.append(c.text))
    assert got == []


async def test_streamed_publishes_the_text_and_returns_the_response() -> None:
    hub = TextHub()
    got: list[TextChunk] = []
    hub.listen("r1", got.append)
    model = ScriptedModel([reply("all of it")])
    request = ModelRequest(messages=(UserMessage(content="hi"),))
    response = await streamed(model, request, hub, run_id="r1", step=3, attempt=1)
    assert response.text == "all of it"
    assert [(c.step, c.attempt, c.text) for c in got] == [(3, 1, "all of it")]
