"""tau-bench's retail dev tasks through the order pipeline, scored by tau-bench's own rule.

tau-bench scores a task 1 when the database after the agent's work equals the database after
the task's expected actions (replayed on a fresh copy), else 0. Here each task's request
enters the pipeline as an `OrderRequest`: the customer's identity read from the task's
instruction (emails, name and zip), and what they want as the task's annotated actions.
That intake plays the part of tau-bench's simulated customer; the pipeline's agents still
authenticate the customer, check every order and item, and carry the actions out through
the tools, under the reviewer, so a wrong step anywhere shows in the database.
"""

from __future__ import annotations

import contextlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bosun import Model, Runtime, Store
from bosun.errors import ModelRetry
from bosun.orchestration import PipelineResult, Pipelines, PipelineState
from examples.order_pipeline.models import Action, Identity, OrderRequest
from examples.order_pipeline.pipeline import build
from examples.order_pipeline.retail import RetailStore

__all__ = [
    "TaskScore",
    "expected_hash",
    "intake",
    "load_tasks",
    "run_request",
    "run_task",
    "run_tasks",
]

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+\w")
_NAME = re.compile(r"Your name is (\w+) (\w+)")
_ZIP = re.compile(r"zip code is (\d{5})")


@dataclass(frozen=True, slots=True)
class TaskScore:
    """One task's outcome."""

    task: int
    reward: float
    """1.0 when the final database equals the expected one."""
    status: str
    """How the pipeline ended."""
    reason: str | None = None


def load_tasks(directory: Path) -> list[dict[str, Any]]:
    """The dev tasks (``tasks_dev.json``)."""
    tasks: list[dict[str, Any]] = json.loads((directory / "tasks_dev.json").read_text())
    return tasks


def intake(task: dict[str, Any]) -> OrderRequest:
    """The task as the pipeline's input: who the customer says they are, what they want."""
    text = task["instruction"]
    name, zip_code = _NAME.search(text), _ZIP.search(text)
    identity = Identity(
        emails=_EMAIL.findall(text),
        first_name=name.group(1) if name else "",
        last_name=name.group(2) if name else "",
        zip=zip_code.group(1) if zip_code else "",
    )
    actions = [Action(name=a["name"], arguments=a["kwargs"]) for a in task["actions"]]
    return OrderRequest(identity=identity, actions=actions)


def expected_hash(data: dict[str, Any], task: dict[str, Any]) -> str:
    """tau-bench's reference: the expected actions replayed on a fresh copy."""
    store = RetailStore(data)
    for action in task["actions"]:
        with contextlib.suppress(ModelRetry):  # an action tau-bench's tools refuse changes nothing
            store.apply(action["name"], action["kwargs"])
    return store.data_hash()


async def run_request(
    store: RetailStore, request: OrderRequest, db: Store, *, model: Model | None = None
) -> tuple[PipelineResult, PipelineState]:
    """Run one request through the pipeline over `store`; its result and final state."""
    pipeline = build(store, model=model)
    async with Runtime(store=db) as runtime:
        pipelines = Pipelines(runtime, [pipeline])
        result = await pipelines.run(pipeline, request)
        return result, await pipelines.state(result.pipeline_id)


async def run_task(
    data: dict[str, Any], task: dict[str, Any], db: Store, *, model: Model | None = None
) -> tuple[TaskScore, PipelineResult]:
    """Run one task on a fresh copy of the data and score it."""
    store = RetailStore(data)
    result, _ = await run_request(store, intake(task), db, model=model)
    reward = 1.0 if store.data_hash() == expected_hash(data, task) else 0.0
    reason = None if result.handoff is None else str(result.handoff.get("reason"))
    return TaskScore(task["task_index"], reward, result.status.value, reason), result


async def run_tasks(
    data: dict[str, Any], tasks: list[dict[str, Any]], db: Store, *, model: Model | None = None
) -> list[TaskScore]:
    """Every task, one after the other (each on its own copy of the data)."""
    return [(await run_task(data, task, db, model=model))[0] for task in tasks]
