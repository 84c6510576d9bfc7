"""A failed model call says which server and why, in words a person can act on, without the key.

Against the fake provider server (401, 500, a slow answer) and a real closed port; and through
the runtime, whose escalation or failure must carry the same reason.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bosun import Agent, ModelPolicy, RetryPolicy, RunStatus, Runtime
from bosun.data.store import Store
from bosun.errors import ModelAuthError, ModelError, ModelTimeout, ModelUnavailable
from bosun.models.anthropic import AnthropicModel
from bosun.models.base import ModelRequest, UserMessage
from bosun.models.openai import OpenAIModel

HELLO = ModelRequest(messages=[UserMessage(content="hello")])
SECRET = "sk-live-0123456789abcdefSECRET"


def openai_error(status: int, message: str) -> dict[str, Any]:
    body = {"error": {"message": message, "type": "invalid_request_error", "code": None}}
    return {"status": status, "json": body}


def anthropic_error(status: int, message: str) -> dict[str, Any]:
    body = {"type": "error", "error": {"type": "authentication_error", "message": message}}
    return {"status": status, "json": body}


@pytest.fixture
async def models() -> AsyncIterator[list[OpenAIModel | AnthropicModel]]:
    made: list[OpenAIModel | AnthropicModel] = []
    yield made
    for model in made:
        await model.aclose()


async def failure(model: OpenAIModel | AnthropicModel) -> ModelError:
    with pytest.raises(ModelError) as caught:
        await model.request(HELLO)
    return caught.value


def openai(models: list[Any], base_url: str, **kwargs: Any) -> OpenAIModel:
    kwargs.setdefault("timeout_s", 5.0)
    models.append(OpenAIModel(model="gpt-4.1-mini", base_url=base_url, api_key=SECRET, **kwargs))
    return models[-1]  # type: ignore[no-any-return]


def anthropic(models: list[Any], base_url: str) -> AnthropicModel:
    models.append(
        AnthropicModel(model="claude-x", base_url=base_url, api_key=SECRET, timeout_s=5.0)
    )
    return models[-1]  # type: ignore[no-any-return]


# --- the adapters ---------------------------------------------------------------------------


async def test_a_refused_connection_names_the_url_and_the_cause(
    models: list[Any], refused_url: str
) -> None:
    for model, url in (
        (openai(models, f"{refused_url}/v1"), f"{refused_url}/v1"),
        (anthropic(models, refused_url), refused_url),
    ):
        error = await failure(model)
        assert isinstance(error, ModelUnavailable)
        assert url in str(error)
        assert "connection refused" in str(error)


async def test_401_says_the_key_was_refused_and_which_setting_holds_it(
    fake: Any, models: list[Any]
) -> None:
    # A server that echoes the key it was sent must not get it into bosun's messages.
    fake.script(
        openai_error(401, f"Incorrect API key provided: {SECRET}"),
        anthropic_error(401, f"invalid x-api-key {SECRET}"),
    )
    for model, url, variable in (
        (openai(models, f"{fake.url}/v1"), f"{fake.url}/v1", "OPENAI_API_KEY"),
        (anthropic(models, fake.url), fake.url, "ANTHROPIC_API_KEY"),
    ):
        error = await failure(model)
        assert isinstance(error, ModelAuthError)
        message = str(error)
        assert url in message
        assert "401" in message and "unauthorized" in message.lower()
        assert variable in message
        assert SECRET not in message and SECRET[:-6] not in message


async def test_a_5xx_names_the_url_and_the_status(fake: Any, models: list[Any]) -> None:
    fake.script(openai_error(500, "The server had an error"))
    error = await failure(openai(models, f"{fake.url}/v1"))
    assert isinstance(error, ModelUnavailable)
    assert f"{fake.url}/v1" in str(error)
    assert "500" in str(error) and "The server had an error" in str(error)


async def test_a_timeout_says_how_long_bosun_waited(fake: Any, models: list[Any]) -> None:
    fake.script({"json": {}, "delay": 1.0})
    error = await failure(openai(models, f"{fake.url}/v1", timeout_s=0.3))
    assert isinstance(error, ModelTimeout)
    assert f"{fake.url}/v1" in str(error)
    assert "0.3 s" in str(error)


# --- through the runtime --------------------------------------------------------------------


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[Runtime]:
    store = Store.open(f"sqlite:///{tmp_path / 'runs.db'}")
    async with Runtime(store=store) as rt:
        yield rt
    store.close()


FAST_RETRIES = ModelPolicy(retry=RetryPolicy(attempts=2, initial_delay_s=0.01, jitter_s=0.0))


async def test_an_unreachable_model_escalates_naming_the_url_and_the_cause(
    runtime: Runtime, refused_url: str
) -> None:
    model = OpenAIModel(model="gpt-4.1-mini", base_url=f"{refused_url}/v1", api_key=SECRET)
    agent = Agent(name="unreachable", model=model, model_policy=FAST_RETRIES)

    result = await runtime.run(agent, "hello")

    assert result.status is RunStatus.ESCALATED
    assert result.handoff is not None
    reason = result.handoff.reason
    assert "after 2 attempts" in reason
    assert f"{refused_url}/v1" in reason
    assert "connection refused" in reason


async def test_a_refused_key_fails_the_run_naming_the_url_and_the_variable(
    runtime: Runtime, fake: Any
) -> None:
    fake.script(openai_error(401, f"Incorrect API key provided: {SECRET}"))
    model = OpenAIModel(model="gpt-4.1-mini", base_url=f"{fake.url}/v1", api_key=SECRET)
    agent = Agent(name="refused", model=model, model_policy=FAST_RETRIES)

    result = await runtime.run(agent, "hello")

    assert result.status is RunStatus.FAILED
    assert result.error is not None
    assert f"{fake.url}/v1" in result.error and "401" in result.error
    assert "OPENAI_API_KEY" in result.error
    journal = " ".join(step.payload for step in runtime.store.journal(result.run_id))
    assert SECRET not in result.error and SECRET not in journal
