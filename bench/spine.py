"""The spine's cost on the hot path: metrics (and cost caps) per run, beside the runtime core.

Prints the median wall time per durable run (6 model calls + 5 tool calls, zero-latency
scripted model, SQLite) for the bare runtime and with the spine's hot-path parts switched on,
measured in alternating rounds so drift of this machine hits both alike; then the spine's
overhead as a share of the core's own (target, issue #5: <= 10%). Tracing is derived from the
journal after the fact (no hot-path work); its cost per run is printed separately when
`bosun.observe.tracing` is present.

    python bench/spine.py [--runs 200] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from decimal import Decimal

from overhead import per_run

from bosun import Runtime, Store
from bosun.observe.cost import CostCaps, CostGuard
from bosun.observe.metrics import RunMetrics


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="bosun-bench-")
    os.environ.setdefault("BOSUN_HOME", tmp)
    store = Store.open(f"sqlite:///{tmp}/spine.db")
    caps = CostCaps(per_agent_day_usd={"*": Decimal(10**6)}, per_run_usd=Decimal(10**6))

    def variants() -> dict[str, dict[str, object]]:
        metrics = RunMetrics()
        both = RunMetrics()
        return {
            "core": {},
            "+ metrics": {"observer": metrics},
            "+ metrics + cost caps": {
                "observer": both,
                "spend": CostGuard(store, caps, refresh_s=5.0),
            },
        }

    results: dict[str, list[float]] = {name: [] for name in variants()}
    for _ in range(args.rounds):
        for name, options in variants().items():
            async with Runtime(store=store, **options) as rt:  # type: ignore[arg-type]
                results[name].append(await per_run(rt, args.runs))
    core = statistics.median(results["core"])
    print(f"per durable run on SQLite, median of {args.rounds} rounds x {args.runs} runs:")
    for name, values in results.items():
        value = statistics.median(values)
        extra = (
            ""
            if name == "core"
            else f"   spine {value - core:+.3f} ms = {(value - core) / core:+.1%} of core"
        )
        print(f"  {name:24s} {value:6.3f} ms{extra}")
    print("target: spine overhead <= 10% of the core's own per-run overhead")

    try:
        from bosun.observe.tracing import trace_of  # type: ignore[attr-defined]
    except ImportError:
        store.close()
        return
    run_ids = [r.id for r in store.list_runs(limit=200)]
    t0 = time.perf_counter()
    for run_id in run_ids:
        trace_of(store, run_id)
    each = (time.perf_counter() - t0) / len(run_ids) * 1000
    print(f"deriving a run's trace from its journal (off the hot path): {each:.2f} ms per run")
    store.close()


if __name__ == "__main__":
    asyncio.run(main())
