"""``bosun approvals`` and ``bosun escalations`` on a real store (SQLite and PostgreSQL), with
runs parked by a scripted model: every decision is checked in the journal and the audit log,
then the run is driven on to show the decision took effect."""

from __future__ import annotations

import asyncio
import getpass
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from typer.testing import CliRunner

import bosun.runtime.runtime as runtime_module
from bosun.cli.main import app
from bosun.cli.options import abbreviate, resolve_run
from bosun.data.store import Store
from bosun.errors import RunNotFound, UserError
from bosun.knowledge import KnowledgeBase
from bosun.knowledge.embeddings import MiniLmEmbedder
from bosun.knowledge.grounding import ConfidencePolicy
from bosun.memory.knowledge import KnowledgeTool
from bosun.models.base import ModelRequest, ModelResponse
from bosun.runtime import Agent, Budget, Runtime
from bosun.testing import ScriptedModel, call, reply
from bosun.tools import tool
from bosun.trust import Content, Trust

runner = CliRunner()
SENT: list[tuple[str, str]] = []


@tool
def lookup(q: str) -> str:
    """Look something up."""
    return f"found {q}: ann prefers email"


@tool(side_effect=True, risk="write", requires_approval=True)
def send(to: str, text: str) -> str:
    """Send a message (needs a person's approval)."""
    SENT.append((to, text))
    return f"sent to {to}"


def policy(request: ModelRequest) -> ModelResponse:
    """'send': lookup, then send, then answer; 'ask': ask a person, then answer with the
    answer; 'loop': look up forever (the step budget escalates it)."""
    text = next(m.content or "" for m in request.messages if m.role == "user")
    turn = sum(m.role == "assistant" for m in request.messages)
    last = request.messages[-1].content or ""
    if "ask" in text:
        return call("ask_human", {"question": "which plan?"}) if turn == 0 else reply(f"ok: {last}")
    if "loop" in text:
        return call("lookup", {"q": f"x{turn}"})
    if turn == 0:
        return call("lookup", {"q": "ann"})
    if turn == 1:
        return call("send", {"to": "ann@example.com", "text": "hi"})
    return reply(f"done: {last}")


def agent() -> Agent:
    return Agent(
        name="helper",
        tools=[lookup, send],
        model=ScriptedModel(policy),
        ask_human=True,
        budget=Budget(max_steps=3),
    )


@dataclass
class Desk:
    """A store with parked runs: two held sends (tenants acme, globex), one question
    (acme), one escalation (globex)."""

    db: str
    store: Store
    send_acme: str
    send_globex: str
    asking: str
    escalated: str

    def journal(self, run_id: str, kind: str) -> list[dict[str, object]]:
        return [json.loads(s.payload) for s in self.store.journal(run_id) if s.kind == kind]

    def audit(self, run_id: str, action: str) -> list[dict[str, object]]:
        return [r for r in self.store.audit_rows(run_id=run_id) if r["action"] == action]

    def drive(self, run_id: str) -> str:
        """Drive the run on, as a worker would; its status after."""

        async def go() -> str:
            async with Runtime(store=self.store, agents=[agent()]) as rt:
                return (await rt.resume(run_id)).status.value

        return asyncio.run(go())


@pytest.fixture
def desk(db_url: str) -> Iterator[Desk]:
    store = Store.open(db_url)

    async def park() -> tuple[str, ...]:
        helper = agent()
        async with Runtime(store=store, agents=[helper]) as rt:
            email = Content(
                text="Please write to ann about her order.",
                trust=Trust.UNTRUSTED,
                source="email",
            )
            runs = [
                await rt.run(helper, [Content(text="send ann a note"), email], tenant="acme"),
                await rt.run(helper, "send it to ann", tenant="globex"),
                await rt.run(helper, "ask someone", tenant="acme"),
                await rt.run(helper, "loop around", tenant="globex"),
            ]
        return tuple(r.run_id for r in runs)

    ids = asyncio.run(park())
    statuses = [store.get_run(i).status for i in ids]
    assert statuses == ["waiting_approval", "waiting_approval", "waiting_human", "escalated"]
    SENT.clear()
    yield Desk(db_url, store, *ids)
    store.close()


def cli(desk: Desk, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, [*args, "--db", desk.db])
    return result.exit_code, result.output


def rows_of(out: str, run_id: str) -> list[str]:
    """The lines of a list whose first column names `run_id` (abbreviated or whole)."""
    return [
        line
        for line in out.splitlines()
        if line[:1].isalnum() and run_id.startswith(line.split()[0].split(".")[0])
    ]


def held_id(desk: Desk, run_id: str) -> str:
    code, out = cli(desk, "approvals", "list")
    assert code == 0, out
    (line,) = rows_of(out, run_id)
    return line.split()[0]


def test_approvals_list_shows_held_calls_per_tenant(desk: Desk) -> None:
    code, out = cli(desk, "approvals", "list")
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0].split() == ["approval", "agent", "tool", "age"]
    # Oldest first; at the runner's 80 columns ids are abbreviated: <run prefix>.<digest>.
    acme, globex = rows_of(out, desk.send_acme), rows_of(out, desk.send_globex)
    assert len(acme) == len(globex) == 1 and lines.index(acme[0]) < lines.index(globex[0])
    assert acme[0].split()[1:3] == globex[0].split()[1:3] == ["helper", "send"]
    after_acme = lines[lines.index(acme[0]) + 1 : lines.index(acme[0]) + 3]
    assert after_acme == [
        '    arguments {"to": "ann@example.com", "text": "hi"}',
        "    held      untrusted content is in context (input:email)",
    ]
    assert lines[lines.index(globex[0]) + 2] == "    held      the tool requires approval"
    assert all(len(line) <= 80 for line in lines)
    code, out = cli(desk, "approvals", "list", "--tenant", "acme")
    assert code == 0 and rows_of(out, desk.send_acme) and not rows_of(out, desk.send_globex)
    code, out = cli(desk, "approvals", "list", "--tenant", "initech")
    assert code == 0 and "no calls are waiting for approval" in out


def test_approvals_show_gives_the_call_and_the_evidence(desk: Desk) -> None:
    code, out = cli(desk, "approvals", "show", held_id(desk, desk.send_acme))
    assert code == 0, out
    lines = out.splitlines()
    (full_id,) = [line.split()[1] for line in lines if line.startswith("approval ")]
    assert full_id.startswith(desk.send_acme + ".") and len(full_id.split(".")[1]) == 16
    assert "send" in out and "tenant acme" in out
    assert '"to": "ann@example.com",' in out and '"text": "hi"' in out  # full, pretty arguments
    assert "untrusted content is in context (input:email)" in out
    # The input parts with their trust labels, and the tool result so far.
    assert "[user] user" in out and "send ann a note" in out
    assert "[untrusted] email" in out and "write to ann about her order" in out
    assert "tool results so far: 1" in out and "lookup ok" in out
    assert "found ann: ann prefers email" in out
    assert f"  bosun approvals approve {full_id}" in lines
    assert f"  bosun approvals reject {full_id} --reason TEXT" in lines


def test_approve_with_edited_arguments_records_the_approver(desk: Desk) -> None:
    approval = held_id(desk, desk.send_acme)
    edited = '{"to": "ann@example.com", "text": "hello, edited"}'
    code, out = cli(desk, "approvals", "approve", approval, "--args", edited, "--by", "rita")
    assert code == 0, out
    assert "approved send with edited arguments as rita" in out and "queued" in out
    # Left for a worker, like the API does.
    assert desk.store.get_run(desk.send_acme).status == "queued"
    (decided,) = desk.journal(desk.send_acme, "approval_decided")
    assert decided["decided_by"] == "rita" and decided["approved"] is True
    assert decided["arguments"] == {"to": "ann@example.com", "text": "hello, edited"}
    assert [r["approver"] for r in desk.audit(desk.send_acme, "approval")] == ["rita"]
    assert desk.drive(desk.send_acme) == "completed"
    assert SENT == [("ann@example.com", "hello, edited")]
    # Deciding it again says who already did.
    code, out = cli(desk, "approvals", "approve", approval, "--by", "rita")
    assert code == 1 and "was already approved by rita" in out
    assert len(desk.journal(desk.send_acme, "approval_decided")) == 1


def test_reject_tells_the_agent_and_the_call_never_runs(desk: Desk) -> None:
    approval = held_id(desk, desk.send_globex)
    code, out = cli(desk, "approvals", "reject", approval, "--reason", "not to her", "--by", "rita")
    assert code == 0, out
    assert "rejected send as rita" in out
    (decided,) = desk.journal(desk.send_globex, "approval_decided")
    assert decided["approved"] is False and decided["reason"] == "not to her"
    assert [r["approver"] for r in desk.audit(desk.send_globex, "approval")] == ["rita"]
    assert desk.drive(desk.send_globex) == "completed"
    assert SENT == []
    sends = [r for r in desk.journal(desk.send_globex, "tool_result") if r["tool"] == "send"]
    assert sends and sends[0]["result"]["ok"] is False  # type: ignore[index]
    code, out = cli(desk, "approvals", "reject", approval, "--reason", "again")
    assert code == 1 and "was already rejected by rita" in out


def test_the_approver_defaults_to_the_os_user(desk: Desk) -> None:
    # A run holding one call is named by its run alone.
    code, out = cli(desk, "approvals", "approve", desk.send_acme)
    assert code == 0, out
    (decided,) = desk.journal(desk.send_acme, "approval_decided")
    assert decided["decided_by"] == getpass.getuser()
    assert [r["approver"] for r in desk.audit(desk.send_acme, "approval")] == [getpass.getuser()]


def test_escalations_list_and_show(desk: Desk) -> None:
    code, out = cli(desk, "escalations", "list")
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0].split() == ["run", "agent", "status", "age", "claimed", "by"]
    (asking,) = rows_of(out, desk.asking)
    assert asking.split()[1:3] == ["helper", "waiting_human"] and asking.endswith("-")
    assert lines[lines.index(asking) + 1] == "    asks: which plan?"
    (escalated,) = rows_of(out, desk.escalated)
    assert escalated.split()[1:3] == ["helper", "escalated"]
    reason = lines[lines.index(escalated) + 1]
    assert reason == "    step budget exhausted (3 of 3 model calls)"
    assert all(len(line) <= 80 for line in lines)
    code, out = cli(desk, "escalations", "list", "--tenant", "acme")
    assert code == 0 and rows_of(out, desk.asking) and not rows_of(out, desk.escalated)

    code, out = cli(desk, "escalations", "show", desk.escalated)
    assert code == 0, out
    assert f"run {desk.escalated}" in out
    assert "step budget exhausted (3 of 3 model calls)" in out
    assert "Objective: loop around" in out  # the summary
    assert "actions taken: 3" in out and '{"q": "x0"}' in out
    code, out = cli(desk, "escalations", "show", desk.asking)
    assert code == 0 and "question" in out and "which plan?" in out
    assert f"  bosun escalations answer {desk.asking} --note TEXT" in out.splitlines()


def test_answer_hands_the_run_back_to_the_agent(desk: Desk) -> None:
    code, out = cli(desk, "escalations", "answer", desk.asking, "--note", "gold", "--by", "rita")
    assert code == 0, out
    assert "answered as rita" in out and "queued" in out
    assert desk.store.get_run(desk.asking).status == "queued"
    (answer,) = desk.journal(desk.asking, "human_answer")
    assert answer["text"] == "gold" and answer["by"] == "rita"
    assert [r["approver"] for r in desk.audit(desk.asking, "hand_back")] == ["rita"]
    assert desk.drive(desk.asking) == "completed"
    assert "gold" in (desk.store.get_run(desk.asking).output or "")
    code, out = cli(desk, "escalations", "answer", desk.asking, "--note", "again")
    assert code == 1 and "is completed, not waiting for a person" in out


def test_close_ends_the_run_with_the_note(desk: Desk) -> None:
    code, out = cli(
        desk, "escalations", "close", desk.escalated, "--note", "handled by phone", "--by", "rita"
    )
    assert code == 0, out
    row = desk.store.get_run(desk.escalated)
    assert row.status == "completed" and row.output == "handled by phone"
    (closed,) = desk.audit(desk.escalated, "escalation_closed")
    assert closed["approver"] == "rita"
    code, out = cli(desk, "escalations", "close", desk.escalated, "--note", "again")
    assert code == 1 and "is completed, not escalated" in out


def test_a_claimed_escalation_is_left_to_its_claimant_unless_forced(desk: Desk) -> None:
    assert desk.store.assign(desk.escalated, "rita", statuses=["escalated"])
    code, out = cli(desk, "escalations", "close", desk.escalated, "--note", "mine", "--by", "ops")
    assert code == 1 and "claimed by rita" in out and "--force" in out
    assert desk.store.get_run(desk.escalated).status == "escalated"
    code, out = cli(desk, "escalations", "list")
    assert rows_of(out, desk.escalated)[0].split()[-1] == "rita"
    code, out = cli(
        desk, "escalations", "close", desk.escalated, "--note", "mine", "--by", "ops", "--force"
    )
    assert code == 0, out
    assert [r["approver"] for r in desk.audit(desk.escalated, "escalation_closed")] == ["ops"]


@pytest.mark.parametrize(
    "args",
    [
        ["approvals", "show", "nope"],
        ["approvals", "approve", "0123456789abcdef.00"],
        ["approvals", "reject", "nope", "--reason", "x"],
        ["escalations", "show", "nope"],
        ["escalations", "answer", "nope", "--note", "x"],
        ["escalations", "close", "0123456789abcdef", "--note", "x"],
    ],
)
def test_an_unknown_id_is_one_red_line(desk: Desk, args: list[str]) -> None:
    code, out = cli(desk, *args)
    assert code == 1
    assert out.count("\n") == 1 and out.startswith("error: no ")


def test_wrong_requests_are_clear_errors(desk: Desk) -> None:
    approval = held_id(desk, desk.send_acme)
    code, out = cli(desk, "approvals", "approve", approval, "--args", "{not json")
    assert code == 1 and "--args is not JSON" in out
    code, out = cli(desk, "approvals", "approve", approval, "--args", '["a"]')
    assert code == 1 and "must be a JSON object" in out
    assert desk.journal(desk.send_acme, "approval_decided") == []
    # An escalated run holds no call; a held call is not an escalation.
    code, out = cli(desk, "approvals", "approve", desk.escalated)
    assert code == 1 and f"run {desk.escalated} is escalated" in out
    code, out = cli(desk, "escalations", "show", desk.send_acme)
    assert code == 1 and "is waiting_approval, not waiting for a person" in out
    code, out = cli(desk, "escalations", "close", desk.send_acme, "--note", "x")
    assert code == 1 and "not escalated" in out
    code, out = cli(desk, "approvals", "reject", approval)
    assert code == 2 and "--reason" in out  # required


def test_run_ids_abbreviate_to_prefixes_no_other_run_shares(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = iter(["01a2b3c4d5e6" + tail for tail in ("aaaa0001", "aaaa0002", "bbbb0000")])
    monkeypatch.setattr(runtime_module, "new_run_id", lambda: next(made) + "0" * 8)
    store = Store.open(db_url)

    async def start() -> list[str]:
        helper = agent()
        async with Runtime(store=store, agents=[helper]) as rt:
            return [await rt.start(helper, f"run {n}") for n in range(3)]

    ids = asyncio.run(start())
    short = abbreviate(store, ids)
    assert [len(s) for s in short.values()] == [20, 20, 20]  # one length: they line up
    assert len(set(short.values())) == 3
    for run_id, prefix in short.items():
        assert resolve_run(store, prefix).id == run_id
        assert resolve_run(store, run_id).id == run_id
    with pytest.raises(UserError, match="starts several runs' ids"):
        resolve_run(store, "01a2b3c4d5e6aaaa")
    with pytest.raises(RunNotFound, match="no run with id '01a2b3c4ff'"):
        resolve_run(store, "01a2b3c4ff")
    with pytest.raises(RunNotFound):
        resolve_run(store, "01a2b3c")  # shorter than any abbreviation shown
    shown = runner.invoke(app, ["runs", "show", short[ids[2]], "--db", db_url])
    assert shown.exit_code == 0 and f"run {ids[2]}" in shown.output
    store.close()


def test_a_low_confidence_escalation_shows_its_confidence_and_passages(db_url: str) -> None:
    store = Store.open(db_url)
    kb = KnowledgeBase(store, embedder=MiniLmEmbedder())
    kb.add_text(
        "# Refunds\n\nAnnual plans can be refunded within 30 days of the invoice date.\n",
        source="refunds.md",
        media_type="text/markdown",
    )

    def invent(request: ModelRequest) -> ModelResponse:
        if not any(m.role == "tool" for m in request.messages):
            return call("search_knowledge", {"query": "annual plan refund"})
        return reply("Platinum members get a free espresso machine from the Lisbon desk.")

    desk_agent = Agent(
        name="desk",
        tools=[KnowledgeTool(kb).tool()],
        model=ScriptedModel(invent),
        confidence=ConfidencePolicy(threshold=0.6),
    )

    async def go() -> str:
        async with Runtime(store=store) as rt:
            return (await rt.run(desk_agent, "Do I get a free espresso machine?")).run_id

    run_id = asyncio.run(go())
    try:
        listed = runner.invoke(app, ["escalations", "list", "--db", db_url])
        assert listed.exit_code == 0, listed.output
        lines = listed.output.splitlines()
        (row,) = rows_of(listed.output, run_id)
        assert lines[lines.index(row) + 1].startswith("    low confidence: 0.00 is below 0.60")
        assert lines[lines.index(row) + 2] == "    confidence 0.00; passages: Refunds"

        shown = runner.invoke(app, ["escalations", "show", run_id, "--db", db_url])
        assert shown.exit_code == 0, shown.output
        assert re.search(r"^confidence +0\.00 *$", shown.output, flags=re.M)
        assert "passages the answer was checked against: 1" in shown.output
        assert re.search(
            r"^  1\. \[untrusted\] Refunds \(version 1, chars 0-\d+\)$", shown.output, flags=re.M
        )
    finally:
        store.close()
