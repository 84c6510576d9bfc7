"""Shadow runs: a candidate prompt version receives copies of live inputs, with its side
effects intercepted, and bosun reports where its intended actions differ from production's.

```
production run (finished) of a label with a shadow version
   -> same input parts, same conversation key, agent "<name>.shadow" with the candidate
      pinned and every tool sandboxed (side-effecting ones recorded, never executed;
      read-only ones run, as in evaluations)
   -> held calls approved by "shadow" (the call is recorded either way), questions to a
      person end the shadow run there
   -> intended actions = every tool call the model proposed, production vs shadow, compared
      as multisets of (tool, arguments); a run_scores row (kind "shadow") on the
      production run keeps the agreement and the differences
```

The shadow's runs are ordinary runs in the store under their own agent name, so their
traces and journals can be inspected like any other; metrics and drift keep them apart.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bosun.data.scores import NewScore, ScoreRows
from bosun.data.store import Store
from bosun.evals.sandbox import RecordedCall, ToolSandbox
from bosun.prompts.registry import PromptRef, PromptRegistry, PromptSource
from bosun.runtime.agent import Agent
from bosun.runtime.runtime import Runtime
from bosun.runtime.state import RunStatus
from bosun.trust import Content, Trust

__all__ = ["Action", "ShadowComparison", "ShadowRunner", "intended_actions"]

_MAX_DECISIONS = 10


@dataclass(frozen=True, slots=True, order=True)
class Action:
    """A tool call a model proposed."""

    tool: str
    arguments: str
    """Canonical JSON of the arguments (sorted keys), or the text as written."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ShadowComparison:
    """Production's and the shadow's intended actions for one input."""

    production_run: str
    shadow_run: str
    production_version: str | None
    shadow_version: str
    production_status: str
    shadow_status: str
    only_production: tuple[Action, ...]
    only_shadow: tuple[Action, ...]
    same: tuple[Action, ...]
    intercepted: tuple[RecordedCall, ...] = field(default=())
    """Side effects the shadow would have caused (recorded, not executed)."""

    @property
    def agreement(self) -> float:
        """Shared actions over all actions (1.0 when both did nothing)."""
        total = len(self.only_production) + len(self.only_shadow) + len(self.same)
        return 1.0 if total == 0 else len(self.same) / total

    def to_json(self) -> dict[str, Any]:
        """The differences, for the report row."""
        return {
            "shadow_run": self.shadow_run,
            "production_version": self.production_version,
            "statuses": [self.production_status, self.shadow_status],
            "only_production": [[a.tool, a.arguments] for a in self.only_production],
            "only_shadow": [[a.tool, a.arguments] for a in self.only_shadow],
            "same": len(self.same),
            "intercepted": [c.tool for c in self.intercepted if c.side_effect],
        }


def intended_actions(store: Store, run_id: str) -> list[Action]:
    """Every tool call the run's model proposed, in order (what it meant to do, whatever the
    gates, approvers or tools then did with it)."""
    found = []
    for step in store.journal(run_id):
        if step.kind != "model_response":
            continue
        response = json.loads(step.payload).get("response") or {}
        for call in response.get("tool_calls") or ():
            found.append(Action(call.get("name", ""), _canonical(call.get("arguments", ""))))
    return found


class ShadowRunner:
    """Runs a label's shadow version on copies of its production inputs."""

    def __init__(
        self,
        store: Store,
        registry: PromptRegistry,
        agent: Agent,
        *,
        prompt: str,
        label: str = "production",
    ) -> None:
        self.store = store
        self.registry = registry
        self.agent = agent
        self.prompt = prompt
        self.label = label

    def shadow_version(self) -> str | None:
        """The version the label shadows now, if any."""
        found = self.registry.label(self.prompt, self.label)
        return None if found is None else found.shadow

    async def shadow(self, run_id: str, *, version: str | None = None) -> ShadowComparison:
        """Shadow one finished production run with `version` (default: the label's shadow)."""
        version = version or await asyncio.to_thread(self.shadow_version)
        if version is None:
            raise ValueError(f"prompt {self.prompt!r} label {self.label!r} has no shadow version")
        started = json.loads((await asyncio.to_thread(self.store.journal, run_id))[0].payload)
        sandbox = ToolSandbox()
        source = PromptSource(self.registry, PromptRef(self.prompt, self.label), version=version)
        shadow_agent = sandbox.agent(
            self.agent, name=f"{self.agent.name}.shadow", instructions=source
        )
        # One runtime per shadow run: each has its own sandbox, and a runtime keeps one
        # agent object per name.
        async with Runtime(store=self.store, agents=[shadow_agent]) as rt:
            shadow_id = await rt.start(
                shadow_agent,
                _parts(started),
                conversation=started.get("conversation") or run_id,
                queued=False,
            )
            result = await rt.resume(shadow_id)
            for _ in range(_MAX_DECISIONS):
                if result.status is not RunStatus.WAITING_APPROVAL:
                    break
                for held in result.waiting_for:
                    result = await rt.decide(
                        shadow_id, held.id, approved=True, decided_by="shadow", resume=False
                    )
                result = await rt.resume(shadow_id)
        production = await asyncio.to_thread(intended_actions, self.store, run_id)
        candidate = await asyncio.to_thread(intended_actions, self.store, shadow_id)
        row = await asyncio.to_thread(self.store.get_run, run_id)
        comparison = _compare(
            production,
            candidate,
            production_run=run_id,
            shadow_run=shadow_id,
            production_version=(started.get("prompt") or {}).get("version"),
            shadow_version=version,
            production_status=row.status,
            shadow_status=result.status.value,
            intercepted=tuple(sandbox.calls),
        )
        await asyncio.to_thread(self._record, comparison)
        return comparison

    async def shadow_due(self, *, limit: int = 20) -> list[ShadowComparison]:
        """Shadow finished production runs not shadowed by the current shadow version."""
        version = await asyncio.to_thread(self.shadow_version)
        if version is None:
            return []
        due = await asyncio.to_thread(self._due, version, limit)
        return [await self.shadow(run_id, version=version) for run_id in due]

    def _due(self, version: str, limit: int) -> list[str]:
        return ScoreRows(self.store).unscored(
            agent=self.agent.name,
            statuses=[s.value for s in RunStatus if s.terminal or s.parked],
            kind="shadow",
            prompt_version=version,
            limit=limit,
        )

    def _record(self, comparison: ShadowComparison) -> None:
        score = NewScore(
            run_id=comparison.production_run,
            kind="shadow",
            name="agreement",
            value=comparison.agreement,
            reason=json.dumps(comparison.to_json())[:20_000],
            prompt_name=self.prompt,
            prompt_version=comparison.shadow_version,
            created_at=time.time(),
        )
        ScoreRows(self.store).add([score])


def _parts(started: dict[str, Any]) -> list[Content]:
    parts = started.get("parts")
    if not parts:
        return [Content(text=started["input"])]
    return [Content(text=p["text"], trust=Trust(p["trust"]), source=p["source"]) for p in parts]


def _canonical(arguments: Any) -> str:
    try:
        value = json.loads(arguments) if isinstance(arguments, str) else arguments
    except json.JSONDecodeError:
        return str(arguments)
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def _compare(
    production: Sequence[Action], candidate: Sequence[Action], **fields: Any
) -> ShadowComparison:
    a, b = Counter(production), Counter(candidate)
    same = a & b
    return ShadowComparison(
        only_production=tuple(sorted((a - same).elements())),
        only_shadow=tuple(sorted((b - same).elements())),
        same=tuple(sorted(same.elements())),
        **fields,
    )
