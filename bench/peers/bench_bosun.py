"""bosun in the peer harness: the same scenario the peers run, written against bosun's API.

The harness (`common.py`) is not part of bosun: it is read at run time from `$BOSUN_PEERBENCH`
or `../shared/peerbench` beside the repository, so every framework is measured by the same
code. The scenario: 3 typed tools (add, upper, lookup) and a stateless fake model that returns
tool call n until 5 tool results exist, then "final answer" (6 model calls + 5 tool calls).

Variants:
  none    `Runtime(durable=False)`: no journal, nothing survives the process
  sqlite  `Runtime(store=Store.open("sqlite:///..."))`: every step journaled, resumable

    python bench/peers/bench_bosun.py --test seq --variant sqlite --runs 200
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

_REPO = Path(__file__).resolve().parents[2]
HARNESS = Path(os.environ.get("BOSUN_PEERBENCH", _REPO.parent / "shared" / "peerbench"))
if not (HARNESS / "common.py").is_file():
    raise SystemExit(f"peer harness not found at {HARNESS}: set BOSUN_PEERBENCH to its folder")
sys.path.insert(0, str(HARNESS))

import asyncio  # noqa: E402
import json  # noqa: E402

import common  # type: ignore[import-not-found]  # noqa: E402

from bosun import Agent, Budget, Runtime, Store, tool  # noqa: E402
from bosun.models.base import Model, ModelRequest, ModelResponse, ToolCall, Usage  # noqa: E402

STATE: dict[str, Any] = common.new_state()
# Usage on every response, as the LangGraph fake sends it, so nothing is estimated.
USAGE = Usage(input_tokens=50, output_tokens=10)


class FakeModel(Model):
    """Stateless: the next tool call follows from the number of tool results in the request."""

    name = "fake"

    async def request(self, request: ModelRequest) -> ModelResponse:
        if STATE["latency"]:
            await asyncio.sleep(STATE["latency"])
        STATE["model_calls"] += 1
        n = sum(1 for m in request.messages if m.role == "tool")
        if n < common.TOOLS_PER_RUN:
            name, args = common.CALLS[n % 3]
            call = ToolCall(id=f"call_{n}", name=name, arguments=json.dumps(args))
            return ModelResponse(
                text=None,
                tool_calls=(call,),
                model="fake",
                provider="fake",
                finish_reason="tool_calls",
                usage=USAGE,
            )
        return ModelResponse(
            text=common.FINAL, model="fake", provider="fake", finish_reason="stop", usage=USAGE
        )


@tool
async def add(a: int, b: int) -> int:
    """Add two numbers."""
    STATE["tool_calls"] += 1
    return a + b


@tool
async def upper(text: str) -> str:
    """Upper-case a text."""
    STATE["tool_calls"] += 1
    return text.upper()


@tool
async def lookup(key: str, limit: int = 10) -> dict[str, Any]:
    """Look a key up."""
    STATE["tool_calls"] += 1
    return {"key": key, "values": list(range(limit))}


@contextlib.asynccontextmanager
async def build(variant: str, workdir: str) -> AsyncIterator[Callable[[int], Awaitable[str]]]:
    # bosun keeps its files under BOSUN_HOME; keep them in the harness's scratch folder.
    os.environ["BOSUN_HOME"] = os.path.join(workdir, f"bosun_home_{os.getpid()}")
    agent = Agent(
        name="bench",
        instructions="You are a benchmark agent.",
        tools=[add, upper, lookup],
        model=FakeModel(),
        budget=Budget(max_steps=10, max_tool_calls=10, max_wall_s=600),
    )
    if variant == "none":
        runtime = Runtime(durable=False)
    elif variant == "sqlite":
        db = common.fresh_db(os.path.join(workdir, f"bosun_{os.getpid()}.sqlite"))
        runtime = Runtime(store=Store.open(f"sqlite:///{db}"))
    else:
        raise SystemExit(f"unknown variant {variant}")

    async def run(i: int) -> str:
        result = await runtime.run(agent, "go")
        return result.output or f"{result.status.value}: {result.error}"

    async with runtime:
        yield run


if __name__ == "__main__":
    common.main("bosun", build, STATE, {"bosun": version("bosun")})
