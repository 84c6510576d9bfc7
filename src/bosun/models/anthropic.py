"""Anthropic's Messages API (``/v1/messages``) through the official `anthropic` SDK.

The SDK's own retries are off: bosun's runtime decides about retries, from the error kinds.
`stream` sends the same request with ``stream=True`` and yields text as it comes; the events
are assembled into the message body the non-streaming call would have returned
(`bosun.models._streams`), read by the same parser.

Wire mapping:

- System messages, wherever they stand, become the ``system`` parameter (joined by a blank
  line); Anthropic has no system role inside ``messages``.
- Tool results become ``tool_result`` blocks in a user turn; consecutive turns of one role are
  merged, so the results of parallel calls (and a user note after them) share one turn, results
  first, as the API requires.
- Assistant tool calls become ``tool_use`` blocks whose ``input`` is the parsed arguments (an
  empty object when the model's JSON did not parse; the tool result that follows says why).
- ``max_tokens`` is required by the API: the request's setting, else the adapter's default.
  ``seed`` is not sent: the API has none.
- ``stop_reason`` maps ``end_turn``/``stop_sequence`` -> ``stop``, ``tool_use`` ->
  ``tool_calls``, ``max_tokens``/``model_context_window_exceeded`` -> ``length``; ``refusal``
  raises `ModelRefusal`.
- Usage: ``input_tokens`` in bosun counts every prompt token, so Anthropic's uncached input,
  cache reads and cache writes are added up; the cost prices cache writes at their own rate.
- Errors: statuses per the table in `bosun.models._http_errors` (529 overloaded and 5xx ->
  `ModelUnavailable`, "prompt is too long" and 413 -> `ContextTooLong`, ...); a body bosun cannot
  read -> `ModelBadResponse`. Messages name the server's URL and the cause, never the key.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import anthropic
import httpx

from bosun.errors import (
    ConfigError,
    ModelBadResponse,
    ModelError,
    ModelRefusal,
)
from bosun.models._http_errors import (
    Endpoint,
    connection_error,
    status_error,
    timeout_error,
    timeout_seconds,
)
from bosun.models._streams import AnthropicAssembly
from bosun.models.base import (
    AssistantMessage,
    Message,
    Model,
    ModelRequest,
    ModelResponse,
    StreamEvent,
    SystemMessage,
    TextDelta,
    ToolCall,
    ToolMessage,
    Usage,
)
from bosun.models.pricing import price

__all__ = ["AnthropicModel"]

_OFFICIAL_HOST = "api.anthropic.com"
_NO_KEY = "not-needed"  # for Anthropic-compatible local servers that ignore the key
_KEY_SOURCE = "ANTHROPIC_API_KEY or AnthropicModel(api_key=...)"
_FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "tool_use": "tool_calls",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
}


class AnthropicModel(Model):
    """A Claude model behind the Anthropic Messages API."""

    model_name: str
    """The model id sent with every request, e.g. ``claude-sonnet-4-5``."""
    base_url: str
    """The API root the client talks to, e.g. ``https://api.anthropic.com``."""
    max_tokens: int
    """Output limit sent when the request's settings set none (the API requires one)."""

    def __init__(
        self,
        *,
        model: str,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout_s: float = 120.0,
        max_tokens: int = 4096,
        client: anthropic.AsyncAnthropic | None = None,
        price_provider: str | None = "anthropic",
    ) -> None:
        """Create the adapter.

        `api_key` `None` means ``ANTHROPIC_API_KEY`` (read by the SDK). `client` replaces the
        SDK client bosun would make; `base_url`, `api_key` and `timeout_s` are ignored with it.
        `price_provider` is the genai-prices provider id whose prices apply (`None`: no cost).
        """
        self._owns_client = client is None
        self._client = client if client is not None else _make_client(base_url, api_key, timeout_s)
        self.model_name = model
        self.base_url = str(self._client.base_url).rstrip("/")
        self.max_tokens = max_tokens
        official = self._client.base_url.host == _OFFICIAL_HOST
        self.name = f"anthropic:{model}" if official else f"anthropic:{model}@{self.base_url}"
        self._price_provider = price_provider
        self._endpoint = Endpoint(
            provider="anthropic",
            url=self.base_url,
            key_env=_KEY_SOURCE,
            secrets=tuple(k for k in (self._client.api_key, self._client.auth_token) if k),
        )

    async def request(self, request: ModelRequest) -> ModelResponse:
        """Send one message request; see the module docstring for the mapping and errors."""
        params = self._params(request)
        try:
            raw = await self._client.messages.with_raw_response.create(**params)
            body = raw.content
        except anthropic.AnthropicError as exc:
            waited = request.settings.timeout_s or timeout_seconds(self._client.timeout)
            raise _translate(exc, self._endpoint, model=self.model_name, timeout_s=waited) from exc
        try:
            data = json.loads(body)
        except (ValueError, RecursionError) as exc:
            raise ModelBadResponse(
                f"{self._endpoint.where} sent a body that is not JSON",
                provider="anthropic",
                model=self.model_name,
                status_code=raw.status_code,
            ) from exc
        return self._priced(*_parse_message(data, model=self.model_name))

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamEvent]:
        """Stream one message: text as it comes, then the response (as `request`)."""
        assembly = AnthropicAssembly()
        try:
            events = await self._client.messages.create(**self._params(request), stream=True)
            async with events:
                async for event in events:
                    text = assembly.add(event.model_dump(exclude_unset=True))
                    if text:
                        yield TextDelta(text=text)
            body = assembly.body()
        except anthropic.AnthropicError as exc:
            waited = request.settings.timeout_s or timeout_seconds(self._client.timeout)
            raise _translate(exc, self._endpoint, model=self.model_name, timeout_s=waited) from exc
        except (ValueError, httpx.HTTPError) as exc:  # StreamCut, a data line not JSON
            raise ModelBadResponse(
                f"{self._endpoint.where}: the stream broke off: {exc}",
                provider="anthropic",
                model=self.model_name,
            ) from exc
        yield self._priced(*_parse_message(body, model=self.model_name))

    def _priced(self, response: ModelResponse, cache_write_tokens: int) -> ModelResponse:
        if self._price_provider is None:
            return response
        cost = price(
            self._price_provider,
            response.model,
            response.usage,
            cache_write_tokens=cache_write_tokens,
        )
        return response.model_copy(update={"cost_usd": cost})

    async def aclose(self) -> None:
        """Close the HTTP connections of the client this adapter made (not an injected one)."""
        if self._owns_client:
            await self._client.close()

    def _params(self, request: ModelRequest) -> dict[str, Any]:
        settings = request.settings
        system, messages = _split_messages(request.messages)
        params: dict[str, Any] = {
            "model": self.model_name,
            "messages": messages,
            "max_tokens": settings.max_tokens or self.max_tokens,
        }
        if system:
            params["system"] = system
        if request.tools:
            params["tools"] = [
                {"name": t.name, "description": t.description, "input_schema": t.parameters}
                for t in request.tools
            ]
        if settings.temperature is not None:
            params["temperature"] = settings.temperature
        if settings.top_p is not None:
            params["top_p"] = settings.top_p
        if settings.stop:
            params["stop_sequences"] = list(settings.stop)
        if settings.timeout_s is not None:
            params["timeout"] = settings.timeout_s
        return params


def _make_client(
    base_url: str | None, api_key: str | None, timeout_s: float
) -> anthropic.AsyncAnthropic:
    client = anthropic.AsyncAnthropic(
        api_key=api_key, base_url=base_url, max_retries=0, timeout=timeout_s
    )
    if client.api_key or client.auth_token or getattr(client, "credentials", None):
        return client
    if base_url is None:
        raise ConfigError(
            "no Anthropic API key: set ANTHROPIC_API_KEY or pass AnthropicModel(api_key=...)"
        )
    return anthropic.AsyncAnthropic(
        api_key=_NO_KEY, base_url=base_url, max_retries=0, timeout=timeout_s
    )


def _split_messages(messages: Sequence[Message]) -> tuple[str, list[dict[str, Any]]]:
    """The system text and the alternating user/assistant turns."""
    system: list[str] = []
    turns: list[dict[str, Any]] = []
    for message in messages:
        if isinstance(message, SystemMessage):
            system.append(message.content)
            continue
        role, blocks = _blocks(message)
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    return "\n\n".join(system), turns


def _blocks(message: Message) -> tuple[str, list[dict[str, Any]]]:
    if isinstance(message, ToolMessage):
        block = {"type": "tool_result", "tool_use_id": message.call_id, "content": message.content}
        return "user", [block]
    if isinstance(message, AssistantMessage):
        blocks: list[dict[str, Any]] = []
        if message.content:
            blocks.append({"type": "text", "text": message.content})
        blocks.extend(
            {"type": "tool_use", "id": call.id, "name": call.name, "input": _input(call)}
            for call in message.tool_calls
        )
        return "assistant", blocks
    return "user", [{"type": "text", "text": message.content}]


def _input(call: ToolCall) -> dict[str, Any]:
    try:
        return call.parsed_arguments()
    except ValueError:
        return {}


def _parse_message(data: object, *, model: str) -> tuple[ModelResponse, int]:
    """A Messages API body as a `ModelResponse` (without cost) and its cache-write tokens."""

    def bad(reason: str) -> ModelBadResponse:
        return ModelBadResponse(
            f"anthropic sent an unusable message: {reason}", provider="anthropic", model=model
        )

    if not isinstance(data, Mapping) or not isinstance(data.get("content"), list):
        raise bad("no content list")
    stop_reason = data.get("stop_reason")
    if stop_reason == "refusal":
        raise ModelRefusal("anthropic: the model refused", provider="anthropic", model=model)
    texts: list[str] = []
    calls: list[ToolCall] = []
    for block in data["content"]:
        kind = block.get("type") if isinstance(block, Mapping) else None
        if kind == "text" and isinstance(block.get("text"), str):
            texts.append(block["text"])
        elif kind == "tool_use":
            if not isinstance(block.get("id"), str) or not isinstance(block.get("name"), str):
                raise bad("tool_use block without id or name")
            arguments = json.dumps(block.get("input") or {}, ensure_ascii=False)
            calls.append(ToolCall(id=block["id"], name=block["name"], arguments=arguments))
    text = "".join(texts)
    if not text.strip() and not calls:
        raise bad(f"empty answer (stop_reason={stop_reason!r})")
    usage, cache_write_tokens = _usage(data.get("usage"))
    reported_model = data.get("model")
    response = ModelResponse(
        text=text or None,
        tool_calls=tuple(calls),
        usage=usage,
        model=reported_model if isinstance(reported_model, str) and reported_model else model,
        provider="anthropic",
        finish_reason=_FINISH_REASONS.get(stop_reason, stop_reason)
        if isinstance(stop_reason, str)
        else ("tool_calls" if calls else "stop"),
    )
    return response, cache_write_tokens


def _usage(usage: object) -> tuple[Usage, int]:
    if not isinstance(usage, Mapping):
        return Usage(), 0
    uncached = _count(usage.get("input_tokens"))
    cache_read = _count(usage.get("cache_read_input_tokens"))
    cache_write = _count(usage.get("cache_creation_input_tokens"))
    counted = Usage(
        input_tokens=uncached + cache_read + cache_write,
        output_tokens=_count(usage.get("output_tokens")),
        cache_read_tokens=cache_read,
    )
    return counted, cache_write


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _translate(
    exc: anthropic.AnthropicError, endpoint: Endpoint, *, model: str, timeout_s: float | None
) -> ModelError:
    """The bosun error for an SDK exception, most specific first."""
    if isinstance(exc, anthropic.APITimeoutError):
        return timeout_error(endpoint, model=model, timeout_s=timeout_s)
    if isinstance(exc, anthropic.APIConnectionError):
        return connection_error(exc, endpoint, model=model)
    if isinstance(exc, anthropic.APIStatusError):
        return status_error(
            exc.status_code,
            body=exc.body,
            headers=exc.response.headers,
            endpoint=endpoint,
            model=model,
        )
    if isinstance(exc, anthropic.APIResponseValidationError):
        return ModelBadResponse(
            endpoint.redact(f"{endpoint.where}: {exc.message}"),
            provider="anthropic",
            model=model,
            status_code=exc.status_code,
        )
    return ModelError(
        endpoint.redact(f"{endpoint.where}: {exc}"), provider="anthropic", model=model
    )
