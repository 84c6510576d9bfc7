"""The one model interface: a request (messages, tool definitions, settings) -> a response.

Every provider adapter implements exactly one coroutine, `Model.request`. Authentication and
client setup, wire format, and family quirks stay inside the adapter; the runtime sees only the
types below. The types are pydantic models because they are journaled verbatim and read back
on resume.

`Model.stream` is optional: it yields the answer's text as it comes (`TextDelta`s), then the
whole `ModelResponse`, the same one `request` would return. Its default calls `request` and
yields the text in one piece, so every model streams, if not token by token.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Sequence
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from bosun.models.context import Attempt, CallContext, Route
from bosun.trust import Trust

__all__ = [
    "AssistantMessage",
    "Message",
    "Model",
    "ModelRequest",
    "ModelResponse",
    "ModelSettings",
    "StreamEvent",
    "SystemMessage",
    "TextDelta",
    "ToolCall",
    "ToolDefinition",
    "ToolMessage",
    "Usage",
    "UserMessage",
    "estimate_usage",
    "parse_arguments",
]

_FROZEN = ConfigDict(frozen=True, extra="forbid")


class ToolCall(BaseModel):
    """A tool call proposed by the model."""

    model_config = _FROZEN

    id: str
    """Call id, unique within one response (provider's id, or one bosun assigned)."""
    name: str
    """Name of the tool the model wants to call."""
    arguments: str
    """Arguments exactly as the model wrote them: JSON text, possibly malformed."""

    def parsed_arguments(self) -> dict[str, Any]:
        """The arguments as a dict; raises ``ValueError`` if they are not one JSON object."""
        return parse_arguments(self.arguments)


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        duplicated = sorted({k for k in keys if keys.count(k) > 1})
        raise ValueError(f"duplicate keys in arguments: {duplicated}")
    return dict(pairs)


def parse_arguments(text: str) -> dict[str, Any]:
    """Parse tool-call arguments strictly: one JSON object, no duplicate keys.

    Duplicate keys are refused because parsers disagree on them: a reviewer shown
    ``{"amount": 1, "amount": 1000000}`` must not approve one value while another executes.
    Nesting deep enough to exhaust the parser is a ``ValueError`` too, never a crash.
    """
    if not text.strip():
        return {}
    try:
        value = json.loads(text, object_pairs_hook=_no_duplicate_keys)
    except RecursionError:
        raise ValueError("arguments are nested too deeply") from None
    if not isinstance(value, dict):
        raise ValueError(f"arguments must be a JSON object, got {type(value).__name__}")
    return value


class Usage(BaseModel):
    """Tokens used by one call (or summed over many)."""

    model_config = _FROZEN

    input_tokens: int = 0
    """Prompt tokens, including cached ones."""
    output_tokens: int = 0
    """Completion tokens."""
    cache_read_tokens: int = 0
    """Prompt tokens served from the provider's cache (a subset of `input_tokens`)."""

    @property
    def total_tokens(self) -> int:
        """Input plus output tokens."""
        return self.input_tokens + self.output_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cache_read_tokens=self.cache_read_tokens + other.cache_read_tokens,
        )


class SystemMessage(BaseModel):
    """Operator instructions."""

    model_config = _FROZEN

    role: Literal["system"] = "system"
    content: str
    """The instructions."""


class UserMessage(BaseModel):
    """Text from the submitter, or a human's note handed back to the agent."""

    model_config = _FROZEN

    role: Literal["user"] = "user"
    content: str
    """The text."""
    trust: Trust = Trust.USER
    """The lowest trust of what the text contains (untrusted parts are spotlighted)."""


class AssistantMessage(BaseModel):
    """What the model answered: text, tool calls, or both."""

    model_config = _FROZEN

    role: Literal["assistant"] = "assistant"
    content: str | None = None
    """Text of the answer, if any."""
    tool_calls: tuple[ToolCall, ...] = ()
    """Tool calls the model proposed."""


class ToolMessage(BaseModel):
    """The structured result of one tool call, as the model sees it."""

    model_config = _FROZEN

    role: Literal["tool"] = "tool"
    call_id: str
    """Id of the `ToolCall` this answers."""
    name: str
    """Name of the tool that was called."""
    content: str
    """The `ToolResult` as JSON."""
    trust: Trust = Trust.TRUSTED
    """`UNTRUSTED` for tools that read the outside world (spotlighted in `content`)."""


Message = Annotated[
    SystemMessage | UserMessage | AssistantMessage | ToolMessage, Field(discriminator="role")
]
"""Any message of a conversation."""


class ToolDefinition(BaseModel):
    """A tool as the model is told about it."""

    model_config = _FROZEN

    name: str
    """Tool name (``^[a-zA-Z0-9_-]{1,64}$``, the common denominator of providers)."""
    description: str
    """What the tool does, for the model."""
    parameters: dict[str, Any]
    """JSON schema of the arguments object."""


class ModelSettings(BaseModel):
    """Per-request knobs; `None` leaves the provider's default."""

    model_config = _FROZEN

    temperature: float | None = None
    """Sampling temperature."""
    max_tokens: int | None = None
    """Upper bound on output tokens."""
    top_p: float | None = None
    """Nucleus sampling."""
    seed: int | None = None
    """Seed, where the provider supports it."""
    stop: tuple[str, ...] | None = None
    """Stop sequences."""
    timeout_s: float | None = None
    """Client-side timeout for this call."""


class ModelRequest(BaseModel):
    """Everything a model needs for one call."""

    model_config = _FROZEN

    messages: tuple[Message, ...]
    """The conversation so far, system message first if any."""
    tools: tuple[ToolDefinition, ...] = ()
    """Tools the model may call."""
    settings: ModelSettings = ModelSettings()
    """Sampling settings."""
    context: CallContext | None = None
    """What the call is for and whom (filled by the runtime; adapters ignore it, wrappers
    such as a router or a cache read it: `bosun.models.context`)."""


class ModelResponse(BaseModel):
    """One answer from a model."""

    model_config = _FROZEN

    text: str | None = None
    """Text part of the answer."""
    tool_calls: tuple[ToolCall, ...] = ()
    """Tool calls, native or parsed from fenced JSON."""
    usage: Usage = Usage()
    """Tokens of this call."""
    model: str
    """Model id as the provider reported it."""
    provider: str
    """Provider name: ``openai``, ``anthropic``, ``llamacpp``, ``scripted``."""
    finish_reason: str = "stop"
    """``stop``, ``tool_calls``, ``length``, ``content_filter`` or the provider's own value."""
    cost_usd: Decimal | None = None
    """Price of this call in USD from genai-prices; `None` means unknown, never guessed."""
    attempts: tuple[Attempt, ...] = ()
    """Calls a wrapper made before this answer (failed, or rejected by a check), each with
    its own usage and price: the runtime journals and budgets every one."""
    route: Route | None = None
    """Which tier answered and why, when a router or cache chose."""

    def as_message(self) -> AssistantMessage:
        """The response as the assistant turn of the conversation."""
        return AssistantMessage(content=self.text, tool_calls=self.tool_calls)


def estimate_usage(
    messages: Sequence[Message], text: str | None, tool_calls: Sequence[ToolCall]
) -> Usage:
    """A rough count (about 4 characters a token) for when a provider reports no usage, so
    token budgets still bind. Never used for prices."""
    prompt = sum(len(getattr(m, "content", None) or "") for m in messages)
    answer = len(text or "") + sum(len(c.arguments) for c in tool_calls)
    return Usage(input_tokens=prompt // 4 + 1, output_tokens=answer // 4 + 1)


class TextDelta(BaseModel):
    """A piece of the answer's text, as the model writes it (never journaled)."""

    model_config = _FROZEN

    text: str
    """The new text."""


StreamEvent = TextDelta | ModelResponse
"""What `Model.stream` yields: text deltas, then the whole response, last."""


class Model(ABC):
    """A language model behind one coroutine."""

    name: str
    """How bosun names this model, e.g. ``openai:gpt-4.1-mini``."""

    @abstractmethod
    async def request(self, request: ModelRequest) -> ModelResponse:
        """Send one request. Raises a `bosun.errors.ModelError` subclass on failure."""

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamEvent]:
        """Send one request, yielding text as it comes, then the `ModelResponse` (last).

        Raises as `request` does, possibly after some text was yielded. This default waits
        for `request` and yields its text in one piece; adapters that can stream override it.
        """
        response = await self.request(request)
        if response.text:
            yield TextDelta(text=response.text)
        yield response
