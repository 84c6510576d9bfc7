"""Mounting the dashboard on the REST API's app: its routes (left out of the OpenAPI
schema: that is the API's), its static files, and its state."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles

from bosun.config import ServiceSettings
from bosun.data.store import Store
from bosun.gateway.gateway import Gateway
from bosun.gateway.vault import load_or_create_key
from bosun.prompts.registry import PromptRegistry
from bosun.service.dashboard import (
    approvals,
    escalations,
    login,
    ops,
    pipelines,
    prompt_actions,
    prompts,
    runs,
)
from bosun.service.dashboard.context import Dashboard
from bosun.service.dashboard.gates import GateJobs
from bosun.service.dashboard.render import templates
from bosun.service.dashboard.security import Sessions

__all__ = ["STATIC", "mount"]

STATIC = Path(__file__).with_name("static")


def mount(
    app: FastAPI,
    *,
    gateway: Gateway,
    store: Store,
    service: ServiceSettings,
    notify: Callable[[], None],
) -> Dashboard:
    """Serve the dashboard from `app`: pages at ``/``, files at ``/static``. `notify` wakes
    the embedded worker when a person's decision queues a run."""
    settings = gateway.runtime.settings.model_copy(update={"service": service})
    secret = None if service.session_key is None else service.session_key.get_secret_value()
    key = load_or_create_key(
        settings.home / "session.key", key_b64=secret, what="the dashboard session key"
    )
    registry = PromptRegistry(store)
    dash = Dashboard(
        gateway=gateway,
        store=store,
        settings=settings,
        sessions=Sessions(key, ttl_s=service.session_ttl_s),
        registry=registry,
        gates=GateJobs(
            store=store, registry=registry, agents=dict(gateway.agents), settings=settings
        ),
        templates=templates(),
        notify=notify,
    )
    app.state.dashboard = dash
    for module in (login, approvals, escalations, runs, pipelines, ops, prompts, prompt_actions):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="dashboard-static")
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[Any]:
        async with inner(app) as state:
            try:
                yield state
            finally:
                await dash.gates.aclose()  # before the app's own parts close under them

    app.router.lifespan_context = lifespan
    return dash
