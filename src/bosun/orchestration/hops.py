"""What travels between stages: values built from upstream outputs, with their trust labels.

A stage's output carries the lowest label of everything that went into it, so a stage fed
untrusted text produces untrusted output, however many hops later. An agent stage sees its
input as labelled `Content` parts (one per upstream), so the runtime spotlights and gates
the untrusted ones exactly as it does for an email body; a run that read untrusted content
through its tools labels its output untrusted too.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from bosun.orchestration.pipeline import Pipeline
from bosun.orchestration.stages import INPUT, Stage
from bosun.orchestration.state import PipelineState, lowest
from bosun.trust import Content, Trust

__all__ = ["StageInput", "agent_parts", "fan_out_size", "parse_json", "stage_inputs"]

_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)


@dataclass(frozen=True, slots=True)
class StageInput:
    """One execution's input, validated, with where its parts came from."""

    item: int | None
    """The fan-out index."""
    value: BaseModel
    """The input."""
    trust: Trust
    """The lowest label among its parts."""
    parts: dict[str, Trust] = field(default_factory=dict)
    """Label per upstream (a fan-in's fields)."""


def _source(pipeline: Pipeline, state: PipelineState, name: str) -> tuple[Any, Trust] | None:
    """What `name` handed downstream, as JSON with its label; None while not finished."""
    if name == INPUT:
        return state.input, state.trust
    size = fan_out_size(pipeline, state, pipeline.stages[name])
    if size is None and pipeline.stages[name].fan_out is not None:
        return None
    if not state.stage_done(name, size):
        return None
    if size is None:
        out = state.outputs[(name, None)]
        return out.value, out.trust
    outs = [state.outputs[(name, i)] for i in range(size)]
    return [o.value for o in outs], lowest(o.trust for o in outs)


def fan_out_size(pipeline: Pipeline, state: PipelineState, stage: Stage) -> int | None:
    """How many executions a fan-out stage has (None: not a fan-out, or not known yet)."""
    if stage.fan_out is None:
        return None
    source = _source(pipeline, state, stage.after[0])
    if source is None:
        return None
    value, _ = source
    items = value.get(stage.fan_out) if isinstance(value, dict) else None
    return len(items) if isinstance(items, list) else 0


def stage_inputs(pipeline: Pipeline, state: PipelineState, stage: Stage) -> list[StageInput] | None:
    """The inputs of every execution of `stage`, or None while an upstream is unfinished.
    An input the exception handler fixed replaces the upstream's for that execution."""
    sources = {name: _source(pipeline, state, name) for name in stage.after}
    ready = {name: s for name, s in sources.items() if s is not None}
    if len(ready) != len(sources):
        return None
    raw: list[tuple[int | None, Any, Trust, dict[str, Trust]]]
    if stage.fan_out is not None:
        value, trust = ready[stage.after[0]]
        elements = value.get(stage.fan_out) or [] if isinstance(value, dict) else []
        raw = [(i, element, trust, {}) for i, element in enumerate(elements)]
    elif len(stage.after) == 1:
        value, trust = ready[stage.after[0]]
        raw = [(None, value, trust, {})]
    else:
        labels = {name: trust for name, (_, trust) in ready.items()}
        combined = {name: value for name, (value, _) in ready.items()}
        raw = [(None, combined, lowest(labels.values()), labels)]
    built = []
    for item, value, trust, labels in raw:
        fixed = state.inputs.get((stage.name, item))
        if fixed is not None:
            value = fixed
        built.append(StageInput(item, stage.input.model_validate(value), trust, labels))
    return built


def agent_parts(pipeline: Pipeline, stage: Stage, given: StageInput) -> list[Content]:
    """An agent stage's run input: what is asked (trusted: the pipeline's own words), then
    the data, each part with the label of the upstream it came from."""
    schema = schema_of(stage.output)
    parts = [
        Content(
            text=(
                f"You are stage {stage.name!r} of pipeline {pipeline.name!r}. Your final answer "
                f"must be one JSON object matching this JSON schema, and nothing else:\n{schema}"
            ),
            trust=Trust.TRUSTED,
            source="pipeline",
        )
    ]
    data = given.value.model_dump(mode="json")
    if given.parts:
        for name, trust in given.parts.items():
            text = f"{name}: {json.dumps(data.get(name), ensure_ascii=False)}"
            parts.append(Content(text=text, trust=trust, source=_source_name(name)))
    else:
        source = stage.after[0]
        text = json.dumps(data, ensure_ascii=False)
        parts.append(Content(text=text, trust=given.trust, source=_source_name(source)))
    return parts


@functools.lru_cache(maxsize=256)
def schema_of(model: type[BaseModel]) -> str:
    """A model's JSON schema as compact text (built once per model: pydantic takes ~1.5 ms)."""
    return json.dumps(model.model_json_schema(), separators=(",", ":"))


def _source_name(name: str) -> str:
    return "input" if name == INPUT else f"stage:{name}"


def parse_json(model: type[BaseModel], text: str | None) -> BaseModel:
    """A run's final answer as `model`: the JSON object in it (fenced or bare). Raises
    ``ValueError`` saying what was wrong."""
    if not text:
        raise ValueError("the run gave no answer")
    fenced = _FENCE.search(text)
    body = fenced.group(1) if fenced else text
    start, end = body.find("{"), body.rfind("}")
    if start < 0 or end < start:
        raise ValueError(f"the answer holds no JSON object: {text[:200]!r}")
    try:
        return model.model_validate_json(body[start : end + 1])
    except ValidationError as exc:
        # The answer itself goes with the reason: an agent that explains why it cannot give
        # the output ("order W1 not found") tells the exception handler what to fix.
        raise ValueError(
            f"the answer is not a valid {model.__name__} ({exc.errors()[0]['msg']}): {text[:300]!r}"
        ) from exc
