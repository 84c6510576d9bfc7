"""`ToolExecutor`: checks the tools it is given (unique names, fallback chains that neither loop
nor promise less than their primary), folds the stages around the call, and turns a model's
call into a tool and validated arguments."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence

from pydantic import BaseModel, ValidationError

from bosun.errors import ToolDefinitionError
from bosun.models.base import ToolDefinition
from bosun.tools.base import ErrorKind, Risk, ToolResult
from bosun.tools.breaker import CircuitBreaker
from bosun.tools.decorator import Tool
from bosun.tools.pipeline.call import Call
from bosun.tools.pipeline.invocation import AnyTool, Invocation, Next, Stage, explain, fail
from bosun.tools.pipeline.stages import (
    Breaker,
    Fallback,
    RateLimit,
    Retry,
    approve,
    authorize,
    timeout,
)
from bosun.tools.secrets import SecretsProvider

__all__ = ["ToolExecutor"]

logger = logging.getLogger(__name__)


class ToolExecutor:
    """Runs tool calls through the pipeline. Lives for the process: breakers and rate limits
    are per tool and shared by every run."""

    def __init__(
        self,
        tools: Sequence[AnyTool],
        *,
        secrets: SecretsProvider | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._tools = _index(tools)
        self._breakers = {
            t.name: CircuitBreaker(t.policy.breaker, clock=clock)
            for t in tools
            if t.policy.breaker is not None
        }
        stages: list[Stage] = [
            authorize,
            approve,
            Fallback(self.execute, self._tools),
            RateLimit(tools),
            Breaker(self._breakers),
            Retry(sleep),
            timeout,
        ]
        self._handler = _compose(stages, Call(secrets))

    def definitions(self) -> tuple[ToolDefinition, ...]:
        """Every tool as the model is told about it, in the order given."""
        return tuple(t.definition() for t in self._tools.values())

    def get(self, name: str) -> AnyTool | None:
        """The tool called `name`, if the executor has it."""
        return self._tools.get(name)

    def breaker(self, name: str) -> CircuitBreaker | None:
        """The breaker of tool `name` (for metrics and dashboards); `None` when it has none."""
        return self._breakers.get(name)

    async def execute(self, inv: Invocation) -> ToolResult:
        """Run one call to a structured result.

        Every failure of the call comes back as a `ToolResult`; the only exception meant to
        leave is `ApprovalRequired`, a signal for the runtime to ask a human.
        """
        tool = self._tools.get(inv.call.name)
        if tool is None:
            return fail(ErrorKind.UNKNOWN_TOOL, self._unknown_tool(inv))
        try:
            raw = inv.call.parsed_arguments()
        except (ValueError, RecursionError) as exc:
            return fail(
                ErrorKind.INVALID_ARGUMENTS,
                f"The arguments for {tool.name!r} are not a JSON object ({exc}). Call the tool "
                "again with a JSON object that matches its parameters.",
            )
        try:
            args = tool.validate_arguments(raw)
        except ValidationError as exc:
            return fail(ErrorKind.INVALID_ARGUMENTS, explain(tool.name, exc))
        return await self._handler(inv, tool, args)

    def _unknown_tool(self, inv: Invocation) -> str:
        names = sorted(t.name for t in self._tools.values() if t.policy.scope in inv.grants)
        available = f"Available tools: {', '.join(names)}." if names else "No tools are available."
        return f"There is no tool named {inv.call.name[:64]!r}. {available}"


def _compose(stages: Sequence[Stage], terminal: Next) -> Next:
    handler = terminal
    for stage in reversed(stages):
        handler = _bind(stage, handler)
    return handler


def _bind(stage: Stage, call_next: Next) -> Next:
    async def handler(inv: Invocation, tool: AnyTool, args: BaseModel) -> ToolResult:
        return await stage(inv, tool, args, call_next)

    return handler


def _index(tools: Sequence[AnyTool]) -> dict[str, AnyTool]:
    by_name: dict[str, AnyTool] = {}
    for item in tools:
        if not isinstance(item, Tool):
            raise ToolDefinitionError(f"{item!r} is not a tool; decorate it with @bosun.tools.tool")
        if item.name in by_name:
            raise ToolDefinitionError(f"two tools are named {item.name!r}; names must be unique")
        by_name[item.name] = item
    for item in by_name.values():
        _check_fallback_chain(item, by_name)
    return by_name


def _check_fallback_chain(start: AnyTool, tools: Mapping[str, AnyTool]) -> None:
    seen = [start.name]
    current: AnyTool | None = start
    while current is not None and current.policy.fallback is not None:
        target = current.policy.fallback
        if target not in tools:
            logger.warning("tool %r: fallback %r is not in this executor", current.name, target)
            return
        if target in seen:
            chain = " -> ".join([*seen, target])
            raise ToolDefinitionError(f"fallback chain loops: {chain}")
        _check_fallback_contract(current, tools[target])
        seen.append(target)
        current = tools.get(target)


_RISK_ORDER = {Risk.READ: 0, Risk.WRITE: 1, Risk.IRREVERSIBLE: 2}


def _check_fallback_contract(primary: AnyTool, fallback: AnyTool) -> None:
    """A fallback runs under its primary's journaling, approval and audit, so it must not
    promise less: no side effect behind a read-only tool, no non-idempotent effect behind an
    idempotent one (no tool_started marker would guard it), no approval or risk the primary
    does not already carry."""
    p, f = primary.policy, fallback.policy
    problems = []
    if f.side_effect and not p.side_effect:
        problems.append("it has side effects and the primary has none")
    if f.side_effect and not f.idempotent and p.idempotent:
        problems.append("it is not idempotent and the primary is")
    if f.requires_approval and not p.requires_approval:
        problems.append("it requires approval and the primary does not")
    if f.untrusted_output and not p.untrusted_output:
        problems.append("it reads untrusted content and the primary does not")
    if _RISK_ORDER[f.risk] > _RISK_ORDER[p.risk]:
        problems.append(f"its risk ({f.risk}) is above the primary's ({p.risk})")
    if problems:
        raise ToolDefinitionError(
            f"fallback {fallback.name!r} of {primary.name!r} is riskier than the tool it stands "
            f"in for: {'; '.join(problems)}"
        )
