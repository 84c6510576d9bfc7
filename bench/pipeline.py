"""Pipeline overhead: what orchestration costs beside the model.

A 6-stage pipeline with two parallel pairs, every stage an agent making one model call:

    a -> (b || c) -> (d || e) -> f          critical path: 4 model calls

Prints
  1. wall time of one pipeline at 200 ms per model call against the ideal critical path
     (4 x 200 ms = 0.8 s), and bosun's overhead per stage on that path;
  2. bosun's own cost per stage: a zero-latency model, wall time / 6 stages;
  3. 200 concurrent pipelines at 200 ms per call (ideal: still 0.8 s);
on SQLite, and on PostgreSQL too when BOSUN_TEST_PG_URL is set; then peak RSS.

    python bench/pipeline.py [--runs 10] [--concurrent 200]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import resource
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator

import sqlalchemy as sa
from pydantic import BaseModel

from bosun import Agent, Runtime, Store
from bosun.models.base import ModelRequest, ModelResponse, Usage
from bosun.orchestration import Pipeline, Pipelines, PipelineStatus, agent_stage
from bosun.testing import ScriptedModel, reply

LATENCY_S = 0.2
CRITICAL_PATH = 4


class Work(BaseModel):
    value: int


class Pair(BaseModel):
    b: Work
    c: Work


class Pair2(BaseModel):
    d: Work
    e: Work


ANSWER = reply('{"value": 1}').model_copy(
    update={"usage": Usage(input_tokens=200, output_tokens=10)}
)


def answer(request: ModelRequest) -> ModelResponse:
    return ANSWER


def pipeline(latency_s: float) -> Pipeline:
    def agent(name: str) -> Agent:
        return Agent(name=name, model=ScriptedModel(answer, latency_s=latency_s))

    return Pipeline(
        name=f"bench-{latency_s}",
        input=Work,
        stages=[
            agent_stage("a", agent("a"), input=Work, output=Work),
            agent_stage("b", agent("b"), input=Work, output=Work, after=["a"]),
            agent_stage("c", agent("c"), input=Work, output=Work, after=["a"]),
            agent_stage("d", agent("d"), input=Pair, output=Work, after=["b", "c"]),
            agent_stage("e", agent("e"), input=Pair, output=Work, after=["b", "c"]),
            agent_stage("f", agent("f"), input=Pair2, output=Work, after=["d", "e"]),
        ],
    )


async def one(url: str, latency_s: float, runs: int) -> list[float]:
    store = Store.open(url)
    flow = pipeline(latency_s)
    times = []
    try:
        async with Runtime(store=store) as runtime:
            runner = Pipelines(runtime, [flow])
            await runner.run(flow, Work(value=0))  # warm-up: imports, prepared statements
            for i in range(runs):
                t0 = time.perf_counter()
                result = await runner.run(flow, Work(value=i))
                times.append(time.perf_counter() - t0)
                assert result.status is PipelineStatus.COMPLETED, result.handoff
    finally:
        store.close()
    return times


async def many(url: str, n: int) -> tuple[float, int]:
    store = Store.open(url)
    flow = pipeline(LATENCY_S)
    try:
        async with Runtime(store=store) as runtime:
            runner = Pipelines(runtime, [flow])
            await runner.run(flow, Work(value=0))
            t0 = time.perf_counter()
            results = await asyncio.gather(*(runner.run(flow, Work(value=i)) for i in range(n)))
            wall = time.perf_counter() - t0
    finally:
        store.close()
    done = sum(r.status is PipelineStatus.COMPLETED for r in results)
    return wall, done


def report(label: str, url: str, runs: int, concurrent: int) -> None:
    slow = asyncio.run(one(url, LATENCY_S, runs))
    fast = asyncio.run(one(url, 0.0, runs))
    ideal = CRITICAL_PATH * LATENCY_S
    median = statistics.median(slow)
    print(f"{label}:")
    print(
        f"  one pipeline, 200 ms/call: median {median:.3f} s (ideal {ideal:.1f} s), "
        f"overhead {(median - ideal) / CRITICAL_PATH * 1000:.1f} ms per stage on the path"
    )
    zero = statistics.median(fast)
    print(
        f"  zero-latency model: {zero * 1000:.1f} ms per pipeline, {zero / 6 * 1000:.2f} ms/stage"
    )
    wall, done = asyncio.run(many(url, concurrent))
    print(
        f"  {concurrent} concurrent, 200 ms/call: {wall:.2f} s (ideal {ideal:.1f} s), {done} done"
    )


@contextlib.contextmanager
def fresh_schema(url: str) -> Iterator[str]:
    """A throwaway schema, so the benchmark's tables never meet anyone else's."""
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(url)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in url else "?"
    try:
        yield f"{url}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--concurrent", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        report("SQLite", f"sqlite:///{tmp}/bench.db", args.runs, args.concurrent)
    pg = os.environ.get("BOSUN_TEST_PG_URL")
    if pg:
        with fresh_schema(pg) as url:
            report("PostgreSQL", url, args.runs, args.concurrent)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {rss:.0f} MB")


if __name__ == "__main__":
    main()
