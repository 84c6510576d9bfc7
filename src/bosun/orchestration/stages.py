"""Stages: the typed steps of a pipeline, agents or plain functions.

```
function_stage("price", price, after=["validate"])      price(Validated) -> Priced
agent_stage("fraud", fraud_agent, input=Validated, output=Verdict, after=["validate"])
function_stage("check", check, after=["validate"], fan_out="lines")   once per element
```

A stage's input is built from what its upstream stages produced (``after``; ``"input"`` is
the pipeline's own input): with one upstream, its output is the input; with several, the
input model has one field per upstream, named after it. ``fan_out="field"`` runs the stage
once per element of that list field of its one upstream's output, concurrently, and its
output is the list of results (fan-in: a downstream field typed ``list[Out]``).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import inspect
import re
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from bosun.errors import PipelineDefinitionError
from bosun.runtime.agent import Agent

__all__ = [
    "INPUT",
    "Stage",
    "StageContext",
    "StageFunction",
    "StagePolicy",
    "agent_stage",
    "function_stage",
]

INPUT = "input"
"""The name under which stages depend on the pipeline's own input."""

_NAME = re.compile(r"^[A-Za-z0-9_-]{1,48}$")

StageFunction = Callable[..., Any]
"""``fn(input)`` or ``fn(input, ctx: StageContext)``, sync or async, returning the output."""


@dataclass(frozen=True, kw_only=True)
class StagePolicy:
    """How a stage is run and what happens when it fails."""

    attempts: int = 1
    """Tries before the failure goes to the exception handler (the first included). A stage
    whose run escalated (a reviewer blocked it, it waits for a person) is never retried."""
    timeout_s: float | None = 300.0
    """Seconds one attempt may take; past it the attempt fails (an agent stage's run is
    cancelled) and is retried, handled or escalated like any other failure."""
    handle_exceptions: bool = True
    """Hand a failure that retries did not fix to the pipeline's exception handler."""

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise PipelineDefinitionError(f"attempts must be at least 1, got {self.attempts}")
        if self.timeout_s is not None and self.timeout_s <= 0:
            raise PipelineDefinitionError(f"timeout_s must be positive, got {self.timeout_s}")


@dataclass(frozen=True, kw_only=True)
class StageContext:
    """What a function stage is told about the attempt it runs in."""

    pipeline_id: str
    """The pipeline."""
    stage: str
    """The stage."""
    item: int | None
    """The fan-out index; None for a stage that does not fan out."""
    attempt: int
    """0 for the first attempt; a retry or a retry with a fixed input counts up."""
    principal: str | None = None
    """Who the pipeline acts for."""

    @property
    def idempotency_key(self) -> str:
        """Stable across a crash and resume of the same attempt: derived from (pipeline,
        stage, item, attempt). A function stage with a side effect deduplicates on it (a
        stage interrupted before its result was journaled runs again)."""
        text = f"{self.pipeline_id}\x1f{self.stage}\x1f{self.item}\x1f{self.attempt}"
        return hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass(frozen=True, kw_only=True)
class Stage:
    """One step of a pipeline. Build with `function_stage` or `agent_stage`."""

    name: str
    """Unique in the pipeline; names the stage's field in a fan-in input."""
    input: type[BaseModel]
    """What one execution of the stage takes (one element, for a fan-out)."""
    output: type[BaseModel]
    """What one execution produces."""
    after: tuple[str, ...] = (INPUT,)
    """Upstream stages (``"input"``: the pipeline's input)."""
    fan_out: str | None = None
    """A list field of the one upstream's output: the stage runs once per element."""
    policy: StagePolicy = field(default_factory=StagePolicy)
    """Retries, timeout, exception handling."""
    function: StageFunction | None = None
    """The function, for a function stage."""
    agent: Agent | None = None
    """The agent, for an agent stage: its own tools, scopes, model and budget."""

    def __post_init__(self) -> None:
        if not _NAME.match(self.name) or self.name == INPUT:
            raise PipelineDefinitionError(
                f"stage name {self.name!r} must match {_NAME.pattern} and not be {INPUT!r}"
            )
        if (self.function is None) == (self.agent is None):
            raise PipelineDefinitionError(f"stage {self.name!r} needs a function or an agent")
        for kind, model in (("input", self.input), ("output", self.output)):
            if not (isinstance(model, type) and issubclass(model, BaseModel)):
                raise PipelineDefinitionError(
                    f"stage {self.name!r}: its {kind} type must be a pydantic model, got {model!r}"
                )
        if not self.after:
            raise PipelineDefinitionError(f"stage {self.name!r} depends on nothing: give after")
        if len(set(self.after)) != len(self.after):
            raise PipelineDefinitionError(f"stage {self.name!r} names an upstream twice")
        if self.fan_out is not None and len(self.after) != 1:
            raise PipelineDefinitionError(
                f"stage {self.name!r} fans out over {self.fan_out!r}: it takes one upstream"
            )

    @property
    def kind(self) -> str:
        """``agent`` or ``function``."""
        return "agent" if self.agent is not None else "function"

    @property
    def produces(self) -> Any:
        """What downstream stages receive: the output, or a list of them for a fan-out."""
        return list[self.output] if self.fan_out is not None else self.output  # type: ignore[name-defined]

    async def call(self, value: BaseModel, ctx: StageContext) -> Any:
        """Run a function stage's function once (sync functions in a worker thread)."""
        function = self.function
        assert function is not None
        args: tuple[Any, ...] = (value, ctx) if _takes_context(function) else (value,)
        if inspect.iscoroutinefunction(function):
            return await function(*args)
        result = await asyncio.to_thread(functools.partial(function, *args))
        if inspect.isawaitable(result):
            return await result
        return result


def function_stage(
    name: str,
    function: StageFunction,
    *,
    after: Sequence[str] = (INPUT,),
    input: type[BaseModel] | None = None,
    output: type[BaseModel] | None = None,
    fan_out: str | None = None,
    policy: StagePolicy | None = None,
) -> Stage:
    """A plain function stage; `input` and `output` default to its annotations."""
    hinted_in, hinted_out = _annotations(name, function)
    return Stage(
        name=name,
        function=function,
        input=_given(name, "input", input or hinted_in),
        output=_given(name, "output", output or hinted_out),
        after=tuple(after),
        fan_out=fan_out,
        policy=policy or StagePolicy(),
    )


def agent_stage(
    name: str,
    agent: Agent,
    *,
    input: type[BaseModel],
    output: type[BaseModel],
    after: Sequence[str] = (INPUT,),
    fan_out: str | None = None,
    policy: StagePolicy | None = None,
) -> Stage:
    """An agent stage: each execution is a bosun run of `agent` (its own tools, scopes, model
    and budget) whose final answer is the output, as JSON."""
    return Stage(
        name=name,
        agent=agent,
        input=input,
        output=output,
        after=tuple(after),
        fan_out=fan_out,
        policy=policy or StagePolicy(),
    )


def _annotations(name: str, function: StageFunction) -> tuple[Any, Any]:
    try:
        hints = typing.get_type_hints(function)
    except Exception as exc:  # a forward reference that does not resolve
        raise PipelineDefinitionError(
            f"stage {name!r}: cannot read its annotations: {exc}"
        ) from exc
    params = [p for p in inspect.signature(function).parameters.values() if p.name != "ctx"]
    first = hints.get(params[0].name) if params else None
    return first, hints.get("return")


def _given(name: str, kind: str, model: Any) -> type[BaseModel]:
    if model is None:
        raise PipelineDefinitionError(
            f"stage {name!r} has no {kind} type: annotate the function or pass {kind}=..."
        )
    return typing.cast(type[BaseModel], model)


def _takes_context(function: StageFunction) -> bool:
    return len(inspect.signature(function).parameters) >= 2
