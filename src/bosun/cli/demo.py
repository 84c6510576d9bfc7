"""``bosun demo``: the reference support desk (`examples/support_desk`) on its sample inbox.

```
fresh data directory (helpdesk, store, vault key)
  -> every .eml: Gateway (API key, grants, input checks, injection screening)
     -> queued -> Worker (lease) -> Runtime (PII vault, taint gates, journal, audit)
     -> tools (helpdesk) ; replies and refunds held for a person
  -> results through the output guardrails -> the summary
```

Offline the agent runs on the example's **scripted policy model** (a deterministic function
of the conversation, said so in the output); ``--model`` or ``BOSUN_MODEL`` runs it on a
real model instead. The example lives in the repository (``examples/``), not in the
installed package: the demo runs from a clone (``pip install -e .``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
from rich.table import Table

from bosun.cli.render import command_hint, shorten
from bosun.config import ServiceSettings, load_settings
from bosun.data.store import Store
from bosun.errors import UserError
from bosun.evals.dataset import load_dataset
from bosun.evals.runner import Evaluator, run_gate
from bosun.gateway.auth import Principal
from bosun.gateway.gateway import Gateway
from bosun.observe.logs import configure_logging
from bosun.prompts.registry import PromptRef, PromptRegistry, PromptSource
from bosun.runtime.state import RunState, RunStatus
from bosun.service.compose import compose

__all__ = ["DemoReport", "run_demo"]

_REPO = Path(__file__).resolve().parents[3]
_NAME_WIDTH = 16  # two spaces, then the longest sample email's name


@dataclass(kw_only=True)
class DemoReport:
    """What one demo pass did."""

    data: Path
    db_url: str
    model: str
    prompt: str = ""
    """The prompt version the inbox ran on and how it got to production."""
    runs: dict[str, str] = field(default_factory=dict)
    """Run id by email name."""
    statuses: Counter[str] = field(default_factory=Counter)
    helpdesk: dict[str, Any] = field(default_factory=dict)
    awaiting: list[tuple[str, str]] = field(default_factory=list)
    """(email, held tools) of runs waiting for approval."""
    escalations: list[tuple[str, str]] = field(default_factory=list)
    """(email, reason)."""
    injections: list[tuple[str, str]] = field(default_factory=list)
    """(email, what caught it)."""
    pii: Counter[str] = field(default_factory=Counter)
    """PII values masked, by type."""
    guardrails: Counter[str] = field(default_factory=Counter)
    tokens: int = 0
    cost_usd: str | None = None
    seconds: list[float] = field(default_factory=list)
    wall_s: float = 0.0
    audit_ok: bool = False
    knowledge: str = ""
    """The knowledge base: articles, corpus version, ingestion time."""
    answers: list[tuple[str, str]] = field(default_factory=list)
    """(email, confidence and citations, or why a person has it) of the questions answered
    from the knowledge base."""
    answered: Counter[str] = field(default_factory=Counter)
    """Those questions' runs by status."""


def _example() -> Any:
    """Import the example from the repository this bosun was installed from."""
    if not (_REPO / "examples" / "support_desk" / "__init__.py").is_file():
        raise UserError(
            "bosun demo runs the reference agent in examples/support_desk, which is not part "
            "of the installed package: run it from a clone (pip install -e .)"
        )
    if str(_REPO) not in sys.path:
        sys.path.insert(0, str(_REPO))
    import examples.support_desk as example

    return example


def run_demo(
    console: Console,
    *,
    data: Path | None = None,
    model: str | None = None,
    concurrency: int = 8,
) -> DemoReport:
    """Run the sample inbox through the whole pipeline and print the summary."""
    settings = load_settings()
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    data = data or settings.home / f"demo-{stamp}"
    if data.exists() and any(data.iterdir()):
        raise UserError(f"{data} is not empty: the demo sets up a fresh data directory")
    data.mkdir(parents=True, exist_ok=True)
    # The runs' logs (refused calls, withheld outputs, ...) go to a file, with their trace ids.
    with (data / "bosun.log").open("a", encoding="utf-8") as log:
        configure_logging("INFO", stream=log)
        try:
            report = asyncio.run(_run(console, data, model or settings.model, concurrency))
        finally:
            configure_logging(settings.log_level, json=settings.log_json)
    _print(console, report)
    return report


async def _run(console: Console, data: Path, model: str | None, concurrency: int) -> DemoReport:
    example = _example()
    from examples.support_desk.inbox_run import helpdesk_summary

    desk = example.seed(data / "helpdesk.db")
    messages, malformed = example.load_inbox(_REPO / "examples" / "support_desk" / "inbox")
    db_url = f"sqlite:///{data / 'bosun.db'}"
    report = DemoReport(
        data=data,
        db_url=db_url,
        model=model or f"{example.MODEL_NAME} (scripted policy: deterministic, offline)",
    )
    store = Store.open(db_url)
    # Embedding the help articles takes seconds of CPU in ONNX Runtime, which releases the
    # GIL: it runs in a thread while the golden gate evaluates the prompt.
    ingesting = asyncio.create_task(asyncio.to_thread(_knowledge, store))
    try:
        report.prompt = await _promote_prompt(console, example, store, desk.path, model)
    finally:
        with console.status("knowledge base: ingesting the help articles"):
            kb, report.knowledge = await ingesting
    source = PromptSource(PromptRegistry(store), PromptRef(example.agent.PROMPT_NAME))
    agent = example.build_agent(desk.path, model=model, instructions=source, knowledge=kb)
    # The same assembly `bosun serve` uses, over the demo's own data directory.
    settings = load_settings(
        home=data,
        database_url=db_url,
        service=ServiceSettings(concurrency=concurrency, poll_s=0.02, sweep_s=60),
    )
    system = compose(settings, [agent], store=store)
    gateway, runtime, worker = system.gateway, system.runtime, system.worker
    assert worker is not None
    inbox = await gateway.authenticate(
        gateway.keys.create("inbox", tenant="support", roles=["submitter"]).key
    )
    stop = asyncio.Event()
    t0 = time.perf_counter()
    async with runtime:
        serving = asyncio.create_task(worker.serve(stop))
        with Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        ) as progress:
            task = progress.add_task("support inbox", total=len(messages))
            for message in messages:
                report.runs[message.name] = await gateway.submit(
                    inbox,
                    agent.name,
                    message.parts(settings.service.inbox_instruction),
                    idempotency_key=message.idempotency_key,
                )
                worker.notify()
            while (done := _stopped(store, report.runs.values())) < len(messages):
                progress.update(task, completed=done)
                await asyncio.sleep(0.05)
            progress.update(task, completed=done)
        report.wall_s = time.perf_counter() - t0
        questions = await _ask(example, gateway, worker, inbox, store, settings, agent.name)
        stop.set()
        await serving
        hidden = {m.name for m in messages if m.parsed.hidden_html}
        await _collect(report, gateway, inbox, store, hidden)
        await _collect_answers(report, gateway, inbox, questions)
    report.helpdesk = helpdesk_summary(desk)
    report.helpdesk["unreadable emails"] = len(malformed)
    report.audit_ok = store.verify_audit().ok
    store.close()
    return report


async def _promote_prompt(
    console: Console, example: Any, store: Store, helpdesk: Path, model: str | None
) -> str:
    """Sync the agent's prompt file into the registry, gate it on the golden dataset, and
    promote it to production: the inbox then runs on the registry's production version."""
    registry = PromptRegistry(store)
    registry.sync_from_dir(example.agent.PROMPTS, by="bosun-demo")
    name = example.agent.PROMPT_NAME
    golden = load_dataset(_REPO / "examples" / "support_desk" / "golden.yaml")
    # The gate's cases write to a copy of the helpdesk: its read-only tools run for real.
    evaluator = Evaluator(example.build_agent(helpdesk, model=model), registry=registry)
    with console.status("golden gate: evaluating the prompt on the golden dataset"):
        gate = await run_gate(evaluator, golden, prompt=name)
    candidate = gate.candidate
    version = candidate.prompt_version or ""
    verdict = "passed" if gate.verdict.passed else "FAILED"
    line = f"{name}@{version}: golden gate {verdict} ({candidate.passed}/{len(candidate.cases)})"
    if not gate.verdict.passed:
        raise UserError(f"{line}; not promoted: {'; '.join(gate.verdict.reasons)}")
    registry.promote(name, version, "production", by="bosun-demo")
    return f"{line} -> production"


def _knowledge(store: Store) -> tuple[Any, str]:
    """Ingest the example's help articles; a line on what is in the knowledge base."""
    from examples.support_desk.knowledge import load_knowledge

    t0 = time.perf_counter()
    kb, results = load_knowledge(store)
    seconds = time.perf_counter() - t0
    languages = sorted({Path(r.source).name.split("-")[0] for r in results})
    line = (
        f"{len(results)} help articles ({', '.join(languages)}), corpus version "
        f"{kb.corpus_version()}, ingested in {seconds:.1f} s"
    )
    return kb, line


async def _ask(
    example: Any,
    gateway: Gateway,
    worker: Any,
    who: Principal,
    store: Store,
    settings: Any,
    agent: str,
) -> dict[str, str]:
    """Send the example's questions: first those that start a thread, then the replies
    that continue one (a turn starts from the turns before it, so those must be done)."""
    from bosun.gateway.email import thread_key
    from examples.support_desk.knowledge import QUESTIONS

    messages, _ = example.load_inbox(QUESTIONS)
    runs: dict[str, str] = {}
    for wave in (
        [m for m in messages if not m.parsed.references],
        [m for m in messages if m.parsed.references],
    ):
        for message in wave:
            runs[message.name] = await gateway.submit(
                who,
                agent,
                message.parts(settings.service.inbox_instruction),
                idempotency_key=message.idempotency_key,
                thread=thread_key(message.parsed),
            )
            worker.notify()
        # The worker drives the runs: their rows in the store say when they stopped.
        while _stopped(store, runs.values()) < len(runs):  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    return runs


async def _collect_answers(
    report: DemoReport, gateway: Gateway, who: Principal, runs: dict[str, str]
) -> None:
    for name, run_id in runs.items():
        result = (await gateway.result(who, run_id)).run
        report.answered[result.status.value] += 1
        confidence = "-" if result.confidence is None else f"{result.confidence:.2f}"
        if result.status is RunStatus.ESCALATED and result.handoff is not None:
            shown = len(result.handoff.passages)
            line = f"{confidence} {result.handoff.reason.split(':')[0]}: to a person with "
            line += f"{shown} passage(s)"
        else:
            cited = ", ".join(f"{c['title']} v{c['version']}" for c in result.citations)
            line = f"{confidence} {result.status.value}, cites {cited or 'nothing'}"
        report.answers.append((name, line))


def _stopped(store: Store, run_ids: Any) -> int:
    wanted = set(run_ids)
    return sum(
        1
        for row in store.list_runs(limit=len(wanted) + 50)
        if row.id in wanted and (RunStatus(row.status).terminal or RunStatus(row.status).parked)
    )


async def _collect(
    report: DemoReport, gateway: Gateway, who: Principal, store: Store, hidden: set[str]
) -> None:
    side_effects = {
        tool.name
        for agent in gateway.agents.values()
        for tool in agent.tools
        if tool.policy.side_effect
    }
    tokens = 0
    cost = None
    for name, run_id in report.runs.items():
        result = await gateway.result(who, run_id)
        state = await gateway.runtime.state(run_id)
        row = store.get_run(run_id)
        report.statuses[result.status.value] += 1
        report.seconds.append(row.updated_at - row.created_at)
        tokens += result.run.usage.total_tokens
        if result.run.cost_usd is not None:
            cost = (cost or 0) + result.run.cost_usd
        if result.guardrail is not None and result.guardrail.action != "allow":
            report.guardrails[result.guardrail.action] += 1
        if result.status is RunStatus.WAITING_APPROVAL:
            held = ", ".join(c.name for c in result.run.waiting_for)
            report.awaiting.append((name, held))
        handoff = result.run.handoff
        if handoff is not None:  # an agent that asked says why in its question
            asked = result.status is RunStatus.WAITING_HUMAN and handoff.pending_question
            report.escalations.append((name, asked or handoff.reason))
        caught = _caught(state, side_effects, hidden_html=name in hidden)
        if caught:
            report.injections.append((name, caught))
        report.pii.update(entry.entity for entry in state.vault.values())
    report.tokens = tokens
    report.cost_usd = None if cost is None else f"{cost:.4f}"


def _caught(state: RunState, side_effects: set[str], *, hidden_html: bool = False) -> str:
    """What stopped an injection in this run: text hidden in HTML removed by the email
    parser, the input screen, a tool's output withheld as an injection, side effects
    refused by the taint gates."""
    found = ["hidden HTML text removed"] if hidden_html else []
    if state.injections:
        found.append(f"input screened ({len(state.injections)} part(s) flagged)")
    blocked = {a.tool for a in state.actions if a.error_kind == "blocked_by_policy"}
    if withheld := sorted(blocked - side_effects):
        found.append(f"output withheld: {', '.join(withheld)}")
    if refused := sorted(blocked & side_effects):
        found.append(f"refused: {', '.join(refused)}")
    return "; ".join(found)


def _print(console: Console, r: DemoReport) -> None:
    console.print(f"\n[bold]bosun demo[/bold] — model: [yellow]{escape(r.model)}[/yellow]")
    command_hint(console, "data directory", str(r.data))
    console.print(f"prompt: {escape(r.prompt)}")
    emails = sum(r.statuses.values())
    console.print(
        f"emails: {emails} in {r.wall_s:.1f} s   runs: "
        + ", ".join(f"{status}: {n}" for status, n in sorted(r.statuses.items()))
    )
    desk = r.helpdesk
    tickets = Table("tickets by category", "n", "by team", "n", title=f"{desk['tickets']} tickets")
    cats, teams = list(desk["by_category"].items()), list(desk["by_team"].items())
    for i in range(max(len(cats), len(teams))):
        c = cats[i] if i < len(cats) else ("", "")
        t = teams[i] if i < len(teams) else ("", "")
        tickets.add_row(str(c[0]), str(c[1]), str(t[0]), str(t[1]))
    console.print(tickets)
    console.print(
        f"replies sent: {desk['sent']}   refunds issued: {desk['refunds']}   "
        f"drafts: {desk['drafts']}   notes: {desk['notes']}   (sending and refunding wait for "
        "a person)"
    )
    console.print(f"[bold]awaiting approval[/bold]: {len(r.awaiting)}")
    _by_email(console, r.awaiting[:8], cut=True)
    console.print(f"[bold]escalated to a person[/bold]: {len(r.escalations)}")
    _by_email(console, r.escalations[:12], cut=True)
    console.print(f"[bold]injections caught[/bold]: {len(r.injections)}")
    _by_email(console, r.injections, cut=False)
    if r.knowledge:
        console.print(f"[bold]knowledge base[/bold]: {escape(r.knowledge)}")
        runs = ", ".join(f"{status}: {n}" for status, n in sorted(r.answered.items()))
        console.print(f"questions: {len(r.answers)} ({runs}), by confidence and citations:")
        _by_email(console, r.answers, cut=True)
    pii = ", ".join(f"{kind}: {n}" for kind, n in r.pii.most_common()) or "none"
    console.print(f"PII redacted before the model saw it: {sum(r.pii.values())} ({pii})")
    if r.guardrails:
        console.print(f"output guardrails: {dict(r.guardrails)}")
    p50 = statistics.median(r.seconds) * 1000 if r.seconds else 0.0
    p95 = sorted(r.seconds)[max(0, round(0.95 * len(r.seconds)) - 1)] * 1000 if r.seconds else 0
    cost = "unknown (the scripted model is not priced)" if r.cost_usd is None else f"${r.cost_usd}"
    console.print(
        f"tokens: {r.tokens}   cost: {cost}   per email p50 {p50:.0f} ms, p95 {p95:.0f} ms"
    )
    console.print(f"audit chain: {'ok' if r.audit_ok else 'BROKEN'}")
    first = next(iter(r.runs.values()), None)
    if first:
        db = f"--db {r.db_url}"
        command_hint(console, "open a trace", f"bosun trace {first} {db}")
        command_hint(console, "list the runs", f"bosun runs list {db}")
        if r.awaiting:
            command_hint(console, "review the held calls", f"bosun approvals list {db}")
        if r.escalations:
            command_hint(console, "take an escalation", f"bosun escalations list {db}")
        command_hint(console, "logs (JSON lines with trace ids)", str(r.data / "bosun.log"))


def _by_email(console: Console, lines: list[tuple[str, str]], *, cut: bool) -> None:
    """One line per email: its name, then the text cut at a word to fit the terminal
    (`cut`), or wrapped under itself."""
    if not lines:
        return
    grid = Table.grid(padding=(0, 1, 0, 0))
    grid.add_column(width=_NAME_WIDTH, no_wrap=True)
    grid.add_column()
    for name, text in lines:
        grid.add_row(
            f"  {escape(name)}",
            escape(shorten(text, console.width - _NAME_WIDTH - 1) if cut else text),
        )
    console.print(grid)
