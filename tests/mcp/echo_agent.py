"""The agent `bosun mcp serve` serves in test_mcp_serve.py: it echoes, asks to send (a call
a person must approve), or leaks a secret (which the output guardrails withhold)."""

from __future__ import annotations

import bosun
from bosun.models.base import ModelRequest, ModelResponse
from bosun.testing import ScriptedModel, call, reply
from bosun.tools import tool

KEY = "sk-" + "proj-" + "Zq3" * 10 + "f3a9"


@tool(side_effect=True, risk="write", requires_approval=True)
def send(to: str) -> str:
    """Send a message (a person approves first)."""
    return f"sent to {to}"


def policy(request: ModelRequest) -> ModelResponse:
    text = next(m.content for m in request.messages if m.role == "user") or ""
    if "send" in text:
        return call("send", {"to": "ann"})
    if "secret" in text:
        return reply(f"Use {KEY} now.")
    return reply(f"echo: {text}")


agent = bosun.Agent(name="echoer", tools=[send], model=ScriptedModel(policy))
