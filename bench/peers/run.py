"""bosun beside its peers: one interleaved driver, one table.

Every (framework, variant) runs in a fresh subprocess, once per repetition and test, in an
order rotated each repetition so that no framework always runs first on a cold machine or
last on a hot one. The scenario and the timing code are the shared harness's
(`$BOSUN_PEERBENCH`, default `../shared/peerbench`); `bench_bosun.py` here adds bosun to it.
The peers run from the harness's own scripts, each in its venv (`run.sh` builds them).

    bash bench/peers/run.sh                      # 5 repetitions, 200 runs, 500 concurrent
    python bench/peers/run.py --summarize FILE   # the table again from a raw JSONL file

The table: median over repetitions of each process's median ms per run (sequential, zero
model latency), and of the wall time for 500 concurrent runs at 200 ms per model call
(ideal 1.2 s); ratios are the peer's figure over bosun's.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
HARNESS = Path(os.environ.get("BOSUN_PEERBENCH", REPO.parent / "shared" / "peerbench"))
HOME = Path(os.environ.get("BOSUN_PEERS_HOME", REPO / ".peers"))

# framework -> (label, python, script, variant without durability, durable variant, its label)
FRAMEWORKS: dict[str, tuple[str, str, Path, str, str, str]] = {
    "bosun": (
        "bosun",
        sys.executable,
        HERE / "bench_bosun.py",
        "none",
        "sqlite",
        "journal on SQLite",
    ),
    "lg": (
        "LangGraph",
        str(HOME / "venv_lg/bin/python"),
        HARNESS / "bench_langgraph.py",
        "none",
        "sqlite_sync",
        "AsyncSqliteSaver, durability=sync",
    ),
    # LangGraph's default writes checkpoints in the background: a crash can lose the last step.
    "lg_async": (
        "LangGraph",
        str(HOME / "venv_lg/bin/python"),
        HARNESS / "bench_langgraph.py",
        "none",
        "sqlite",
        "AsyncSqliteSaver, default durability=async",
    ),
    "pai": (
        "Pydantic AI",
        str(HOME / "venv_pai/bin/python"),
        HARNESS / "bench_pydantic_ai.py",
        "none",
        "dbos",
        "DBOS on SQLite",
    ),
    "oai": (
        "OpenAI Agents SDK",
        str(HOME / "venv_oai/bin/python"),
        HARNESS / "bench_openai_agents.py",
        "none",
        "sqlite",
        "SQLiteSession",
    ),
    "raw": (
        "floor: hand-written asyncio loop",
        sys.executable,
        HARNESS / "bench_raw.py",
        "none",
        "sqlite",
        "a commit per step",
    ),
}


def entries() -> list[tuple[str, str]]:
    """Each (framework, variant) once; rows that share a script share its runs."""
    seen: dict[tuple[str, str], None] = {}
    for fw, spec in FRAMEWORKS.items():
        for v in (spec[3], spec[4]):
            seen[(_script_key(fw), v)] = None
    return list(seen)


def _script_key(fw: str) -> str:
    return fw.split("_")[0]


def rotate(xs: list[Any], k: int) -> list[Any]:
    k %= len(xs)
    return xs[k:] + xs[:k]


def run_one(fw: str, variant: str, test: str, args: argparse.Namespace, rep: int) -> dict[str, Any]:
    _, python, script, *_ = FRAMEWORKS[fw]
    work = HOME / "work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    cmd = [
        python,
        str(script),
        "--test",
        test,
        "--variant",
        variant,
        "--runs",
        str(args.runs),
        "--warmup",
        str(args.warmup),
        "--n",
        str(args.n),
        "--latency",
        str(args.latency),
        "--workdir",
        str(work),
        "--tag",
        f"rep{rep}",
    ]
    t0 = time.time()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    record: dict[str, Any] = {
        "rep": rep,
        "fw": fw,
        "variant": variant,
        "test": test,
        "cmd": " ".join(cmd),
        "proc_wall_s": time.time() - t0,
        "rc": proc.returncode,
        "loadavg": os.getloadavg(),
    }
    if proc.returncode == 0:
        record["result"] = json.loads(proc.stdout.strip().splitlines()[-1])
    else:
        record["stderr"] = proc.stderr[-3000:]
    shutil.rmtree(work, ignore_errors=True)
    return record


def _median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def table(records: list[dict[str, Any]]) -> str:
    # A repetition cut short (a run stopped for time) would weigh some entries more than others.
    per_rep: dict[int, int] = {}
    for r in records:
        per_rep[r["rep"]] = per_rep.get(r["rep"], 0) + 1
    full = max(per_rep.values(), default=0)
    records = [r for r in records if per_rep[r["rep"]] == full]
    seq: dict[tuple[str, str], list[float]] = {}
    conc: dict[tuple[str, str], list[float]] = {}
    rss: dict[tuple[str, str], list[float]] = {}
    failures = [r for r in records if r.get("rc") != 0]
    for r in records:
        if r.get("rc") != 0:
            continue
        key = (r["fw"], r["variant"])
        if r["test"] == "seq":
            seq.setdefault(key, []).append(r["result"]["run_ms"]["median"])
        else:
            conc.setdefault(key, []).append(r["result"]["wall_s"])
            rss.setdefault(key, []).append(r["result"]["peak_rss_mb"])
    reps = len({r["rep"] for r in records})
    loads = [r["loadavg"][0] for r in records]

    def fig(d: dict[tuple[str, str], list[float]], fw: str, v: str) -> float:
        return _median(d.get((fw, v), []))

    def ratio(x: float, base: float) -> str:
        return f"×{x / base:.1f}" if base == base and x == x and base else "-"

    b_none, b_dur = FRAMEWORKS["bosun"][3], FRAMEWORKS["bosun"][4]
    b = {
        "seq_none": fig(seq, "bosun", b_none),
        "seq_dur": fig(seq, "bosun", b_dur),
        "conc_none": fig(conc, "bosun", b_none),
        "conc_dur": fig(conc, "bosun", b_dur),
    }
    lines = [
        f"Medians of {reps} interleaved repetitions; load average (1 min) during the runs "
        f"{min(loads, default=0):.1f}–{max(loads, default=0):.1f}, median "
        f"{_median(loads):.1f}, on {os.cpu_count()} CPUs. Ratios: the peer's figure ÷ bosun's.",
        "",
        "| framework (durable variant) | ms/run, none | ms/run, durable | durable ÷ none "
        "| 500 conc. s, none | 500 conc. s, durable | peak RSS MB, durable 500 "
        "| ms/run durable vs bosun | 500 durable vs bosun |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row, (label, _, _, none, durable, how) in FRAMEWORKS.items():
        fw = _script_key(row)
        sn, sd = fig(seq, fw, none), fig(seq, fw, durable)
        cn, cd = fig(conc, fw, none), fig(conc, fw, durable)
        lines.append(
            f"| {label} ({how}) | {sn:.2f} | {sd:.2f} | ×{sd / sn:.1f} | {cn:.2f} | {cd:.2f} "
            f"| {fig(rss, fw, durable):.0f} | {ratio(sd, b['seq_dur'])} "
            f"| {ratio(cd, b['conc_dur'])} |"
        )
    for r in failures:
        lines.append(f"\nFAILED rep{r['rep']} {r['test']} {r['fw']}/{r['variant']}: ")
        lines.append(r.get("stderr", "")[-600:])
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--runs", type=int, default=200, help="sequential runs per process")
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--n", type=int, default=500, help="concurrent runs")
    ap.add_argument("--latency", type=float, default=0.2, help="seconds per model call")
    ap.add_argument("--tests", default="seq,conc")
    ap.add_argument("--summarize", metavar="FILE", help="print the table from a raw JSONL file")
    args = ap.parse_args()
    if args.summarize:
        with open(args.summarize) as f:
            print(table([json.loads(line) for line in f]))
        return
    if not (HARNESS / "common.py").is_file():
        raise SystemExit(f"peer harness not found at {HARNESS}: set BOSUN_PEERBENCH")
    results = HOME / "results"
    results.mkdir(parents=True, exist_ok=True)
    raw = results / time.strftime("raw-%Y%m%dT%H%M%S.jsonl")
    records: list[dict[str, Any]] = []
    tests = [t for t in ("seq", "conc") if t in args.tests.split(",")]
    with raw.open("w") as out:
        for rep in range(args.reps):
            for test in tests:
                for fw, variant in rotate(entries(), rep * 3 + (test == "conc")):
                    record = run_one(fw, variant, test, args, rep)
                    records.append(record)
                    out.write(json.dumps(record) + "\n")
                    out.flush()
                    if record["rc"] == 0:
                        res = record["result"]
                        short = (
                            f"{res['run_ms']['median']:.2f} ms/run"
                            if test == "seq"
                            else f"{res['wall_s']:.2f} s, peak {res['peak_rss_mb']:.0f} MB"
                        )
                    else:
                        short = "FAILED"
                    print(f"rep{rep} {test:4s} {fw}/{variant:12s} {short}", flush=True)
    print(f"\nraw records: {raw}\n")
    print(table(records))


if __name__ == "__main__":
    main()
