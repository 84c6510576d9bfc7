"""The evaluation sandbox: an agent's tools, with side effects recorded and never executed.

`ToolSandbox.agent` copies an agent with every tool wrapped in a `SandboxedTool`. The wrapper
keeps the tool's name, schema, description and policy, so the runtime treats the call exactly
as in production (scopes, approvals, taint gating, journaling, audit), and replaces only
`Tool.invoke`, the one place a tool's function runs:

* a call a fixture answers gets the fixture's result (or its error, or its guidance);
* a side-effecting tool (``policy.side_effect``) without a fixture is recorded with its
  arguments and answered ``{"recorded": true, "executed": false}``: its function never runs;
* a read-only tool without a fixture runs for real.

Credentials: the pipeline fetches a tool's credential before `invoke`, so an intercepted tool
whose secret is not configured would fail before the sandbox could record it. The sandbox's
`secrets` answer the real value when there is one and a placeholder otherwise; a real
(read-only) call that would receive the placeholder fails as "not configured" instead, as it
would in production.
"""

from __future__ import annotations

import copy
import json
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel

from bosun.errors import ModelRetry, PermanentToolError
from bosun.evals.dataset import Fixture, Matcher, match_arguments
from bosun.runtime.agent import Agent
from bosun.tools.base import ToolContext
from bosun.tools.decorator import Tool
from bosun.tools.pipeline import AnyTool
from bosun.tools.secrets import Secret, SecretsProvider

__all__ = ["RECORDED", "RecordedCall", "SandboxSecrets", "SandboxedTool", "ToolSandbox"]

RECORDED: Mapping[str, Any] = {
    "recorded": True,
    "executed": False,
    "note": "side effect recorded by the evaluation sandbox, not executed",
}
"""What an intercepted side-effecting call returns when no fixture answers it."""

_PLACEHOLDER = "bosun-eval-sandbox-placeholder"


@dataclass(frozen=True, slots=True)
class RecordedCall:
    """A call that reached a sandboxed tool."""

    tool: str
    """Tool name."""
    arguments: Mapping[str, Any]
    """Validated arguments, as JSON values."""
    side_effect: bool
    """Whether the tool is side-effecting (and so was not executed)."""
    answered_by: Literal["fixture", "sandbox", "tool"]
    """A fixture, the sandbox's default for side effects, or the real tool (read-only)."""

    def to_json(self) -> dict[str, Any]:
        """JSON form for reports."""
        return {
            "tool": self.tool,
            "arguments": dict(self.arguments),
            "side_effect": self.side_effect,
            "answered_by": self.answered_by,
        }


class SandboxSecrets:
    """Real credentials where configured, a placeholder elsewhere (see the module doc)."""

    def __init__(self, real: SecretsProvider | None) -> None:
        self._real = real

    def get(self, name: str) -> str | None:
        """The real value, or the placeholder."""
        value = self._real.get(name) if self._real is not None else None
        return value or _PLACEHOLDER


class ToolSandbox:
    """Answers one case's tool calls from fixtures, records them, and never runs side effects.

    One sandbox per case: in-order fixtures are consumed as calls arrive.
    """

    def __init__(self, fixtures: Mapping[str, Sequence[Fixture]] | None = None) -> None:
        self._matching: dict[str, list[tuple[dict[str, Matcher], Fixture]]] = {}
        self._ordered: dict[str, deque[Fixture]] = {}
        for tool, entries in (fixtures or {}).items():
            for entry in entries:
                if entry.when is None:
                    self._ordered.setdefault(tool, deque()).append(entry)
                else:
                    self._matching.setdefault(tool, []).append((entry.matchers(), entry))
        self.calls: list[RecordedCall] = []
        """Every call that reached a tool, in order."""

    def agent(self, agent: Agent, **changes: Any) -> Agent:
        """A copy of `agent` whose tools are sandboxed; `changes` set other attributes
        (``instructions``, ``model``, ``model_policy``)."""
        sandboxed = copy.copy(agent)
        sandboxed.tools = tuple(SandboxedTool(t, self) for t in agent.tools)
        for name, value in changes.items():
            if not hasattr(agent, name):
                raise AttributeError(f"Agent has no attribute {name!r}")
            setattr(sandboxed, name, value)
        return sandboxed

    def fixture_for(self, tool: str, arguments: Mapping[str, Any]) -> Fixture | None:
        """The fixture that answers this call: the first matching ``when``, else the next
        unused in-order entry."""
        for matchers, entry in self._matching.get(tool, ()):
            if match_arguments(matchers, arguments):
                return entry
        queue = self._ordered.get(tool)
        return queue.popleft() if queue else None

    async def call(
        self, tool: AnyTool, arguments: BaseModel, *, ctx: ToolContext, secret: Secret | None
    ) -> Any:
        """Answer one call (see the module doc)."""
        values = arguments.model_dump(mode="json", by_alias=True)
        side_effect = tool.policy.side_effect
        fixture = self.fixture_for(tool.name, values)
        if fixture is not None:
            self.calls.append(RecordedCall(tool.name, values, side_effect, "fixture"))
            return _answer(fixture)
        if side_effect:
            self.calls.append(RecordedCall(tool.name, values, side_effect, "sandbox"))
            return _Recorded()
        self.calls.append(RecordedCall(tool.name, values, side_effect, "tool"))
        if secret is not None and secret.reveal() == _PLACEHOLDER:
            raise PermanentToolError(f"{tool.name!r} is not configured and cannot run now.")
        return await tool.invoke(arguments, ctx=ctx, secret=secret)


class SandboxedTool(Tool[..., Any]):
    """`tool` as the model and the runtime see it; its calls go to a `ToolSandbox`."""

    def __init__(self, tool: AnyTool, sandbox: ToolSandbox) -> None:
        super().__init__(
            tool.function, policy=tool.policy, name=tool.name, description=tool.description
        )
        self.original = tool
        """The tool this one stands in for."""
        self._sandbox = sandbox

    async def invoke(
        self, arguments: BaseModel, *, ctx: ToolContext, secret: Secret | None = None
    ) -> Any:
        """Send the call to the sandbox instead of the function."""
        return await self._sandbox.call(self.original, arguments, ctx=ctx, secret=secret)

    def serialize_result(self, value: Any) -> Any:
        """The sandbox's "recorded" answer as it is; anything else checked as the tool's."""
        if isinstance(value, _Recorded):
            return dict(RECORDED)
        return self.original.serialize_result(value)


class _Recorded:
    """Marks the sandbox's own answer, which need not match the tool's return type."""


def _answer(fixture: Fixture) -> Any:
    if fixture.error is not None:
        raise PermanentToolError(fixture.error)
    if fixture.retry is not None:
        raise ModelRetry(fixture.retry)
    return fixture.result


def check_fixture(tool: AnyTool, fixture: Fixture) -> str | None:
    """Why `fixture`'s result cannot be the tool's result (its return type), or None."""
    if "result" not in fixture.model_fields_set:
        return None
    try:
        tool.serialize_result(fixture.result)
    except Exception as exc:  # ValidationError, PydanticSerializationError
        text = json.dumps(fixture.result, default=str)[:200]
        return f"result {text} does not match {tool.name!r}'s return type: {exc}"
    return None
