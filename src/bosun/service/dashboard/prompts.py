"""The prompt console, read side: prompts, their versions with owners, labels with their
rollouts, a diff of two versions, a version with its gate status and evaluation runs, and one
evaluation case by case. Changes are in `bosun.service.dashboard.prompt_actions`.

```
GET /prompts                              every prompt, its latest version and labels
GET /prompts/{name}                       versions, labels (canary, shadow, history), forms
GET /prompts/{name}/diff?a=&b=            unified diff of two versions
GET /prompts/{name}/versions/{v}          template, gate status, evaluations, the gate's run
GET /prompts/{name}/versions/{v}/gate     the running gate's progress (JSON, polled)
GET /prompts/{name}/evals/{id}            one evaluation run, case by case, with its verdict
```

Everything is read through `PromptRegistry` (and `EvalRuns` for a stored report).
"""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

import semver
from fastapi import APIRouter, Path, Query
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from bosun.data.evals import EvalRuns
from bosun.gateway.auth import PROMPTS_EDIT, RUNS_READ
from bosun.prompts.registry import PromptNotFound
from bosun.service.dashboard.context import Current, Dash
from bosun.service.dashboard.render import DashboardRoute, page

__all__ = ["PromptName", "Version", "router"]

router = APIRouter(route_class=DashboardRoute, include_in_schema=False)

PromptName = Annotated[str, Path(max_length=200, pattern=r"^[A-Za-z0-9_.-]{1,200}$")]
Version = Annotated[str, Path(max_length=64, pattern=r"^[0-9A-Za-z.+-]{1,64}$")]
_READ = (PROMPTS_EDIT, RUNS_READ)


@router.get("/prompts")
async def prompts(request: Request, viewer: Current, dash: Dash) -> Response:
    """Every prompt with its latest version and labels."""
    viewer.require(*_READ)
    registry = dash.registry

    def read() -> list[tuple[str, str, list[Any]]]:
        return [(n, registry.latest(n).version, registry.labels(n)) for n in registry.list()]

    items = await asyncio.to_thread(read)
    return page(request, "prompts.html", {"title": "Prompts", "items": items})


@router.get("/prompts/{name}")
async def prompt(
    request: Request,
    name: PromptName,
    viewer: Current,
    dash: Dash,
    done: Annotated[str | None, Query(max_length=20)] = None,
) -> Response:
    """Versions, labels and the forms that change them."""
    viewer.require(*_READ)
    registry = dash.registry
    versions = await asyncio.to_thread(registry.versions, name)
    if not versions:
        raise PromptNotFound(f"there is no prompt named {name!r}")
    labels = await asyncio.to_thread(registry.labels, name)
    gates = await asyncio.to_thread(
        lambda: {v.version: registry.gate_status(name, v.version) for v in versions}
    )
    latest = versions[-1]
    return page(
        request,
        "prompt.html",
        {
            "title": f"Prompt {name}",
            "name": name,
            "versions": list(reversed(versions)),
            "latest": latest,
            "next_version": str(semver.Version.parse(latest.version).bump_patch()),
            "variables_text": "\n".join(f"{k}: {v}" for k, v in latest.variables.items()),
            "labels": labels,
            "gates": gates,
            "can_edit": viewer.may(PROMPTS_EDIT),
            "done": done,
        },
    )


@router.get("/prompts/{name}/diff")
async def diff(
    request: Request,
    name: PromptName,
    viewer: Current,
    dash: Dash,
    a: Annotated[str, Query(max_length=64)],
    b: Annotated[str, Query(max_length=64)],
) -> Response:
    """The unified diff from version `a` to `b`."""
    viewer.require(*_READ)
    text = await asyncio.to_thread(dash.registry.diff, name, a, b)
    lines = [(_kind(line), line) for line in text.splitlines()]
    return page(
        request,
        "diff.html",
        {"title": f"{name}: {a} to {b}", "name": name, "a": a, "b": b, "lines": lines},
    )


def _kind(line: str) -> str:
    if line.startswith(("+++", "---")):
        return "file"
    if line.startswith("@@"):
        return "hunk"
    return {"+": "add", "-": "del"}.get(line[:1], "same")


@router.get("/prompts/{name}/versions/{version}")
async def version(
    request: Request,
    name: PromptName,
    version: Version,
    viewer: Current,
    dash: Dash,
    done: Annotated[str | None, Query(max_length=20)] = None,
) -> Response:
    """A version: its template, gate status, evaluation runs, and the gate running now."""
    viewer.require(*_READ)
    registry = dash.registry
    item = await asyncio.to_thread(registry.get, name, version)
    status = await asyncio.to_thread(registry.gate_status, name, version)
    evals = await asyncio.to_thread(registry.eval_runs, name, version)
    return page(
        request,
        "version.html",
        {
            "title": item.label_text,
            "item": item,
            "gate": status,
            "evals": evals[:20],
            "job": dash.gates.get(name, version),
            "gate_configured": dash.gates.configured(name),
            "can_edit": viewer.may(PROMPTS_EDIT),
            "done": done,
        },
    )


@router.get("/prompts/{name}/versions/{version}/gate")
async def gate_progress(
    name: PromptName, version: Version, viewer: Current, dash: Dash
) -> Response:
    """The gate running in this process for the version (polled by the page)."""
    viewer.require(*_READ)
    job = dash.gates.get(name, version)
    return JSONResponse({"job": None if job is None else job.to_json()})


@router.get("/prompts/{name}/evals/{eval_id}")
async def evaluation(
    request: Request,
    name: PromptName,
    eval_id: Annotated[str, Path(max_length=40, pattern=r"^[0-9a-f]{1,40}$")],
    viewer: Current,
    dash: Dash,
) -> Response:
    """One evaluation run, case by case, with the gate's verdict when it was gated."""
    viewer.require(*_READ)
    row = await asyncio.to_thread(EvalRuns(dash.store).get, eval_id)
    if row is None or row.prompt_name != name:
        raise PromptNotFound(f"prompt {name!r} has no evaluation run {eval_id!r}")
    report = json.loads(row.report)
    return page(
        request,
        "evaluation.html",
        {
            "title": f"Evaluation {eval_id}",
            "name": name,
            "row": row,
            "cases": report.get("cases", []),
            "aggregate": report.get("aggregate", {}),
            "gate": json.loads(row.gate) if row.gate else None,
        },
    )
