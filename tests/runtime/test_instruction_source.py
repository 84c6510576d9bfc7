"""Instructions chosen per run (a prompt registry's label): resolved at start, journaled."""

from __future__ import annotations

import json

from bosun.models.base import ModelRequest, ModelResponse
from bosun.runtime import Agent, Runtime
from bosun.runtime.agent import ResolvedInstructions
from bosun.testing import ScriptedModel, reply


class ByKey:
    """Version b for keys starting with 'b', else a; remembers the keys it was asked for."""

    def __init__(self) -> None:
        self.keys: list[str] = []

    def resolve(self, *, key: str) -> ResolvedInstructions:
        self.keys.append(key)
        version = "b" if key.startswith("b") else "a"
        return ResolvedInstructions(
            text=f"You are version {version}.", source={"name": "p", "version": version}
        )


def echo_system(request: ModelRequest) -> ModelResponse:
    return reply(request.messages[0].content or "")


async def test_the_source_is_resolved_per_run_and_journaled(db_url: str) -> None:
    source = ByKey()
    agent = Agent(name="versioned", instructions=source, model=ScriptedModel(echo_system))
    async with Runtime(store=db_url, agents=[agent]) as rt:
        a = await rt.run(agent, "hi", idempotency_key="k1")
        b_id = await rt.start(agent, "hi", conversation="b-conversation")
        b = await rt.resume(b_id)
        started = json.loads(rt.store.journal(b_id)[0].payload)
    assert a.output == "You are version a."
    assert b.output == "You are version b."
    assert source.keys == [a.run_id, "b-conversation"]  # the run id when no conversation
    assert started["prompt"] == {"name": "p", "version": "b"}
    assert started["instructions"] == "You are version b."
    assert started["conversation"] == "b-conversation"


class Cold:
    def resolve(self, *, key: str) -> ResolvedInstructions:
        return ResolvedInstructions(
            text="be exact",
            source={"name": "p", "version": "1.0.0"},
            model_settings={"temperature": 0.0, "max_tokens": 64, "unknown_knob": 1},
        )


async def test_the_prompt_versions_model_settings_apply_to_every_call_and_survive_resume(
    db_url: str,
) -> None:
    seen: list[tuple[float | None, int | None]] = []

    def record(request: ModelRequest) -> ModelResponse:
        seen.append((request.settings.temperature, request.settings.max_tokens))
        return reply("ok")

    agent = Agent(name="cold", instructions=Cold(), model=ScriptedModel(record))
    async with Runtime(store=db_url, agents=[agent]) as rt:
        run_id = await rt.start(agent, "hi")
    async with Runtime(store=db_url, agents=[agent]) as rt:  # a fresh process resumes it
        result = await rt.resume(run_id)
    assert result.output == "ok"
    assert seen == [(0.0, 64)]
