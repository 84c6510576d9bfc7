"""Small typed stages and scripted agents for the pipeline tests."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel

from bosun.models.base import ModelRequest, UserMessage
from bosun.runtime import Agent
from bosun.testing import ScriptedModel, reply
from bosun.testing.scripted import ScriptItem

_JSON_LINE = re.compile(r"^(?:[a-z_]+: )?(\{.*\})$", re.MULTILINE)


class Order(BaseModel):
    order_id: str
    lines: list[str] = []
    amount: float = 10.0


class Checked(BaseModel):
    order_id: str
    ok: bool = True
    note: str = ""


class Paid(BaseModel):
    order_id: str
    stock: Checked
    fraud: Checked


class PayIn(BaseModel):
    stock: Checked
    fraud: Checked


def stage_data(request: ModelRequest) -> dict[str, Any]:
    """The stage input a run was given: the JSON objects in its first user message, merged
    (one per upstream for a fan-in, named by their field)."""
    text = next(m.content for m in request.messages if isinstance(m, UserMessage))
    data: dict[str, Any] = {}
    for line in text.splitlines():
        match = _JSON_LINE.match(line.strip())
        if match is None:
            continue
        value = json.loads(match.group(1))
        if ":" in line.split("{", 1)[0]:
            data[line.split(":", 1)[0].strip()] = value
        elif "properties" not in value:  # the schema in the pipeline's own part
            data.update(value)
    return data


Answer = Callable[[dict[str, Any]], "BaseModel | dict[str, Any]"]


def json_agent(
    name: str,
    answer: Answer,
    *,
    before: Callable[[], Awaitable[None]] | None = None,
    tools: tuple[Any, ...] = (),
    plan: Callable[[ModelRequest], ScriptItem | None] | None = None,
) -> Agent:
    """An agent whose model answers `answer(stage input)` as JSON (after `plan` has had its
    say, and after awaiting `before`, e.g. a barrier)."""

    async def respond(request: ModelRequest) -> ScriptItem:
        if before is not None:
            await before()
        if plan is not None:
            step = plan(request)
            if step is not None:
                return step
        value = answer(stage_data(request))
        data = value.model_dump(mode="json") if isinstance(value, BaseModel) else value
        return reply(f"```json\n{json.dumps(data)}\n```")

    return Agent(name=name, model=ScriptedModel(respond), tools=list(tools))


def barrier(parties: int, timeout_s: float = 5.0) -> Callable[[], Awaitable[None]]:
    """A wait that passes only when `parties` callers are inside it at once: stages that do
    not really overlap time out here instead."""
    gate = asyncio.Barrier(parties)

    async def wait() -> None:
        async with asyncio.timeout(timeout_s):
            await gate.wait()

    return wait
