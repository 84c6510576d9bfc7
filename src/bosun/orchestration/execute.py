"""One attempt of one stage execution: a function call, or a bosun run of the stage's agent.

An agent stage's run is an ordinary run (journaled, resumable, its side effects keyed by
(run, step, call)) started with an idempotency key derived from (pipeline, stage, item,
attempt): a pipeline resumed after a crash submits the same key, gets the same run back and
resumes it where its journal ends, instead of starting the stage again. Its grants are the
pipeline's narrowed to the stage agent's scopes, never wider; its parent is the pipeline,
so its trace and audit rows join the pipeline's.
"""

from __future__ import annotations

import asyncio
import inspect
import typing
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from bosun.orchestration.failures import Resolution, StageError, StageFailure
from bosun.orchestration.hops import StageInput, agent_parts, parse_json, schema_of
from bosun.orchestration.pipeline import Pipeline
from bosun.orchestration.stages import Stage, StageContext
from bosun.orchestration.state import PipelineState
from bosun.runtime.agent import Agent
from bosun.runtime.runtime import RunResult, Runtime
from bosun.runtime.state import RunStatus
from bosun.trust import Content, Trust

__all__ = ["Produced", "drive_run", "handle_failure", "run_attempt", "stage_call_id"]


@dataclass(frozen=True, slots=True)
class Produced:
    """What a successful attempt produced."""

    value: Any
    """The output as JSON data."""
    trust: Trust
    """Its label."""
    run_id: str | None = None
    """The run, for an agent stage."""
    usage: dict[str, Any] = field(default_factory=dict)
    """model_calls, tokens, cost_usd of the run."""


def stage_call_id(stage: str, item: int | None) -> str:
    """How a stage's runs name the pipeline step that started them (their trace parent)."""
    return f"stage:{stage}:{'-' if item is None else item}"


def _key(state: PipelineState, stage: str, item: int | None, what: str) -> str:
    return f"pipeline:{state.pipeline_id}:{stage}:{'-' if item is None else item}:{what}"


async def run_attempt(
    runtime: Runtime,
    pipeline: Pipeline,
    state: PipelineState,
    stage: Stage,
    given: StageInput,
    attempt: int,
) -> Produced:
    """Run one attempt within the stage's timeout; raises `StageError`."""
    timeout = stage.policy.timeout_s
    if stage.agent is None:
        ctx = StageContext(
            pipeline_id=state.pipeline_id,
            stage=stage.name,
            item=given.item,
            attempt=attempt,
            principal=state.principal,
        )
        try:
            async with asyncio.timeout(timeout):
                result = await stage.call(given.value, ctx)
        except TimeoutError:
            raise StageError("timeout", f"no result within {timeout} s") from None
        except Exception as exc:
            raise StageError("error", f"{type(exc).__name__}: {exc}"[:500]) from exc
        return Produced(_output(stage, result), given.trust)
    return await _agent_attempt(runtime, pipeline, state, stage, given, attempt)


async def _agent_attempt(
    runtime: Runtime,
    pipeline: Pipeline,
    state: PipelineState,
    stage: Stage,
    given: StageInput,
    attempt: int,
) -> Produced:
    agent = stage.agent
    assert agent is not None
    run_id: str | None = None
    try:
        async with asyncio.timeout(stage.policy.timeout_s):
            run_id = await _start(
                runtime,
                state,
                agent,
                agent_parts(pipeline, stage, given),
                key=_key(state, stage.name, given.item, str(attempt)),
                call=stage_call_id(stage.name, given.item),
            )
            result = await drive_run(runtime, run_id)
    except TimeoutError:
        if run_id is not None:  # stop the run for good: the next attempt is a new run
            await runtime.cancel(run_id, by="pipeline:timeout")
        raise StageError(
            "timeout", f"no result within {stage.policy.timeout_s} s", run_id=run_id
        ) from None
    usage = _usage(result)
    if result.status is not RunStatus.COMPLETED:
        raise _run_error(result, usage)
    try:
        value = parse_json(stage.output, result.output)
    except ValueError as exc:
        raise StageError("invalid_output", str(exc), run_id=run_id, usage=usage) from None
    trust = _run_trust(result, given.trust)
    return Produced(value.model_dump(mode="json"), trust, run_id, usage)


async def drive_run(runtime: Runtime, run_id: str) -> RunResult:
    """Drive a run to a stop; a cancelled pipeline (timeout, lost lease) stops it too,
    without writing: its journal says where it was."""
    try:
        return await runtime.resume(run_id)
    except asyncio.CancelledError:
        await runtime.abandon(run_id)
        raise


async def _start(
    runtime: Runtime,
    state: PipelineState,
    agent: Agent,
    parts: list[Content],
    *,
    key: str,
    call: str,
) -> str:
    # queued=False: this process drives the run at once, so no worker claims it meanwhile;
    # after a crash the pipeline's next driver resumes it through the same key.
    return await runtime.start(
        agent,
        parts,
        grants=sorted(state.grants & agent.scopes),
        principal=state.principal,
        tenant=state.tenant,
        idempotency_key=key,
        queued=False,
        parent=state.pipeline_id,
        parent_call=call,
    )


def _run_trust(result: RunResult, given: Trust) -> Trust:
    """The label of a run's output: its input's, or untrusted when it read untrusted content
    on the way (a tool that reads the outside world)."""
    return Trust.UNTRUSTED if result.tainted else given


def _usage(result: RunResult) -> dict[str, Any]:
    return {
        "model_calls": result.model_calls,
        "tokens": result.usage.total_tokens,
        "cost_usd": None if result.cost_usd is None else str(result.cost_usd),
    }


def _run_error(result: RunResult, usage: dict[str, Any]) -> StageError:
    if result.status in (RunStatus.ESCALATED, RunStatus.WAITING_APPROVAL, RunStatus.WAITING_HUMAN):
        handoff = None if result.handoff is None else result.handoff.model_dump(mode="json")
        reason = result.handoff.reason if result.handoff is not None else result.status.value
        return StageError(
            "escalated",
            f"run {result.run_id} is {result.status.value}: {reason}",
            run_id=result.run_id,
            usage=usage,
            handoff=handoff,
        )
    return StageError(
        "error",
        f"run {result.run_id} {result.status.value}: {result.error or 'no answer'}",
        run_id=result.run_id,
        usage=usage,
    )


def _output(stage: Stage, result: Any) -> Any:
    try:
        value = result if isinstance(result, stage.output) else stage.output.model_validate(result)
    except ValidationError as exc:
        raise StageError(
            "invalid_output",
            f"returned {type(result).__name__}, not a valid {stage.output.__name__}: "
            f"{exc.errors()[0]['msg']}",
        ) from None
    return value.model_dump(mode="json")


async def handle_failure(
    runtime: Runtime,
    pipeline: Pipeline,
    state: PipelineState,
    stage: Stage,
    given: StageInput,
    error: StageError,
) -> tuple[Resolution, str | None, Trust]:
    """Ask the exception handler about `error`: its resolution (validated against the stage's
    types; an invalid one escalates), the handler's run, and the label of what it produced."""
    item = given.item
    failure = StageFailure(
        pipeline_id=state.pipeline_id,
        pipeline=pipeline.name,
        stage=stage.name,
        item=item,
        kind=error.kind,
        error=error.message,
        input=given.value.model_dump(mode="json"),
        attempts=state.failures.get((stage.name, item), 0),
        run_id=error.run_id,
    )
    handler = pipeline.exception_handler
    run_id: str | None = None
    trust = given.trust
    if isinstance(handler, Agent):
        schema = schema_of(Resolution)
        header = (
            f"Stage {stage.name!r} of pipeline {pipeline.name!r} failed. Resolve it if it is "
            "a failure you know how to fix, else escalate. Your final answer must be one JSON "
            f"object matching this JSON schema, and nothing else:\n{schema}"
        )
        parts = [
            Content(text=header, trust=Trust.TRUSTED, source="pipeline"),
            Content(
                text=failure.model_dump_json(), trust=given.trust, source=f"stage:{stage.name}"
            ),
        ]
        rounds = state.rounds.get((stage.name, item), 0)
        run_id = await _start(
            runtime,
            state,
            handler,
            parts,
            key=_key(state, stage.name, item, f"exception{rounds}"),
            call=stage_call_id(stage.name, item),
        )
        result = await drive_run(runtime, run_id)
        if result.status is not RunStatus.COMPLETED:
            return Resolution.escalate(f"the exception agent {result.status.value}"), run_id, trust
        try:
            resolution = typing.cast(Resolution, parse_json(Resolution, result.output))
        except ValueError as exc:
            return Resolution.escalate(f"the exception agent's answer: {exc}"), run_id, trust
        trust = _run_trust(result, given.trust)
    elif handler is not None:
        answer = handler(failure)
        resolution = await answer if inspect.isawaitable(answer) else answer
    else:  # pragma: no cover - the driver asks only when there is a handler
        return Resolution.escalate(error.message), None, trust
    return _checked(stage, resolution), run_id, trust


def _checked(stage: Stage, resolution: Resolution) -> Resolution:
    try:
        if resolution.action == "retry":
            fixed = stage.input.model_validate(resolution.input or {})
            return resolution.model_copy(update={"input": fixed.model_dump(mode="json")})
        if resolution.action == "resolve":
            output = stage.output.model_validate(resolution.output or {})
            return resolution.model_copy(update={"output": output.model_dump(mode="json")})
    except ValidationError as exc:
        return Resolution.escalate(
            f"the exception handler's {resolution.action} does not fit stage {stage.name!r}: "
            f"{exc.errors()[0]['msg']}"
        )
    return resolution
