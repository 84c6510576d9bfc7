"""Prompts as agent instructions: a name and label resolved as each run starts.

``Agent(instructions=PromptSource(registry, PromptRef("support")))`` follows the label: each
run gets the version the label points at (or its canary, sticky per conversation), rendered,
and journals which one it got.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bosun.prompts.labels import PRODUCTION
from bosun.prompts.template import PromptVersion
from bosun.runtime.agent import ResolvedInstructions

if TYPE_CHECKING:
    from bosun.prompts.registry import PromptRegistry

__all__ = ["PromptRef", "PromptSource", "RenderedPrompt", "canary_bucket", "render"]

_BUCKETS = 10_000


@dataclass(frozen=True, slots=True)
class PromptRef:
    """An agent's instructions by prompt name and label, resolved as each run starts."""

    name: str
    """The prompt."""
    label: str = PRODUCTION
    """Which label to follow."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RenderedPrompt:
    """A prompt resolved for one key and rendered."""

    text: str
    """The instructions."""
    name: str
    """The prompt."""
    version: str
    """The version the key got (the canary's, for keys in the canary)."""
    label: str | None
    """The label followed; None for a pinned version."""
    digest: str
    """The version's digest."""
    model_settings: Mapping[str, Any]
    """The version's model settings."""

    def source(self) -> dict[str, Any]:
        """What the run journals as its ``prompt``."""
        return {
            "name": self.name,
            "version": self.version,
            "label": self.label,
            "digest": self.digest,
        }


def render(
    ref: PromptRef,
    registry: PromptRegistry,
    variables: Mapping[str, Any] | None = None,
    key: str | None = None,
) -> RenderedPrompt:
    """Resolve `ref` for `key` (canary assignment is sticky per key) and render it."""
    version = registry.resolve(ref.name, ref.label, key=key)
    return _rendered(version, variables, label=ref.label)


def _rendered(
    version: PromptVersion, variables: Mapping[str, Any] | None, *, label: str | None
) -> RenderedPrompt:
    return RenderedPrompt(
        text=version.render(variables),
        name=version.name,
        version=version.version,
        label=label,
        digest=version.digest,
        model_settings=dict(version.model_settings),
    )


@dataclass(frozen=True)
class PromptSource:
    """Agent instructions from the registry: ``Agent(instructions=PromptSource(registry,
    PromptRef("support")))``. Resolved as each run starts, keyed by its conversation, and
    journaled with the run as ``prompt`` (name, version, label, digest).

    With `version` set, the source is pinned to that version whatever the labels say
    (evaluations and shadow runs use this).
    """

    registry: PromptRegistry
    """Where the prompt lives."""
    ref: PromptRef
    """Which prompt and label."""
    variables: Mapping[str, Any] = field(default_factory=dict)
    """Values for the template's variables."""
    version: str | None = None
    """Pin a version instead of following the label."""

    def render(self, *, key: str | None = None) -> RenderedPrompt:
        """The rendered prompt for `key`."""
        if self.version is not None:
            pinned = self.registry.get(self.ref.name, self.version)
            return _rendered(pinned, self.variables, label=None)
        return render(self.ref, self.registry, self.variables, key)

    def resolve(self, *, key: str) -> ResolvedInstructions:
        """The instructions for the run keyed `key` (`bosun.runtime.agent.InstructionSource`)."""
        rendered = self.render(key=key)
        return ResolvedInstructions(
            text=rendered.text,
            source=rendered.source(),
            model_settings=dict(rendered.model_settings),
        )


def canary_bucket(name: str, key: str) -> int:
    """The key's sticky bucket in ``[0, 10000)`` for prompt `name`."""
    digest = hashlib.sha256(f"{name}\x1f{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % _BUCKETS
