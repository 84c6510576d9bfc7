"""Streaming adapters over real HTTP against the fake provider: text as it comes, the response
assembled from the pieces equal to what the non-streaming call returns, broken streams."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from fake_provider import openai_stream

from bosun.errors import ModelBadResponse, ModelRateLimited
from bosun.models import (
    ModelRequest,
    ModelResponse,
    StreamEvent,
    TextDelta,
    ToolDefinition,
    UserMessage,
)
from bosun.models.anthropic import AnthropicModel
from bosun.models.openai import OpenAIModel
from bosun.testing import ScriptedModel, reply

WEATHER = ToolDefinition(
    name="get_weather",
    description="Weather for a city.",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}},
)
ASK = ModelRequest(messages=(UserMessage(content="Weather in Oslo and Bergen?"),), tools=(WEATHER,))


async def collect(events: AsyncIterator[StreamEvent]) -> tuple[list[str], ModelResponse]:
    texts: list[str] = []
    final: ModelResponse | None = None
    async for event in events:
        assert final is None, "the response must come last"
        if isinstance(event, TextDelta):
            texts.append(event.text)
        else:
            final = event
    assert final is not None
    return texts, final


@pytest.fixture
async def openai_model(fake: Any) -> AsyncIterator[OpenAIModel]:
    model = OpenAIModel(model="fake-1", base_url=fake.url + "/v1", api_key="k")
    yield model
    await model.aclose()


async def test_openai_text_comes_in_pieces_and_adds_up(
    fake: Any, openai_model: OpenAIModel
) -> None:
    fake.script(openai_stream("Hel", "lo, ", "world"))
    texts, final = await collect(openai_model.stream(ASK))
    assert texts == ["Hel", "lo, ", "world"]
    assert (final.text, final.finish_reason, final.model) == ("Hello, world", "stop", "fake-1")
    assert (final.usage.input_tokens, final.usage.output_tokens) == (11, 7)
    body = fake.only_request()["body"]
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}


async def test_openai_tool_call_fragments_are_joined_per_index(
    fake: Any, openai_model: OpenAIModel
) -> None:
    fragments = [
        {
            "index": 0,
            "id": "a",
            "type": "function",
            "function": {"name": "get_weather", "arguments": ""},
        },
        {
            "index": 1,
            "id": "b",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"ci'},
        },
        {"index": 0, "function": {"arguments": '{"city": '}},
        {"index": 1, "function": {"arguments": 'ty": "Bergen"}'}},
        {"index": 0, "function": {"arguments": '"Oslo"}'}},
    ]
    fake.script(openai_stream(tool_calls=fragments, finish="tool_calls"))
    texts, final = await collect(openai_model.stream(ASK))
    assert texts == []
    assert [(c.id, c.name, c.arguments) for c in final.tool_calls] == [
        ("a", "get_weather", '{"city": "Oslo"}'),
        ("b", "get_weather", '{"city": "Bergen"}'),
    ]
    assert final.finish_reason == "tool_calls"


async def test_openai_a_stream_cut_off_is_a_bad_response(
    fake: Any, openai_model: OpenAIModel
) -> None:
    # The connection closes before [DONE]; with it the finish reason chunk is dropped too.
    reply_ = openai_stream("partial", "answer")
    reply_["sse"] = reply_["sse"][:3]
    fake.script(reply_)
    events = openai_model.stream(ASK)
    assert isinstance(await anext(events), TextDelta)
    with pytest.raises(ModelBadResponse, match="stream broke off"):
        await collect(events)  # retryable: the runtime asks again


async def test_openai_errors_before_the_stream_are_translated(
    fake: Any, openai_model: OpenAIModel
) -> None:
    fake.script(
        {"status": 429, "headers": {"retry-after": "3"}, "json": {"error": {"message": "slow"}}}
    )
    with pytest.raises(ModelRateLimited) as limited:
        await collect(openai_model.stream(ASK))
    assert limited.value.retry_after == 3


async def test_anthropic_text_and_tool_use_are_assembled(fake: Any) -> None:
    def ev(name: str, **data: Any) -> dict[str, Any]:
        return {"event": name, "data": {"type": name, **data}}

    message = {
        "id": "m1",
        "type": "message",
        "role": "assistant",
        "model": "claude-x",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 20, "cache_read_input_tokens": 5, "output_tokens": 1},
    }
    fake.script(
        {
            "sse": [
                ev("message_start", message=message),
                ev("content_block_start", index=0, content_block={"type": "text", "text": ""}),
                ev("content_block_delta", index=0, delta={"type": "text_delta", "text": "Let me "}),
                ev("content_block_delta", index=0, delta={"type": "text_delta", "text": "check."}),
                ev("content_block_stop", index=0),
                ev(
                    "content_block_start",
                    index=1,
                    content_block={
                        "type": "tool_use",
                        "id": "t1",
                        "name": "get_weather",
                        "input": {},
                    },
                ),
                ev(
                    "content_block_delta",
                    index=1,
                    delta={"type": "input_json_delta", "partial_json": '{"city"'},
                ),
                ev(
                    "content_block_delta",
                    index=1,
                    delta={"type": "input_json_delta", "partial_json": ': "Oslo"}'},
                ),
                ev("content_block_stop", index=1),
                ev(
                    "message_delta",
                    delta={"stop_reason": "tool_use", "stop_sequence": None},
                    usage={"output_tokens": 30},
                ),
                ev("message_stop"),
            ]
        }
    )
    model = AnthropicModel(model="claude-x", base_url=fake.url, api_key="k", price_provider=None)
    try:
        texts, final = await collect(model.stream(ASK))
    finally:
        await model.aclose()
    assert texts == ["Let me ", "check."]
    assert final.text == "Let me check."
    assert [(c.id, c.name, c.arguments) for c in final.tool_calls] == [
        ("t1", "get_weather", '{"city": "Oslo"}')
    ]
    assert (final.finish_reason, final.usage.input_tokens, final.usage.output_tokens) == (
        "tool_calls",
        25,
        30,
    )
    assert fake.only_request()["body"]["stream"] is True


async def test_a_model_without_streaming_yields_its_text_once() -> None:
    texts, final = await collect(ScriptedModel([reply("all at once")]).stream(ASK))
    assert (texts, final.text) == (["all at once"], "all at once")
