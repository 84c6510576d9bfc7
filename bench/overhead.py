"""Runtime overhead: what bosun itself costs per run, beside the model.

Prints
  1. median wall time per run (6 model calls + 5 tool calls, zero-latency scripted model),
     non-durable (no journal) and durable (journal on SQLite; on PostgreSQL too when
     BOSUN_TEST_PG_URL is set);
  2. wall time of 500 concurrent durable runs with a 200 ms model latency (ideal: 1.2 s);
  3. peak RSS of the process.
Targets (issue #2): <= 3 ms per durable run, <= 1.8 s for the 500, <= 100 MB.

    python bench/overhead.py [--runs 300] [--concurrent 500]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import tempfile
import time

from bosun import Agent, Budget, Runtime, Store, ToolContext, tool
from bosun.models.base import ModelRequest, ModelResponse, Usage
from bosun.testing import ScriptedModel, call, reply


@tool
async def read_thing(key: str) -> str:
    """Read something."""
    return key.upper()


@tool(side_effect=True, risk="write", idempotent=True)
async def write_thing(ctx: ToolContext, key: str) -> str:
    """Write something (idempotent by key)."""
    return ctx.idempotency_key[:8]


# Responses carry usage, as a provider's do, so the scripted double has nothing to estimate.
PLAN = [
    r.model_copy(update={"usage": Usage(input_tokens=200, output_tokens=20)})
    for r in (
        call("read_thing", {"key": "a"}),
        call("write_thing", {"key": "b"}),
        call("read_thing", {"key": "c"}),
        call("write_thing", {"key": "d"}),
        call("read_thing", {"key": "e"}),
        reply("done"),
    )
]


def policy(request: ModelRequest) -> ModelResponse:
    return PLAN[sum(m.role == "assistant" for m in request.messages)]


def agent(latency_s: float = 0.0) -> Agent:
    return Agent(
        name="bench",
        instructions="bench",
        tools=[read_thing, write_thing],
        model=ScriptedModel(policy, latency_s=latency_s),
        budget=Budget(max_steps=10, max_tool_calls=10, max_wall_s=600),
    )


async def per_run(runtime: Runtime, runs: int) -> float:
    a = agent()
    for _ in range(20):  # warm up imports, caches, connections
        await runtime.run(a, "go")
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        result = await runtime.run(a, "go")
        times.append(time.perf_counter() - t0)
        assert result.status.value == "completed", result
    return statistics.median(times) * 1000


async def concurrent(runtime: Runtime, n: int) -> tuple[float, float]:
    a = agent(latency_s=0.2)
    t0 = time.perf_counter()
    results = await asyncio.gather(*(runtime.run(a, "go") for _ in range(n)))
    wall = time.perf_counter() - t0
    assert all(r.status.value == "completed" for r in results)
    commits = runtime._writer.commits if runtime._writer else 0
    return wall, commits


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--concurrent", type=int, default=500)
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="bosun-bench-")
    os.environ.setdefault("BOSUN_HOME", tmp)

    async with Runtime(durable=False) as rt:
        memory = await per_run(rt, args.runs)
    print(f"per run, no journal:          {memory:6.2f} ms (median of {args.runs})")

    backends = [("sqlite", f"sqlite:///{tmp}/bench.db")]
    if os.environ.get("BOSUN_TEST_PG_URL"):
        backends.append(("postgresql", os.environ["BOSUN_TEST_PG_URL"]))
    for name, url in backends:
        store = Store.open(url)
        async with Runtime(store=store) as rt:
            durable = await per_run(rt, args.runs)
        print(
            f"per run, journal on {name:10s} {durable:6.2f} ms (median; overhead of the journal "
            f"{durable - memory:+.2f} ms)"
        )
        trials = []
        for _ in range(3):
            async with Runtime(store=store) as rt:
                trials.append(await concurrent(rt, args.concurrent))
        wall, commits = sorted(trials)[1]
        print(
            f"{args.concurrent} concurrent runs, 200 ms model, {name}: {wall:.2f} s wall, median "
            f"of {', '.join(f'{w:.2f}' for w, _ in trials)} (ideal 1.2 s); {commits} commits "
            f"for {args.concurrent * 13} journal entries"
        )
        store.close()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS: {rss:.0f} MB")


if __name__ == "__main__":
    asyncio.run(main())
