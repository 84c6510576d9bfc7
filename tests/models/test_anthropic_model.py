"""AnthropicModel over real HTTP against the fake provider: wire format, answers, errors, cost."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import anthropic
import genai_prices
import pytest

from bosun.errors import (
    ConfigError,
    ContextTooLong,
    ModelAuthError,
    ModelBadResponse,
    ModelError,
    ModelRateLimited,
    ModelRefusal,
    ModelTimeout,
    ModelUnavailable,
)
from bosun.models import (
    AssistantMessage,
    ModelRequest,
    ModelSettings,
    SystemMessage,
    ToolCall,
    ToolDefinition,
    ToolMessage,
    UserMessage,
)
from bosun.models.anthropic import AnthropicModel

WEATHER = ToolDefinition(
    name="get_weather",
    description="Weather for a city.",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}},
)
HELLO = ModelRequest(messages=(UserMessage(content="Say hello"),))


def message(
    *blocks: dict[str, Any],
    model: str = "claude-sonnet-4-5-20250929",
    stop_reason: str = "end_turn",
    usage: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A Messages API body as api.anthropic.com sends it."""
    return {
        "id": "msg_01",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": list(blocks),
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": usage or {"input_tokens": 20, "output_tokens": 5},
    }


def text(value: str) -> dict[str, Any]:
    return {"type": "text", "text": value}


def tool_use(call_id: str, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {"type": "tool_use", "id": call_id, "name": name, "input": arguments}


def error(status: int, kind: str, text: str, **reply: Any) -> dict[str, Any]:
    return {
        "status": status,
        "json": {"type": "error", "error": {"type": kind, "message": text}},
        **reply,
    }


@pytest.fixture
async def make_model(fake: Any) -> AsyncIterator[Callable[..., AnthropicModel]]:
    made: list[AnthropicModel] = []

    def make(**kwargs: Any) -> AnthropicModel:
        kwargs.setdefault("model", "claude-sonnet-4-5")
        kwargs.setdefault("base_url", fake.url)
        kwargs.setdefault("api_key", "test-key")
        kwargs.setdefault("timeout_s", 5.0)
        made.append(AnthropicModel(**kwargs))
        return made[-1]

    yield make
    for model in made:
        await model.aclose()


# --- answers --------------------------------------------------------------------------------


async def test_plain_text_and_the_request_on_the_wire(fake: Any, make_model: Any) -> None:
    fake.script({"json": message(text("Hello"), text(", world."))})
    request = ModelRequest(
        messages=(
            SystemMessage(content="Be brief."),
            SystemMessage(content="Answer in English."),
            UserMessage(content="Say hello"),
        ),
        settings=ModelSettings(temperature=0.3, top_p=0.8, seed=3, stop=("END",)),
    )

    response = await make_model().request(request)

    assert response.text == "Hello, world."
    assert response.finish_reason == "stop"
    assert response.model == "claude-sonnet-4-5-20250929"
    assert response.provider == "anthropic"
    sent = fake.only_request()
    assert sent["path"] == "/v1/messages"
    assert sent["headers"]["x-api-key"] == "test-key"
    assert sent["headers"].get("x-stainless-retry-count") == "0"
    assert sent["body"] == {
        "model": "claude-sonnet-4-5",
        "system": "Be brief.\n\nAnswer in English.",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Say hello"}]}],
        "max_tokens": 4096,
        "temperature": 0.3,
        "top_p": 0.8,
        "stop_sequences": ["END"],
    }


async def test_max_tokens_of_the_request_wins(fake: Any, make_model: Any) -> None:
    fake.script({"json": message(text("ok"))})
    request = ModelRequest(messages=HELLO.messages, settings=ModelSettings(max_tokens=100))
    await make_model(max_tokens=2000).request(request)
    assert fake.only_request()["body"]["max_tokens"] == 100


async def test_a_tool_conversation_on_the_wire(fake: Any, make_model: Any) -> None:
    fake.script({"json": message(text("Sunny in both."))})
    calls = (
        ToolCall(id="toolu_a", name="get_weather", arguments='{"city": "Oslo"}'),
        ToolCall(id="toolu_b", name="get_weather", arguments='{"city": "Bergen"}'),
    )
    request = ModelRequest(
        messages=(
            SystemMessage(content="You are a weather bot."),
            UserMessage(content="Oslo and Bergen?"),
            AssistantMessage(content="Checking both.", tool_calls=calls),
            ToolMessage(call_id="toolu_a", name="get_weather", content='{"sky": "sunny"}'),
            ToolMessage(call_id="toolu_b", name="get_weather", content='{"sky": "sunny"}'),
            UserMessage(content="Be quick."),
        ),
        tools=(WEATHER,),
    )

    await make_model().request(request)

    body = fake.only_request()["body"]
    assert body["system"] == "You are a weather bot."
    assert body["tools"] == [
        {
            "name": "get_weather",
            "description": "Weather for a city.",
            "input_schema": WEATHER.parameters,
        }
    ]
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Oslo and Bergen?"}]},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Checking both."},
                tool_use("toolu_a", "get_weather", {"city": "Oslo"}),
                tool_use("toolu_b", "get_weather", {"city": "Bergen"}),
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_a", "content": '{"sky": "sunny"}'},
                {"type": "tool_result", "tool_use_id": "toolu_b", "content": '{"sky": "sunny"}'},
                {"type": "text", "text": "Be quick."},
            ],
        },
    ]


async def test_parallel_tool_calls(fake: Any, make_model: Any) -> None:
    fake.script(
        {
            "json": message(
                text("Let me look."),
                tool_use("toolu_1", "get_weather", {"city": "Oslo"}),
                tool_use("toolu_2", "get_weather", {"city": "Bergen"}),
                stop_reason="tool_use",
            )
        }
    )

    response = await make_model().request(ModelRequest(messages=HELLO.messages, tools=(WEATHER,)))

    assert response.text == "Let me look."
    assert response.finish_reason == "tool_calls"
    assert [(c.id, c.name, c.parsed_arguments()) for c in response.tool_calls] == [
        ("toolu_1", "get_weather", {"city": "Oslo"}),
        ("toolu_2", "get_weather", {"city": "Bergen"}),
    ]


@pytest.mark.parametrize(
    ("stop_reason", "finish_reason"),
    [("max_tokens", "length"), ("stop_sequence", "stop"), ("pause_turn", "pause_turn")],
)
async def test_stop_reasons(
    fake: Any, make_model: Any, stop_reason: str, finish_reason: str
) -> None:
    fake.script({"json": message(text("..."), stop_reason=stop_reason)})
    response = await make_model().request(HELLO)
    assert response.finish_reason == finish_reason


# --- usage and cost -------------------------------------------------------------------------


async def test_usage_and_cost_with_prompt_caching(fake: Any, make_model: Any) -> None:
    usage = {
        "input_tokens": 100,
        "cache_read_input_tokens": 2000,
        "cache_creation_input_tokens": 500,
        "output_tokens": 250,
    }
    fake.script({"json": message(text("ok"), usage=usage)})

    response = await make_model().request(HELLO)

    assert response.usage.input_tokens == 2600
    assert response.usage.cache_read_tokens == 2000
    assert response.usage.output_tokens == 250
    expected = genai_prices.calc_price(
        genai_prices.Usage(
            input_tokens=2600, output_tokens=250, cache_read_tokens=2000, cache_write_tokens=500
        ),
        model_ref="claude-sonnet-4-5-20250929",
        provider_id="anthropic",
    ).total_price
    assert response.cost_usd == expected
    assert response.cost_usd is not None and response.cost_usd > 0


async def test_an_unknown_model_costs_none(fake: Any, make_model: Any) -> None:
    fake.script({"json": message(text("ok"), model="my-finetune")})
    response = await make_model(model="my-finetune").request(HELLO)
    assert response.usage.input_tokens == 20
    assert response.cost_usd is None


async def test_no_price_provider_means_no_cost(fake: Any, make_model: Any) -> None:
    fake.script({"json": message(text("ok"))})
    response = await make_model(price_provider=None).request(HELLO)
    assert response.cost_usd is None


# --- construction ---------------------------------------------------------------------------


def test_names(make_model: Any, fake: Any, monkeypatch: Any) -> None:
    monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)
    assert make_model(base_url=None).name == "anthropic:claude-sonnet-4-5"
    assert make_model().name == f"anthropic:claude-sonnet-4-5@{fake.url}"


def test_no_api_key_is_a_config_error(monkeypatch: Any) -> None:
    for name in ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ConfigError, match="ANTHROPIC_API_KEY"):
        AnthropicModel(model="claude-sonnet-4-5")


# --- errors ---------------------------------------------------------------------------------


async def test_429_is_rate_limited_with_the_retry_hint(fake: Any, make_model: Any) -> None:
    fake.script(
        error(429, "rate_limit_error", "Number of requests exceeded", headers={"retry-after": "7"})
    )
    with pytest.raises(ModelRateLimited) as caught:
        await make_model().request(HELLO)
    assert caught.value.retry_after == 7.0
    assert (caught.value.status_code, caught.value.provider) == (429, "anthropic")
    assert isinstance(caught.value.__cause__, anthropic.RateLimitError)


@pytest.mark.parametrize(
    "reply",
    [
        error(529, "overloaded_error", "Overloaded"),
        error(500, "api_error", "Internal server error"),
        error(503, "api_error", "Service unavailable"),
    ],
    ids=["529-overloaded", "500", "503"],
)
async def test_overloaded_and_5xx_are_unavailable(
    fake: Any, make_model: Any, reply: dict[str, Any]
) -> None:
    fake.script(reply)
    with pytest.raises(ModelUnavailable) as caught:
        await make_model().request(HELLO)
    assert caught.value.status_code == reply["status"]
    assert caught.value.retryable


@pytest.mark.parametrize(
    "reply",
    [
        error(401, "authentication_error", "invalid x-api-key"),
        error(403, "permission_error", "Your API key does not have permission"),
    ],
)
async def test_auth_errors(fake: Any, make_model: Any, reply: dict[str, Any]) -> None:
    fake.script(reply)
    with pytest.raises(ModelAuthError) as caught:
        await make_model().request(HELLO)
    assert caught.value.status_code == reply["status"]


@pytest.mark.parametrize(
    "reply",
    [
        error(400, "invalid_request_error", "prompt is too long: 210000 tokens > 200000 maximum"),
        error(413, "request_too_large", "Request exceeds the maximum allowed number of bytes"),
    ],
    ids=["prompt-too-long", "413"],
)
async def test_context_too_long(fake: Any, make_model: Any, reply: dict[str, Any]) -> None:
    fake.script(reply)
    with pytest.raises(ContextTooLong) as caught:
        await make_model().request(HELLO)
    assert caught.value.status_code == reply["status"]


async def test_other_400_is_a_plain_model_error(fake: Any, make_model: Any) -> None:
    fake.script(error(400, "invalid_request_error", "messages: roles must alternate"))
    with pytest.raises(ModelError, match="roles must alternate") as caught:
        await make_model().request(HELLO)
    assert type(caught.value) is ModelError


async def test_timeout(fake: Any, make_model: Any) -> None:
    fake.script({"json": message(text("late")), "delay": 1.0})
    with pytest.raises(ModelTimeout) as caught:
        await make_model(timeout_s=0.3).request(HELLO)
    assert isinstance(caught.value.__cause__, anthropic.APITimeoutError)


@pytest.mark.parametrize(
    "reply",
    [
        {"raw": '{"content": [', "headers": {"content-type": "application/json"}},
        {"json": {"type": "message"}},
        {"json": message()},
        {"json": message(text(""))},
        {"json": message({"type": "tool_use", "name": "get_weather", "input": {}})},
    ],
    ids=["truncated-json", "no-content", "no-blocks", "empty-text", "tool-use-without-id"],
)
async def test_unusable_bodies_are_bad_responses(
    fake: Any, make_model: Any, reply: dict[str, Any]
) -> None:
    fake.script(reply)
    with pytest.raises(ModelBadResponse) as caught:
        await make_model().request(HELLO)
    assert caught.value.provider == "anthropic"


async def test_connection_refused_is_unavailable(make_model: Any, refused_url: str) -> None:
    with pytest.raises(ModelUnavailable) as caught:
        await make_model(base_url=refused_url).request(HELLO)
    assert isinstance(caught.value.__cause__, anthropic.APIConnectionError)


async def test_refusal(fake: Any, make_model: Any) -> None:
    fake.script({"json": message(stop_reason="refusal")})
    with pytest.raises(ModelRefusal) as caught:
        await make_model().request(HELLO)
    assert not caught.value.retryable
