"""OpenAI and OpenAI-compatible servers (vLLM, Ollama, llama.cpp server, LM Studio, Groq, ...).

Talks to ``/v1/chat/completions`` through the official `openai` SDK with the SDK's own retries
turned off: bosun's runtime decides about retries, from the error kinds below. `stream` sends
the same request with ``stream=True`` (usage asked for with ``stream_options``) and yields text
as it comes; the chunks are assembled into the completion body the non-streaming call would
have returned (`bosun.models._streams`), and that goes through the same checks.

Behaviour a reader should know:

- Errors are translated where they leave the SDK (`translate_error`; status codes per the table in
  `bosun.models._http_errors`). A timeout is `ModelTimeout`, a refused or dropped connection
  `ModelUnavailable`, a body that is not a usable completion `ModelBadResponse`, a refusal or a
  content-filter stop `ModelRefusal`. Messages name the server's URL and the cause, never the
  key.
- The body is decoded and checked by bosun (`bosun.models._openai_format`), because the SDK
  accepts malformed bodies outside strict mode instead of raising.
- The output limit goes out as ``max_completion_tokens`` to api.openai.com, where ``max_tokens``
  is deprecated and rejected by o-series and GPT-5 models, and as ``max_tokens`` to every other
  server, because that is the name compatible servers understand.
- Cost: at api.openai.com and at hosts genai-prices knows (Groq, DeepSeek, Azure, ...) the
  price comes from genai-prices; a server it does not know (a local vLLM) costs `None`, since the
  same model id may be free locally or billed through a proxy. ``price_provider=`` says whose
  prices apply when bosun cannot tell.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import openai

from bosun.errors import (
    ConfigError,
    ModelBadResponse,
    ModelError,
)
from bosun.models._http_errors import (
    Endpoint,
    connection_error,
    status_error,
    timeout_error,
    timeout_seconds,
)
from bosun.models._openai_format import (
    chat_messages,
    chat_tools,
    parse_chat_completion,
    sampling_params,
)
from bosun.models._streams import OpenAIAssembly
from bosun.models.base import Model, ModelRequest, ModelResponse, StreamEvent, TextDelta
from bosun.models.pricing import price, provider_for_url

__all__ = ["OpenAIModel"]

_OFFICIAL_HOST = "api.openai.com"
_NO_KEY = "not-needed"  # local servers ignore the key, but the SDK insists on one
_KEY_SOURCE = "OPENAI_API_KEY or OpenAIModel(api_key=...)"


class OpenAIModel(Model):
    """A chat model behind the OpenAI chat-completions API."""

    model_name: str
    """The model id sent with every request, e.g. ``gpt-4.1-mini``."""
    base_url: str
    """The API root the client talks to, e.g. ``https://api.openai.com/v1``."""

    def __init__(
        self,
        *,
        model: str,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout_s: float = 120.0,
        client: openai.AsyncOpenAI | None = None,
        price_provider: str | None = None,
    ) -> None:
        """Create the adapter.

        `api_key` `None` means ``OPENAI_API_KEY`` (read by the SDK); against a `base_url` with no
        key configured a placeholder is sent. `client` replaces the SDK client bosun would make
        (its retries and timeout are then the caller's); `base_url`, `api_key` and `timeout_s`
        are ignored with it. `price_provider` is the genai-prices provider id whose prices apply,
        for a proxy bosun cannot recognise by its URL.
        """
        self._owns_client = client is None
        self._client = client if client is not None else _make_client(base_url, api_key, timeout_s)
        self.model_name = model
        self.base_url = str(self._client.base_url).rstrip("/")
        official = self._client.base_url.host == _OFFICIAL_HOST
        self.name = f"openai:{model}" if official else f"openai:{model}@{self.base_url}"
        self._max_tokens_key = "max_completion_tokens" if official else "max_tokens"
        self._price_provider = price_provider or provider_for_url(self.base_url)
        self._endpoint = Endpoint(
            provider="openai",
            url=self.base_url,
            key_env=_KEY_SOURCE,
            secrets=(self._client.api_key,),
        )

    async def request(self, request: ModelRequest) -> ModelResponse:
        """Send one chat completion; see the module docstring for errors and cost."""
        params = self._params(request)
        try:
            raw = await self._client.chat.completions.with_raw_response.create(**params)
            body = raw.content
        except openai.OpenAIError as exc:
            waited = request.settings.timeout_s or timeout_seconds(self._client.timeout)
            raise translate_error(
                exc, self._endpoint, model=self.model_name, timeout_s=waited
            ) from exc
        try:
            data = json.loads(body)
        except (ValueError, RecursionError) as exc:
            raise ModelBadResponse(
                f"{self._endpoint.where} sent a body that is not JSON",
                provider="openai",
                model=self.model_name,
                status_code=raw.status_code,
            ) from exc
        return self._priced(
            parse_chat_completion(data, request=request, provider="openai", model=self.model_name)
        )

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamEvent]:
        """Stream one chat completion: text as it comes, then the response (as `request`)."""
        params = {**self._params(request), "stream": True}
        params["stream_options"] = {"include_usage": True}
        assembly = OpenAIAssembly()
        waited = request.settings.timeout_s or timeout_seconds(self._client.timeout)
        try:
            chunks = await self._client.chat.completions.create(**params)
            async with chunks:
                async for chunk in chunks:
                    text = assembly.add(chunk.model_dump(exclude_unset=True))
                    if text:
                        yield TextDelta(text=text)
            body = assembly.body()
        except openai.OpenAIError as exc:
            raise translate_error(
                exc, self._endpoint, model=self.model_name, timeout_s=waited
            ) from exc
        except (ValueError, httpx.HTTPError) as exc:  # StreamCut, a data line not JSON
            # A connection dropped mid-stream surfaces as httpx's error, not the SDK's.
            raise ModelBadResponse(
                f"{self._endpoint.where}: the stream broke off: {exc}",
                provider="openai",
                model=self.model_name,
            ) from exc
        yield self._priced(
            parse_chat_completion(body, request=request, provider="openai", model=self.model_name)
        )

    def _params(self, request: ModelRequest) -> dict[str, Any]:
        params: dict[str, Any] = {
            "model": self.model_name,
            "messages": chat_messages(request.messages),
            **sampling_params(request.settings, max_tokens_key=self._max_tokens_key),
        }
        if request.tools:
            params["tools"] = chat_tools(request.tools)
        if request.settings.timeout_s is not None:
            params["timeout"] = request.settings.timeout_s
        return params

    def _priced(self, response: ModelResponse) -> ModelResponse:
        if self._price_provider is None:
            return response
        cost = price(self._price_provider, response.model, response.usage)
        return response.model_copy(update={"cost_usd": cost})

    async def aclose(self) -> None:
        """Close the HTTP connections of the client this adapter made (not an injected one)."""
        if self._owns_client:
            await self._client.close()


def _make_client(base_url: str | None, api_key: str | None, timeout_s: float) -> openai.AsyncOpenAI:
    try:
        return openai.AsyncOpenAI(
            api_key=api_key, base_url=base_url, max_retries=0, timeout=timeout_s
        )
    except openai.OpenAIError as exc:  # raised only when no API key can be found
        if base_url is None:
            raise ConfigError(
                "no OpenAI API key: set OPENAI_API_KEY or pass OpenAIModel(api_key=...)"
            ) from exc
    return openai.AsyncOpenAI(api_key=_NO_KEY, base_url=base_url, max_retries=0, timeout=timeout_s)


def translate_error(
    exc: openai.OpenAIError, endpoint: Endpoint, *, model: str, timeout_s: float | None
) -> ModelError:
    """The bosun error for an openai SDK exception, most specific first (also used by
    `bosun.knowledge`'s OpenAI-compatible embedder)."""
    if isinstance(exc, openai.APITimeoutError):
        return timeout_error(endpoint, model=model, timeout_s=timeout_s)
    if isinstance(exc, openai.APIConnectionError):
        return connection_error(exc, endpoint, model=model)
    if isinstance(exc, openai.APIStatusError):
        return status_error(
            exc.status_code,
            body=exc.body,
            headers=exc.response.headers,
            endpoint=endpoint,
            model=model,
        )
    if isinstance(exc, openai.APIResponseValidationError):
        return ModelBadResponse(
            endpoint.redact(f"{endpoint.where}: {exc.message}"),
            provider="openai",
            model=model,
            status_code=exc.status_code,
        )
    return ModelError(endpoint.redact(f"{endpoint.where}: {exc}"), provider="openai", model=model)
