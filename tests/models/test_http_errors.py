"""The status table shared by the HTTP adapters, and the Retry-After hint."""

from __future__ import annotations

import time
from email.utils import formatdate

import httpx
import pytest

from bosun.errors import (
    ContextTooLong,
    ModelAuthError,
    ModelError,
    ModelRateLimited,
    ModelRefusal,
    ModelTimeout,
    ModelUnavailable,
)
from bosun.models._http_errors import Endpoint, error_detail, retry_after_seconds, status_error


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "3"}, 3.0),
        ({"retry-after": "0.25"}, 0.25),
        ({"retry-after-ms": "750"}, 0.75),
        ({"retry-after-ms": "oops", "retry-after": "4"}, 4.0),
        ({"retry-after": "-5"}, 0.0),
        ({"retry-after": formatdate(time.time() - 60, usegmt=True)}, 0.0),
        ({"retry-after": "soon"}, None),
        ({"retry-after": "nan"}, None),
        ({}, None),
    ],
)
def test_retry_after(headers: dict[str, str], expected: float | None) -> None:
    assert retry_after_seconds(httpx.Headers(headers)) == expected


def test_retry_after_as_a_date_in_the_future() -> None:
    hint = retry_after_seconds(
        httpx.Headers({"retry-after": formatdate(time.time() + 90, usegmt=True)})
    )
    assert hint is not None and 80 <= hint <= 90


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (429, {"error": {"message": "slow down"}}, ModelRateLimited),
        (429, {"error": {"message": "quota", "code": "insufficient_quota"}}, ModelAuthError),
        (401, None, ModelAuthError),
        (403, None, ModelAuthError),
        (413, None, ContextTooLong),
        (400, {"type": "error", "error": {"message": "prompt is too long: 9 > 8"}}, ContextTooLong),
        (500, "the request exceeds the available context size", ContextTooLong),
        (400, {"message": "Requested tokens (9) exceed context window of 8"}, ContextTooLong),
        (400, {"error": {"code": "content_policy_violation", "message": "no"}}, ModelRefusal),
        (408, None, ModelTimeout),
        (504, None, ModelTimeout),
        (409, None, ModelUnavailable),
        (500, None, ModelUnavailable),
        (529, {"type": "error", "error": {"type": "overloaded_error"}}, ModelUnavailable),
        (400, {"error": {"message": "bad tool schema"}}, ModelError),
        (404, None, ModelError),
    ],
)
def test_status_table(status: int, body: object, kind: type[ModelError]) -> None:
    endpoint = Endpoint(provider="p", url="http://127.0.0.1:9/v1")
    error = status_error(status, body=body, headers=httpx.Headers(), endpoint=endpoint, model="m")
    assert type(error) is kind
    assert (error.status_code, error.provider, error.model) == (status, "p", "m")


def test_the_provider_message_is_in_the_error() -> None:
    body = {"error": {"message": "Invalid schema for function 'x'", "code": "bad"}}
    endpoint = Endpoint(provider="openai", url="https://api.openai.com/v1/")
    error = status_error(400, body=body, headers=httpx.Headers(), endpoint=endpoint, model="m")
    assert str(error) == (
        "openai at https://api.openai.com/v1 answered 400 Bad Request: "
        "Invalid schema for function 'x'"
    )


@pytest.mark.parametrize(
    ("status", "says"),
    [
        (401, "401 Unauthorized: bad key (the API key was refused: check MY_KEY)"),
        (403, "403 Forbidden: bad key (the API key lacks permission for this: check MY_KEY)"),
        (529, "529 Overloaded: bad key"),
        (599, "599: bad key"),
    ],
)
def test_status_words_and_the_key_hint(status: int, says: str) -> None:
    endpoint = Endpoint(provider="p", url="http://h/v1", key_env="MY_KEY")
    body = {"error": {"message": "bad key"}}
    error = status_error(status, body=body, headers=httpx.Headers(), endpoint=endpoint, model="m")
    assert str(error) == f"p at http://h/v1 answered {says}"


def test_credentials_in_the_url_and_echoed_keys_are_not_shown() -> None:
    endpoint = Endpoint(
        provider="p", url="https://user:pw@h/v1?api-key=k", secrets=("sk-0123456789",)
    )
    body = {"error": {"message": "Incorrect API key provided: sk-0123456789"}}
    error = status_error(401, body=body, headers=httpx.Headers(), endpoint=endpoint, model="m")
    assert str(error) == (
        "p at https://h/v1 answered 401 Unauthorized: Incorrect API key provided: ***"
    )


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"error": {"message": "m", "code": "c"}}, ("m", "c")),
        (
            {"type": "error", "error": {"type": "overloaded_error", "message": "m"}},
            ("m", "overloaded_error"),
        ),
        ({"message": "m"}, ("m", None)),
        ("plain text", ("plain text", None)),
        (None, (None, None)),
        ({"error": "just a string"}, (None, None)),
    ],
)
def test_error_detail(body: object, detail: tuple[str | None, str | None]) -> None:
    assert error_detail(body) == detail
