"""Runs, operations and a hostile email in a real browser: the list's filters, a run's trace
as a waterfall, the journal replayed entry by entry, feedback stored for the evals, the
operations charts, and an email full of markup that does nothing but show itself."""

from __future__ import annotations

import re

from harness import Served, check, login, session
from playwright.sync_api import Page

from bosun.data.scores import ScoreRows


def test_the_runs_list_filters_by_status_and_time(page: Page, served: Served) -> None:
    login(page, served)
    page.goto(f"{served.url}/runs")
    check(page, "runs")
    ids = page.locator("tbody a[href^='/runs/']").all_inner_texts()
    assert set(served.runs.values()) <= set(ids)
    page.select_option("#f-status", "waiting_human")
    page.click("form[aria-label='Filter runs'] button")
    statuses = page.locator("tbody .status").all_inner_texts()
    assert statuses and set(statuses) == {"waiting_human"}
    # A window before any of these runs: none of them.
    page.fill("#f-until", "2020-01-01T00:00")
    page.click("form[aria-label='Filter runs'] button")
    assert "No runs match." in page.locator("main").inner_text()
    # "any" is an empty choice, as the browser submits it.
    page.select_option("#f-status", "")
    page.fill("#f-until", "")
    page.fill("#f-since", "2020-01-01T00:00")
    page.click("form[aria-label='Filter runs'] button")
    page.wait_for_url("**status=&since=2020-01-01T00%3A00**")
    assert page.locator("tbody a[href^='/runs/']").all_inner_texts() == ids


def test_older_runs_pages_through_every_run_once(served: Served) -> None:
    with served.api() as api:
        total = len(api.get("/v1/runs", params={"limit": 200}).json()["items"])
    with session(served) as client:
        seen: list[str] = []
        path = "/runs?agent=&status=&since=&until=&limit=4"
        while path:
            answer = client.get(path)
            assert answer.status_code == 200, answer.text
            seen += re.findall(r'<td><a href="/runs/([0-9a-f]+)">', answer.text)
            older = re.search(r'href="(/runs\?[^"]*after=[^"]+)" rel="next"', answer.text)
            path = older.group(1).replace("&amp;", "&") if older else ""
    assert len(seen) == len(set(seen)) == total > 8  # three pages or more


def test_a_run_shows_its_waterfall_replays_its_journal_and_takes_feedback(
    page: Page, served: Served
) -> None:
    run_id = served.runs["resolved-01"]
    login(page, served)
    page.goto(f"{served.url}/runs/{run_id}")
    check(page, "run")
    spans = page.locator("table.waterfall tbody th").all_inner_texts()
    assert spans[0] == "invoke_agent support_desk"
    assert any(s.startswith("chat ") for s in spans)
    assert any(s.startswith("execute_tool ") for s in spans)
    assert page.locator("table.waterfall rect").count() == len(spans)
    # The replay starts at the first entry and steps forward through the journal.
    page.get_by_role("link", name="First", exact=True).click()
    page.wait_for_url("**?at=0#replay")
    replay = page.locator("section[aria-labelledby=replay]")
    assert "Entry 0 of" in replay.inner_text() and "run_started" in replay.inner_text()
    page.get_by_role("link", name="Next entry").click()
    page.wait_for_url("**?at=1#replay")
    assert "Entry 1 of" in replay.inner_text() and "model_response" in replay.inner_text()
    check(page, "run-replay")
    # Feedback: stored with the run, where the evals read it.
    page.check("#rating-down")
    page.fill("#comment", "It should have closed the ticket.")
    page.get_by_role("button", name="Send feedback").click()
    assert "feedback is stored" in page.locator("[role=status]").inner_text()
    assert "thumbs down by admin" in page.locator("section[aria-labelledby=feedback]").inner_text()
    store = served.store()
    try:
        stored = ScoreRows(store).feedback(run_id)
        audit = [r for r in store.audit_rows(run_id=run_id) if r["action"] == "feedback"]
    finally:
        store.close()
    assert [(f["rating"], f["comment"], f["principal"]) for f in stored] == [
        (-1, "It should have closed the ticket.", "admin")
    ]
    assert audit[0]["actor"] == "admin"


def test_operations_charts_count_the_runs(page: Page, served: Served) -> None:
    login(page, served, served.key("olga", "monitor"))
    assert page.url.endswith("/ops")
    check(page, "ops")
    assert page.locator("figure.chart svg[role=img]").count() == 6
    titles = page.locator("figure.chart svg title").all_text_contents()
    assert titles == [
        "Runs per hour",
        "Run latency (submission to outcome)",
        "Cost per run",
        "Escalation rate",
        "Injections caught",
        "Tool error rate",
    ]
    counted = page.locator("#runs-title").locator("xpath=../..").locator("tbody td")
    total = sum(int(v) for v in counted.all_text_contents() if v != "-")
    assert total >= len(served.runs)  # every run posted, in its hour
    tools = page.locator("section[aria-labelledby=tools] tbody tr td:first-child").all_inner_texts()
    assert "lookup_customer" in tools
    page.goto(f"{served.url}/ops?hours=168")
    check(page, "ops-week")
    assert page.locator("main p strong").first.inner_text() == "168 hours"
    assert page.locator("figure.chart").count() == 6


def test_a_hostile_email_renders_as_text_and_runs_nothing(page: Page, served: Served) -> None:
    run_id = served.runs["xss"]
    login(page, served)
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    targets = [f"/runs/{run_id}", f"/runs/{run_id}?at=0", "/runs", "/escalations", "/approvals"]
    status = served.run(run_id)["status"]
    if status in ("escalated", "waiting_human"):
        targets.append(f"/escalations/{run_id}")
    for target in targets:
        page.goto(f"{served.url}{target}")
        assert page.evaluate("() => window.pwned === undefined && window.top.pwned === undefined")
        main = page.locator("main")
        assert main.locator("script, iframe, svg[onload], img[onerror]").count() == 0
        assert main.locator("a[href^='javascript:']").count() == 0
    page.goto(f"{served.url}/runs/{run_id}")
    check(page, "hostile-run")
    spans = page.locator("table.waterfall tbody th").all_inner_texts()
    assert "guardrail injection_screen" in spans  # the gateway's verdict, in the trace
    text = page.locator("main").inner_text()
    assert "<script>window.pwned = 3</script>" in text  # shown as text
    assert '<a href="javascript:window.pwned=4">click me</a>' in text
    page.get_by_text("click me").first.click()
    assert page.evaluate("() => window.pwned === undefined")
    assert page.url.endswith(f"/runs/{run_id}")
    assert dialogs == []
    headers = page.request.get(f"{served.url}/runs/{run_id}").headers
    assert "script-src 'self'" in headers["content-security-policy"]
