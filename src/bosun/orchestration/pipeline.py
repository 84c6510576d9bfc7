"""`Pipeline`: stages wired into a DAG, checked when it is built.

Everything that can be wrong with the wiring is found here, not halfway through a run: an
upstream that names no stage, a cycle (named stage by stage), a stage whose input type does
not fit what its upstreams produce, a fan-out over a field that is not a list of what the
stage takes, a pipeline whose output stage is ambiguous.

What "fits" means: the producer's type is the consumer's type or a subclass of it; or, for
two pydantic models, every field the consumer requires exists in the producer with a type
that fits in turn (structural, so stages need not share classes); ``list[A]`` fits
``list[B]`` when ``A`` fits ``B``.
"""

from __future__ import annotations

import functools
import graphlib
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pydantic import BaseModel

from bosun.errors import PipelineDefinitionError
from bosun.orchestration.stages import INPUT, Stage
from bosun.runtime.agent import Agent

__all__ = ["ExceptionHandler", "Pipeline", "PipelineBudget", "fits"]

ExceptionHandler = Agent | Callable[..., Any]
"""An agent (its final answer is a `Resolution` as JSON) or ``fn(failure) -> Resolution``,
sync or async: what a stage failure that retries did not fix is handed to."""


@dataclass(frozen=True, kw_only=True)
class PipelineBudget:
    """Limits for the whole pipeline, over all its stages; None means unlimited. Checked
    before each stage execution starts: a stage already running finishes within its own
    agent's budget, so the pipeline can overshoot by at most what one stage may spend."""

    max_model_calls: int | None = None
    """Model calls over all stage runs."""
    max_tokens: int | None = None
    """Tokens over all stage runs."""
    max_cost_usd: Decimal | None = None
    """Spend over all stage runs (calls priced unknown count as zero)."""
    max_wall_s: float | None = None
    """Seconds since the pipeline was created (time parked escalated counts)."""


class Pipeline:
    """A named DAG of stages over a typed input. Stateless: every run's state is journaled."""

    def __init__(
        self,
        *,
        name: str,
        input: type[BaseModel],
        stages: Sequence[Stage],
        output: str | None = None,
        budget: PipelineBudget | None = None,
        exception_handler: ExceptionHandler | None = None,
        max_exception_rounds: int = 1,
    ) -> None:
        """`output` names the stage whose output is the pipeline's (default: the one stage
        nothing depends on). `exception_handler` gets stage failures that retries did not
        fix, at most `max_exception_rounds` times per stage execution."""
        if not name or len(name) > 200:
            raise PipelineDefinitionError("a pipeline name is 1 to 200 characters")
        self.name = name
        self.input = input
        self.stages: dict[str, Stage] = {}
        for stage in stages:
            if stage.name in self.stages:
                raise PipelineDefinitionError(f"pipeline {name!r} has two stages {stage.name!r}")
            self.stages[stage.name] = stage
        if not self.stages:
            raise PipelineDefinitionError(f"pipeline {name!r} has no stages")
        self.order = self._topological()
        """Stage names, every stage after its upstreams."""
        for stage in self.stages.values():
            self._check_types(stage)
        self.output = self._output_stage(output)
        self.budget = budget or PipelineBudget()
        self.exception_handler = exception_handler
        self.max_exception_rounds = max_exception_rounds

    @functools.cached_property
    def agents(self) -> tuple[Agent, ...]:
        """Every agent the pipeline runs: stages and the exception handler."""
        found = [s.agent for s in self.stages.values() if s.agent is not None]
        if isinstance(self.exception_handler, Agent):
            found.append(self.exception_handler)
        return tuple(found)

    @functools.cached_property
    def scopes(self) -> frozenset[str]:
        """Every scope the pipeline's agents declare: its default grants."""
        return frozenset().union(*(a.scopes for a in self.agents))

    def produces(self, source: str) -> Any:
        """What `source` (a stage or ``"input"``) hands downstream."""
        return self.input if source == INPUT else self.stages[source].produces

    def downstream(self, name: str) -> set[str]:
        """Stages that depend on `name`, directly or not."""
        found: set[str] = set()
        frontier = {name}
        while frontier:
            frontier = {s.name for s in self.stages.values() if set(s.after) & frontier} - found
            found |= frontier
        return found

    # --- checks -----------------------------------------------------------------------------

    def _topological(self) -> list[str]:
        sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
        for stage in self.stages.values():
            for upstream in stage.after:
                if upstream != INPUT and upstream not in self.stages:
                    raise PipelineDefinitionError(
                        f"stage {stage.name!r} runs after {upstream!r}, which is not a stage of "
                        f"pipeline {self.name!r} (stages: {', '.join(self.stages)})"
                    )
            sorter.add(stage.name, *(u for u in stage.after if u != INPUT))
        try:
            return list(sorter.static_order())
        except graphlib.CycleError as exc:
            cycle = " -> ".join(reversed(exc.args[1]))
            raise PipelineDefinitionError(
                f"pipeline {self.name!r} has a cycle: {cycle}; stages must form a DAG"
            ) from None

    def _check_types(self, stage: Stage) -> None:
        if stage.fan_out is not None:
            (upstream,) = stage.after
            produced = self.produces(upstream)
            element = _list_field(produced, stage.fan_out)
            if element is None:
                raise PipelineDefinitionError(
                    f"stage {stage.name!r} fans out over {stage.fan_out!r}, but {upstream!r} "
                    f"produces {_name(produced)}, which has no list field {stage.fan_out!r}"
                )
            _require(stage, upstream, element, stage.input)
            return
        if len(stage.after) == 1:
            (upstream,) = stage.after
            _require(stage, upstream, self.produces(upstream), stage.input)
            return
        fields = stage.input.model_fields
        for upstream in stage.after:
            if upstream not in fields:
                raise PipelineDefinitionError(
                    f"stage {stage.name!r} runs after {', '.join(stage.after)}: its input "
                    f"{stage.input.__name__} needs a field {upstream!r} for {upstream!r}'s output"
                )
            _require(stage, upstream, self.produces(upstream), fields[upstream].annotation)
        extra = [n for n, f in fields.items() if f.is_required() and n not in stage.after]
        if extra:
            raise PipelineDefinitionError(
                f"stage {stage.name!r}: its input {stage.input.__name__} requires "
                f"{', '.join(extra)}, which no upstream provides"
            )

    def _output_stage(self, output: str | None) -> str:
        if output is not None:
            if output not in self.stages:
                raise PipelineDefinitionError(f"output {output!r} is not a stage")
            return output
        used = {u for s in self.stages.values() for u in s.after}
        sinks = [n for n in self.order if n not in used]
        if len(sinks) != 1:
            raise PipelineDefinitionError(
                f"pipeline {self.name!r} ends in {len(sinks)} stages ({', '.join(sinks)}): "
                "say which one's output is the pipeline's with output=..."
            )
        return sinks[0]


def _require(stage: Stage, upstream: str, produced: Any, expected: Any) -> None:
    if not fits(produced, expected):
        raise PipelineDefinitionError(
            f"type mismatch: stage {stage.name!r} takes {_name(expected)} from {upstream!r}, "
            f"which produces {_name(produced)}"
        )


def fits(produced: Any, expected: Any, _depth: int = 0) -> bool:
    """Whether a value of type `produced` is a valid `expected` (see the module docstring)."""
    if expected is Any or produced == expected or _depth > 8:
        return True
    p_origin, e_origin = typing.get_origin(produced), typing.get_origin(expected)
    if e_origin is list or e_origin is Sequence:
        if p_origin is not list:
            return False
        (p_item,), (e_item,) = typing.get_args(produced), typing.get_args(expected)
        return fits(p_item, e_item, _depth + 1)
    if e_origin is typing.Union or e_origin is type(int | None):
        return any(fits(produced, option, _depth + 1) for option in typing.get_args(expected))
    if not (isinstance(produced, type) and isinstance(expected, type)):
        return False
    if issubclass(produced, expected):
        return True
    if issubclass(produced, BaseModel) and issubclass(expected, BaseModel):
        have = produced.model_fields
        for name, info in expected.model_fields.items():
            if name not in have:
                if info.is_required():
                    return False
                continue
            if not fits(have[name].annotation, info.annotation, _depth + 1):
                return False
        return True
    return False


def _list_field(model: Any, name: str) -> Any:
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        return None
    info = model.model_fields.get(name)
    if info is None or typing.get_origin(info.annotation) is not list:
        return None
    return typing.get_args(info.annotation)[0]


def _name(annotation: Any) -> str:
    if isinstance(annotation, type) and typing.get_origin(annotation) is None:
        return annotation.__name__
    return str(annotation).replace("typing.", "")
