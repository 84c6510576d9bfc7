"""The OpenAI chat-completions wire format: bosun messages in, a completion dict out.

Pure functions shared by the OpenAI adapter (the JSON body of ``/v1/chat/completions``) and the
llama.cpp adapter (``Llama.create_chat_completion`` returns the same shape as a dict). The
completion is parsed from plain JSON data, checked field by field, rather than through the
SDK's pydantic types: outside strict mode the SDK accepts any body (a non-JSON body comes back
as a string, ``{}`` as a `ChatCompletion` whose fields are all `None`), and bosun must turn such
bodies into `ModelBadResponse` instead of an `AttributeError` later.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from bosun.errors import ModelBadResponse, ModelRefusal
from bosun.models._fenced import parse_fenced_tool_calls
from bosun.models.base import (
    AssistantMessage,
    Message,
    ModelRequest,
    ModelResponse,
    ModelSettings,
    SystemMessage,
    ToolCall,
    ToolDefinition,
    ToolMessage,
    Usage,
    UserMessage,
)

__all__ = ["chat_messages", "chat_tools", "parse_chat_completion", "sampling_params"]


def chat_messages(messages: Sequence[Message]) -> list[dict[str, Any]]:
    """Messages as chat-completions ``messages``."""
    return [_chat_message(message) for message in messages]


def _chat_message(message: Message) -> dict[str, Any]:
    if isinstance(message, SystemMessage | UserMessage):
        return {"role": message.role, "content": message.content}
    if isinstance(message, ToolMessage):
        return {"role": "tool", "tool_call_id": message.call_id, "content": message.content}
    return _assistant_message(message)


def _assistant_message(message: AssistantMessage) -> dict[str, Any]:
    wire: dict[str, Any] = {"role": "assistant"}
    if message.content is not None:
        wire["content"] = message.content
    # With tool calls and no text, "content" is left out rather than sent as null: OpenAI
    # allows either, but typed servers (llama_cpp.server, seen here) reject null.
    if message.tool_calls:
        wire["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments},
            }
            for call in message.tool_calls
        ]
    elif message.content is None:
        wire["content"] = ""  # an assistant turn needs content or tool calls
    return wire


def chat_tools(tools: Sequence[ToolDefinition]) -> list[dict[str, Any]]:
    """Tool definitions as chat-completions ``tools``."""
    return [
        {
            "type": "function",
            "function": {
                "name": tool.name,
                "description": tool.description,
                "parameters": tool.parameters,
            },
        }
        for tool in tools
    ]


def sampling_params(
    settings: ModelSettings, *, max_tokens_key: str = "max_tokens"
) -> dict[str, Any]:
    """The settings that are set, as chat-completions parameters."""
    params: dict[str, Any] = {}
    if settings.temperature is not None:
        params["temperature"] = settings.temperature
    if settings.max_tokens is not None:
        params[max_tokens_key] = settings.max_tokens
    if settings.top_p is not None:
        params["top_p"] = settings.top_p
    if settings.seed is not None:
        params["seed"] = settings.seed
    if settings.stop:
        params["stop"] = list(settings.stop)
    return params


def parse_chat_completion(
    data: object, *, request: ModelRequest, provider: str, model: str
) -> ModelResponse:
    """A chat-completion body as a `ModelResponse` (without cost).

    `model` is the requested model, used when the body names none. When tools were offered and
    the answer has no native tool calls, tool calls written as fenced JSON in the text count.
    Raises `ModelRefusal` for a refusal or a content-filter stop, `ModelBadResponse` for a body
    of the wrong shape or an answer with neither text nor tool calls.
    """

    def bad(reason: str) -> ModelBadResponse:
        return ModelBadResponse(
            f"{provider} sent an unusable completion: {reason}", provider=provider, model=model
        )

    if not isinstance(data, Mapping):
        raise bad(f"expected a JSON object, got {type(data).__name__}")
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], Mapping):
        raise bad("no choices")
    message = choices[0].get("message")
    if not isinstance(message, Mapping):
        raise bad("the choice has no message")
    finish_reason = choices[0].get("finish_reason")
    refusal = message.get("refusal")
    if refusal or finish_reason == "content_filter":
        detail = refusal if isinstance(refusal, str) and refusal else "content filter"
        raise ModelRefusal(f"{provider} refused: {detail}", provider=provider, model=model)
    try:
        text = _text(message.get("content"))
        tool_calls = _native_tool_calls(message)
    except (ValueError, RecursionError) as exc:
        raise bad(str(exc)) from exc
    if not tool_calls and request.tools and text:
        text, tool_calls = parse_fenced_tool_calls(text, [tool.name for tool in request.tools])
        if tool_calls and finish_reason in (None, "stop"):
            finish_reason = "tool_calls"
    if not (text and text.strip()) and not tool_calls:
        raise bad(f"empty answer (finish_reason={finish_reason!r})")
    if not isinstance(finish_reason, str):
        finish_reason = "tool_calls" if tool_calls else "stop"
    reported_model = data.get("model")
    return ModelResponse(
        text=text or None,
        tool_calls=tool_calls,
        usage=_usage(data.get("usage")),
        model=reported_model if isinstance(reported_model, str) and reported_model else model,
        provider=provider,
        finish_reason=finish_reason,
    )


def _text(content: object) -> str | None:
    """Content as text; a list of content parts is joined."""
    if content is None or isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [part.get("text") for part in content if isinstance(part, Mapping)]
        return "".join(part for part in parts if isinstance(part, str))
    raise ValueError(f"message content is {type(content).__name__}, not text")


def _native_tool_calls(message: Mapping[str, Any]) -> tuple[ToolCall, ...]:
    raw_calls = message.get("tool_calls")
    if not raw_calls:
        legacy = message.get("function_call")  # pre-tools servers, some llama.cpp chat formats
        raw_calls = [{"id": "call_0", "function": legacy}] if legacy else []
    if not isinstance(raw_calls, list):
        raise ValueError("tool_calls is not a list")
    calls: list[ToolCall] = []
    for index, raw in enumerate(raw_calls):
        function = raw.get("function") if isinstance(raw, Mapping) else None
        if not isinstance(function, Mapping) or not isinstance(function.get("name"), str):
            raise ValueError(f"tool call {index} has no function name")
        call_id = raw.get("id")
        calls.append(
            ToolCall(
                id=call_id if isinstance(call_id, str) and call_id else f"call_{index}",
                name=function["name"],
                arguments=_arguments(function.get("arguments")),
            )
        )
    return tuple(calls)


def _arguments(arguments: object) -> str:
    if isinstance(arguments, str):
        return arguments  # verbatim, even malformed: the tool layer tells the model
    if arguments is None:
        return "{}"
    return json.dumps(arguments, ensure_ascii=False)


def _usage(usage: object) -> Usage:
    if not isinstance(usage, Mapping):
        return Usage()
    details = usage.get("prompt_tokens_details")
    cached = details.get("cached_tokens") if isinstance(details, Mapping) else None
    return Usage(
        input_tokens=_count(usage.get("prompt_tokens")),
        output_tokens=_count(usage.get("completion_tokens")),
        cache_read_tokens=_count(cached),
    )


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0
