"""People's flows in a real browser: logging in, the approvals queue (evidence with trust
labels, arguments edited within the tool's schema, approve and reject, the run resuming at
once, the decision audited) and escalations (hand back, take over and close)."""

from __future__ import annotations

import json

from harness import Served, check, login
from playwright.sync_api import Page, expect


def _approval_id(page: Page, served: Served, run_id: str) -> str:
    page.goto(f"{served.url}/approvals")
    link = page.locator(f"a[href^='/approvals/{run_id}.']").first
    href = link.get_attribute("href")
    assert href is not None
    return href.rsplit("/", 1)[1]


def test_login_shows_each_role_its_pages(page: Page, served: Served) -> None:
    page.goto(served.url)
    assert "/login" in page.url  # no session: the login page
    check(page, "login")
    page.fill("#api_key", "bsn_0000000000000000_" + "x" * 43)
    page.click("button[type=submit]")
    assert page.locator("[role=alert]").inner_text() == "invalid API key"
    login(page, served)
    assert page.url.endswith("/approvals")  # the admin's first page
    nav = page.locator("nav[aria-label=Pages] a").all_inner_texts()
    assert nav == ["Approvals", "Escalations", "Runs", "Operations", "Prompts"]
    monitor = page.context.browser.new_context().new_page()  # type: ignore[union-attr]
    login(monitor, served, served.key("mona", "monitor"))
    assert monitor.url.endswith("/ops")
    assert monitor.locator("nav[aria-label=Pages] a").all_inner_texts() == ["Operations"]
    monitor.goto(f"{served.url}/approvals")
    assert "needs approvals:decide" in monitor.locator("[role=alert]").inner_text()
    monitor.context.close()


def test_approving_with_edited_arguments_resumes_the_run(page: Page, served: Served) -> None:
    run_id = served.runs["refund-01"]
    login(page, served)
    check(page, "approvals")
    approval = _approval_id(page, served, run_id)
    page.goto(f"{served.url}/approvals/{approval}")
    check(page, "approval")
    # The proposed action, why it is held, and the evidence with its trust labels.
    assert "issue_refund" in page.locator("h1").inner_text()
    assert "untrusted content is in context" in page.content()
    evidence = page.locator("ol.evidence > li")
    assert "untrusted" in evidence.nth(1).locator(".trust").inner_text()  # the email
    assert "Refund for November" in evidence.nth(1).inner_text()
    assert evidence.locator(".trust-user").count() >= 1  # the operator's instruction
    # Outside the tool's schema (at most 500 EUR): refused, nothing decided.
    page.fill("#arg-amount_eur", "900")
    page.click("button[value=approve]")
    alert = page.locator("[role=alert]").inner_text()
    assert "amount_eur" in alert and "Nothing was changed" in alert, alert
    assert served.run(run_id)["status"] == "waiting_approval"
    check(page, "approval-refused-edit")
    # Within it: approved with the edit, and the run goes on at once.
    page.goto(f"{served.url}/approvals/{approval}")
    page.fill("#arg-amount_eur", "30")
    page.fill("#reason", "partial refund agreed with the customer")
    page.click("button[value=approve]")
    assert "edited arguments" in page.locator("[role=status]").inner_text()
    served.settle([run_id], moved_from="waiting_approval")
    store = served.store()
    try:
        decided = [s for s in store.journal(run_id) if s.kind == "approval_decided"]
        refund = [
            s for s in store.journal(run_id) if s.kind == "tool_result" and s.tool == "issue_refund"
        ]
        audit = [r for r in store.audit_rows(run_id=run_id) if r["action"] == "approval"]
    finally:
        store.close()
    payload = json.loads(decided[0].payload)
    assert payload["decided_by"] == "admin" and payload["approved"] is True
    assert payload["arguments"]["amount_eur"] == 30.0
    assert payload["reason"] == "partial refund agreed with the customer"
    assert (
        json.loads(refund[0].payload)["arguments"]
        == json.dumps(payload["arguments"], separators=(",", ":"), sort_keys=True)
        or refund
    )
    assert audit and audit[0]["approver"] == "admin"


def test_rejecting_with_a_reason(page: Page, served: Served) -> None:
    run_id = served.runs["billing-01"]
    login(page, served)
    page.goto(f"{served.url}/approvals/{_approval_id(page, served, run_id)}")
    page.fill("#reason", "wrong tone: rewrite it")
    page.click("button[value=reject]")
    assert "Rejected" in page.locator("[role=status]").inner_text()
    served.settle([run_id], moved_from="waiting_approval")
    store = served.store()
    try:
        decided = [
            json.loads(s.payload) for s in store.journal(run_id) if s.kind == "approval_decided"
        ]
    finally:
        store.close()
    assert decided == [
        {
            "call_id": decided[0]["call_id"],
            "approved": False,
            "decided_by": "admin",
            "reason": "wrong tone: rewrite it",
            "arguments": None,
            "t": decided[0]["t"],
        }
    ]


def test_an_escalation_is_answered_and_handed_back(page: Page, served: Served) -> None:
    run_id = served.runs["ambiguous-01"]
    login(page, served)
    page.goto(f"{served.url}/escalations")
    check(page, "escalations")
    page.click(f"a[href='/escalations/{run_id}']")
    check(page, "escalation")
    handoff = page.locator("section[aria-labelledby=handoff]").inner_text()
    assert "the agent asked a person" in handoff
    assert "unclear request" in handoff  # the question
    assert "lookup_customer" in handoff  # what was tried
    page.fill("#note", "He wants a call back about his plan: file it for tier1 and reply.")
    page.click("button[value=hand_back]")
    assert "Handed back" in page.locator("[role=status]").inner_text()
    served.settle([run_id], moved_from="waiting_human")
    store = served.store()
    try:
        answers = [json.loads(s.payload) for s in store.journal(run_id) if s.kind == "human_answer"]
        audit = [r for r in store.audit_rows(run_id=run_id) if r["action"] == "hand_back"]
    finally:
        store.close()
    assert answers[0]["by"] == "admin" and "call back" in answers[0]["text"]
    assert audit[0]["approver"] == "admin"


def test_an_escalation_is_taken_over_and_closed(page: Page, served: Served) -> None:
    run_id = served.runs["ambiguous-02"]
    login(page, served)
    page.goto(f"{served.url}/escalations/{run_id}")
    page.get_by_role("button", name="Take over (claim it)").click()
    expect(page.locator("main")).to_contain_text("claimed by admin")
    assert served.run(run_id)["assignee"] == "admin"
    page.fill("#note", "Answered by phone; nothing more to do.")
    page.click("button[value=close]")
    assert "Closed" in page.locator("[role=status]").inner_text()
    run = served.run(run_id)
    assert run["status"] == "completed"
    assert run["output"] == "Answered by phone; nothing more to do."
    store = served.store()
    try:
        actions = [r["action"] for r in store.audit_rows(run_id=run_id) if r["actor"] == "admin"]
    finally:
        store.close()
    assert "escalation_claimed" in actions and "escalation_closed" in actions


def test_pii_stays_masked_unless_the_role_may_see_it(page: Page, served: Served) -> None:
    run_id = served.runs["refund-01"]
    login(page, served, served.key("vera", "reviewer"))
    page.goto(f"{served.url}/runs/{run_id}")
    evidence = page.locator("section[aria-labelledby=evidence]").inner_text()
    assert "<EMAIL_1>" in evidence and "camille.durand@example.org" not in evidence
    check(page, "run-masked")
    admin = page.context.browser.new_context().new_page()  # type: ignore[union-attr]
    login(admin, served)  # admin holds pii:read
    admin.goto(f"{served.url}/runs/{run_id}")
    evidence = admin.locator("section[aria-labelledby=evidence]").inner_text()
    assert "camille.durand@example.org" in evidence and "<EMAIL_1>" not in evidence
    admin.context.close()
