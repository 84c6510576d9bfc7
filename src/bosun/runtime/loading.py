"""Agents named by import path (``module:attribute``), as commands and settings name them.

The service, the CLI and the evaluation commands all load agents this way; it lives in the
runtime so none of them reaches into another for it.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterable
from pathlib import Path

from bosun.errors import ConfigError
from bosun.runtime.agent import Agent

__all__ = ["load_agent", "load_agents", "load_attribute"]


def load_attribute(target: str, *, example: str) -> object:
    """The object at ``module:attribute`` (the working directory is importable); `example`
    shows the expected form in the error."""
    module_name, _, attr = target.partition(":")
    if not module_name or not attr:
        raise ConfigError(f"{target!r}: expected {example}")
    cwd = str(Path.cwd())
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"cannot import {module_name!r}: {exc}") from exc
    if not hasattr(module, attr):
        raise ConfigError(f"{module_name!r} has no attribute {attr!r}")
    return getattr(module, attr)


def load_agent(target: str) -> Agent:
    """The `Agent` at ``module:attribute`` (the working directory is importable)."""
    agent = load_attribute(target, example="MODULE:AGENT, e.g. myapp.agents:support")
    if not isinstance(agent, Agent):
        raise ConfigError(f"{target} is not a bosun.Agent")
    return agent


def load_agents(targets: Iterable[str]) -> list[Agent]:
    """Every agent named, in order."""
    return [load_agent(t) for t in targets]
