"""Logging in with an API key, logging out, and the home page (the first page a person may
open)."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Annotated

from fastapi import APIRouter, Query
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from bosun.data.store import AuditEvent
from bosun.errors import Forbidden, Unauthenticated
from bosun.service.dashboard.context import Current, Dash, Poster, dashboard_of
from bosun.service.dashboard.forms import read_form
from bosun.service.dashboard.render import DashboardRoute, page
from bosun.service.dashboard.security import (
    LOGIN_COOKIE,
    SESSION_COOKIE,
    check_origin,
    set_cookie,
)

__all__ = ["router"]

router = APIRouter(route_class=DashboardRoute, include_in_schema=False)

_REASONS = {
    "expired": "Your session expired: log in again.",
    "revoked": "The API key of your session no longer works (revoked or expired): log in "
    "with a current key.",
    "invalid": "Your session was not valid: log in again.",
    "missing": None,
    "out": "You are logged out.",
}


def _local(target: str | None) -> str:
    """`target` if it is a path on this site, else ``/`` (no open redirects)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


@router.get("/")
async def home(viewer: Current) -> Response:
    """The first page the viewer may open."""
    pages = viewer.pages
    if not pages:
        roles = ", ".join(viewer.principal.roles) or "none"
        raise Forbidden(f"your roles ({roles}) open no page of the dashboard")
    return RedirectResponse(f"/{pages[0][0]}", status_code=303)


@router.get("/login")
async def login_form(
    request: Request,
    dash: Dash,
    reason: Annotated[str | None, Query(max_length=20)] = None,
    next: Annotated[str | None, Query(max_length=500)] = None,
) -> Response:
    """The login page: one field, the API key."""
    cookie, token = dash.sessions.login_token()
    response = page(
        request,
        "login.html",
        {
            "title": "Log in",
            "notice": _REASONS.get(reason or "missing"),
            "next": _local(next),
            "token": token,
            "error": None,
        },
    )
    set_cookie(response, request, LOGIN_COOKIE, cookie, max_age=3600)
    return response


@router.post("/login")
async def login(request: Request) -> Response:
    """Check the key, start a session (a new cookie and CSRF token), audit the login."""
    dash = dashboard_of(request)
    check_origin(request)
    form = await read_form(request, max_bytes=4096)
    dash.sessions.check_login_token(
        request.cookies.get(LOGIN_COOKIE), form.text("csrf", max_chars=200)
    )
    key = form.text("api_key", max_chars=200, label="the API key").strip()
    target = _local(form.text("next", max_chars=500))
    try:
        principal = await dash.gateway.authenticate(key)
    except Unauthenticated as exc:
        cookie, token = dash.sessions.login_token()
        response = page(
            request,
            "login.html",
            {"title": "Log in", "notice": None, "next": target, "token": token, "error": str(exc)},
            status=401,
        )
        set_cookie(response, request, LOGIN_COOKIE, cookie, max_age=3600)
        return response
    assert principal.key_id is not None  # authenticated by a key
    value, _ = dash.sessions.issue(principal.key_id)
    event = AuditEvent(
        action="dashboard_login",
        payload=json.dumps({"key_id": principal.key_id}),
        created_at=time.time(),
        actor=principal.id,
    )
    await asyncio.to_thread(dash.store.write, [event])
    response = RedirectResponse(target, status_code=303)
    set_cookie(response, request, SESSION_COOKIE, value, max_age=int(dash.sessions.ttl_s))
    response.delete_cookie(LOGIN_COOKIE, path="/")
    return response


@router.post("/logout")
async def logout(posted: Poster) -> Response:
    """End the session in this browser."""
    response = RedirectResponse("/login?reason=out", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
