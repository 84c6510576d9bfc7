"""Doubles for the tool pipeline: a clock tests move by hand and a sleep that only records."""

from __future__ import annotations

import json
from typing import Any, Protocol

import pytest

from bosun.models.base import ToolCall
from bosun.tools import (
    ApprovalDecision,
    Invocation,
    SecretsProvider,
    Tool,
    ToolContext,
    ToolExecutor,
)


class FakeClock:
    """A monotonic clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class MakeExecutor(Protocol):
    def __call__(
        self, *tools: Tool[..., Any], secrets: SecretsProvider | None = None
    ) -> ToolExecutor: ...


class MakeInvocation(Protocol):
    def __call__(
        self,
        name: str,
        arguments: dict[str, Any] | str | None = None,
        *,
        grants: set[str] | None = None,
        approval: ApprovalDecision | None = None,
        force_approval: bool = False,
        call_id: str = "call-1",
    ) -> Invocation: ...


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sleeps() -> list[float]:
    """Every backoff delay the retry layer asked for, in order."""
    return []


@pytest.fixture
def make_executor(clock: FakeClock, sleeps: list[float]) -> MakeExecutor:
    async def record(seconds: float) -> None:
        sleeps.append(seconds)

    def make(*tools: Tool[..., Any], secrets: SecretsProvider | None = None) -> ToolExecutor:
        return ToolExecutor(tools, secrets=secrets, clock=clock, sleep=record)

    return make


@pytest.fixture
def make_inv() -> MakeInvocation:
    """An invocation of `name`; grants default to the tool's default scope ``tools:<name>``."""

    def make(
        name: str,
        arguments: dict[str, Any] | str | None = None,
        *,
        grants: set[str] | None = None,
        approval: ApprovalDecision | None = None,
        force_approval: bool = False,
        call_id: str = "call-1",
    ) -> Invocation:
        raw = arguments if isinstance(arguments, str) else json.dumps(arguments or {})
        return Invocation(
            call=ToolCall(id=call_id, name=name, arguments=raw),
            ctx=ToolContext(run_id="run-1", step=3, call_id=call_id, principal="alice"),
            grants=frozenset({f"tools:{name}"} if grants is None else grants),
            approval=approval,
            force_approval=force_approval,
        )

    return make
