"""A pipeline worker process for test_pipeline_crash.py: ``python pipeline_crash_worker.py URL``.

Serves the ``crash-orders`` pipeline with a `PipelineWorker` until SIGTERM; the test
SIGKILLs it at random moments instead. The pipeline is reserve -> (pack || bill) -> ship:
``reserve`` and ``ship`` are function stages, ``pack`` and ``bill`` agent stages whose agent
calls an idempotent tool. Every side effect is written to PostgreSQL:

- ``effects(key, pipeline_id, name)``: one row per effect, deduplicated on its idempotency
  key (a function stage's `StageContext` key, a tool call's (run, step, call) key);
- ``effect_log(key, pipeline_id, name, started_at)``: one row per *execution*, so replays
  after a kill show up, with when they started (a stage must never start after it was
  journaled as finished).
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import signal
import sys
import time

import sqlalchemy as sa
from pydantic import BaseModel

from bosun.config import ServiceSettings
from bosun.data.store import Store
from bosun.models.base import ModelRequest
from bosun.orchestration import (
    Pipeline,
    Pipelines,
    PipelineWorker,
    StageContext,
    agent_stage,
    function_stage,
)
from bosun.runtime import Agent, Runtime
from bosun.testing import ScriptedModel, call, reply
from bosun.testing.scripted import ScriptItem
from bosun.tools import ToolContext, tool

EFFECTS_SCHEMA = """
CREATE TABLE effects (key TEXT PRIMARY KEY, pipeline_id TEXT NOT NULL, name TEXT NOT NULL);
CREATE TABLE effect_log (
    id BIGSERIAL PRIMARY KEY, key TEXT NOT NULL, pipeline_id TEXT NOT NULL, name TEXT NOT NULL,
    started_at DOUBLE PRECISION NOT NULL
);
"""
EFFECTS = ("reserve", "pack", "bill", "ship")
"""The effects every pipeline must leave, once each."""

SETTINGS = ServiceSettings(
    lease_s=1.0, poll_s=0.05, concurrency=4, max_attempts=100, shutdown_grace_s=5.0
)

_engine: sa.Engine | None = None


class Job(BaseModel):
    ref: str


class Step(BaseModel):
    ref: str
    by: str


class Both(BaseModel):
    pack: Step
    bill: Step


def effect(key: str, pipeline_id: str, name: str) -> None:
    """Do an effect once per key, logging every execution."""
    assert _engine is not None, "opened in main()"
    row = {"key": key, "pipeline_id": pipeline_id, "name": name, "t": time.time()}
    with _engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO effect_log (key, pipeline_id, name, started_at) "
                "VALUES (:key, :pipeline_id, :name, :t)"
            ),
            row,
        )
        conn.execute(
            sa.text(
                "INSERT INTO effects (key, pipeline_id, name) VALUES (:key, :pipeline_id, :name) "
                "ON CONFLICT (key) DO NOTHING"
            ),
            row,
        )


def reserve(job: Job, ctx: StageContext) -> Job:
    effect(ctx.idempotency_key, ctx.pipeline_id, "reserve")
    time.sleep(random.uniform(0.1, 0.3))  # a kill now: the effect happened, the result not
    return job


def ship(both: Both, ctx: StageContext) -> Step:
    effect(ctx.idempotency_key, ctx.pipeline_id, "ship")
    time.sleep(random.uniform(0.1, 0.3))
    return Step(ref=both.pack.ref, by="ship")


@tool(side_effect=True, risk="write", idempotent=True)
def record(ctx: ToolContext, pipeline_id: str, name: str) -> str:
    """Record a step; deduplicated by the idempotency key."""
    effect(ctx.idempotency_key, pipeline_id, name)
    time.sleep(random.uniform(0.05, 0.15))
    return f"recorded {name}"


def agent(name: str) -> Agent:
    async def policy(request: ModelRequest) -> ScriptItem:
        # A function of the conversation: any process continues a run where it stopped.
        await asyncio.sleep(random.uniform(0.1, 0.3))
        if any(m.role == "tool" for m in request.messages):
            return reply(f'{{"ref": "done", "by": "{name}"}}')
        started = next(m for m in request.messages if m.role == "user").content
        pipeline_id = started.split("pipeline-id=")[1].split('"')[0]
        return call("record", {"pipeline_id": pipeline_id, "name": name})

    return Agent(name=name, model=ScriptedModel(policy), tools=[record])


def with_id(job: Job, ctx: StageContext) -> Job:
    return Job(ref=f"pipeline-id={ctx.pipeline_id}")


pipeline = Pipeline(
    name="crash-orders",
    input=Job,
    stages=[
        function_stage("reserve", reserve),
        function_stage("tag", with_id, after=["reserve"]),
        agent_stage("pack", agent("pack"), input=Job, output=Step, after=["tag"]),
        agent_stage("bill", agent("bill"), input=Job, output=Step, after=["tag"]),
        function_stage("ship", ship, after=["pack", "bill"]),
    ],
)


async def main(url: str) -> None:
    global _engine
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    _engine = sa.create_engine(url, pool_size=8, max_overflow=8)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    store = Store.open(url)
    try:
        async with Runtime(store=store) as runtime:
            pipelines = Pipelines(runtime, [pipeline])
            worker = PipelineWorker(pipelines, owner=f"w{os.getpid()}", settings=SETTINGS)
            print(f"serving as {worker.owner}", flush=True)
            await worker.serve(stop)
            print(f"stopped after driving {worker.driven} pipelines", flush=True)
    finally:
        store.close()
        _engine.dispose()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
