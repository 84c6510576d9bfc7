"""A real bosun API under uvicorn on a free local port, for the service tests.

`serve(app)` runs uvicorn in a thread with its own event loop (the app's runtime and its
embedded worker live there) and yields the base URL; the tests talk HTTP with httpx.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from fastapi import FastAPI

from bosun.config import ServiceSettings, load_settings
from bosun.data.store import Store
from bosun.gateway.auth import ApiKeys, Roles
from bosun.gateway.gateway import Gateway
from bosun.gateway.guardrails import Guardrail
from bosun.models.base import ModelRequest, ModelResponse
from bosun.observe.metrics import RunMetrics
from bosun.runtime import Agent, Runtime
from bosun.service.app import create_app
from bosun.service.worker import Worker
from bosun.testing import ScriptedModel, call, reply
from bosun.tools import tool


@tool
def lookup(q: str) -> str:
    """Look something up."""
    return f"found {q}"


@tool(side_effect=True, risk="write", requires_approval=True)
def send(to: str, text: str) -> str:
    """Send a message (needs a person's approval)."""
    SENT.append((to, text))
    return f"sent to {to}"


SENT: list[tuple[str, str]] = []


def _policy(request: ModelRequest) -> ModelResponse:
    """lookup -> answer; 'send ...' -> send; 'ask ...' -> ask_human; 'slow' -> waits."""
    text = next(m.content for m in request.messages if m.role == "user")
    turn = sum(m.role == "assistant" for m in request.messages)
    last = request.messages[-1].content or ""
    if "ask" in text:
        return call("ask_human", {"question": "which plan?"}) if turn == 0 else reply(f"ok: {last}")
    if "send" in text:
        return call("send", {"to": "ann@example.com", "text": "hi"}) if turn == 0 else reply(last)
    return call("lookup", {"q": "x"}) if turn == 0 else reply(f"answer to {text[:40]}")


async def _slow_policy(request: ModelRequest) -> ModelResponse:
    await asyncio.sleep(5)
    return reply("slowly done")


def agents() -> list[Agent]:
    """The agents every API test serves."""
    return [
        Agent(name="helper", tools=[lookup, send], model=ScriptedModel(_policy), ask_human=True),
        Agent(name="sloth", model=ScriptedModel(_slow_policy)),
    ]


class Api:
    """A running API: its URL, its store, keys for a few principals."""

    def __init__(self, url: str, store: Store, keys: dict[str, str]) -> None:
        self.url = url
        self.store = store
        self.keys = keys

    def auth(self, who: str = "alice") -> dict[str, str]:
        """Headers authenticating as `who`."""
        return {"Authorization": f"Bearer {self.keys[who]}"}


def make_app(
    db_url: str,
    service: ServiceSettings,
    *,
    extra: Sequence[Agent] = (),
    embedded_worker: bool = True,
    guardrails: Guardrail | None = None,
) -> tuple[FastAPI, Store, dict[str, str]]:
    """An app with an embedded worker (unless told otherwise) over a fresh store, serving
    `agents()` and `extra`, and API keys for: alice (submitter, tenant acme), rita
    (reviewer, acme), bob (submitter, tenant globex), mo (monitor)."""
    store = Store.open(db_url)
    settings = load_settings(service=service)
    metrics = RunMetrics()
    served = [*agents(), *extra]  # behind `guardrails` when given
    runtime = Runtime(store=store, agents=served, settings=settings, observer=metrics)
    metrics.watch_breakers(runtime.breakers)
    roles = Roles.builtin(tool_scopes=["tools:*"])
    api_keys = ApiKeys(store, roles=roles)
    keys = {
        "alice": api_keys.create("alice", tenant="acme", roles=["submitter"]).key,
        "rita": api_keys.create("rita", tenant="acme", roles=["reviewer"]).key,
        "bob": api_keys.create("bob", tenant="globex", roles=["submitter"]).key,
        "mo": api_keys.create("mo", tenant="acme", roles=["monitor"]).key,
    }
    gateway = Gateway(runtime=runtime, keys=api_keys, guardrails=guardrails)
    worker = Worker(runtime, settings=service) if embedded_worker else None
    return create_app(gateway, store=store, settings=service, worker=worker), store, keys
