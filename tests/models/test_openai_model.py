"""OpenAIModel over real HTTP against the fake provider: wire format, answers, errors, cost."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import genai_prices
import httpx
import openai
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
from bosun.models.openai import OpenAIModel

WEATHER = ToolDefinition(
    name="get_weather",
    description="Weather for a city.",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}},
)
TIME = ToolDefinition(
    name="get_time",
    description="Local time in a city.",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}},
)
HELLO = ModelRequest(messages=(UserMessage(content="Say hello"),))
WITH_TOOLS = ModelRequest(
    messages=(UserMessage(content="Weather in Oslo?"),), tools=(WEATHER, TIME)
)


def completion(
    content: str | None = None,
    *,
    tool_calls: Sequence[tuple[str, str | None, str]] = (),
    model: str = "gpt-4.1-mini",
    finish_reason: str = "stop",
    usage: dict[str, Any] | None = None,
    refusal: str | None = None,
) -> dict[str, Any]:
    """A chat.completion body as api.openai.com sends it."""
    message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": refusal}
    if tool_calls:
        message["tool_calls"] = [
            {"id": call_id, "type": "function", "function": {"name": name, "arguments": args}}
            for call_id, name, args in tool_calls
        ]
    return {
        "id": "chatcmpl-123",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": model,
        "choices": [
            {"index": 0, "message": message, "finish_reason": finish_reason, "logprobs": None}
        ],
        "usage": usage or {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15},
    }


def error(status: int, message: str, code: str | None = None, **reply: Any) -> dict[str, Any]:
    body = {"error": {"message": message, "type": "invalid_request_error", "code": code}}
    return {"status": status, "json": body, **reply}


@pytest.fixture
async def make_model(fake: Any) -> AsyncIterator[Callable[..., OpenAIModel]]:
    made: list[OpenAIModel] = []

    def make(**kwargs: Any) -> OpenAIModel:
        kwargs.setdefault("model", "gpt-4.1-mini")
        kwargs.setdefault("base_url", f"{fake.url}/v1")
        kwargs.setdefault("api_key", "test-key")
        kwargs.setdefault("timeout_s", 5.0)
        made.append(OpenAIModel(**kwargs))
        return made[-1]

    yield make
    for model in made:
        await model.aclose()


@pytest.fixture
async def official_client(fake: Any) -> AsyncIterator[openai.AsyncOpenAI]:
    """A client that believes it talks to api.openai.com; its requests reach the fake server."""
    target = httpx.URL(fake.url)

    async def redirect(request: httpx.Request) -> None:
        request.url = request.url.copy_with(scheme="http", host=target.host, port=target.port)

    client = openai.AsyncOpenAI(
        api_key="sk-test",
        base_url="https://api.openai.com/v1",
        max_retries=0,
        http_client=httpx.AsyncClient(event_hooks={"request": [redirect]}),
    )
    yield client
    await client.close()


# --- answers --------------------------------------------------------------------------------


async def test_plain_text_and_the_request_on_the_wire(fake: Any, make_model: Any) -> None:
    fake.script({"json": completion("Hello!", model="gpt-4.1-mini-2025-04-14")})
    model = make_model()
    settings = ModelSettings(temperature=0.2, max_tokens=64, top_p=0.9, seed=7, stop=("END",))
    request = ModelRequest(
        messages=(SystemMessage(content="Be brief."), UserMessage(content="Say hello")),
        settings=settings,
    )

    response = await model.request(request)

    assert response.text == "Hello!"
    assert response.tool_calls == ()
    assert response.finish_reason == "stop"
    assert response.model == "gpt-4.1-mini-2025-04-14"
    assert response.provider == "openai"
    sent = fake.only_request()
    assert sent["path"] == "/v1/chat/completions"
    assert sent["headers"]["authorization"] == "Bearer test-key"
    assert sent["headers"].get("x-stainless-retry-count") == "0"
    assert sent["body"] == {
        "model": "gpt-4.1-mini",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Say hello"},
        ],
        "temperature": 0.2,
        "max_tokens": 64,
        "top_p": 0.9,
        "seed": 7,
        "stop": ["END"],
    }


async def test_a_tool_conversation_on_the_wire(fake: Any, make_model: Any) -> None:
    fake.script({"json": completion("It is sunny, 14:00.")})
    calls = (
        ToolCall(id="call_a", name="get_weather", arguments='{"city": "Oslo"}'),
        ToolCall(id="call_b", name="get_time", arguments='{"city": "Oslo"}'),
    )
    request = ModelRequest(
        messages=(
            UserMessage(content="Weather and time in Oslo?"),
            AssistantMessage(content=None, tool_calls=calls),
            ToolMessage(call_id="call_a", name="get_weather", content='{"sky": "sunny"}'),
            ToolMessage(call_id="call_b", name="get_time", content='{"time": "14:00"}'),
        ),
        tools=(WEATHER, TIME),
    )

    await make_model().request(request)

    body = fake.only_request()["body"]
    assert body["messages"][1:] == [
        {
            "role": "assistant",
            "tool_calls": [
                {
                    "id": "call_a",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
                },
                {
                    "id": "call_b",
                    "type": "function",
                    "function": {"name": "get_time", "arguments": '{"city": "Oslo"}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "call_a", "content": '{"sky": "sunny"}'},
        {"role": "tool", "tool_call_id": "call_b", "content": '{"time": "14:00"}'},
    ]
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": tool.name,
                "description": tool.description,
                "parameters": tool.parameters,
            },
        }
        for tool in (WEATHER, TIME)
    ]


async def test_parallel_native_tool_calls(fake: Any, make_model: Any) -> None:
    fake.script(
        {
            "json": completion(
                None,
                tool_calls=[
                    ("call_1", "get_weather", '{"city":"Oslo"}'),
                    ("call_2", "get_time", '{"city":"Oslo"}'),
                ],
                finish_reason="tool_calls",
            )
        }
    )

    response = await make_model().request(WITH_TOOLS)

    assert response.text is None
    assert response.finish_reason == "tool_calls"
    assert response.tool_calls == (
        ToolCall(id="call_1", name="get_weather", arguments='{"city":"Oslo"}'),
        ToolCall(id="call_2", name="get_time", arguments='{"city":"Oslo"}'),
    )


@pytest.mark.parametrize(
    "content",
    [
        'Let me check.\n```json\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n```',
        'Let me check.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n'
        "</tool_call>",
    ],
    ids=["fenced-json", "tool_call-tag"],
)
async def test_tool_calls_written_as_text(fake: Any, make_model: Any, content: str) -> None:
    fake.script({"json": completion(content, model="qwen2.5-7b-instruct")})

    response = await make_model(model="qwen2.5-7b-instruct").request(WITH_TOOLS)

    assert response.text == "Let me check."
    assert response.finish_reason == "tool_calls"
    assert response.tool_calls == (
        ToolCall(id="call_fenced_0", name="get_weather", arguments='{"city":"Oslo"}'),
    )


async def test_fenced_json_is_text_when_no_tools_were_offered(fake: Any, make_model: Any) -> None:
    content = '```json\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n```'
    fake.script({"json": completion(content)})

    response = await make_model().request(HELLO)

    assert response.text == content
    assert response.tool_calls == ()


# --- usage and cost -------------------------------------------------------------------------


async def test_usage_and_cost_of_a_priced_model(fake: Any, make_model: Any) -> None:
    usage = {
        "prompt_tokens": 1200,
        "completion_tokens": 300,
        "total_tokens": 1500,
        "prompt_tokens_details": {"cached_tokens": 200},
    }
    fake.script({"json": completion("ok", model="gpt-4.1-mini-2025-04-14", usage=usage)})

    response = await make_model(price_provider="openai").request(HELLO)

    assert (response.usage.input_tokens, response.usage.output_tokens) == (1200, 300)
    assert response.usage.cache_read_tokens == 200
    expected = genai_prices.calc_price(
        genai_prices.Usage(input_tokens=1200, output_tokens=300, cache_read_tokens=200),
        model_ref="gpt-4.1-mini-2025-04-14",
        provider_id="openai",
    ).total_price
    assert response.cost_usd == expected
    assert response.cost_usd is not None and response.cost_usd > 0


async def test_an_unknown_model_costs_none(fake: Any, make_model: Any) -> None:
    fake.script({"json": completion("ok", model="qwen")})

    response = await make_model(model="qwen", price_provider="openai").request(HELLO)

    assert response.usage.input_tokens == 12
    assert response.cost_usd is None


async def test_a_server_genai_prices_does_not_know_is_not_priced(
    fake: Any, make_model: Any
) -> None:
    # A local server may serve "gpt-4.1-mini" for free or proxy it at a price: unknown.
    fake.script({"json": completion("ok", model="gpt-4.1-mini")})

    response = await make_model().request(HELLO)

    assert response.cost_usd is None


async def test_api_openai_com_is_priced_named_and_gets_max_completion_tokens(
    fake: Any, official_client: openai.AsyncOpenAI
) -> None:
    fake.script({"json": completion("ok", model="gpt-4.1-mini")})
    model = OpenAIModel(model="gpt-4.1-mini", client=official_client)

    response = await model.request(
        ModelRequest(messages=HELLO.messages, settings=ModelSettings(max_tokens=32))
    )

    assert model.name == "openai:gpt-4.1-mini"
    assert response.cost_usd is not None and response.cost_usd > 0
    body = fake.only_request()["body"]
    assert body["max_completion_tokens"] == 32
    assert "max_tokens" not in body


async def test_an_injected_client_is_left_open(fake: Any, official_client: Any) -> None:
    model = OpenAIModel(model="gpt-4.1-mini", client=official_client)
    await model.aclose()
    assert not official_client.is_closed()


# --- construction ---------------------------------------------------------------------------


def test_name_of_a_compatible_server(make_model: Any, fake: Any) -> None:
    model = make_model(model="qwen", base_url=f"{fake.url}/v1/")
    assert model.name == f"openai:qwen@{fake.url}/v1"


def test_no_api_key_for_api_openai_com_is_a_config_error(monkeypatch: Any) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        OpenAIModel(model="gpt-4.1-mini")


async def test_a_local_server_needs_no_api_key(
    fake: Any, make_model: Any, monkeypatch: Any
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    fake.script({"json": completion("hi", model="qwen")})

    await make_model(model="qwen", api_key=None).request(HELLO)

    assert fake.only_request()["headers"]["authorization"] == "Bearer not-needed"


# --- errors ---------------------------------------------------------------------------------


def _in_30_s() -> str:
    return format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)


@pytest.mark.parametrize(
    ("headers", "low", "high"),
    [
        ({"retry-after": "2"}, 2.0, 2.0),
        ({"retry-after-ms": "1500", "retry-after": "9"}, 1.5, 1.5),
        ({"retry-after": _in_30_s}, 20.0, 30.0),
    ],
    ids=["seconds", "milliseconds", "http-date"],
)
async def test_429_is_rate_limited_with_the_retry_hint(
    fake: Any, make_model: Any, headers: dict[str, Any], low: float, high: float
) -> None:
    headers = {name: value() if callable(value) else value for name, value in headers.items()}
    fake.script(error(429, "Rate limit reached", "rate_limit_exceeded", headers=headers))

    with pytest.raises(ModelRateLimited) as caught:
        await make_model().request(HELLO)

    assert caught.value.retry_after is not None
    assert low <= caught.value.retry_after <= high
    assert (caught.value.status_code, caught.value.provider) == (429, "openai")
    assert caught.value.retryable
    assert isinstance(caught.value.__cause__, openai.RateLimitError)


async def test_429_without_a_hint(fake: Any, make_model: Any) -> None:
    fake.script(error(429, "Rate limit reached"))
    with pytest.raises(ModelRateLimited) as caught:
        await make_model().request(HELLO)
    assert caught.value.retry_after is None


async def test_429_out_of_quota_is_not_a_rate_limit(fake: Any, make_model: Any) -> None:
    fake.script(error(429, "You exceeded your current quota", "insufficient_quota"))
    with pytest.raises(ModelAuthError) as caught:
        await make_model().request(HELLO)
    assert not caught.value.retryable


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_5xx_is_unavailable(fake: Any, make_model: Any, status: int) -> None:
    fake.script(error(status, "The server had an error"))
    with pytest.raises(ModelUnavailable) as caught:
        await make_model().request(HELLO)
    assert caught.value.status_code == status
    assert "The server had an error" in str(caught.value)


async def test_5xx_with_an_html_body_is_unavailable(fake: Any, make_model: Any) -> None:
    fake.script(
        {"status": 502, "raw": "<html>Bad Gateway</html>", "headers": {"content-type": "text/html"}}
    )
    with pytest.raises(ModelUnavailable):
        await make_model().request(HELLO)


@pytest.mark.parametrize("status", [401, 403])
async def test_401_and_403_are_auth_errors(fake: Any, make_model: Any, status: int) -> None:
    fake.script(error(status, "Incorrect API key provided", "invalid_api_key"))
    with pytest.raises(ModelAuthError) as caught:
        await make_model().request(HELLO)
    assert caught.value.status_code == status
    assert not caught.value.retryable


@pytest.mark.parametrize(
    "reply",
    [
        error(
            400, "This model's maximum context length is 128000 tokens.", "context_length_exceeded"
        ),
        error(
            400, "This model's maximum context length is 4096 tokens. However, you requested 5000"
        ),
        {
            "status": 400,
            "json": {
                "error": {
                    "code": 400,
                    "message": "the request exceeds the available context size, try increasing it",
                    "type": "exceed_context_size_error",
                }
            },
        },
    ],
    ids=["openai", "vllm", "llama.cpp-server"],
)
async def test_context_overflow_is_context_too_long(
    fake: Any, make_model: Any, reply: dict[str, Any]
) -> None:
    fake.script(reply)
    with pytest.raises(ContextTooLong) as caught:
        await make_model().request(HELLO)
    assert caught.value.status_code == 400


@pytest.mark.parametrize(
    "reply",
    [
        error(400, "Invalid schema for function 'get_weather'", "invalid_function_parameters"),
        error(404, "The model `gpt-9` does not exist", "model_not_found"),
        error(422, "Unprocessable"),
    ],
)
async def test_other_4xx_are_plain_model_errors(
    fake: Any, make_model: Any, reply: dict[str, Any]
) -> None:
    fake.script(reply)
    with pytest.raises(ModelError) as caught:
        await make_model().request(HELLO)
    assert type(caught.value) is ModelError
    assert not caught.value.retryable
    assert caught.value.status_code == reply["status"]


async def test_timeout(fake: Any, make_model: Any) -> None:
    fake.script({"json": completion("late"), "delay": 1.0})
    with pytest.raises(ModelTimeout) as caught:
        await make_model(timeout_s=0.3).request(HELLO)
    assert isinstance(caught.value.__cause__, openai.APITimeoutError)


async def test_timeout_of_one_request(fake: Any, make_model: Any) -> None:
    fake.script({"json": completion("late"), "delay": 1.0})
    request = ModelRequest(messages=HELLO.messages, settings=ModelSettings(timeout_s=0.3))
    with pytest.raises(ModelTimeout):
        await make_model(timeout_s=30.0).request(request)


@pytest.mark.parametrize(
    "reply",
    [
        {"raw": '{"choices": [', "headers": {"content-type": "application/json"}},
        {"raw": "Hello there", "headers": {"content-type": "text/plain"}},
        {"json": {"unexpected": True}},
        {"json": {**completion("x"), "choices": []}},
        {"json": completion(None)},
        {"json": completion("  ")},
        {"json": {**completion("x"), "choices": [{"index": 0, "message": {"content": 5}}]}},
        {"json": completion(None, tool_calls=[("call_1", None, "{}")])},
    ],
    ids=[
        "truncated-json",
        "not-json",
        "wrong-shape",
        "no-choices",
        "empty-message",
        "blank-text",
        "content-not-text",
        "tool-call-without-name",
    ],
)
async def test_unusable_bodies_are_bad_responses(
    fake: Any, make_model: Any, reply: dict[str, Any]
) -> None:
    fake.script(reply)
    with pytest.raises(ModelBadResponse) as caught:
        await make_model().request(WITH_TOOLS)
    assert caught.value.retryable
    assert caught.value.provider == "openai"


async def test_connection_refused_is_unavailable(make_model: Any, refused_url: str) -> None:
    with pytest.raises(ModelUnavailable) as caught:
        await make_model(base_url=f"{refused_url}/v1").request(HELLO)
    assert isinstance(caught.value.__cause__, openai.APIConnectionError)


@pytest.mark.parametrize(
    "reply",
    [
        {"json": completion(None, refusal="I can't help with that.")},
        {"json": completion("partial", finish_reason="content_filter")},
        error(400, "The response was filtered due to the prompt", "content_filter"),
    ],
    ids=["refusal-field", "content-filter-stop", "azure-filtered-prompt"],
)
async def test_refusals(fake: Any, make_model: Any, reply: dict[str, Any]) -> None:
    fake.script(reply)
    with pytest.raises(ModelRefusal) as caught:
        await make_model().request(HELLO)
    assert not caught.value.retryable


async def test_a_refusal_says_what_the_model_said(fake: Any, make_model: Any) -> None:
    fake.script({"json": completion(None, refusal="I can't help with that.")})
    with pytest.raises(ModelRefusal, match="I can't help with that"):
        await make_model().request(HELLO)


async def test_arguments_are_kept_verbatim_even_when_malformed(fake: Any, make_model: Any) -> None:
    fake.script({"json": completion(None, tool_calls=[("c1", "get_weather", '{"city": "Os')])})
    response = await make_model().request(WITH_TOOLS)
    assert response.tool_calls[0].arguments == '{"city": "Os'
    with pytest.raises(ValueError):
        json.loads(response.tool_calls[0].arguments)
