"""`ScriptedModel`: a deterministic model for tests and offline demos.

Give it a script (responses, text, tool calls, faults, consumed one per request) or a function
of the request. Faults can also be scheduled by request number. `assert_consumed()` fails a
test whose script was not fully used.
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from bosun.errors import (
    ContextTooLong,
    ModelAuthError,
    ModelBadResponse,
    ModelError,
    ModelRateLimited,
    ModelRefusal,
    ModelTimeout,
    ModelUnavailable,
)
from bosun.models.base import Model, ModelRequest, ModelResponse, ToolCall, estimate_usage

__all__ = ["Fault", "ScriptedModel", "call", "calls", "reply"]


@dataclass(frozen=True, slots=True)
class Fault:
    """A failure the scripted model produces instead of an answer."""

    error: ModelError | None = None
    """Raised when set."""
    response: ModelResponse | None = None
    """Returned when set (a malformed answer rather than an exception)."""

    @classmethod
    def rate_limit(cls, retry_after: float | None = 1.0) -> Fault:
        """HTTP 429 with a Retry-After hint."""
        return cls(
            ModelRateLimited(
                "rate limited", retry_after=retry_after, provider="scripted", status_code=429
            )
        )

    @classmethod
    def timeout(cls) -> Fault:
        """The provider did not answer in time."""
        return cls(ModelTimeout("timed out", provider="scripted"))

    @classmethod
    def server_error(cls) -> Fault:
        """HTTP 500."""
        return cls(ModelUnavailable("internal server error", provider="scripted", status_code=500))

    @classmethod
    def refusal(cls) -> Fault:
        """The model declines."""
        return cls(ModelRefusal("I can't help with that.", provider="scripted"))

    @classmethod
    def auth(cls) -> Fault:
        """HTTP 401."""
        return cls(ModelAuthError("invalid api key", provider="scripted", status_code=401))

    @classmethod
    def context_too_long(cls) -> Fault:
        """The request does not fit."""
        return cls(ContextTooLong("context length exceeded", provider="scripted", status_code=400))

    @classmethod
    def empty(cls) -> Fault:
        """An answer with neither text nor tool calls."""
        return cls(ModelBadResponse("empty response", provider="scripted"))

    @classmethod
    def malformed_tool_call(cls, name: str, raw_arguments: str = '{"broken": ') -> Fault:
        """A tool call whose arguments are not valid JSON."""
        tool_call = ToolCall(id="call_malformed", name=name, arguments=raw_arguments)
        return cls(response=_response(None, (tool_call,)))


ScriptItem = ModelResponse | Fault | str
Responder = Callable[[ModelRequest], "ScriptItem | Awaitable[ScriptItem]"]


def reply(text: str) -> ModelResponse:
    """A final text answer."""
    return _response(text, ())


def call(
    name: str, arguments: Mapping[str, Any] | None = None, *, id: str | None = None
) -> ModelResponse:
    """A response with one tool call."""
    return calls((name, arguments or {}), ids=None if id is None else [id])


def calls(*specs: tuple[str, Mapping[str, Any]], ids: Sequence[str] | None = None) -> ModelResponse:
    """A response with several (parallel) tool calls."""
    tool_calls = tuple(
        ToolCall(id=ids[i] if ids else f"call_{i}", name=name, arguments=json.dumps(dict(args)))
        for i, (name, args) in enumerate(specs)
    )
    return _response(None, tool_calls)


def _response(text: str | None, tool_calls: tuple[ToolCall, ...]) -> ModelResponse:
    return ModelResponse(
        text=text,
        tool_calls=tool_calls,
        model="scripted",
        provider="scripted",
        finish_reason="tool_calls" if tool_calls else "stop",
    )


class ScriptedModel(Model):
    """Answers from a script or a function; never touches the network."""

    def __init__(
        self,
        script: Sequence[ScriptItem] | Responder,
        *,
        faults: Mapping[int, Fault] | None = None,
        latency_s: float = 0.0,
        cost_per_1k_tokens: Decimal | None = None,
        name: str = "scripted",
    ) -> None:
        """`faults` maps a request number (0-based, counting every request) to a fault raised
        instead of consuming the script. `cost_per_1k_tokens=None` prices calls as unknown."""
        self.name = name
        self._script: list[ScriptItem] | None = None if callable(script) else list(script)
        self._responder: Responder | None = script if callable(script) else None
        self._faults = dict(faults or {})
        self._latency_s = latency_s
        self._rate = cost_per_1k_tokens
        self._position = 0
        self.requests: list[ModelRequest] = []
        """Every request received, in order."""

    async def request(self, request: ModelRequest) -> ModelResponse:
        number = len(self.requests)
        self.requests.append(request)
        if self._latency_s:
            await asyncio.sleep(self._latency_s)
        item = self._faults.pop(number, None) or await self._next(request)
        if isinstance(item, Fault):
            if item.error is not None:
                raise item.error
            assert item.response is not None
            item = item.response
        if isinstance(item, str):
            item = reply(item)
        return self._priced(item, request)

    async def _next(self, request: ModelRequest) -> ScriptItem:
        if self._responder is not None:
            produced = self._responder(request)
            return await produced if inspect.isawaitable(produced) else produced
        assert self._script is not None
        if self._position >= len(self._script):
            raise ModelBadResponse(
                f"scripted model exhausted after {self._position} responses", provider="scripted"
            )
        item = self._script[self._position]
        self._position += 1
        return item

    def _priced(self, response: ModelResponse, request: ModelRequest) -> ModelResponse:
        if (
            response.usage.total_tokens
            and (response.cost_usd is not None or self._rate is None)
            and response.model == self.name
        ):
            return response  # scripted complete, as a provider would send it
        if response.usage.total_tokens:
            usage = response.usage
        else:
            usage = estimate_usage(request.messages, response.text, response.tool_calls)
        cost = response.cost_usd
        if cost is None and self._rate is not None:
            cost = self._rate * usage.total_tokens / 1000
        return response.model_copy(update={"usage": usage, "cost_usd": cost, "model": self.name})

    @property
    def remaining(self) -> int:
        """Script items not yet used (0 for a function-driven model)."""
        return 0 if self._script is None else len(self._script) - self._position

    def assert_consumed(self) -> None:
        """Fail unless every scripted response and scheduled fault was used."""
        if self.remaining or self._faults:
            raise AssertionError(
                f"scripted model not fully consumed: {self.remaining} responses and faults at "
                f"requests {sorted(self._faults)} left"
            )
