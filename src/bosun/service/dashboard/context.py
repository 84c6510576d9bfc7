"""What the dashboard's routes share, and who is asking: the signed-in `Viewer`.

Every page asks for a `Viewer` (a valid session whose API key still authenticates, under the
gateway's rate limit), and every change asks for a `Poster` (the same, plus the form read
within its limits and its CSRF token checked). What a viewer may see and do is the scopes of
their roles, the same ones the REST API checks: the gateway's own methods check them again
for every read and decision.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends
from starlette.requests import Request
from starlette.templating import Jinja2Templates

from bosun.config import Settings
from bosun.data.store import Store
from bosun.errors import Forbidden, Unauthenticated
from bosun.gateway.auth import (
    APPROVALS_DECIDE,
    METRICS_READ,
    PROMPTS_EDIT,
    RUNS_READ,
    Principal,
)
from bosun.gateway.gateway import PII_READ, Gateway
from bosun.prompts.registry import PromptRegistry
from bosun.service.dashboard.forms import MAX_BODY_BYTES, Form, read_form
from bosun.service.dashboard.gates import GateJobs
from bosun.service.dashboard.security import (
    SESSION_COOKIE,
    CsrfRejected,
    LoginRequired,
    Sessions,
    check_origin,
    same,
)

__all__ = [
    "NAV",
    "Current",
    "Dash",
    "Dashboard",
    "Poster",
    "PromptPoster",
    "Recent",
    "Viewer",
    "current",
    "dashboard_of",
    "poster",
    "prompt_poster",
]


class Recent:
    """Results worth reusing for a few seconds, by key: the operations counts, which read a
    window of runs and their journals. One computation at a time per key, so a room of
    dashboards refreshing together costs one."""

    def __init__(self, *, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        """How long a result is served before it is computed again."""
        self._found: dict[Hashable, tuple[float, Any]] = {}
        self._locks: dict[Hashable, asyncio.Lock] = {}

    async def get(self, key: Hashable, compute: Callable[[], Awaitable[Any]]) -> tuple[float, Any]:
        """(when it was computed, the result) for `key`, computed again when older than the
        TTL."""
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            found = self._found.get(key)
            if found is None or time.time() - found[0] > self.ttl_s:
                found = self._found[key] = (time.time(), await compute())
        return found


@dataclass(kw_only=True)
class Dashboard:
    """The parts the pages read and act through."""

    gateway: Gateway
    """Authentication, tenancy, decisions: every change goes through it."""
    store: Store
    """For the read models in `bosun.data` (runs pages, operations counts)."""
    settings: Settings
    """The deployment's settings (prompt gates, session lifetime)."""
    sessions: Sessions
    """Issues and checks session cookies."""
    registry: PromptRegistry
    """Prompt versions and labels."""
    gates: GateJobs
    """Evaluation gates running in this process."""
    templates: Jinja2Templates
    """The pages."""
    notify: Callable[[], None] = field(default=lambda: None)
    """Wakes the embedded worker when a decision queues a run."""
    recent: Recent = field(default_factory=lambda: Recent(ttl_s=30.0))
    """Operations counts, reused for 30 seconds."""


NAV = (
    ("approvals", "Approvals", (APPROVALS_DECIDE,)),
    ("escalations", "Escalations", (APPROVALS_DECIDE,)),
    ("runs", "Runs", (RUNS_READ,)),
    ("ops", "Operations", (METRICS_READ,)),
    ("prompts", "Prompts", (PROMPTS_EDIT, RUNS_READ)),
)
"""The pages: path, title, and the scopes of which a viewer needs one to see it."""


@dataclass(frozen=True, slots=True)
class Viewer:
    """A signed-in person."""

    principal: Principal
    """Who, in which tenant, with which scopes."""
    csrf: str
    """The token this session's forms carry."""

    @property
    def id(self) -> str:
        """The principal's id: what the audit log records."""
        return self.principal.id

    @property
    def sees_pii(self) -> bool:
        """Whether PII placeholders are resolved for this person."""
        return self.principal.has(PII_READ)

    def may(self, *scopes: str) -> bool:
        """Whether the viewer holds any of `scopes`."""
        return any(self.principal.has(s) for s in scopes)

    def require(self, *scopes: str) -> None:
        """`Forbidden` unless the viewer holds one of `scopes`."""
        if not self.may(*scopes):
            roles = ", ".join(self.principal.roles) or "none"
            raise Forbidden(
                f"{self.principal.id} (roles: {roles}) may not do this: it needs "
                f"{' or '.join(scopes)}. Nothing was changed."
            )

    @property
    def pages(self) -> list[tuple[str, str]]:
        """The pages this viewer may open: (path, title)."""
        return [(path, title) for path, title, scopes in NAV if self.may(*scopes)]


def dashboard_of(request: Request) -> Dashboard:
    """The dashboard serving `request`."""
    dash: Dashboard = request.app.state.dashboard
    return dash


async def current(request: Request) -> Viewer:
    """The signed-in viewer; `LoginRequired` without a valid session or a usable key."""
    dash = dashboard_of(request)
    session = dash.sessions.read(request.cookies.get(SESSION_COOKIE))
    gateway = dash.gateway
    try:
        principal = await asyncio.to_thread(gateway.keys.resume, session.key_id)
    except Unauthenticated:
        raise LoginRequired("revoked") from None
    if gateway.limiter is not None:
        await gateway.limiter.check_request(principal)
    viewer = Viewer(principal=principal, csrf=session.csrf)
    request.state.viewer = viewer
    return viewer


async def _posted(request: Request, viewer: Viewer, max_bytes: int) -> tuple[Viewer, Form]:
    check_origin(request)
    form = await read_form(request, max_bytes=max_bytes)
    token = form.text("csrf", max_chars=200)
    if not token or not same(token, viewer.csrf):
        raise CsrfRejected("the form's CSRF token is missing or not this session's")
    return viewer, form


async def poster(
    request: Request, viewer: Annotated[Viewer, Depends(current)]
) -> tuple[Viewer, Form]:
    """The viewer and their form, CSRF-checked (forms of up to 64 KB)."""
    return await _posted(request, viewer, MAX_BODY_BYTES)


async def prompt_poster(
    request: Request, viewer: Annotated[Viewer, Depends(current)]
) -> tuple[Viewer, Form]:
    """Like `poster`, for prompt forms (a template may be long: up to 512 KB)."""
    return await _posted(request, viewer, 512 * 1024)


Current = Annotated[Viewer, Depends(current)]
Poster = Annotated[tuple[Viewer, Form], Depends(poster)]
PromptPoster = Annotated[tuple[Viewer, Form], Depends(prompt_poster)]
Dash = Annotated[Dashboard, Depends(dashboard_of)]
