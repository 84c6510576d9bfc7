"""``bosun approvals`` and ``bosun escalations``: a person's decisions, from a terminal.

They work on the local store as its operator, without an API key: ``--by`` (default: the OS
user) is recorded as the approver in the journal and the audit log. They do what the REST
API does, through the same `bosun.gateway.people.People`: a decided or answered run goes
back to the queue, and a worker (``bosun worker``, or ``bosun serve``) drives it on.

Ids may be abbreviated: a run by a prefix no other run shares (what a narrow ``list``
shows), an approval by ``<run>.<start of its digest>``, or by its run alone when the run
holds one call.
"""

from __future__ import annotations

import asyncio
import getpass
import json
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from bosun.cli.options import DbOption, abbreviate, open_store, resolve_run
from bosun.cli.render import (
    age,
    clip,
    command_hint,
    error,
    shorten,
    status_markup,
)
from bosun.data.store import RunRow, StepRow, Store
from bosun.errors import BosunError, RunNotFound, RunStateConflict, UserError
from bosun.gateway.people import Approval, People, approval_id
from bosun.runtime.runtime import RunResult, Runtime

__all__ = ["approvals_app", "escalations_app"]

approvals_app = typer.Typer(
    no_args_is_help=True,
    help="Tool calls held for a person's decision: list, show, approve, reject.",
)
escalations_app = typer.Typer(
    no_args_is_help=True,
    help="Runs waiting for a person, escalated or asking a question: list, show, answer, close.",
)
console = Console()

ByOption = Annotated[
    str | None,
    typer.Option("--by", help="Who decides, recorded as the approver (default: the OS user)."),
]
TenantOption = Annotated[str | None, typer.Option(help="Only this tenant's runs.")]
LimitOption = Annotated[int, typer.Option(help="How many runs at most.")]
ApprovalArg = Annotated[
    str, typer.Argument(help="The approval id (RUN.DIGEST, abbreviated as `list` shows it).")
]
RunArg = Annotated[str, typer.Argument(help="The run (its id, or an abbreviation).")]
NoteOption = Annotated[str, typer.Option("--note", help="What you tell the agent, or the outcome.")]
ForceOption = Annotated[
    bool, typer.Option("--force", help="Resolve it although another person claimed it.")
]

_DIGEST_SHOWN = 6  # hex digits of an approval's digest shown when ids are abbreviated
_FULL_IDS_FROM = 120  # terminal columns from which list commands show ids whole
_TEXT_SHOWN = 1500  # characters of an input part or tool result shown before cutting
_QUEUED = "queued: a worker (bosun worker, or bosun serve) drives it on"

T = TypeVar("T")


# --- approvals ----------------------------------------------------------------------------


@approvals_app.command("list")
def approvals_list(
    tenant: TenantOption = None, limit: LimitOption = 50, db: DbOption = None
) -> None:
    """Calls held for a decision, oldest first.

    Each with its approval id, agent, tool and how long it has waited, then its arguments
    and why it is held."""
    with _store(db) as store:
        held = _people(
            store, lambda p: p.approvals(tenant=tenant, all_tenants=tenant is None, limit=limit)
        )
        ids = _approval_ids(store, held)
    if not held:
        console.print("no calls are waiting for approval")
        return
    # One line of short columns per call, its arguments and reasons on lines of their own:
    # free text squeezed into table cells is unreadable at 80 columns.
    rows = [(ids[a.id], a.agent, a.tool, age(a.requested_at)) for a in held]
    headers = ("approval", "agent", "tool", "age")
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]
    console.print("[bold]" + escape(_line(headers, widths)) + "[/bold]", highlight=False)
    detail = console.width - 14
    for a, row in zip(held, rows, strict=True):
        console.print(_line(row, widths), markup=False, highlight=False, soft_wrap=True)
        console.print(
            f"    arguments {shorten(_compact(a.arguments), detail)}",
            markup=False,
            highlight=False,
        )
        console.print(
            f"    held      {shorten(_reasons(a.reasons), detail)}", markup=False, highlight=False
        )


def _line(cells: tuple[str, ...], widths: list[int]) -> str:
    return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()


@approvals_app.command("show")
def approvals_show(approval: ApprovalArg, db: DbOption = None) -> None:
    """One held call and the evidence to decide on.

    The proposed call with its full arguments, why it is held, the run's input with its
    trust labels, and the tool results so far."""
    with _store(db) as store:
        held = _people(store, lambda p: _find_approval(p, store, approval))
        row = store.get_run(held.run_id)
        steps = store.journal(held.run_id)
    console.print(f"approval {held.id}", markup=False, highlight=False, soft_wrap=True)
    facts = Table.grid(padding=(0, 2))
    facts.add_row("run", escape(row.id))
    facts.add_row("agent", f"{escape(row.agent)}   tenant {escape(row.tenant or '-')}")
    facts.add_row("tool", f"[bold]{escape(held.tool)}[/bold]")
    facts.add_row("held because", escape(_reasons(held.reasons)))
    facts.add_row("waiting", age(held.requested_at))
    console.print(facts)
    console.print("[bold]arguments[/bold]")
    console.print(_pretty(held.arguments), markup=False, highlight=False)
    _print_evidence(steps)
    command_hint(
        console, "approve (optionally with edited arguments)", f"bosun approvals approve {held.id}"
    )
    command_hint(console, "reject", f"bosun approvals reject {held.id} --reason TEXT")


@approvals_app.command("approve")
def approvals_approve(
    approval: ApprovalArg,
    args: Annotated[
        str | None,
        typer.Option("--args", help="Edited arguments to run the call with, as a JSON object."),
    ] = None,
    reason: Annotated[str | None, typer.Option(help="Why, for the record.")] = None,
    by: ByOption = None,
    db: DbOption = None,
) -> None:
    """Let a held call run; the run goes back to the queue.

    With --args the call runs with those arguments instead of the model's."""
    who = _operator(by)
    with _store(db) as store:
        arguments = None if args is None else _arguments(args)
        held, result = _people(
            store,
            lambda p: _decide(
                p, store, approval, approved=True, by=who, reason=reason, arguments=arguments
            ),
        )
    edited = " with edited arguments" if arguments is not None else ""
    _done(f"approved {held.tool}{edited} as {who}", held.run_id, result)


@approvals_app.command("reject")
def approvals_reject(
    approval: ApprovalArg,
    reason: Annotated[str, typer.Option(help="Why not: the agent is told.")],
    by: ByOption = None,
    db: DbOption = None,
) -> None:
    """Refuse a held call; the run goes back to the queue.

    The agent is told the call was rejected, and why."""
    who = _operator(by)
    with _store(db) as store:
        held, result = _people(
            store, lambda p: _decide(p, store, approval, approved=False, by=who, reason=reason)
        )
    _done(f"rejected {held.tool} as {who}", held.run_id, result)


async def _decide(
    people: People, store: Store, ref: str, *, approved: bool, by: str, **decision: Any
) -> tuple[Approval, RunResult]:
    held = await _find_approval(people, store, ref)
    result = await people.decide(held.run_id, held.call_id, approved=approved, by=by, **decision)
    return held, result


async def _find_approval(people: People, store: Store, ref: str) -> Approval:
    """The held call `ref` names, or a clear error: none, several, or already decided."""
    run_ref, _, digest = ref.partition(".")
    try:
        row = await asyncio.to_thread(resolve_run, store, run_ref)
    except RunNotFound:
        raise RunNotFound(f"no approval {ref!r} is waiting: no run {run_ref!r}") from None
    held = [a for a in await people.held(row) if _digest(a.id).startswith(digest)]
    if len(held) == 1:
        return held[0]
    if held:
        ids = ", ".join(a.id for a in held)
        raise UserError(f"run {row.id} holds {len(held)} calls: name one ({ids})")
    state = await people.runtime.state(row.id)
    for call_id, decided in reversed(state.approvals.items()):
        if _digest(approval_id(row.id, call_id)).startswith(digest):
            verdict = "approved" if decided.approved else "rejected"
            raise RunStateConflict(f"approval {ref} was already {verdict} by {decided.decided_by}")
    raise RunNotFound(f"no approval {ref!r} is waiting (run {row.id} is {row.status})")


def _approval_ids(store: Store, held: list[Approval]) -> dict[str, str]:
    """Approval ids as a list shows them: whole in a wide terminal, else the run's
    abbreviation and the start of the digest."""
    if console.width >= _FULL_IDS_FROM:
        return {a.id: a.id for a in held}
    runs = abbreviate(store, {a.run_id for a in held})
    return {a.id: f"{runs[a.run_id]}.{_digest(a.id)[:_DIGEST_SHOWN]}" for a in held}


def _print_evidence(steps: list[StepRow]) -> None:
    """What the run was given (each part with its trust label) and what its tools returned."""
    started: dict[str, Any] = next(
        (json.loads(s.payload) for s in steps if s.kind == "run_started"), {}
    )
    parts = started.get("parts") or [
        {"text": started.get("input", ""), "trust": "user", "source": "user"}
    ]
    console.print("[bold]input[/bold]")
    for part in parts:
        console.print(f"  {_trust(part['trust'])} {escape(part['source'])}")
        console.print(_indent(clip(part["text"], _TEXT_SHOWN)), markup=False, highlight=False)
    results = [json.loads(s.payload) for s in steps if s.kind == "tool_result"]
    console.print(f"[bold]tool results so far[/bold]: {len(results)}")
    for r in results:
        outcome = r["result"]
        status = "ok" if outcome.get("ok") else str(outcome.get("error_kind"))
        edited = " (edited)" if r.get("edited") else ""
        console.print(
            f"  {_trust(r.get('trust', 'trusted'))} {escape(r['tool'])}{edited} "
            f"{status_markup(status)}"
        )
        console.print(
            _indent(f"arguments {_compact(r.get('arguments', '{}'))}"),
            markup=False,
            highlight=False,
        )
        body = outcome.get("data") if outcome.get("ok") else outcome.get("guidance")
        text = body if isinstance(body, str) else json.dumps(body, ensure_ascii=False)
        console.print(_indent(clip(text, _TEXT_SHOWN)), markup=False, highlight=False)


# --- escalations --------------------------------------------------------------------------


@escalations_app.command("list")
def escalations_list(
    tenant: TenantOption = None, limit: LimitOption = 50, db: DbOption = None
) -> None:
    """Runs waiting for a person, newest first.

    Each with how long it has waited and who claimed it, then why: the agent's question,
    when it asked one."""
    with _store(db) as store:
        rows = _people(
            store, lambda p: p.escalations(tenant=tenant, all_tenants=tenant is None, limit=limit)
        )
        ids = {r.id: r.id for r in rows}
        if console.width < _FULL_IDS_FROM:
            ids = abbreviate(store, ids)
    if not rows:
        console.print("no runs are waiting for a person")
        return
    cells = [(ids[r.id], r.agent, r.status, age(r.updated_at), r.assignee or "-") for r in rows]
    headers = ("run", "agent", "status", "age", "claimed by")
    widths = [max([len(h), *(len(c[i]) for c in cells)]) for i, h in enumerate(headers)]
    console.print("[bold]" + escape(_line(headers, widths)) + "[/bold]", highlight=False)
    for row, line in zip(rows, cells, strict=True):
        console.print(_line(line, widths), markup=False, highlight=False, soft_wrap=True)
        console.print(f"    {shorten(_why(row), console.width - 4)}", markup=False, highlight=False)
        grounds = _grounds(_handoff(row) or {})
        if grounds:
            console.print(
                f"    {shorten(grounds, console.width - 4)}", markup=False, highlight=False
            )


@escalations_app.command("show")
def escalations_show(run: RunArg, db: DbOption = None) -> None:
    """The handoff package of a run waiting for a person.

    Why it stopped, its summary, the actions it took, and the question it waits on."""
    with _store(db) as store:
        row = resolve_run(store, run)
    handoff = _handoff(row)
    if row.status not in ("escalated", "waiting_human") or handoff is None:
        raise _fail(RunStateConflict(f"run {row.id} is {row.status}, not waiting for a person"))
    console.print(f"run {row.id}", markup=False, highlight=False, soft_wrap=True)
    facts = Table.grid(padding=(0, 2))
    facts.add_row("status", status_markup(row.status))
    facts.add_row("agent", f"{escape(row.agent)}   tenant {escape(row.tenant or '-')}")
    facts.add_row("waiting", age(row.updated_at))
    facts.add_row("claimed by", escape(row.assignee or "nobody"))
    facts.add_row("reason", escape(handoff.get("reason", "")))
    if handoff.get("pending_question"):
        facts.add_row("question", f"[bold]{escape(handoff['pending_question'])}[/bold]")
    if handoff.get("confidence") is not None:
        facts.add_row("confidence", escape(f"{float(handoff['confidence']):.2f}"))
    console.print(facts)
    console.print("[bold]summary[/bold]")
    console.print(
        _indent(clip(handoff.get("summary", ""), _TEXT_SHOWN)), markup=False, highlight=False
    )
    actions = handoff.get("actions_taken") or []
    console.print(f"[bold]actions taken[/bold]: {len(actions)}")
    for n, action in enumerate(actions, 1):
        status = "ok" if action.get("ok") else str(action.get("error_kind"))
        console.print(f"  {n}. {escape(action['tool'])} {status_markup(status)}")
        console.print(
            _indent(f"arguments {_compact(action.get('arguments', '{}'))}"),
            markup=False,
            highlight=False,
        )
    passages = [p for p in handoff.get("passages") or () if isinstance(p, dict)]
    if passages:
        console.print(f"[bold]passages the answer was checked against[/bold]: {len(passages)}")
        for n, item in enumerate(passages, 1):
            cited = " (cited)" if item.get("cited") else ""
            console.print(
                f"  {n}. {_trust('untrusted')} {escape(_cite(item))}{cited}", highlight=False
            )
    command_hint(
        console, "answer it (the agent continues)", f"bosun escalations answer {row.id} --note TEXT"
    )
    command_hint(
        console,
        "close it (your note is the outcome)",
        f"bosun escalations close {row.id} --note TEXT",
    )


@escalations_app.command("answer")
def escalations_answer(
    run: RunArg,
    note: NoteOption,
    by: ByOption = None,
    force: ForceOption = False,
    db: DbOption = None,
) -> None:
    """Hand the run back to the agent with your note; it goes back to the queue.

    The note answers the agent's question, when it asked one."""
    who = _operator(by)
    with _store(db) as store:
        row = _claimable(resolve_run(store, run), who, force=force)
        result = _people(store, lambda p: p.hand_back(row.id, note, by=who))
    _done(f"answered as {who}", row.id, result)


@escalations_app.command("close")
def escalations_close(
    run: RunArg,
    note: NoteOption,
    by: ByOption = None,
    force: ForceOption = False,
    db: DbOption = None,
) -> None:
    """Resolve the run without the agent: it completes with your note as its outcome."""
    who = _operator(by)
    with _store(db) as store:
        row = _claimable(resolve_run(store, run), who, force=force)
        result = _people(store, lambda p: p.close(row, note, by=who))
    _done(f"closed as {who}", row.id, result)


def _claimable(row: RunRow, who: str, *, force: bool) -> RunRow:
    # The API refuses a claimed escalation to everyone but its claimant and admins; the
    # operator of the store may override, but only on purpose.
    if row.assignee is not None and row.assignee != who and not force:
        raise RunStateConflict(
            f"run {row.id} is claimed by {row.assignee}; pass --force to resolve it anyway"
        )
    return row


def _handoff(row: RunRow) -> dict[str, Any] | None:
    handoff = json.loads(row.handoff) if row.handoff else None
    return handoff if isinstance(handoff, dict) else None


def _why(row: RunRow) -> str:
    """The reason a run waits, or the question it asked."""
    handoff = _handoff(row) or {}
    question = handoff.get("pending_question")
    if row.status == "waiting_human" and question:
        return f"asks: {question}"
    return str(handoff.get("reason") or "")


def _cite(passage: dict[str, Any]) -> str:
    """A passage as a citation: its document's title, version and span."""
    title, version = passage.get("title", "?"), passage.get("version", "?")
    span = passage.get("span") or ("?", "?")
    return f"{title} (version {version}, chars {span[0]}-{span[1]})"


def _grounds(handoff: dict[str, Any]) -> str:
    """A low-confidence handoff's confidence and its passages' titles, in one line; ``""``
    for any other handoff."""
    if handoff.get("confidence") is None:
        return ""
    titles = dict.fromkeys(
        str(p.get("title", "?")) for p in handoff.get("passages") or () if isinstance(p, dict)
    )
    found = ", ".join(titles) if titles else "none"
    return f"confidence {float(handoff['confidence']):.2f}; passages: {found}"


# --- shared -------------------------------------------------------------------------------


@contextmanager
def _store(db: str | None) -> Iterator[Store]:
    """The store `db` names, closed after; a bosun error inside is one red line, exit 1."""
    store = open_store(db)
    try:
        yield store
    except BosunError as exc:
        raise _fail(exc) from exc
    finally:
        store.close()


def _fail(exc: BosunError) -> typer.Exit:
    error(Console(stderr=True), str(exc))
    return typer.Exit(1)


def _people(store: Store, work: Callable[[People], Awaitable[T]]) -> T:
    """Run `work` with a `People` over `store` (a runtime that records, never drives)."""

    async def go() -> T:
        async with Runtime(store=store) as runtime:
            return await work(People(runtime))

    return asyncio.run(go())


def _operator(by: str | None) -> str:
    if by:
        return by
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name and no password entry (a bare container)
        raise typer.BadParameter("cannot tell who you are: pass --by NAME") from None


def _done(what: str, run_id: str, result: RunResult) -> None:
    status = result.status.value
    tail = _QUEUED if status == "queued" else status
    console.print(f"{what}: run {escape(run_id)} is {tail}", highlight=False)


def _arguments(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"--args is not JSON: {exc.msg} (at character {exc.pos})") from None
    if not isinstance(value, dict):
        raise UserError("--args must be a JSON object of the tool's arguments")
    return value


def _digest(id: str) -> str:
    return id.partition(".")[2]


def _compact(arguments: str) -> str:
    try:
        return json.dumps(json.loads(arguments), ensure_ascii=False, separators=(", ", ": "))
    except ValueError:
        return arguments


def _pretty(arguments: str) -> str:
    try:
        return _indent(json.dumps(json.loads(arguments), ensure_ascii=False, indent=2))
    except ValueError:
        return _indent(arguments)


def _reasons(reasons: Any) -> str:
    if reasons is None:
        return "the tool requires approval"
    if isinstance(reasons, str):
        return reasons
    if isinstance(reasons, list):
        return "; ".join(map(str, reasons))
    return json.dumps(reasons, ensure_ascii=False)


def _trust(label: str) -> str:
    colour = {"trusted": "green", "user": "cyan", "untrusted": "red"}.get(label, "white")
    return f"[{colour}]\\[{escape(label)}][/{colour}]"


def _indent(text: str) -> str:
    return "\n".join(f"    {line}" for line in text.splitlines() or [""])
