"""Spending less without getting worse (issue 17): what each lever saves, and what it costs
in quality.

Prints three tables:

1. The support desk golden set (examples/support_desk/golden.yaml), each case run by the
   evaluator with a price per tier, with nothing, with routing, with the semantic cache,
   with pruning, and with all three: cost and tokens per email, and the eval gate's verdict
   against "nothing" (no regression allowed).
2. The semantic cache on banking77 pairs built from the train split: hit rate on same-intent
   pairs (paraphrases) and false-hit rate on different-intent pairs, over the threshold,
   with the default (0.95) marked; and lookup p95 at 100,000 entries.
3. The learned router on banking77's held-out fifth: accuracy, under-routing, and cost
   against sending everything to the balanced tier.

Read the numbers with their stand-ins in mind:
- Every tier of table 1 is the support desk's scripted policy (a deterministic stand-in for
  an LLM) priced as that tier: quality cannot differ by tier, so the gate checks that the
  levers' plumbing (routing, promotion, cache, pruning) leaves the agent's behaviour intact,
  not that a real cheap model is as good. Prices per 1k tokens, blended mostly-input:
  cheap 0.00015 (gpt-4.1-nano-like), balanced 0.0006 (gpt-4.1-mini-like), premium 0.003
  (gpt-4.1-like).
- Every golden email is untrusted content, and the cache never keeps an answer derived from
  untrusted text (a poisoning guard): on this set the cache has nothing to serve, by design.
- Table 2's embedder is the cache's default, `MiniLmEmbedder` (all-MiniLM-L6-v2, int8 ONNX,
  offline). ``--embedder hashing`` measures the `HashingEmbedder` stand-in (hashed word and
  character n-grams, no model: it sees wording, not meaning), ``--embedder module:factory``
  any other embedder. Same-intent pairs are not all paraphrases ("card not arrived" and
  "where is my card" share an intent, not a question), so the hit rate is a floor.

    python bench/cost.py [--data ../shared/data] [--entries 100000] [--pairs 2000]
                         [--embedder minilm|hashing|module:factory]
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import importlib
import logging
import random
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import numpy as np

from bosun import Agent, Store, ThreadMemory
from bosun.economy import (
    CacheStats,
    Embedder,
    HashingEmbedder,
    MiniLmEmbedder,
    Router,
    SemanticCache,
    StoreCacheBackend,
    Tiers,
    load_router,
    valid_tool_calls,
)
from bosun.economy.cache import VectorIndex
from bosun.economy.training import PRICES as PRICES_RELATIVE
from bosun.economy.training import evaluate, load_traffic
from bosun.evals.dataset import load_dataset
from bosun.evals.gate import compare
from bosun.evals.runner import EvalOptions, Evaluator
from bosun.models.base import Model
from bosun.models.context import Purpose
from bosun.testing import ScriptedModel

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]
from third_party import require  # noqa: E402

from examples.support_desk.agent import build_agent  # noqa: E402
from examples.support_desk.helpdesk import seed  # noqa: E402
from examples.support_desk.policy import decide  # noqa: E402

GOLDEN = ROOT / "examples" / "support_desk" / "golden.yaml"
PRICES = {"cheap": Decimal("0.00015"), "balanced": Decimal("0.0006"), "premium": Decimal("0.003")}
"""USD per 1k tokens, per tier (see the module doc)."""
PRUNE_BUDGET = 5000
"""ThreadMemory.token_budget of the pruning rows (stale tool output is stubbed over 80% of
it); a few golden emails are long enough to be pruned."""
THRESHOLDS = (0.70, 0.75, 0.80, 0.85, 0.90, 0.93, 0.95, 0.97, 0.99)
DEFAULT_THRESHOLD = 0.95


# --- 1. the golden set --------------------------------------------------------------------------


def tier(name: str) -> ScriptedModel:
    return ScriptedModel(decide, name=name, cost_per_1k_tokens=PRICES[name])


def routed() -> Model:
    # The desk's rules: reading the email and deciding what it is (the first call) is the
    # balanced tier's; the follow-ups after tool results (file the ticket, draft from the
    # article found) are the cheap tier's, promoted when a proposal fails a check.
    return Router(
        Tiers(cheap=tier("cheap"), balanced=tier("balanced"), premium=tier("premium")),
        rules={
            Purpose.ANSWER: "balanced",
            Purpose.TOOL_FOLLOWUP: "cheap",
            Purpose.SUMMARISE: "cheap",
            Purpose.CLASSIFY: "cheap",
            Purpose.PLAN: "balanced",
        },
        checks=[valid_tool_calls],
    )


@dataclass
class Row:
    name: str
    pass_rate: float
    gate: str
    cost: Decimal
    tokens: float
    cache: str


async def golden_row(
    name: str,
    model: Model,
    *,
    store: Store,
    desk: Path,
    prune: int | None = None,
    baseline: dict[str, object] | None = None,
) -> tuple[Row, dict[str, object]]:
    agent = build_agent(desk, model=model)
    if prune is not None:
        agent = _with_memory(agent, ThreadMemory(token_budget=prune))
    report = await Evaluator(agent, run_store=store, options=EvalOptions(concurrency=4)).evaluate(
        load_dataset(GOLDEN)
    )
    n = len(report.cases)
    tokens = 0
    for case in report.cases:
        if case.run_id is not None:
            run = store.get_run(case.run_id)
            tokens += (run.input_tokens or 0) + (run.output_tokens or 0)
    outcomes = dict(report.outcomes())
    if baseline is None:
        gate = "baseline"
    else:
        verdict = compare(outcomes, baseline)  # type: ignore[arg-type]
        gate = "pass" if verdict.passed else "FAIL"
        if verdict.regressions:  # within the gate's margin or not, a regression is named
            gate += f" ({len(verdict.regressions)} regressed: {', '.join(verdict.regressions)})"
    cache = model.stats if isinstance(model, SemanticCache) else _cache_of(model)
    hits = "-" if cache is None else f"{cache.exact_hits + cache.semantic_hits}/{n}"
    row = Row(name, report.pass_rate, gate, (report.cost_usd or Decimal(0)) / n, tokens / n, hits)
    return row, outcomes  # type: ignore[return-value]


def _cache_of(model: Model) -> CacheStats | None:
    if isinstance(model, Router):
        for name in model.tiers:
            inner = model.tiers[name]
            if isinstance(inner, SemanticCache):
                return inner.stats
    return None


def _with_memory(agent: Agent, memory: ThreadMemory) -> Agent:
    agent.memory = memory
    return agent


async def golden_table(workdir: Path, embedder: Embedder) -> list[Row]:
    desk = workdir / "helpdesk.db"
    seed(desk)
    rows: list[Row] = []
    store = Store.open(f"sqlite:///{workdir / 'runs.db'}")
    try:
        cache_backend = StoreCacheBackend(store)

        def cached(model: Model) -> SemanticCache:
            return SemanticCache(model, backend=cache_backend, embedder=embedder)

        def everything() -> Model:
            router = routed()
            assert isinstance(router, Router)
            router.tiers = router.tiers.wrapped(lambda _, m: cached(m))
            return router

        base, outcomes = await golden_row("nothing", tier("balanced"), store=store, desk=desk)
        rows.append(base)
        for name, model, prune in (
            ("routing", routed(), None),
            ("cache", cached(tier("balanced")), None),
            ("pruning", tier("balanced"), PRUNE_BUDGET),
            ("all", everything(), PRUNE_BUDGET),
        ):
            row, _ = await golden_row(
                name, model, store=store, desk=desk, prune=prune, baseline=outcomes
            )
            rows.append(row)
    finally:
        store.close()
    return rows


# --- 2. the semantic cache on banking77 ---------------------------------------------------------


def banking_pairs(
    csv_path: Path, count: int, seed: int = 17
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    by_intent: dict[str, list[str]] = defaultdict(list)
    with csv_path.open(encoding="utf-8") as f:
        for row in csv.DictReader(f):
            by_intent[row["category"]].append(row["text"])
    rng = random.Random(seed)
    intents = sorted(by_intent)
    same: list[tuple[str, str]] = []
    other: list[tuple[str, str]] = []
    while len(same) < count:
        texts = by_intent[rng.choice(intents)]
        a, b = rng.sample(texts, 2)
        same.append((a, b))
    while len(other) < count:
        x, y = rng.sample(intents, 2)
        other.append((rng.choice(by_intent[x]), rng.choice(by_intent[y])))
    return same, other


def similarities(embedder: Embedder, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
    # Unit rows by the protocol; normalised again for a module:factory that forgets.
    left = np.asarray(embedder.embed([a for a, _ in pairs]), dtype=np.float32)
    right = np.asarray(embedder.embed([b for _, b in pairs]), dtype=np.float32)
    left /= np.linalg.norm(left, axis=1, keepdims=True)
    right /= np.linalg.norm(right, axis=1, keepdims=True)
    return np.asarray(np.einsum("ij,ij->i", left, right))


def lookup_p95(entries: int, dim: int = 384, queries: int = 1000) -> tuple[float, float, float]:
    """p95 of one index lookup in ms at `entries` entries, by the wall clock and by the CPU
    time of the looking-up thread (the first includes waiting for a core on a shared
    machine, the second does not), and how often it found the entry a query was made from
    (the approximate pre-selection's recall)."""
    rng = np.random.default_rng(5)
    vectors = rng.standard_normal((entries, dim)).astype(np.float32)
    index = VectorIndex()
    index.add_many([str(i) for i in range(entries)], vectors)
    picks = rng.choice(entries, size=queries, replace=False)
    wall: list[float] = []
    cpu: list[float] = []
    found = 0
    for i in picks:
        target = vectors[i] / np.linalg.norm(vectors[i])
        noise = rng.standard_normal(dim).astype(np.float32)
        query = target + 0.33 * noise / np.linalg.norm(noise)  # cosine ~0.95
        t0, c0 = time.perf_counter(), time.thread_time()
        hit = index.search(query)
        cpu.append((time.thread_time() - c0) * 1000)
        wall.append((time.perf_counter() - t0) * 1000)
        found += hit is not None and hit[0] == str(i)
    return float(np.percentile(wall, 95)), float(np.percentile(cpu, 95)), found / queries


# --- output -------------------------------------------------------------------------------------


def print_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    cells = [[str(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for row in cells:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))


def load_embedder(spec: str) -> Embedder:
    if spec == "minilm":
        return MiniLmEmbedder()
    if spec == "hashing":
        return HashingEmbedder()
    module, _, name = spec.partition(":")
    factory: Callable[[], Embedder] = getattr(importlib.import_module(module), name)
    return factory()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, help="the datasets (default: BOSUN_DATA_DIR)")
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--pairs", type=int, default=2000)
    parser.add_argument(
        "--embedder",
        default="minilm",
        help="minilm (default), hashing (the stand-in) or module:factory of an Embedder",
    )
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # the hostile emails' refusals, logged as they happen
    banking = (args.data or require("intents")) / "intents" / "banking77-train.csv"

    embedder = load_embedder(args.embedder)
    print("1. support desk golden set, per email (gate: against 'nothing')\n")
    with tempfile.TemporaryDirectory() as tmp:
        rows = asyncio.run(golden_table(Path(tmp), embedder))
    print_table(
        ["config", "pass rate", "cost/email USD", "tokens/email", "cache hits", "gate"],
        [
            (r.name, f"{r.pass_rate:.3f}", f"{r.cost:.6f}", f"{r.tokens:,.0f}", r.cache, r.gate)
            for r in rows
        ],
    )

    print(
        f"\n2. semantic cache on banking77 ({args.pairs} pairs of each kind), "
        f"embedder {embedder.name}\n"
    )
    same, other = banking_pairs(banking, args.pairs)
    s_same, s_other = similarities(embedder, same), similarities(embedder, other)
    print_table(
        ["threshold", "hit rate (same intent)", "false hits (other intent)"],
        [
            (
                f"{t:.2f}" + (" (default)" if t == DEFAULT_THRESHOLD else ""),
                f"{(s_same >= t).mean():.3f}",
                f"{(s_other >= t).mean():.4f}",
            )
            for t in THRESHOLDS
        ],
    )
    wall, cpu, recall = lookup_p95(args.entries)
    print(
        f"\nlookup p95 at {args.entries:,} entries (384-d, target <= 5 ms): {wall:.2f} ms wall, "
        f"{cpu:.2f} ms CPU; the query's source entry (cosine ~0.95) found {recall:.1%} of "
        "the time"
    )

    print("\n3. learned router on banking77's held-out fifth (bosun router evaluate)\n")
    _, examples = load_traffic(banking)
    report = evaluate(load_router(), examples)
    print_table(
        ["held out", "accuracy", "under-routed", "over-routed", "cost vs balanced", "perfect"],
        [
            (
                report.examples,
                f"{report.accuracy:.3f}",
                f"{report.under_routed:.3f}",
                f"{report.over_routed:.3f}",
                f"{report.cost_vs_balanced:.3f}",
                f"{report.oracle_vs_balanced:.3f}",
            )
        ],
    )
    premium = PRICES_RELATIVE["premium"] / PRICES_RELATIVE["balanced"]
    print(
        f"routed traffic costs {report.cost_vs_balanced:.3f}x always-balanced, which sends the "
        f"{report.per_tier['premium'][0] / report.examples:.1%} of requests that need premium "
        f"below it; {report.cost_vs_balanced / premium:.3f}x always-premium, the cheapest "
        "fixed tier that under-serves nobody (relative prices cheap 0.1, balanced 1, premium 5)"
    )


if __name__ == "__main__":
    main()
