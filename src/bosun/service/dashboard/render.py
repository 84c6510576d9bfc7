"""Templates and pages: Jinja2 with autoescaping always on, the filters the pages share, and
the route class that turns every error of a dashboard route into an HTML page.

Everything a page shows that came from outside (email text, tool results, model output,
prompt templates) goes through Jinja2's autoescaping: markup in it is shown, never rendered,
and no template marks such a value safe. Links are built from ids bosun made, never from
content.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable, Coroutine, Mapping
from decimal import Decimal
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.templating import Jinja2Templates

from bosun.errors import BosunError, JournalConflict
from bosun.prompts.registry import PromotionRefused, PromptNotFound
from bosun.service.dashboard.forms import FormRejected
from bosun.service.dashboard.security import CsrfRejected, LoginRequired, secure
from bosun.service.problems import status_for

__all__ = ["DashboardRoute", "TEMPLATES", "page", "templates"]

logger = logging.getLogger(__name__)

TEMPLATES = Path(__file__).with_name("templates")


def _when(value: float | None) -> str:
    if value is None:
        return "-"
    return dt.datetime.fromtimestamp(value, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _money(value: Decimal | float | str | None) -> str:
    if value is None:
        return "-"
    amount = Decimal(str(value))
    return f"${amount:.6f}" if amount < Decimal("0.01") else f"${amount:.4f}"


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 1:
        return f"{value * 1000:.0f} ms"
    if value < 120:
        return f"{value:.1f} s"
    return f"{value / 60:.1f} min"


def _pretty(value: Any) -> str:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return str(value)
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)


def templates() -> Jinja2Templates:
    """The dashboard's templates: autoescaped, strict about undefined names."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        when=_when, money=_money, seconds=_seconds, pretty=_pretty, urlpart=lambda v: quote(v, "")
    )
    return Jinja2Templates(env=env)


def page(request: Request, name: str, context: Mapping[str, Any], *, status: int = 200) -> Response:
    """Render template `name` for the signed-in viewer (``request.state.viewer``)."""
    views: Jinja2Templates = request.app.state.dashboard.templates
    viewer = getattr(request.state, "viewer", None)
    return views.TemplateResponse(
        request, name, {"viewer": viewer, "status": status, **context}, status_code=status
    )


def _error_page(request: Request, status: int, message: str) -> Response:
    return page(
        request,
        "error.html",
        {"title": HTTPStatus(status).phrase, "message": message},
        status=status,
    )


def _status_and_message(exc: Exception) -> tuple[int, str]:
    if isinstance(exc, FormRejected):
        return exc.status, str(exc)
    if isinstance(exc, CsrfRejected):
        return 403, f"Refused: {exc}. Nothing was changed."
    if isinstance(exc, PromptNotFound):
        return 404, str(exc)
    if isinstance(exc, PromotionRefused):
        return 409, f"Refused: {exc}"
    if isinstance(exc, JournalConflict):
        return 409, (
            "Someone else decided this at the same moment; their decision stands and yours "
            "was not recorded."
        )
    if isinstance(exc, BosunError):
        status = status_for(exc)
        if status >= 500:
            logger.error("dashboard request failed: %r", exc)
            return 500, "The server failed; the error is logged."
        return status, str(exc)
    if isinstance(exc, RequestValidationError):
        fields = ", ".join(".".join(str(p) for p in e.get("loc", ())) for e in exc.errors()[:5])
        return 422, f"The request is malformed ({fields})."
    logger.exception("dashboard request failed")
    return 500, "The server failed; the error is logged."


class DashboardRoute(APIRoute):
    """A route whose errors are pages (a login redirect, a 403, a 409...) rather than
    problem+json, and whose every response carries the security headers."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                response = await handler(request)
            except LoginRequired as exc:
                target = request.url.path if request.method == "GET" else "/"
                response = RedirectResponse(
                    f"/login?reason={exc.reason}&next={quote(target, safe='/')}", status_code=303
                )
            except Exception as exc:
                status, message = _status_and_message(exc)
                response = _error_page(request, status, message)
            return secure(response)

        return route
