"""``bosun prompts ...`` (the prompt registry) and ``bosun eval`` (offline evaluation, the gate)."""

from __future__ import annotations

import asyncio
import getpass
import json
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.syntax import Syntax
from rich.table import Table

from bosun.cli.options import DbOption, open_store
from bosun.errors import BosunError
from bosun.evals.dataset import load_dataset
from bosun.evals.gate import GateConfig
from bosun.evals.runner import (
    CaseReport,
    EvalOptions,
    EvalReport,
    Evaluator,
    GateResult,
    run_gate,
    save_report,
)
from bosun.prompts.registry import PRODUCTION, PromptLabel, PromptRegistry
from bosun.prompts.template import read_prompt_file
from bosun.runtime.loading import load_agent

__all__ = ["eval_command", "prompts_app"]

console = Console()
prompts_app = typer.Typer(no_args_is_help=True, help="Versioned prompts, labels and rollouts.")

ByOption = Annotated[
    str | None, typer.Option("--by", help="Who does this, for the audit log (default: you).")
]
LabelOption = Annotated[str, typer.Option("--label", "-l", help="The label to move.")]

GATE_FAILED = 1
"""Exit status of a gate that failed."""
ERROR = 2
"""Exit status of a mistake (bad dataset, unknown prompt, ...)."""


@contextmanager
def _registry(db: str | None) -> Iterator[PromptRegistry]:
    try:
        store = open_store(db)
    except BosunError as exc:
        _fail(exc)
    try:
        yield PromptRegistry(store)
    except BosunError as exc:
        _fail(exc)
    finally:
        store.close()


def _fail(exc: BaseException) -> NoReturn:
    console.print(f"[red]error:[/red] {escape(str(exc))}")
    raise typer.Exit(ERROR) from exc


def _by(by: str | None) -> str:
    return by or getpass.getuser()


# --- prompts ---------------------------------------------------------------------------------


@prompts_app.command("list")
def prompts_list(db: DbOption = None) -> None:
    """Every prompt: latest version and labels."""
    with _registry(db) as registry:
        table = Table()
        for column in ("prompt", "latest", "labels"):
            table.add_column(column)
        for name in registry.list():
            labels = ", ".join(_label_text(lab) for lab in registry.labels(name)) or "-"
            table.add_row(name, registry.latest(name).version, labels)
        console.print(table)


@prompts_app.command("show")
def prompts_show(
    name: str,
    version: Annotated[str | None, typer.Option(help="This version.")] = None,
    label: Annotated[str | None, typer.Option(help="The version this label points at.")] = None,
    db: DbOption = None,
) -> None:
    """A version (default: the latest): template, variables, settings, labels, evaluations."""
    with _registry(db) as registry:
        if version is None and label is not None:
            item = registry.resolve(name, label)
        else:
            item = registry.get(name, version) if version else registry.latest(name)
        console.print(f"[bold]{item.label_text}[/bold]  owner: {escape(str(item.owner or '-'))}")
        console.print(f"digest {item.digest}")
        if item.changelog:
            console.print(f"changelog: {escape(item.changelog)}")
        console.print(Syntax(item.template, "jinja", word_wrap=True))
        console.print(f"variables: {json.dumps(dict(item.variables))}")
        console.print(f"model settings: {json.dumps(dict(item.model_settings))}")
        for lab in registry.labels(name):
            console.print(f"label {_label_text(lab)}")
        gate = registry.gate_status(name, item.version)
        console.print(("[green]gate:[/green] " if gate.passed else "gate: ") + escape(gate.reason))
        for row in registry.eval_runs(name, item.version)[:10]:
            verdict = {True: "gate passed", False: "gate FAILED", None: ""}[row["gate_passed"]]
            console.print(
                f"eval {row['id']} {escape(row['dataset'])}: {row['passed']}/{row['cases']} "
                f"passed {verdict}"
            )


@prompts_app.command("diff")
def prompts_diff(name: str, a: str, b: str, db: DbOption = None) -> None:
    """Unified diff of two versions (template, variables, model settings)."""
    with _registry(db) as registry:
        text = registry.diff(name, a, b)
    console.print(Syntax(text, "diff") if text else "(no differences)")


@prompts_app.command("create")
def prompts_create(
    file: Annotated[Path, typer.Argument(help="A prompt YAML file (name, version, template...).")],
    by: ByOption = None,
    db: DbOption = None,
) -> None:
    """Create the prompt version(s) a YAML file defines."""
    with _registry(db) as registry:
        for item in read_prompt_file(file):
            registry.add(item, by=_by(by))
            console.print(f"created {item.label_text}")


@prompts_app.command("promote")
def prompts_promote(
    name: str,
    version: str,
    label: LabelOption = PRODUCTION,
    canary: Annotated[
        float | None, typer.Option(help="Give only this percentage of keys the version.")
    ] = None,
    shadow: Annotated[
        bool, typer.Option("--shadow", help="Shadow the label with the version instead.")
    ] = False,
    by: ByOption = None,
    db: DbOption = None,
) -> None:
    """Point a label at a version (to production only after a passing `bosun eval --gate`)."""
    with _registry(db) as registry:
        if canary is not None and shadow:
            raise typer.BadParameter("choose --canary or --shadow, not both")
        if canary is not None:
            moved = registry.set_canary(name, label, version, canary, by=_by(by))
        elif shadow:
            moved = registry.set_shadow(name, label, version, by=_by(by))
        else:
            moved = registry.promote(name, version, label, by=_by(by))
        console.print(f"{name}: {_label_text(moved)}")


@prompts_app.command("rollback")
def prompts_rollback(
    name: str, label: LabelOption = PRODUCTION, by: ByOption = None, db: DbOption = None
) -> None:
    """Return a label to its previous version (and end its canary)."""
    with _registry(db) as registry:
        moved = registry.rollback(name, label, by=_by(by))
        console.print(f"{name}: {_label_text(moved)}")


@prompts_app.command("sync")
def prompts_sync(
    directory: Annotated[Path, typer.Argument(help="Folder of prompt YAML files.")],
    by: ByOption = None,
    db: DbOption = None,
) -> None:
    """Create the versions defined in a folder that the registry lacks (versions are
    immutable: a changed existing version is an error)."""
    with _registry(db) as registry:
        report = registry.sync_from_dir(directory, by=_by(by))
    for item in report.created:
        console.print(f"created {item}")
    console.print(f"{len(report.created)} created, {len(report.unchanged)} unchanged")


def _label_text(label: PromptLabel) -> str:
    text = f"{label.label} -> {label.version}"
    if label.canary is not None:
        text += f" (canary {label.canary.percent:g}% -> {label.canary.version})"
    if label.shadow is not None:
        text += f" (shadow {label.shadow})"
    return text


# --- eval ------------------------------------------------------------------------------------


def eval_command(
    dataset: Annotated[Path, typer.Argument(help="Golden dataset (.yaml or .jsonl).")],
    agent: Annotated[str, typer.Option("--agent", "-a", help="MODULE:AGENT to evaluate.")],
    prompt: Annotated[
        str | None, typer.Option(help="Prompt to evaluate (default: the agent's, if any).")
    ] = None,
    prompt_version: Annotated[
        str | None,
        typer.Option(help="Version to evaluate (default: production's; with --gate the latest)."),
    ] = None,
    gate: Annotated[
        bool, typer.Option("--gate", help="Compare with production; exit 1 on a regression.")
    ] = False,
    baseline: Annotated[
        str | None, typer.Option(help="Compare with this version instead of production's.")
    ] = None,
    judge: Annotated[str | None, typer.Option(help="Model for judge rubrics.")] = None,
    concurrency: Annotated[int, typer.Option(min=1, help="Cases run at once.")] = 4,
    margin: Annotated[
        float, typer.Option(min=0, max=1, help="Tolerated pass-rate drop (0.05 = 5 points).")
    ] = 0.05,
    alpha: Annotated[float, typer.Option(min=0, max=1, help="Significance level.")] = 0.05,
    db: DbOption = None,
) -> None:
    """Run a golden dataset through an agent with its tools sandboxed, and report."""
    with _registry(db) as registry:
        try:
            data = load_dataset(dataset)
            target = load_agent(agent)
        except BosunError as exc:
            _fail(exc)
        options = EvalOptions(concurrency=concurrency, judge=judge)
        evaluator = Evaluator(target, registry=registry, options=options)
        name = evaluator.prompt_name(prompt)
        if gate and name is None:
            raise typer.BadParameter("--gate needs a prompt: pass --prompt NAME")
        runs = 1
        if gate and name is not None:
            label = registry.label(name, PRODUCTION)
            candidate = prompt_version or registry.latest(name).version
            other = baseline or (label.version if label else None)
            runs = 2 if other is not None and other != candidate else 1
        gated: GateResult | None = None
        with _progress(len(data.cases) * runs) as advance:
            if gate and name is not None:
                config = GateConfig(alpha=alpha, margin=margin)
                gated = asyncio.run(
                    run_gate(
                        evaluator,
                        data,
                        prompt=name,
                        candidate=prompt_version,
                        baseline=baseline,
                        config=config,
                        on_case=advance,
                    )
                )
                report = gated.candidate
            else:
                report = asyncio.run(
                    evaluator.evaluate(data, prompt=name, version=prompt_version, on_case=advance)
                )
                save_report(registry.store, report)
        _print_report(report)
        if gated is not None:
            _print_gate(gated)
            if not gated.verdict.passed:
                raise typer.Exit(GATE_FAILED)


@contextmanager
def _progress(total: int) -> Iterator[_Advance]:
    columns = (
        TextColumn("evaluating"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("cases", total=total)
        yield _Advance(progress, task)


class _Advance:
    def __init__(self, progress: Progress, task: TaskID) -> None:
        self._progress = progress
        self._task = task

    def __call__(self, case: CaseReport) -> None:
        self._progress.advance(self._task)


def _print_report(report: EvalReport) -> None:
    prompt = "" if report.prompt_name is None else f" {report.prompt_name}@{report.prompt_version}"
    table = Table(title=f"{escape(report.dataset)}: {report.agent}{escape(prompt)}")
    for column in ("case", "result", "status", "steps", "cost", "latency"):
        table.add_column(column)
    for case in report.cases:
        table.add_row(
            escape(case.id) + (" [bold](critical)[/bold]" if case.critical else ""),
            "[green]pass[/green]" if case.passed else "[red]FAIL[/red]",
            case.status,
            str(case.steps),
            _cost(case.cost_usd),
            f"{case.latency_ms:.0f} ms",
        )
    console.print(table)
    for case in report.cases:  # why, under the table: reasons need the width
        if case.error is not None:
            console.print(f"[red]{escape(case.id)}[/red]: {escape(case.error)}", soft_wrap=True)
        for failed in (a for a in case.assertions if not a.passed):
            console.print(
                f"[red]{escape(case.id)}[/red]: {escape(failed.name)}: {escape(failed.reason)}",
                soft_wrap=True,
            )
    agg = report.aggregate()
    console.print(
        f"{agg['passed']}/{agg['cases']} passed ({report.pass_rate:.1%}); cost "
        f"{_cost(report.cost_usd)} (judges {_cost(_decimal(agg['judge_cost_usd']))}); latency "
        f"p50 {agg['latency_p50_ms']:.0f} ms, p95 {agg['latency_p95_ms']:.0f} ms; eval run "
        f"{report.id}"
    )


def _print_gate(gated: GateResult) -> None:
    verdict, baseline = gated.verdict, gated.baseline
    if baseline is None:
        console.print("no other production version: the candidate was judged on its own")
    else:
        console.print(
            f"baseline {baseline.prompt_name}@{baseline.prompt_version}: "
            f"{baseline.passed}/{len(baseline.cases)} passed ({baseline.pass_rate:.1%})"
        )
    stats = "" if verdict.p_value is None else f" (exact McNemar p = {verdict.p_value:.4f})"
    regressions = escape(", ".join(verdict.regressions) or "none")
    if verdict.passed:
        console.print(f"[green]gate passed[/green]{stats}; regressions: {regressions}")
        return
    console.print(f"[red]gate FAILED[/red]{stats}; regressions: {regressions}")
    for reason in verdict.reasons:
        console.print(f"- {escape(reason)}")


def _cost(value: Decimal | None) -> str:
    if value is None:
        return "-"
    return f"${value:.6f}" if value < Decimal("0.01") else f"${value:.4f}"


def _decimal(value: object) -> Decimal | None:
    return None if value is None else Decimal(str(value))
