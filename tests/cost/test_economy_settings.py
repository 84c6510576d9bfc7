"""``[economy]`` settings turn tiers and the semantic cache on for served agents without
code: `compose()` builds them (the cache in the run store, embedded by MiniLM), on SQLite
and PostgreSQL, and settings that cannot work are a ConfigError when the system is built."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from bosun import Agent, Store
from bosun.config import Settings, load_settings
from bosun.economy import MiniLmEmbedder, Router, SemanticCache, StoreCacheBackend
from bosun.errors import ConfigError
from bosun.orchestration import Pipeline, agent_stage
from bosun.service.compose import compose
from bosun.testing import ScriptedModel

REFUNDS = "What is your refund policy?"
FAKE_PROVIDER = Path(__file__).parents[1] / "models" / "fake_provider.py"


def served(settings: Settings, store: Store, *agents: Agent) -> Any:
    return compose(settings, list(agents), store=store, worker=False)


def route(store: Store, run_id: str) -> dict[str, Any]:
    (entry,) = [e for e in store.journal(run_id) if e.kind == "model_response"]
    data: dict[str, Any] = json.loads(entry.payload)["response"]["route"]
    return data


async def test_the_cache_from_settings_serves_a_repeated_trusted_request(store: Store) -> None:
    model = ScriptedModel(["Refunds within 30 days."], name="m", cost_per_1k_tokens=Decimal(1))
    agent = Agent(name="desk", instructions="Answer briefly.", model=model)
    settings = load_settings(economy={"cache": {"enabled": True}})
    system = served(settings, store, agent)
    try:
        cache = system.runtime.agents["desk"].model
        assert isinstance(cache, SemanticCache) and cache.model is model
        assert isinstance(cache.embedder, MiniLmEmbedder)  # the default: meaning, not wording
        first = await system.runtime.run(agent, REFUNDS)
        again = await system.runtime.run(agent, REFUNDS)
        alike = await system.runtime.run(agent, "what is your REFUND policy")
    finally:
        await system.runtime.aclose()
    assert [r.output for r in (first, again, alike)] == ["Refunds within 30 days."] * 3
    assert len(model.requests) == 1  # the scripted model has one answer: a miss would fail
    assert again.cost_usd == 0 and alike.cost_usd == 0
    assert route(store, again.run_id)["reason"] == "cache: exact match"
    assert route(store, alike.run_id)["reason"].startswith("cache: similar request")


@pytest.fixture
def provider() -> Iterator[str]:
    """tests/models' fake OpenAI-compatible server, scripted over its control endpoints."""
    process = subprocess.Popen(
        [sys.executable, str(FAKE_PROVIDER), "--port", "0"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        yield f"http://127.0.0.1:{int(process.stdout.readline())}"
    finally:
        process.terminate()
        process.wait(timeout=5)
        if process.stdout is not None:
            process.stdout.close()


def script(url: str, *texts: str) -> None:
    replies = [
        {
            "json": {
                "id": "c1",
                "object": "chat.completion",
                "created": 1_700_000_000,
                "model": "m",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15},
            }
        }
        for text in texts
    ]
    request = urllib.request.Request(
        f"{url}/_script", data=json.dumps({"replies": replies}).encode(), method="POST"
    )
    urllib.request.urlopen(request, timeout=5).close()


def provider_requests(url: str) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{url}/_requests", timeout=5) as response:
        requests: list[dict[str, Any]] = json.loads(response.read())["requests"]
    return requests


async def test_tiers_from_settings_route_and_their_answers_are_cached(
    store: Store, provider: str
) -> None:
    # An agent with no model of its own: the tiers answer, each a model string of settings.
    agent = Agent(name="desk", instructions="Answer briefly.")
    settings = load_settings(
        economy={
            "tiers": {
                "cheap": f"openai:small@{provider}/v1",
                "balanced": [f"openai:mid@{provider}/v1", f"openai:mid-b@{provider}/v1"],
            },
            "rules": {"answer": "cheap"},
            "cache": {"enabled": True, "embedder": "hashing"},
        }
    )
    script(provider, "Refunds within 30 days.")
    system = served(settings, store, agent)
    try:
        router = system.runtime.agents["desk"].model
        assert isinstance(router, Router) and router.tiers.names == ("cheap", "balanced")
        first = await system.runtime.run(agent, REFUNDS)
        again = await system.runtime.run(agent, REFUNDS)
    finally:
        await system.runtime.aclose()
    assert first.output == again.output == "Refunds within 30 days."
    assert [r["body"]["model"] for r in provider_requests(provider)] == ["small"]
    assert route(store, first.run_id)["tier"] == "cheap"
    assert route(store, again.run_id)["source"] == "cache"


@pytest.mark.parametrize(
    ("economy", "message"),
    [
        (
            {"tiers": {"cheap": "openai:a", "balanced": "openai:b"}, "rules": {"answer": "top"}},
            "names tier 'top'",
        ),
        (
            {"tiers": {"cheap": "openai:a", "balanced": "openai:b"}, "rules": {"reply": "cheap"}},
            "unknown purpose 'reply'",
        ),
        ({"tiers": {"small": "openai:a", "big": "openai:b"}}, "name tiers cheap and balanced"),
        ({"tiers": {"cheap": "nope:a", "balanced": "openai:b"}}, "unknown model provider"),
        ({"tiers": {"cheap": "openai:a", "balanced": ["openai:b", "openai:b"]}}, "twice"),
        ({"cache": {"enabled": True}, "agents": ["dsek"]}, "'dsek'"),
    ],
)
def test_settings_that_cannot_work_are_a_config_error_at_compose(
    store: Store, economy: dict[str, Any], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")  # building an OpenAI model needs one
    agent = Agent(name="desk", instructions="Answer.", model=ScriptedModel(["x"]))
    with pytest.raises(ConfigError, match=message):
        served(load_settings(economy=economy), store, agent)


@pytest.mark.parametrize(
    ("economy", "field"),
    [
        ({"cache": {"enabled": True, "threshold": 1.5}}, "economy.cache.threshold"),
        ({"cache": {"embedder": "word2vec"}}, "economy.cache.embedder"),
        ({"tiers": {"cheap": []}}, "economy.tiers"),
        ({"tier": {"cheap": "openai:a"}}, "economy.tier"),
    ],
)
def test_malformed_economy_settings_name_the_field(economy: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        load_settings(economy=economy)


async def test_an_agent_set_up_in_code_is_left_as_it_is_and_nothing_is_wrapped_twice(
    store: Store,
) -> None:
    own = ScriptedModel(["x"], name="own")
    plain = Agent(name="plain", instructions="Answer.", model=own)
    coded = SemanticCache(ScriptedModel(["y"], name="coded"), backend=StoreCacheBackend(store))
    fitted = Agent(name="fitted", instructions="Answer.", model=coded)
    left = Agent(name="left", instructions="Answer.", model=own)
    settings = load_settings(
        economy={"cache": {"enabled": True, "embedder": "hashing"}, "agents": ["plain", "fitted"]}
    )
    for _ in range(2):  # a second compose (a test, a restart in-process) finds the cache there
        system = served(settings, store, plain, fitted, left)
        try:
            assert system.runtime.agents["fitted"].model is coded
            model = system.runtime.agents["plain"].model
            assert isinstance(model, SemanticCache) and model.model is own
            assert system.runtime.agents["left"].model is own  # not in economy.agents
        finally:
            await system.runtime.aclose()


async def test_the_agents_of_served_pipelines_are_served_through_the_cache_too(
    store: Store,
) -> None:
    checker = Agent(name="checker", model=ScriptedModel(["ok"], name="own"))
    pipeline = Pipeline(
        name="orders",
        input=Order,
        stages=[agent_stage("check", checker, input=Order, output=Order)],
    )
    settings = load_settings(economy={"cache": {"enabled": True, "embedder": "hashing"}})
    # The agent served directly and in the pipeline is one object: it is wrapped once, in
    # place, so registering the pipeline finds the same agent (no "already registered").
    system = compose(settings, [checker], store=store, worker=False, pipelines=[pipeline])
    try:
        model = system.runtime.agents["checker"].model
        assert isinstance(model, SemanticCache) and model is checker.model
    finally:
        await system.runtime.aclose()


class Order(BaseModel):
    order_id: str
