"""The prompt console in a real browser: versions with owners, edit -> a new version, a diff
of two versions, the evaluation gate run and shown case by case, promotion (refused with the
gate's reason when it fails), canary, shadow and rollback; every move audited with who made
it. The gate runs three of the support desk's golden cases (see conftest)."""

from __future__ import annotations

import json
import re

from harness import Served, check, login
from playwright.sync_api import Page, expect

PROMPT = "support_desk"


def _new_version(
    page: Page, served: Served, version: str, *, changelog: str, extra: str, variables: str = ""
) -> None:
    page.goto(f"{served.url}/prompts/{PROMPT}")
    page.fill("#new-version", version)
    template = page.locator("#new-template").input_value()
    page.fill("#new-template", template + extra)
    page.fill("#new-variables", variables)
    page.fill("#new-changelog", changelog)
    page.get_by_role("button", name="Save as a new version").click()
    page.wait_for_url(f"**/versions/{version}?done=created")
    assert page.url.endswith(f"/prompts/{PROMPT}/versions/{version}?done=created"), page.url


def _run_gate(page: Page) -> None:
    page.get_by_role("button", name="Run the gate").click()
    page.wait_for_url("**?done=gate")
    # The page follows the gate and reloads when it is done.
    expect(page.locator("[data-gate-url]")).to_have_count(0, timeout=60_000)
    expect(page.locator("#gate-status")).not_to_contain_text("has no evaluation gate")


def _move(
    page: Page,
    served: Served,
    action: str,
    *,
    version: str = "",
    label: str = "production",
    percent: str = "10",
) -> None:
    page.goto(f"{served.url}/prompts/{PROMPT}")
    if version:
        page.select_option("#move-version", version)
    page.fill("#move-label", label)
    page.fill("#move-percent", percent)
    page.click(f"button[value={action}]")
    page.wait_for_url(re.compile(r"(done=|/labels$)"))


def test_edit_gate_promote_and_roll_out_a_prompt(page: Page, served: Served) -> None:
    login(page, served)
    page.goto(f"{served.url}/prompts")
    check(page, "prompts")
    assert "support_desk" in page.locator("main").inner_text()
    page.goto(f"{served.url}/prompts/{PROMPT}")
    check(page, "prompt")
    assert "support-platform" in page.locator("section[aria-labelledby=versions]").inner_text()

    # Edit -> a new version; the diff shows the change.
    _new_version(
        page,
        served,
        "1.0.1",
        changelog="Sign replies",
        extra="\nSign every reply as the Support Team.\n",
    )
    page.goto(f"{served.url}/prompts/{PROMPT}/diff?a=1.0.0&b=1.0.1")
    check(page, "prompt-diff")
    added = page.locator(".d-add").all_inner_texts()
    assert "+Sign every reply as the Support Team." in added

    # Without a gate, production is refused, with the reason.
    _move(page, served, "promote", version="1.0.1")
    alert = page.locator("[role=alert]").inner_text()
    assert "cannot go to production" in alert and "has no evaluation gate" in alert

    # The gate, case by case; then the promotion goes through.
    page.goto(f"{served.url}/prompts/{PROMPT}/versions/1.0.1")
    _run_gate(page)
    check(page, "prompt-version")
    expect(page.locator("#gate-status")).to_contain_text("Passed")
    page.click("table a[href*='/evals/']")
    check(page, "prompt-evaluation")
    cases = page.locator("section[aria-labelledby=cases] tbody tr th").all_inner_texts()
    assert cases == ["billing-01", "billing-03", "billing-05"]
    assert "Gate verdict: passed" in page.locator("main").inner_text()
    _move(page, served, "promote", version="1.0.1")
    assert "now points at that version" in page.locator("[role=status]").inner_text()
    labels = page.locator("section[aria-labelledby=labels] tbody").inner_text()
    assert re.search(r"production\s+1\.0\.1", labels), labels

    # A version that cannot render for the golden cases fails its gate against production,
    # and production refuses it with the gate's reason.
    _new_version(
        page,
        served,
        "1.0.2",
        changelog="Greeting by tone",
        extra="\nTone: {{ tone }}\n",
        variables="tone: str",
    )
    _run_gate(page)
    expect(page.locator("#gate-status")).to_contain_text("Not passed")
    _move(page, served, "promote", version="1.0.2")
    alert = page.locator("[role=alert]").inner_text()
    assert "failed its latest gate" in alert, alert
    check(page, "prompt-refused")

    # Shadow it on production instead; canary and rollback on staging.
    _move(page, served, "shadow", version="1.0.2")
    _move(page, served, "promote", version="1.0.0", label="staging")
    _move(page, served, "canary", version="1.0.1", label="staging", percent="25")
    _move(page, served, "promote", version="1.0.1", label="staging")
    _move(page, served, "rollback", label="staging")
    labels = page.locator("section[aria-labelledby=labels] tbody").inner_text()
    assert re.search(r"production\s+1\.0\.1\s+-\s+1\.0\.2", labels), labels  # shadow 1.0.2
    assert re.search(r"staging\s+1\.0\.0", labels), labels

    store = served.store()
    try:
        moves = [
            (r["action"], r["actor"], json.loads(r["payload"]).get("version"))
            for r in store.audit_rows()
            if r["action"].startswith("prompt_")
        ]
    finally:
        store.close()
    assert ("prompt_created", "admin", "1.0.1") in moves
    assert ("prompt_gate_run", "admin", "1.0.1") in moves
    assert ("prompt_promoted", "admin", "1.0.1") in moves
    assert ("prompt_shadow", "admin", "1.0.1") in moves
    assert ("prompt_rolled_back", "admin", "1.0.0") in moves
    assert not any(a == "prompt_promoted" and v == "1.0.2" for a, _, v in moves)


def test_a_reviewer_reads_prompts_but_cannot_change_them(page: Page, served: Served) -> None:
    login(page, served, served.key("rita", "reviewer"))
    page.goto(f"{served.url}/prompts/{PROMPT}")
    assert page.locator("#new-template").count() == 0  # no edit form
    assert page.locator("button[value=promote]").count() == 0
    check(page, "prompt-reviewer")
