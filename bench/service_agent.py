"""The agent bench/service.py serves: a 200 ms model that calls one tool, then answers.

bosun worker --agent service_agent:agent --db URL      (with bench/ importable)
"""

from __future__ import annotations

import asyncio

from bosun import Agent, tool
from bosun.models.base import ModelRequest, ModelResponse, Usage
from bosun.testing import ScriptedModel, call, reply

MODEL_LATENCY_S = 0.2
USAGE = Usage(input_tokens=200, output_tokens=20)  # as a provider reports; nothing estimated


@tool
async def lookup(order: str) -> str:
    """Look an order up."""
    return f"order {order}: shipped"


async def policy(request: ModelRequest) -> ModelResponse:
    """Think for 200 ms; look the order up, then answer with what came back."""
    await asyncio.sleep(MODEL_LATENCY_S)
    if not any(m.role == "assistant" for m in request.messages):
        response = call("lookup", {"order": "A-1"})
    else:
        response = reply(request.messages[-1].content or "")
    return response.model_copy(update={"usage": USAGE})


agent = Agent(
    name="bench",
    instructions="Answer questions about orders.",
    tools=[lookup],
    model=ScriptedModel(policy),
)
