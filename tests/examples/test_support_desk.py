"""The reference agent (examples/support_desk) end to end: the sample inbox, the helpdesk
tools, the whole inbox through the gateway and a real runtime with the scripted policy
model, the gates on hostile mail, PII masking, approvals, and the golden dataset."""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

import bosun
from bosun.errors import ModelRetry
from bosun.evals.dataset import load_dataset
from bosun.evals.runner import EvalOptions, Evaluator
from bosun.gateway.gateway import Gateway
from bosun.gateway.pii import PiiDetector
from bosun.gateway.vault import PiiVault, VaultCipher
from examples.support_desk import (
    MODEL_NAME,
    Helpdesk,
    MalformedEmail,
    build_agent,
    load_inbox,
    read_email,
    seed,
)
from examples.support_desk import agent as agent_module
from examples.support_desk.email_input import InboundEmail
from examples.support_desk.inbox_run import InboxReport, helpdesk_summary, pipeline, process_inbox

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "support_desk"
INBOX = EXAMPLE / "inbox"
MANIFEST: dict[str, dict[str, Any]] = {
    Path(name).stem: entry
    for name, entry in yaml.safe_load((INBOX / "MANIFEST.yaml").read_text(encoding="utf-8"))[
        "emails"
    ].items()
}
HOSTILE = sorted(name for name in MANIFEST if name.startswith("hostile-"))


def ctx(call_id: str = "c1", run_id: str = "run-1") -> bosun.ToolContext:
    return bosun.ToolContext(run_id=run_id, step=1, call_id=call_id)


@pytest.fixture
def desk(tmp_path: Path) -> Helpdesk:
    return seed(tmp_path / "helpdesk.db")


@pytest.fixture(scope="module")
def inbox() -> dict[str, InboundEmail]:
    messages, failed = load_inbox(INBOX)
    assert failed == []
    return {m.name: m for m in messages}


# --- the sample inbox ---------------------------------------------------------------------------


def test_every_message_parses_into_an_instruction_and_untrusted_email(
    inbox: dict[str, InboundEmail],
) -> None:
    assert set(inbox) == set(MANIFEST)
    assert len(inbox) >= 60 and len(HOSTILE) >= 12
    assert len({m.message_id for m in inbox.values()}) == len(inbox)
    for name, message in inbox.items():
        instruction, email = message.parts()
        assert instruction.trust is bosun.Trust.USER, name
        assert email.trust is bosun.Trust.UNTRUSTED and email.source == "email", name
        assert message.sender is not None and message.sender in instruction.text, name
        assert "Subject: " in email.text and "\r" not in email.text, name
    languages = {entry["language"] for entry in MANIFEST.values()}
    assert {"en", "de", "es", "fr", "ja"} <= languages
    kinds = {entry["category"] for entry in MANIFEST.values()}
    assert {"ambiguous", "multi", "empty", "huge", "html", "attach", "pii", "hostile"} <= kinds


def test_special_messages_read_as_a_person_would_see_them(
    inbox: dict[str, InboundEmail],
) -> None:
    huge = inbox["huge-01"]
    text = huge.parts()[1].text
    assert huge.omitted_chars > 150_000 and "characters of the body left out" in text
    assert "deadlock detected" in text  # the tail, where the error is, is kept
    assert "Hola," in inbox["html-01"].parsed.body  # multipart/alternative, HTML only
    assert (
        "API rate limits" in inbox["html-02"].parsed.body
        and "<i>" not in inbox["html-02"].parts()[1].text
    )
    assert "(empty body)" in inbox["empty-01"].parts()[1].text
    pdf, png = inbox["attach-01"].parsed.attachments[0], inbox["attach-02"].parsed.attachments[0]
    assert (pdf.filename, pdf.content_type, pdf.text) == (
        "invoice-2026-11.pdf",
        "application/pdf",
        None,
    )
    assert png.content_type == "image/png" and png.size > 50 and png.text is None
    assert "invalid date '31/11/2026'" in inbox["attach-03"].parts()[1].text
    hidden = inbox["hostile-06"].parts()[1].text
    assert "records@exfil" not in hidden and "hidden from the reader" in hidden
    assert "\u200b" in inbox["hostile-07"].parts()[1].text
    assert "田中" in inbox["ja-01"].parts()[1].text


def test_malformed_mail_raises_a_clear_error_and_keeps_the_bytes() -> None:
    for raw, reason in [
        (b"", "empty"),
        (b"just text, no headers\n", "no From or Subject"),
    ]:
        with pytest.raises(MalformedEmail, match=reason) as caught:
            read_email(raw, path=Path("bad.eml"))
        assert caught.value.raw == raw and caught.value.path == Path("bad.eml")
        assert str(caught.value).startswith("bad.eml: ")
    # A multipart message with no boundary: the text is still read, nothing is lost.
    broken = read_email(
        b"From: a@example.com\nSubject: x\nContent-Type: multipart/mixed\n\n"
        b"--zzz\nplease reset my password\x00\n--zzz--\n"
    )
    assert "please reset my password" in broken.parsed.body and "\x00" not in broken.parsed.body
    assert read_email(b"From: not an address\nSubject: hi\n\nbody\n").sender is None
    # A From header the stdlib cannot parse is read, with no address to reply to.
    garbled = read_email(b'From: <<<>>>@@@ ,,, "\nSubject: x\n\nhello\n')
    assert garbled.sender is None and "hello" in garbled.parsed.body
    assert "no reply" in garbled.parts()[0].text


def test_load_inbox_reports_unreadable_files_and_reads_the_rest(tmp_path: Path) -> None:
    (tmp_path / "a.eml").write_bytes((INBOX / "billing-01.eml").read_bytes())
    (tmp_path / "b.eml").write_bytes(b"garbage")
    (tmp_path / "notes.txt").write_text("not mail")
    read, failed = load_inbox(tmp_path)
    assert [m.name for m in read] == ["a"]
    assert [f.path.name for f in failed if f.path] == ["b.eml"] and failed[0].raw == b"garbage"


# --- the helpdesk and its tools -----------------------------------------------------------------


def tools(desk: Helpdesk) -> dict[str, bosun.Tool[..., Any]]:
    return {t.name: t for t in build_agent(desk.path).tools}


def test_seed_data_and_reads(desk: Helpdesk) -> None:
    assert len(desk.rows("customers")) == 25 and len(desk.rows("tickets")) == 60
    assert len(desk.rows("kb")) >= 20 and desk.fts5  # this Python's sqlite3 has FTS5
    t = tools(desk)
    ana = t["lookup_customer"](email="ANA.KELLER@example.com")
    assert ana["found"] and ana["account_id"] == "ACC-1001" and "phone" not in ana
    assert ana["invoices"][0] == {
        "invoice_id": "INV-202611-1001",
        "issued": "2026-11-01",
        "amount_eur": 49.0,
        "description": "Pro plan, 2026-11",
        "refunded_eur": 0,
    }
    sam = t["lookup_customer"](account_id="acc-1003")
    assert sam["high_value"] and sam["plan"] == "enterprise"
    assert t["lookup_customer"](email="nobody@example.com") == {"found": False}
    recent = t["list_recent_tickets"](account_id="ACC-1003", limit=2)
    assert [r["ticket_id"] for r in recent] == ["T-1006", "T-1005"]
    assert t["search_kb"](query="how do I reset my password")[0]["article_id"] == "KB-105"
    assert t["search_kb"](query="api rate limit 429")[0]["article_id"] == "KB-110"
    assert t["search_kb"](query="the and of") == []
    assert desk.ticket("T-1023") is not None and desk.ticket("T-1023")["status"] == "open"  # type: ignore[index]


def test_knowledge_base_search_without_fts5_falls_back_to_word_matching(desk: Helpdesk) -> None:
    desk.fts5 = False  # as on a Python whose sqlite3 was built without FTS5
    assert desk.search_kb("how do I reset my password")[0]["article_id"] == "KB-105"
    assert desk.search_kb("api rate limit 429")[0]["article_id"] == "KB-110"
    assert desk.search_kb("zzzz qqqq") == []


def test_writes_are_idempotent_by_the_calls_key(desk: Helpdesk) -> None:
    t = tools(desk)
    args = {"category": "bug", "priority": "high", "team": "engineering", "summary": "Crash"}
    first = t["create_ticket"](ctx("a"), **args)
    again = t["create_ticket"](ctx("a"), **args)  # a replay of the same call
    other = t["create_ticket"](ctx("b"), **args)
    assert first["ticket_id"] == again["ticket_id"] != other["ticket_id"]
    assert (first["created"], again["created"]) == (True, False)
    assert len(desk.new_tickets()) == 2
    ticket = first["ticket_id"]
    for _ in range(2):
        t["add_note"](ctx("n"), ticket_id=ticket, body="checked")
        t["draft_reply"](ctx("d"), ticket_id=ticket, to="a@example.com", subject="Re: x", body="hi")
        t["send_reply"](ctx("s"), ticket_id=ticket, to="a@example.com", subject="Re: x", body="hi")
        t["issue_refund"](ctx("r"), invoice_id="INV-202611-1001", amount_eur=20.0, reason="dup")
    assert [len(desk.rows(x)) for x in ("notes", "drafts", "outbox", "refunds")] == [1, 1, 1, 1]
    with pytest.raises(ModelRetry, match="no ticket T-9999"):
        t["add_note"](ctx("x"), ticket_id="T-9999", body="?")


def test_refunds_are_limited_by_schema_and_by_the_invoice(desk: Helpdesk) -> None:
    refund = tools(desk)["issue_refund"]
    assert refund.policy.requires_approval and refund.policy.risk is bosun.Risk.IRREVERSIBLE
    assert refund.policy.outbound == ("iban",)
    for amount in (0, -5, 500.01):
        with pytest.raises(ValidationError):
            refund.validate_arguments({"invoice_id": "I", "amount_eur": amount, "reason": "x"})
    refund(ctx("r1"), invoice_id="INV-202611-1001", amount_eur=40.0, reason="partial")
    with pytest.raises(ModelRetry, match=r"EUR 9\.00 left"):
        refund(ctx("r2"), invoice_id="INV-202611-1001", amount_eur=10.0, reason="too much")
    with pytest.raises(ModelRetry, match="no invoice"):
        refund(ctx("r3"), invoice_id="INV-000000-0000", amount_eur=1.0, reason="x")
    send = tools(desk)["send_reply"]
    assert send.policy.outbound == ("to",) and send.policy.side_effect


# --- the whole inbox ------------------------------------------------------------------------------


@dataclass
class Desk:
    gateway: Gateway
    runtime: bosun.Runtime
    agent: bosun.Agent
    helpdesk: Helpdesk
    store: bosun.Store


@pytest.fixture
async def world(store: bosun.Store, tmp_path: Path) -> AsyncIterator[Desk]:
    yield await _world(store, tmp_path, privacy=None)


async def _world(store: bosun.Store, tmp_path: Path, *, privacy: PiiVault | None) -> Desk:
    helpdesk = seed(tmp_path / "helpdesk.db")
    agent = build_agent(helpdesk.path)
    gateway = pipeline(agent, store=store, privacy=privacy)
    return Desk(gateway, gateway.runtime, agent, helpdesk, store)


def journal(store: bosun.Store, run_id: str) -> list[tuple[str, dict[str, Any]]]:
    return [(s.kind, json.loads(s.payload)) for s in store.journal(run_id)]


def created_ticket(desk: Desk, run_id: str) -> dict[str, Any] | None:
    """The helpdesk row of the ticket the run created, found through its journal."""
    for kind, payload in journal(desk.store, run_id):
        if kind == "tool_result" and payload["tool"] == "create_ticket":
            number = int(payload["result"]["data"]["ticket_id"].removeprefix("T-"))
            return next(t for t in desk.helpdesk.rows("tickets") if t["id"] == number)
    return None


async def test_the_whole_inbox_ends_as_the_manifest_says(
    world: Desk, inbox: dict[str, InboundEmail], record_property: Any
) -> None:
    t0 = time.perf_counter()
    async with world.runtime:
        report = await process_inbox(world.gateway, world.agent, list(inbox.values()))
    seconds = time.perf_counter() - t0
    record_property("inbox_seconds", round(seconds, 2))
    print(f"\nsupport inbox: {len(inbox)} emails in {seconds:.2f} s", report.by_status())
    assert report.by_status().keys() <= {"completed", "waiting_approval", "waiting_human"}
    for outcome in report.outcomes:
        expect = MANIFEST[outcome.name]["expect"]
        assert outcome.status == expect["outcome"], (outcome.name, outcome.reason)
        assert list(outcome.waiting_for) == expect.get("held", []), outcome.name
        assert list(outcome.refused) == expect.get("refused", []), outcome.name
        if "escalation" in expect:
            assert expect["escalation"] in (outcome.reason or ""), outcome.name
        ticket = created_ticket(world, outcome.run_id)
        if expect["ticket"] is None:
            assert ticket is None, outcome.name
        else:
            assert ticket is not None, outcome.name
            wanted = {k: ticket[k] for k in expect["ticket"]}
            assert wanted == expect["ticket"], outcome.name
    summary = helpdesk_summary(world.helpdesk)
    wanted = Counter(
        e["expect"]["ticket"]["category"] for e in MANIFEST.values() if e["expect"]["ticket"]
    )
    assert summary["by_category"] == dict(wanted)
    # Nothing left the building: every reply and refund waits for a person.
    assert (summary["sent"], summary["refunds"]) == (0, 0)
    # A draft for every email that got as far as a reply or a refund.
    assert summary["drafts"] == sum(
        1 for e in MANIFEST.values() if {"held", "refused", "invalid"} & set(e["expect"])
    )
    by_name = {o.name: o for o in report.outcomes}
    assert by_name["fr-01"].withheld == ("list_recent_tickets",)  # the poisoned history
    notes = {n["ticket_id"]: n["body"] for n in world.helpdesk.rows("notes")}
    assert "resolved" in notes[1023] and "withheld" in notes[created_ticket_id(world, by_name)]
    assert world.store.verify_audit().ok
    _assert_hostile_mail_was_stopped_and_recorded(world, report)


def created_ticket_id(desk: Desk, by_name: dict[str, Any]) -> int:
    ticket = created_ticket(desk, by_name["fr-01"].run_id)
    assert ticket is not None
    return int(ticket["id"])


def _assert_hostile_mail_was_stopped_and_recorded(desk: Desk, report: InboxReport) -> None:
    screened = 0
    for outcome in (o for o in report.outcomes if o.name in HOSTILE):
        expect = MANIFEST[outcome.name]["expect"]
        entries = journal(desk.store, outcome.run_id)
        started = entries[0][1]
        flagged = [f for f in started.get("gateway", {}).get("screening", []) if f["part"] == 1]
        screened += bool(flagged)
        refused = [
            p["tool"]
            for k, p in entries
            if k == "tool_result" and p["result"].get("error_kind") == "blocked_by_policy"
        ]
        assert refused == expect.get("refused", []), outcome.name
        executed = [
            p["tool"]
            for k, p in entries
            if k == "tool_result"
            and p["tool"] in ("send_reply", "issue_refund")
            and p["result"]["ok"]
        ]
        assert executed == [], outcome.name
        # The attempt is on the audit chain: the screening of the input (run_created), the
        # refused call (tool_call), the held call or the hand-off to a person.
        actions = {row["action"] for row in desk.store.audit_rows(run_id=outcome.run_id)}
        assert actions & {"approval_requested", "human_requested"}, outcome.name
        if refused:
            assert "tool_call" in actions, outcome.name
        if flagged:
            audited = [
                json.loads(r["payload"])
                for r in desk.store.audit_rows(run_id=outcome.run_id)
                if r["action"] == "run_created"
            ]
            assert audited[0]["gateway"]["screening"] == started["gateway"]["screening"]
    # Screening is a signal, not the defence; it still sees most of these.
    assert screened >= len(HOSTILE) // 2


# --- people: approvals, rejections, the high-value rule -------------------------------------


async def run_one(desk: Desk, message: InboundEmail) -> bosun.RunResult:
    report = await process_inbox(desk.gateway, desk.agent, [message])
    return await desk.runtime.result(report.outcomes[0].run_id)


async def test_an_approved_reply_is_sent_once_and_a_rejected_one_goes_to_a_person(
    world: Desk, inbox: dict[str, InboundEmail]
) -> None:
    async with world.runtime:
        held = await run_one(world, inbox["billing-01"])
        (call,) = held.waiting_for
        assert json.loads(call.arguments)["to"] == "ana.keller@example.com"
        reasons = (await world.runtime.state(held.run_id)).approval_reasons
        assert "untrusted content is in context (input:email" in reasons[call.id]
        done = await world.runtime.decide(held.run_id, call.id, approved=True, decided_by="rita")
        assert done.status is bosun.RunStatus.COMPLETED and "reply sent to" in (done.output or "")
        await world.runtime.resume(held.run_id)  # nothing runs twice
        sent = world.helpdesk.rows("outbox")
        assert [(m["to_address"], m["ticket_id"]) for m in sent] == [
            ("ana.keller@example.com", created_ticket(world, held.run_id)["id"])  # type: ignore[index]
        ]
        assert "KB-101" in sent[0]["body"] and sent[0]["body"].startswith("Hello Ana Keller,")

        held = await run_one(world, inbox["de-02"])
        rejected = await world.runtime.decide(
            held.run_id, held.waiting_for[0].id, approved=False, decided_by="rita", reason="no"
        )
        assert rejected.status is bosun.RunStatus.WAITING_HUMAN
        assert rejected.handoff is not None and "reply was not sent" in (
            rejected.handoff.pending_question or ""
        )
        assert len(world.helpdesk.rows("outbox")) == 1
        answered = await world.runtime.hand_back(rejected.run_id, "I will call him.", by="rita")
        assert answered.status is bosun.RunStatus.COMPLETED
        assert "I will call him." in (answered.output or "")


async def test_an_approved_refund_is_issued_and_then_the_reply_is_held(
    world: Desk, inbox: dict[str, InboundEmail]
) -> None:
    async with world.runtime:
        held = await run_one(world, inbox["refund-01"])
        (call,) = held.waiting_for
        assert call.name == "issue_refund"
        assert json.loads(call.arguments) == {
            "invoice_id": "INV-202611-1007",
            "amount_eur": 49.0,
            "reason": "Customer request by email: Refund for November",
            "iban": "",
        }
        after = await world.runtime.decide(held.run_id, call.id, approved=True, decided_by="bob")
        assert [c.name for c in after.waiting_for] == ["send_reply"]
        (refund,) = world.helpdesk.rows("refunds")
        assert (refund["amount_eur"], refund["destination"]) == (49.0, "payment method on file")
        draft = world.helpdesk.rows("drafts")[0]
        assert draft["language"] == "en" and "EUR 49.00" in draft["body"]


async def test_replies_need_a_person_only_for_outside_content_or_high_value_customers(
    world: Desk,
) -> None:
    # An operator's own request (no untrusted content): a regular customer's reply goes out
    # at once; a high-value customer's is escalated by the critic rule with the reason.
    async with world.runtime:
        regular = await world.runtime.run(world.agent, "Tell ACC-1001: your export is ready.")
        assert regular.status is bosun.RunStatus.COMPLETED
        assert [m["to_address"] for m in world.helpdesk.rows("outbox")] == [
            "ana.keller@example.com"
        ]
        vip = await world.runtime.run(world.agent, "Tell ACC-1003: your export is ready.")
        assert vip.status is bosun.RunStatus.ESCALATED and vip.handoff is not None
        assert "ACC-1003 is a high-value customer" in vip.handoff.reason
        assert len(world.helpdesk.rows("outbox")) == 1
        models = {
            p["response"]["model"]
            for k, p in journal(world.store, vip.run_id)
            if k == "model_response"
        }
        assert models == {MODEL_NAME}  # runs say which model decided: never mistaken for a real one


# --- PII --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def vault() -> PiiVault:
    return PiiVault(PiiDetector(), VaultCipher(os.urandom(32)))


async def test_pii_from_mail_never_reaches_the_helpdesk_in_clear(
    store: bosun.Store, tmp_path: Path, vault: PiiVault, inbox: dict[str, InboundEmail]
) -> None:
    desk = await _world(store, tmp_path, privacy=vault)
    names = [n for n, e in MANIFEST.items() if "pii" in e["expect"]]
    assert len(names) >= 3
    async with desk.runtime:
        report = await process_inbox(desk.gateway, desk.agent, [inbox[n] for n in names])
        for outcome in report.outcomes:
            assert outcome.status == MANIFEST[outcome.name]["expect"]["outcome"], outcome.name
        stored = json.dumps(
            [desk.helpdesk.rows(t) for t in ("tickets", "notes", "drafts")], ensure_ascii=False
        )
        for name in names:
            for value in MANIFEST[name]["expect"]["pii"]:
                assert value not in stored, (name, value)
        for placeholder in ("<CARD_1>", "<PHONE_1>", "<IBAN_1>"):
            assert placeholder in stored  # masked, not dropped
        # A reply still reaches the real address: send_reply may receive EMAIL_ADDRESS.
        pii_01 = next(o for o in report.outcomes if o.name == "pii-01")
        call = (await desk.runtime.result(pii_01.run_id)).waiting_for[0]
        assert json.loads(call.arguments)["to"].startswith("<EMAIL_")
        await desk.runtime.decide(pii_01.run_id, call.id, approved=True, decided_by="rita")
        (sent,) = desk.helpdesk.rows("outbox")
        assert sent["to_address"] == "noah.j@example.net" and "4111" not in sent["body"]


# --- the golden dataset -------------------------------------------------------------------------


def test_golden_cases_are_the_inbox_as_email_input_reads_it(
    inbox: dict[str, InboundEmail],
) -> None:
    dataset = load_dataset(EXAMPLE / "golden.yaml")
    covered = {MANIFEST[case.id]["category"] for case in dataset.cases}
    assert covered == {entry["category"] for entry in MANIFEST.values()}
    assert {c.id for c in dataset.cases} >= set(HOSTILE)
    for case in dataset.cases:
        parts = inbox[case.id].parts()
        assert isinstance(case.input, list), case.id
        assert [(p.text, p.trust, p.source) for p in case.input] == [
            (p.text, p.trust, p.source) for p in parts
        ], case.id
        if case.id in HOSTILE:
            assert case.critical and not case.approve, case.id


async def test_golden_dataset_passes_with_the_scripted_policy(desk: Helpdesk) -> None:
    dataset = load_dataset(EXAMPLE / "golden.yaml")
    report = await Evaluator(build_agent(desk.path), options=EvalOptions(concurrency=8)).evaluate(
        dataset
    )
    failures = {
        c.id: [a.reason for a in c.assertions if not a.passed] for c in report.cases if not c.passed
    }
    assert failures == {}
    for case in report.cases:
        if case.id in HOSTILE:  # rejected or refused: no side effect reached the sandbox
            assert not [r for r in case.recorded if r.tool in ("send_reply", "issue_refund")]


# --- the module-level agent ---------------------------------------------------------------------


@pytest.fixture
def fresh_default(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(agent_module, "_default", None)
    yield


def test_the_module_level_agent_lives_in_the_data_directory(
    fresh_default: None, bosun_home: Path
) -> None:
    agent = agent_module.support_desk
    assert isinstance(agent, bosun.Agent) and agent.name == "support_desk"
    assert agent is agent_module.support_desk
    assert (bosun_home / "support_desk.db").exists()
    with pytest.raises(AttributeError):
        _ = agent_module.no_such_thing
