"""Pipelines: one pipeline's stages, each linked to the run view of its runs.

```
GET  /pipelines/{id}     status, input, each stage (status, output, runs -> /runs/{run}),
                         the final output or why it escalated
```

The page reads the pipeline as the API does (`PipelineView`, folded from its row and
journal) and shows it only to the viewer's tenant; the stage runs themselves are ordinary
runs, so the run view shows their waterfall, replay and evidence.
"""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

from fastapi import APIRouter, Path
from starlette.requests import Request
from starlette.responses import Response

from bosun.data.pipelines import PipelineRows
from bosun.errors import PipelineNotFound
from bosun.gateway.auth import RUNS_READ
from bosun.orchestration import view_of
from bosun.service.dashboard.context import Current, Dash
from bosun.service.dashboard.render import DashboardRoute, page

__all__ = ["router"]

router = APIRouter(route_class=DashboardRoute, include_in_schema=False)

PipelineId = Annotated[str, Path(max_length=40, pattern=r"^[0-9a-f]{1,40}$")]


@router.get("/pipelines/{pipeline_id}")
async def pipeline(
    request: Request, pipeline_id: PipelineId, viewer: Current, dash: Dash
) -> Response:
    """One pipeline, stage by stage."""
    viewer.require(RUNS_READ)
    try:
        row, entries = await asyncio.to_thread(PipelineRows(dash.store).load, pipeline_id)
    except PipelineNotFound:
        raise PipelineNotFound(f"no pipeline {pipeline_id!r}") from None
    if not viewer.principal.can_see(row.tenant):
        raise PipelineNotFound(f"no pipeline {pipeline_id!r}")
    served = getattr(request.app.state, "pipelines", None)
    view = view_of(row, entries, None if served is None else served.pipelines.get(row.name))
    return page(
        request,
        "pipeline.html",
        {
            "title": f"Pipeline {view.name} {pipeline_id}",
            "view": view,
            "dumps": lambda value: json.dumps(value, indent=2, ensure_ascii=False, default=str),
        },
    )
