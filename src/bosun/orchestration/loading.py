"""Pipelines named by import path (``module:attribute``), as ``bosun serve --pipeline``,
``bosun worker --pipeline``, ``bosun pipeline run`` and the ``pipelines`` setting name them.

The attribute is a `Pipeline`, or a function of no arguments that builds one: a pipeline over
data that must be opened first (the order pipeline over the retail store) is a function.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable

from bosun.errors import ConfigError
from bosun.orchestration.pipeline import Pipeline
from bosun.runtime.loading import load_attribute

__all__ = ["load_pipeline", "load_pipelines"]

_EXAMPLE = "MODULE:PIPELINE, e.g. myapp.pipelines:orders"


def load_pipeline(target: str) -> Pipeline:
    """The `Pipeline` at ``module:attribute``, built first when it is a function."""
    found = load_attribute(target, example=_EXAMPLE)
    if isinstance(found, Pipeline):
        return found
    if callable(found) and not isinstance(found, type):
        if _required_parameters(found):
            raise ConfigError(
                f"{target} needs arguments ({', '.join(_required_parameters(found))}); name a "
                "Pipeline or a function of no arguments that builds one"
            )
        built = found()
        if isinstance(built, Pipeline):
            return built
        raise ConfigError(f"{target}() returned a {type(built).__name__}, not a Pipeline")
    what = "class" if isinstance(found, type) else type(found).__name__
    raise ConfigError(f"{target} is a {what}, not a bosun Pipeline")


def _required_parameters(function: Callable[..., object]) -> list[str]:
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):  # a builtin without one: let the call say
        return []
    return [
        p.name
        for p in signature.parameters.values()
        if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]


def load_pipelines(targets: Iterable[str]) -> list[Pipeline]:
    """Every pipeline named, in order; two with one name is an error."""
    loaded: dict[str, Pipeline] = {}
    for target in targets:
        pipeline = load_pipeline(target)
        if pipeline.name in loaded and loaded[pipeline.name] is not pipeline:
            raise ConfigError(f"two pipelines are named {pipeline.name!r} ({target})")
        loaded[pipeline.name] = pipeline
    return list(loaded.values())
