"""Teams of agents: pipelines of typed stages, run durably over the runtime.

```
Pipeline          stages (agents or functions, pydantic-typed) wired into a DAG, checked
                  when built: cycles and type mismatches are errors there, not at run time
Pipelines         start / run / resume / hand_back over a Runtime; journaled, leased
PipelineWorker    claims queued pipelines; a dead worker's are resumed by another
PipelineView      a pipeline stage by stage: status, outputs, runs (the API, the CLI)
load_pipeline     a pipeline named MODULE:ATTR (a Pipeline, or a function building one)
ReviewerCritic    a reviewer agent checks risky calls before they run (the Critic seam)
agent_tool        one agent called by another as a tool; scopes never widen
pipeline_trace    the pipeline, its stages and every run under them as one trace
```

This package drives the runtime, like evaluations do: it sits above the gateway in the
layers and nothing below imports it.
"""

from bosun.orchestration.agent_tool import agent_tool, bind_agent_tools
from bosun.orchestration.failures import Resolution, StageFailure
from bosun.orchestration.loading import load_pipeline, load_pipelines
from bosun.orchestration.pipeline import ExceptionHandler, Pipeline, PipelineBudget, fits
from bosun.orchestration.reviewer import Review, ReviewerCritic, ReviewFunction
from bosun.orchestration.runner import PipelineResult, Pipelines
from bosun.orchestration.stages import (
    INPUT,
    Stage,
    StageContext,
    StagePolicy,
    agent_stage,
    function_stage,
)
from bosun.orchestration.state import PipelineState, PipelineStatus, StageOutput
from bosun.orchestration.trace import pipeline_audit, pipeline_trace
from bosun.orchestration.view import ItemView, PipelineView, StageView, view_of
from bosun.orchestration.worker import PipelineWorker

__all__ = [
    "INPUT",
    "ExceptionHandler",
    "ItemView",
    "Pipeline",
    "PipelineBudget",
    "PipelineResult",
    "PipelineState",
    "PipelineStatus",
    "PipelineView",
    "PipelineWorker",
    "Pipelines",
    "Resolution",
    "Review",
    "ReviewFunction",
    "ReviewerCritic",
    "Stage",
    "StageContext",
    "StageFailure",
    "StageOutput",
    "StagePolicy",
    "StageView",
    "agent_stage",
    "agent_tool",
    "bind_agent_tools",
    "fits",
    "function_stage",
    "load_pipeline",
    "load_pipelines",
    "pipeline_audit",
    "pipeline_trace",
    "view_of",
]
