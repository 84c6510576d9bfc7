"""Pipelines over HTTP: start one of the served pipelines, read how it stands.

```
GET  /v1/pipelines                 the served pipelines: stages, input schema     runs:read
POST /v1/pipelines/{name}/runs     start one (202; queued for a pipeline worker)  runs:submit
GET  /v1/pipelines/runs/{id}       status, each stage's status/outputs/runs,      runs:read
                                   the final output, why it escalated
```

The same rules as runs: the caller's tenant owns what it starts, another tenant's pipeline is
"not found" (never "forbidden": ids cannot be probed), each stage run carries the caller's
grants narrowed to its agent's scopes, and a repeated Idempotency-Key returns the first
pipeline. The input is validated against the pipeline's input model before anything is
stored: a misfit is a 422 that names the fields. Stage runs are ordinary runs of the
caller's tenant, so ``GET /v1/runs/{id}`` and the dashboard's run view show each of them.
"""

# No `from __future__ import annotations`: the routes are defined inside `pipeline_router`,
# and FastAPI reads their annotations at definition, where `Caller` is in scope.

import asyncio
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Request
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from bosun.data.pipelines import PipelineRows
from bosun.errors import PipelineNotFound
from bosun.gateway.auth import RUNS_READ, RUNS_SUBMIT, Principal
from bosun.orchestration import Pipeline, Pipelines, PipelineStatus, PipelineView, view_of
from bosun.service.problems import problem, problem_responses
from bosun.trust import Trust

__all__ = [
    "ItemOut",
    "PipelineInfo",
    "PipelineOut",
    "PipelineRunCreate",
    "StageOut",
    "pipeline_router",
]

Id = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class PipelineRunCreate(BaseModel):
    """``POST /v1/pipelines/{name}/runs``."""

    model_config = ConfigDict(extra="forbid")

    input: dict[str, Any]
    """The pipeline's input: an object fitting its input model (``GET /v1/pipelines``)."""
    trust: Literal["user", "untrusted"] = "user"
    """``untrusted`` for content from a third party (an email, a web form): every stage
    output drawn from it is labelled untrusted. Clients cannot label input ``trusted``."""
    idempotency_key: Id | None = None
    """A repeated key returns the pipeline it first started (also the Idempotency-Key
    header)."""


class ItemOut(BaseModel):
    """One finished execution of a stage."""

    item: int | None = Field(description="The fan-out index; null for a stage without one")
    output: Any
    trust: Trust
    by: str = Field(description="stage, exception (the handler resolved it), or a person")
    run_id: str | None


class StageOut(BaseModel):
    """One stage, as far as it got."""

    name: str
    kind: str | None = Field(description="agent or function; null when not served here")
    status: Literal["completed", "failed", "running", "pending"]
    outputs: list[ItemOut]
    runs: list[str] = Field(description="Its runs (attempts, the exception handler's)")
    failures: int
    error: str | None


class PipelineOut(BaseModel):
    """A pipeline: its status, each stage, the final output or why it escalated."""

    id: str
    name: str
    status: PipelineStatus
    input: Any
    output: Any = Field(description="The output stage's output, when completed")
    trust: Trust | None = Field(description="The output's label, when completed")
    error: str | None = Field(description="Why it escalated or failed")
    handoff: dict[str, Any] | None = Field(description="The package for a person, escalated")
    stages: list[StageOut]
    runs: list[str] = Field(description="Every stage and exception-handler run, in order")
    model_calls: int
    tokens: int
    cost_usd: Decimal
    created_at: float
    updated_at: float

    @classmethod
    def of(cls, view: PipelineView) -> "PipelineOut":
        """From the orchestration's view."""
        return cls(
            id=view.pipeline_id,
            name=view.name,
            status=view.status,
            input=view.input,
            output=view.output,
            trust=view.trust,
            error=view.error,
            handoff=None if view.handoff is None else dict(view.handoff),
            stages=[
                StageOut(
                    name=s.name,
                    kind=s.kind,
                    status=s.status,
                    outputs=[
                        ItemOut(
                            item=o.item, output=o.output, trust=o.trust, by=o.by, run_id=o.run_id
                        )
                        for o in s.outputs
                    ],
                    runs=list(s.runs),
                    failures=s.failures,
                    error=s.error,
                )
                for s in view.stages
            ],
            runs=list(view.runs),
            model_calls=view.model_calls,
            tokens=view.tokens,
            cost_usd=view.cost_usd,
            created_at=view.created_at,
            updated_at=view.updated_at,
        )


class PipelineInfo(BaseModel):
    """A served pipeline."""

    name: str
    stages: list[str] = Field(description="In the order they can run")
    output: str = Field(description="The stage whose output is the pipeline's")
    input_schema: dict[str, Any]


def _served(request: Request) -> Pipelines | None:
    served: Pipelines | None = request.app.state.pipelines
    return served


def _pipeline(request: Request, name: str) -> Pipeline:
    served = _served(request)
    pipeline = None if served is None else served.pipelines.get(name)
    if pipeline is None:
        known = "" if served is None else ", ".join(sorted(served.pipelines))
        raise PipelineNotFound(f"no pipeline named {name[:100]!r} (served: {known or 'none'})")
    return pipeline


async def _view(request: Request, who: Principal, pipeline_id: str) -> PipelineView:
    served = _served(request)
    # An API process serving no pipelines still reads them (workers elsewhere drive them).
    rows = served.rows if served is not None else PipelineRows(request.app.state.bosun.store)
    try:
        row, entries = await asyncio.to_thread(rows.load, pipeline_id)
    except PipelineNotFound:
        raise PipelineNotFound(f"no pipeline {pipeline_id[:64]!r}") from None
    if not who.can_see(row.tenant):
        raise PipelineNotFound(f"no pipeline {pipeline_id[:64]!r}")
    definition = None if served is None else served.pipelines.get(row.name)
    return view_of(row, entries, definition)


def pipeline_router(caller: Callable[..., Awaitable[Principal]]) -> APIRouter:
    """The routes, authenticating with `caller` (the app's rate-limited principal
    dependency)."""
    Caller = Annotated[Principal, Depends(caller)]
    router = APIRouter(prefix="/v1/pipelines", tags=["pipelines"])

    @router.get("", response_model=list[PipelineInfo])
    async def list_pipelines(request: Request, who: Caller) -> list[PipelineInfo]:
        """The pipelines this service runs, with the input each takes."""
        who.require(RUNS_READ)
        served = _served(request)
        pipelines = [] if served is None else sorted(served.pipelines.items())
        return [
            PipelineInfo(
                name=name,
                stages=list(p.order),
                output=p.output,
                input_schema=p.input.model_json_schema(),
            )
            for name, p in pipelines
        ]

    @router.post(
        "/{name}/runs",
        status_code=202,
        response_model=PipelineOut,
        responses=problem_responses(400, 404, 409, 422),
    )
    async def start_pipeline(
        request: Request,
        name: str,
        body: PipelineRunCreate,
        who: Caller,
        idempotency_key: Annotated[
            str | None, Header(alias="Idempotency-Key", min_length=1, max_length=200)
        ] = None,
    ) -> Any:
        """Start a pipeline; a pipeline worker drives it. The same request again under an
        idempotency key returns the pipeline it first started; another request under that
        key is a 409."""
        who.require(RUNS_SUBMIT)
        pipeline = _pipeline(request, name)
        try:
            data = pipeline.input.model_validate(body.input)
        except ValidationError as exc:
            errors = [
                {"loc": ["body", "input", *e["loc"]], "msg": e["msg"], "type": e["type"]}
                for e in exc.errors()[:50]
            ]
            first = errors[0]
            where = ".".join(str(part) for part in first["loc"][2:]) or "input"
            detail = (
                f"the input does not fit pipeline {pipeline.name!r}'s {pipeline.input.__name__}: "
                f"{where}: {first['msg']}"
                + (f" (and {len(errors) - 1} more)" if len(errors) > 1 else "")
            )
            return problem(422, detail, instance=request.url.path, errors=errors)
        served = _served(request)
        assert served is not None  # _pipeline found it there
        pipeline_id = await served.start(
            pipeline,
            data,
            trust=Trust(body.trust),
            grants=who.grants_for(pipeline.scopes),
            principal=who.id,
            tenant=who.tenant,
            idempotency_key=body.idempotency_key or idempotency_key,
        )
        return PipelineOut.of(await _view(request, who, pipeline_id))

    @router.get("/runs/{pipeline_id}", response_model=PipelineOut, responses=problem_responses(404))
    async def get_pipeline(request: Request, pipeline_id: str, who: Caller) -> PipelineOut:
        """Status, each stage's status, outputs and runs, the final output, and why it
        escalated."""
        who.require(RUNS_READ)
        return PipelineOut.of(await _view(request, who, pipeline_id))

    return router
