"""``python -m examples.order_pipeline [--model SPEC]``: tau-bench's 20 retail dev tasks
through the order pipeline, scored by tau-bench's rule. The scripted policy by default; a
model spec (``openai:...`` against the local model's server, say) runs every agent on it.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

from bosun import Store
from bosun.models import infer_model
from examples.order_pipeline.retail import load_data
from examples.order_pipeline.tau import load_tasks, run_tasks

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
from third_party import require  # type: ignore[import-not-found]

RETAIL = "agents/tau-bench/retail"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", help="run every agent on this model instead of the script")
    args = parser.parse_args()
    directory = require(RETAIL) / RETAIL
    data, tasks = load_data(directory), load_tasks(directory)
    model = infer_model(args.model) if args.model else None
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(f"sqlite:///{tmp}/orders.db")
        t0 = time.monotonic()
        scores = asyncio.run(run_tasks(data, tasks, store, model=model))
        store.close()
    for score in scores:
        reason = score.reason or ""
        print(f"task {score.task:2d}  reward {score.reward:.0f}  {score.status:10s} {reason}")
    total = sum(s.reward for s in scores)
    rate = total / len(scores)
    print(f"pass^1 {total:.0f}/{len(scores)} = {rate:.2f} in {time.monotonic() - t0:.1f} s")


if __name__ == "__main__":
    main()
