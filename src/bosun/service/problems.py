"""Errors as RFC 9457 problem details (``application/problem+json``).

bosun's error tree maps onto HTTP here and nowhere else: gateway refusals carry their own
status; a missing run is 404; a run not in a state for the request is 409; another mistake
by the caller is 400; a malformed body is 422 with the field errors. Anything unexpected is
a 500 that says nothing about the internals (the log has the traceback).
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from bosun.errors import (
    AgentNotFound,
    Blocked,
    BosunError,
    GatewayRefusal,
    JournalConflict,
    RateLimited,
    RunNotFound,
    RunStateConflict,
    UserError,
)
from bosun.service.schemas import Problem

__all__ = [
    "NotReady",
    "install_problem_handlers",
    "problem",
    "problem_responses",
    "status_for",
]

logger = logging.getLogger(__name__)

MEDIA_TYPE = "application/problem+json"


class NotReady(Exception):
    """The service cannot serve now (503): its store does not answer."""


def problem(
    status: int,
    detail: str | None = None,
    *,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    """A problem+json response."""
    body = Problem(
        title=HTTPStatus(status).phrase, status=status, detail=detail, instance=instance, **extra
    )
    return JSONResponse(
        body.model_dump(exclude_none=True),
        status_code=status,
        media_type=MEDIA_TYPE,
        headers=headers,
    )


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries declaring that these statuses answer with a `Problem`."""
    return {
        status: {
            "model": Problem,
            "description": HTTPStatus(status).phrase,
            "content": {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status in statuses
    }


def status_for(exc: BosunError) -> int:
    """The HTTP status a bosun error answers with (the table in the module's docstring)."""
    if isinstance(exc, GatewayRefusal):
        return exc.status
    if isinstance(exc, RunNotFound | AgentNotFound):
        return 404
    if isinstance(exc, RunStateConflict | JournalConflict):
        return 409
    if isinstance(exc, UserError):
        return 400
    return 500


def install_problem_handlers(app: FastAPI) -> None:
    """Answer every error the app raises with problem+json."""

    @app.exception_handler(BosunError)
    async def bosun_error(request: Request, exc: BosunError) -> JSONResponse:
        status = status_for(exc)
        if status >= 500:
            logger.error("%s %s failed: %r", request.method, request.url.path, exc)
            return problem(500, "the server failed; the error is logged", instance=request.url.path)
        headers: dict[str, str] = {}
        extra: dict[str, Any] = {}
        if isinstance(exc, RateLimited) and exc.retry_after is not None:
            headers["Retry-After"] = str(max(1, round(exc.retry_after + 0.499)))
            extra["retry_after"] = exc.retry_after
        if isinstance(exc, Blocked) and exc.reasons:
            extra["errors"] = [{"reason": r} for r in exc.reasons[:20]]
        if status == 401:
            headers["WWW-Authenticate"] = 'Bearer realm="bosun"'
        return problem(status, str(exc), instance=request.url.path, headers=headers, **extra)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": e.get("type")}
            for e in exc.errors()[:50]
        ]
        return problem(422, "the request is malformed", instance=request.url.path, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = dict(exc.headers or {})
        return problem(exc.status_code, str(exc.detail), instance=request.url.path, headers=headers)

    @app.exception_handler(NotReady)
    async def not_ready(request: Request, exc: NotReady) -> JSONResponse:
        return problem(503, str(exc), instance=request.url.path, headers={"Retry-After": "5"})

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("%s %s failed", request.method, request.url.path)
        return problem(500, "the server failed; the error is logged", instance=request.url.path)
