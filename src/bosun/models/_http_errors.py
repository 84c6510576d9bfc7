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
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime

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
    "error_detail",
    "looks_like_context_overflow",
    "retry_after_seconds",
    "status_error",
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
    provider: str,
    model: str,
) -> ModelError:
    """The bosun error for an HTTP error answer; the table in this module's docstring."""
    message, code = error_detail(body)
    text = f"{provider} answered {status}: {message or code or 'no error message'}"
    kind = _classify(status, message, code)
    if kind is ModelRateLimited:
        return ModelRateLimited(
            text,
            retry_after=retry_after_seconds(headers),
            provider=provider,
            model=model,
            status_code=status,
        )
    return kind(text, provider=provider, model=model, status_code=status)


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
