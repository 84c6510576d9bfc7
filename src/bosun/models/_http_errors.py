"""HTTP error answers of model providers, classified into bosun's error taxonomy.

Shared by the OpenAI and Anthropic adapters, whose SDKs both hand over the status code, the
response headers and the decoded error body. One table for both keeps "which status means
what" in one place:

| answer                                                    | bosun error        |
|-----------------------------------------------------------|--------------------|
| 429 with code ``insufficient_quota`` (billing, not load)  | `ModelAuthError`   |
| 429                                                       | `ModelRateLimited` |
| 401, 403                                                  | `ModelAuthError`   |
| 413, or any status whose message says the context overflowed | `ContextTooLong` |
| code ``content_filter`` / ``content_policy_violation``    | `ModelRefusal`     |
| 408, 504                                                  | `ModelTimeout`     |
| 409, 5xx, 529 (overloaded)                                | `ModelUnavailable` |
| any other 4xx (400, 404 unknown model, 422, ...)          | `ModelError`       |

Other 4xx answers are plain `ModelError`, not `ModelBadResponse`: the request was wrong (a bad
parameter, an unknown model, an invalid tool schema), so sending it again cannot help, while
`ModelBadResponse` is retryable and means the *answer* was unusable.

Every message names the server (``openai at https://api.openai.com/v1``) and the cause a person
can act on: ``cannot connect: connection refused``, ``answered 401 Unauthorized: ... (the API
key was refused: check OPENAI_API_KEY)``, ``no answer after 30 s``. The key itself never
appears: a server that echoes it back has it replaced by ``***``.
"""

from __future__ import annotations

import math
import re
import socket
import ssl
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from urllib.parse import urlsplit, urlunsplit

import httpx

from bosun.errors import (
    ContextTooLong,
    ModelAuthError,
    ModelError,
    ModelRateLimited,
    ModelRefusal,
    ModelTimeout,
    ModelUnavailable,
)

__all__ = [
    "Endpoint",
    "connection_error",
    "error_detail",
    "looks_like_context_overflow",
    "retry_after_seconds",
    "status_error",
    "timeout_error",
    "timeout_seconds",
]

# Phrasings of "the prompt does not fit" across OpenAI, Anthropic, vLLM, llama.cpp server,
# Ollama, LM Studio and llama-cpp-python.
_CONTEXT_OVERFLOW = re.compile(
    r"context[ _](length|window|size|limit)|maximum context|prompt is too long"
    r"|exceeds? the (available )?context|exceed context window"
    r"|context_length_exceeded|exceed_context_size",
    re.IGNORECASE,
)
_CONTEXT_CODES = frozenset({"context_length_exceeded", "exceed_context_size_error"})
_REFUSAL_CODES = frozenset({"content_filter", "content_policy_violation"})
_PHRASES = {529: "Overloaded"}  # Anthropic's; not in the HTTP registry
_KEY_HINTS = {
    401: "the API key was refused: check {env}",
    403: "the API key lacks permission for this: check {env}",
}
_REDACTED = "***"


@dataclass(frozen=True, slots=True, kw_only=True)
class Endpoint:
    """The server an adapter talks to, as its error messages name it."""

    provider: str
    """``openai`` or ``anthropic``: the wire format, also the errors' `provider`."""
    url: str
    """The API root as configured; shown without credentials or query."""
    key_env: str | None = None
    """The environment variable a refused key is read from, for the hint on 401 and 403."""
    secrets: tuple[str, ...] = field(default=(), repr=False)
    """Values that must never appear in a message (the API key, a bearer token)."""

    @property
    def where(self) -> str:
        """``openai at http://127.0.0.1:8000/v1``: how messages name the server."""
        parts = urlsplit(self.url)
        shown = urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2], query=""))
        return f"{self.provider} at {shown.rstrip('/')}"

    def redact(self, text: str) -> str:
        """`text` with every secret replaced; short placeholders are left alone."""
        for secret in self.secrets:
            if len(secret) >= 8:
                text = text.replace(secret, _REDACTED)
        return text


def error_detail(body: object) -> tuple[str | None, str | None]:
    """The ``(message, code)`` of a provider's error body, whichever common shape it has.

    OpenAI-style ``{"error": {"message", "code", "type"}}``, Anthropic-style
    ``{"type": "error", "error": {"type", "message"}}``, or a bare ``{"message", ...}``.
    """
    if isinstance(body, Mapping) and isinstance(body.get("error"), Mapping):
        body = body["error"]
    if not isinstance(body, Mapping):
        return (body if isinstance(body, str) and body else None), None
    message = body.get("message")
    code = body.get("code") or body.get("type")
    return (
        message if isinstance(message, str) else None,
        code if isinstance(code, str) else None,
    )


def looks_like_context_overflow(message: str | None, code: str | None = None) -> bool:
    """Whether an error says the request does not fit the model's context window."""
    if code in _CONTEXT_CODES:
        return True
    return message is not None and _CONTEXT_OVERFLOW.search(message) is not None


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """The provider's back-off hint: ``retry-after-ms``, else ``retry-after`` (seconds or date).

    `headers` must look names up case-insensitively (``httpx.Headers`` does).
    """
    milliseconds = headers.get("retry-after-ms")
    if milliseconds is not None:
        value = _finite(milliseconds)
        if value is not None:
            return max(value / 1000.0, 0.0)
    retry_after = headers.get("retry-after")
    if retry_after is None:
        return None
    seconds = _finite(retry_after)
    if seconds is not None:
        return max(seconds, 0.0)
    try:
        moment = parsedate_to_datetime(retry_after)
    except (TypeError, ValueError, IndexError):
        return None
    return max(moment.timestamp() - time.time(), 0.0)


def _finite(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def status_error(
    status: int,
    *,
    body: object,
    headers: Mapping[str, str],
    endpoint: Endpoint,
    model: str,
) -> ModelError:
    """The bosun error for an HTTP error answer; the table in this module's docstring."""
    message, code = error_detail(body)
    said = message or code or "no error message"
    text = f"{endpoint.where} answered {status}{_phrase(status)}: {said}"
    hint = _KEY_HINTS.get(status)
    if hint is not None and endpoint.key_env is not None:
        text += f" ({hint.format(env=endpoint.key_env)})"
    text = endpoint.redact(" ".join(text.split()))
    kind = _classify(status, message, code)
    provider = endpoint.provider
    if kind is ModelRateLimited:
        return ModelRateLimited(
            text,
            retry_after=retry_after_seconds(headers),
            provider=provider,
            model=model,
            status_code=status,
        )
    return kind(text, provider=provider, model=model, status_code=status)


def timeout_error(endpoint: Endpoint, *, model: str, timeout_s: float | None) -> ModelTimeout:
    """No answer within `timeout_s` (when bosun knows the limit)."""
    waited = "in time" if timeout_s is None else f"after {timeout_s:g} s"
    return ModelTimeout(
        f"{endpoint.where}: no answer {waited}", provider=endpoint.provider, model=model
    )


def connection_error(exc: BaseException, endpoint: Endpoint, *, model: str) -> ModelUnavailable:
    """The connection failed: what the SDK wraps as "Connection error." said in words that
    tell a refused port from an unknown host, a TLS failure or a dropped connection."""
    chain = list(_chain(exc))
    connecting = any(isinstance(e, httpx.ConnectError) for e in chain)
    what = "cannot connect" if connecting else "the connection failed"
    text = f"{endpoint.where}: {what}: {_transport_reason(chain)}"
    return ModelUnavailable(endpoint.redact(text), provider=endpoint.provider, model=model)


def timeout_seconds(timeout: object) -> float | None:
    """The read timeout of an SDK client's ``timeout`` (a number or an `httpx.Timeout`)."""
    if isinstance(timeout, httpx.Timeout):
        return timeout.read
    if isinstance(timeout, int | float):
        return float(timeout)
    return None


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _transport_reason(chain: list[BaseException]) -> str:
    for error in chain:
        if isinstance(error, ConnectionRefusedError):
            return "connection refused"
        if isinstance(error, socket.gaierror):
            return f"unknown host ({error.strerror})"
        if isinstance(error, ssl.SSLCertVerificationError):
            return f"TLS certificate not trusted ({error.verify_message})"
        if isinstance(error, ssl.SSLError):
            return f"TLS failed ({error.reason or error})"
        if isinstance(error, ConnectionResetError):
            return "connection reset by the server"
    deepest = chain[-1]
    return " ".join(str(deepest).split()) or type(deepest).__name__


def _phrase(status: int) -> str:
    if status in _PHRASES:
        return f" {_PHRASES[status]}"
    try:
        return f" {HTTPStatus(status).phrase}"
    except ValueError:
        return ""


def _classify(status: int, message: str | None, code: str | None) -> type[ModelError]:
    if status == 429:
        return ModelAuthError if code == "insufficient_quota" else ModelRateLimited
    if status in (401, 403):
        return ModelAuthError
    if status == 413 or looks_like_context_overflow(message, code):
        return ContextTooLong
    if code in _REFUSAL_CODES:
        return ModelRefusal
    if status in (408, 504):
        return ModelTimeout
    if status == 409 or status >= 500:
        return ModelUnavailable
    return ModelError
