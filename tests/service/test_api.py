"""The REST API end to end: a real uvicorn server, a real store, the embedded worker."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
from api_harness import Api

from bosun.data.scores import ScoreRows

TERMINAL = {"completed", "failed", "cancelled"}
PARKED = {"waiting_approval", "waiting_human", "escalated"}


def wait(api: Api, run_id: str, until: set[str], who: str = "alice") -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while True:
        body = httpx.get(f"{api.url}/v1/runs/{run_id}", headers=api.auth(who)).json()
        if body["status"] in until:
            return body
        assert time.monotonic() < deadline, body
        time.sleep(0.05)


def submit(api: Api, text: str, who: str = "alice", **extra: Any) -> httpx.Response:
    return httpx.post(
        f"{api.url}/v1/runs",
        json={"agent": "helper", "input": text, **extra},
        headers=api.auth(who),
    )


def is_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["title"]
    return body


def test_a_submitted_run_is_driven_by_the_worker_and_reported(api: Api) -> None:
    response = submit(api, "what is x?")
    assert response.status_code == 202, response.text
    run = response.json()
    assert run["status"] in ("queued", "running", "completed")
    done = wait(api, run["id"], TERMINAL)
    assert done["status"] == "completed"
    assert done["output"] == "answer to what is x?"
    assert done["model_calls"] == 2 and done["tool_calls"] == 1
    kinds = [s["kind"] for s in done["steps"]]
    assert kinds[0] == "run_started" and kinds[-1] == "run_finished"
    assert "tool_result" in kinds
    assert done["input_tokens"] > 0


def test_an_idempotency_key_returns_the_same_run(api: Api) -> None:
    first = submit(api, "once", idempotency_key="k-1").json()
    again = httpx.post(
        f"{api.url}/v1/runs",
        json={"agent": "helper", "input": "once"},
        headers={**api.auth(), "Idempotency-Key": "k-1"},
    ).json()
    assert again["id"] == first["id"]
    # Another tenant's identical key is a different run.
    assert submit(api, "once", who="bob", idempotency_key="k-1").json()["id"] != first["id"]


def test_an_idempotency_key_reused_for_a_different_request_is_a_conflict(api: Api) -> None:
    first = submit(api, "refund order 7", idempotency_key="k-2").json()
    for body in (
        {"agent": "helper", "input": "refund order 8"},
        {"agent": "sloth", "input": "refund order 7"},
    ):
        response = httpx.post(
            f"{api.url}/v1/runs", json=body, headers={**api.auth(), "Idempotency-Key": "k-2"}
        )
        problem = is_problem(response, 409)
        assert "Idempotency-Key 'k-2' was used for a different request" in problem["detail"]
    assert submit(api, "refund order 7", idempotency_key="k-2").json()["id"] == first["id"]


def test_runs_list_in_pages_and_only_the_callers_tenant(api: Api) -> None:
    ids = [submit(api, f"q{i}").json()["id"] for i in range(5)]
    submit(api, "theirs", who="bob")
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = httpx.get(f"{api.url}/v1/runs", params=params, headers=api.auth()).json()
        seen += [r["id"] for r in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(ids, reverse=True)
    filtered = httpx.get(
        f"{api.url}/v1/runs", params={"status": "queued", "agent": "nobody"}, headers=api.auth()
    ).json()
    assert filtered["items"] == []


def test_a_missing_key_is_told_apart_from_an_invalid_one(api: Api) -> None:
    for headers in ({}, {"Authorization": "Basic YWxpY2U6cHc="}, {"X-API-Key": ""}):
        missing = is_problem(httpx.get(f"{api.url}/v1/runs", headers=headers), 401)
        assert missing["detail"] == "no API key: send Authorization: Bearer bsn_...", headers
    for headers in (
        {"Authorization": "Bearer bsn_0000000000000000_" + "x" * 43},
        {"X-API-Key": "not-a-key"},
    ):
        invalid = is_problem(httpx.get(f"{api.url}/v1/runs", headers=headers), 401)
        assert invalid["detail"] == "invalid API key", headers


def test_errors_are_problem_details(api: Api) -> None:
    is_problem(httpx.get(f"{api.url}/v1/runs"), 401)
    bad_key = {"Authorization": "Bearer bsn_0000000000000000_" + "x" * 43}
    refused = httpx.get(f"{api.url}/v1/runs", headers=bad_key)
    is_problem(refused, 401)
    assert refused.headers["WWW-Authenticate"].startswith("Bearer")
    is_problem(httpx.get(f"{api.url}/v1/runs/deadbeef", headers=api.auth()), 404)
    body = is_problem(httpx.post(f"{api.url}/v1/runs", json={"agent": 3}, headers=api.auth()), 422)
    assert body["errors"]
    is_problem(
        httpx.post(
            f"{api.url}/v1/runs",
            content=b"{not json",
            headers={**api.auth(), "content-type": "application/json"},
        ),
        422,
    )
    is_problem(submit(api, "hi", who="rita"), 403)  # a reviewer cannot submit
    is_problem(submit(api, ""), 400)  # empty input: refused before anything is stored
    unknown = httpx.post(
        f"{api.url}/v1/runs", json={"agent": "nope", "input": "x"}, headers=api.auth()
    )
    is_problem(unknown, 400)
    is_problem(httpx.get(f"{api.url}/v1/nothing-here", headers=api.auth()), 404)


def test_another_tenants_run_is_not_found(api: Api) -> None:
    run_id = submit(api, "mine").json()["id"]
    is_problem(httpx.get(f"{api.url}/v1/runs/{run_id}", headers=api.auth("bob")), 404)
    is_problem(httpx.post(f"{api.url}/v1/runs/{run_id}/cancel", headers=api.auth("bob")), 404)


def test_approval_flow_end_to_end(api: Api) -> None:
    run_id = submit(api, "please send it").json()["id"]
    parked = wait(api, run_id, PARKED)
    assert parked["status"] == "waiting_approval"
    assert parked["waiting_for"][0]["tool"] == "send"
    # alice may not decide; rita (reviewer) may.
    is_problem(httpx.get(f"{api.url}/v1/approvals", headers=api.auth()), 403)
    held = httpx.get(f"{api.url}/v1/approvals", headers=api.auth("rita")).json()
    assert [h["run_id"] for h in held] == [run_id]
    assert json.loads(held[0]["arguments"])["to"] == "ann@example.com"
    approval = held[0]["id"]
    edited = {"to": "ann@example.com", "text": "hello, edited"}
    decided = httpx.post(
        f"{api.url}/v1/approvals/{approval}",
        json={"decision": "approve", "reason": "fine", "arguments": edited},
        headers=api.auth("rita"),
    )
    assert decided.status_code == 200, decided.text
    done = wait(api, run_id, TERMINAL)
    assert done["status"] == "completed"
    again = httpx.post(
        f"{api.url}/v1/approvals/{approval}",
        json={"decision": "reject"},
        headers=api.auth("rita"),
    )
    is_problem(again, 404)  # nothing waits any more
    approvals = [r for r in api.store.audit_rows(run_id=run_id) if r["action"] == "approval"]
    assert [r["approver"] for r in approvals] == ["rita"]


def test_a_rejected_call_is_not_executed(api: Api) -> None:
    run_id = submit(api, "send or not").json()["id"]
    wait(api, run_id, PARKED)
    approval = httpx.get(f"{api.url}/v1/approvals", headers=api.auth("rita")).json()[0]["id"]
    response = httpx.post(
        f"{api.url}/v1/approvals/{approval}",
        json={"decision": "reject", "reason": "not to her"},
        headers=api.auth("rita"),
    )
    assert response.status_code == 200
    done = wait(api, run_id, TERMINAL)
    tool_steps = [s for s in done["steps"] if s["kind"] == "tool_result"]
    assert tool_steps and tool_steps[0]["status"] != "ok"


def test_escalation_claim_and_hand_back(api: Api) -> None:
    run_id = submit(api, "ask someone").json()["id"]
    parked = wait(api, run_id, PARKED)
    assert parked["status"] == "waiting_human"
    assert parked["handoff"]["pending_question"] == "which plan?"
    open_ = httpx.get(f"{api.url}/v1/escalations", headers=api.auth("rita")).json()
    assert [e["run_id"] for e in open_] == [run_id]
    claimed = httpx.post(f"{api.url}/v1/escalations/{run_id}/claim", headers=api.auth("rita"))
    assert claimed.json()["assignee"] == "rita"
    resolved = httpx.post(
        f"{api.url}/v1/escalations/{run_id}/resolve",
        json={"action": "hand_back", "note": "the gold plan"},
        headers=api.auth("rita"),
    )
    assert resolved.status_code == 200, resolved.text
    done = wait(api, run_id, TERMINAL)
    assert done["status"] == "completed"
    assert "the gold plan" in done["output"]  # the agent continued with the note in context
    actions = [r["action"] for r in api.store.audit_rows(run_id=run_id)]
    assert "escalation_claimed" in actions and "hand_back" in actions


def test_an_escalation_can_be_closed_with_a_note(api: Api) -> None:
    run_id = submit(api, "ask about it").json()["id"]
    wait(api, run_id, PARKED)
    closed = httpx.post(
        f"{api.url}/v1/escalations/{run_id}/resolve",
        json={"action": "close", "note": "handled by phone"},
        headers=api.auth("rita"),
    ).json()
    assert closed["status"] == "completed" and closed["output"] == "handled by phone"
    again = httpx.post(f"{api.url}/v1/escalations/{run_id}/claim", headers=api.auth("rita"))
    is_problem(again, 409)


def test_cancel_a_running_run(api: Api) -> None:
    run = httpx.post(
        f"{api.url}/v1/runs", json={"agent": "sloth", "input": "take your time"}, headers=api.auth()
    ).json()
    time.sleep(0.3)  # the worker is inside the (5 s) model call now, or about to be
    response = httpx.post(f"{api.url}/v1/runs/{run['id']}/cancel", headers=api.auth())
    assert response.status_code in (200, 202), response.text
    done = wait(api, run["id"], TERMINAL)
    assert done["status"] == "cancelled"
    is_problem(httpx.post(f"{api.url}/v1/runs/{run['id']}/cancel", headers=api.auth()), 409)


def test_events_stream_each_step_then_the_run(api: Api) -> None:
    run_id = submit(api, "stream me").json()["id"]
    events: list[tuple[str, str, str]] = []
    with httpx.stream(
        "GET", f"{api.url}/v1/runs/{run_id}/events", headers=api.auth(), timeout=20
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        event = {"event": "", "id": "", "data": ""}
        for line in response.iter_lines():
            if not line:
                if event["data"]:
                    events.append((event["event"], event["id"], event["data"]))
                event = {"event": "", "id": "", "data": ""}
                continue
            field, _, value = line.partition(":")
            if field in event:
                event[field] = value.strip()
    kinds = [e[0] for e in events]
    assert kinds[0] == "run_started" and kinds[-2] == "run_finished" and kinds[-1] == "run"
    seqs = [int(e[1]) for e in events if e[1]]
    assert seqs == list(range(len(seqs)))
    assert json.loads(events[-1][2])["status"] == "completed"
    # Resuming from Last-Event-ID sends only what came after.
    with httpx.stream(
        "GET",
        f"{api.url}/v1/runs/{run_id}/events",
        headers={**api.auth(), "Last-Event-ID": str(seqs[-2])},
        timeout=20,
    ) as response:
        ids = [
            line.split(":", 1)[1].strip()
            for line in response.iter_lines()
            if line.startswith("id:")
        ]
    assert ids == [str(seqs[-1])]


def test_feedback_is_stored_with_the_run(api: Api) -> None:
    run_id = submit(api, "rate me").json()["id"]
    wait(api, run_id, TERMINAL)
    given = httpx.post(
        f"{api.url}/v1/runs/{run_id}/feedback",
        json={"rating": "down", "correction": "the answer is y"},
        headers=api.auth(),
    )
    assert given.status_code == 201, given.text
    stored = ScoreRows(api.store).feedback(run_id)
    assert stored[0]["rating"] == -1 and stored[0]["correction"] == "the answer is y"
    empty = httpx.post(f"{api.url}/v1/runs/{run_id}/feedback", json={}, headers=api.auth())
    is_problem(empty, 422)


def test_probes_and_metrics(api: Api) -> None:
    assert httpx.get(f"{api.url}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{api.url}/readyz").json()["status"] == "ok"
    is_problem(httpx.get(f"{api.url}/metrics", headers=api.auth()), 403)
    run_id = submit(api, "count me").json()["id"]
    wait(api, run_id, TERMINAL)
    text = httpx.get(f"{api.url}/metrics", headers=api.auth("mo")).text
    assert 'bosun_runs{status="completed"} 1.0' in text
    assert 'bosun_http_requests_total{method="POST",route="/v1/runs",status="202"}' in text
    # What the worker drove: tool calls, model latency, runs finished by status.
    assert 'bosun_tool_calls_total{status="ok",tool="lookup"} 1.0' in text
    assert 'bosun_model_latency_seconds_count{model="scripted"} 2.0' in text
    assert 'bosun_runs_finished_total{agent="helper",status="completed"} 1.0' in text
    assert "bosun_breaker_state" in text


def test_a_full_queue_answers_429_with_retry_after(api: Api) -> None:
    # Park the worker's attention on nothing: fill the queue past max_queue (50) directly.
    from bosun.data.store import NewRun

    now = time.time()
    api.store.write(
        [
            NewRun(
                id=f"{i:028x}",
                agent="nobody",
                status="queued",
                input="x",
                grants="[]",
                created_at=now,
            )
            for i in range(50)
        ]
    )
    time.sleep(0.6)  # the API counts the queue at most twice a second
    response = submit(api, "one too many")
    body = is_problem(response, 429)
    assert int(response.headers["Retry-After"]) >= 1 and body["retry_after"] >= 1


def test_an_email_posted_to_the_inbox_is_one_run_however_often_delivered(api: Api) -> None:
    raw = (
        b"From: Ann <ann@example.com>\r\nTo: support@example.com\r\nSubject: question\r\n"
        b"Message-ID: <abc@example.com>\r\n\r\nwhat is x?\r\n"
    )
    headers = {**api.auth(), "content-type": "message/rfc822"}
    first = httpx.post(f"{api.url}/v1/inbox?agent=helper", content=raw, headers=headers)
    assert first.status_code == 202, first.text
    again = httpx.post(f"{api.url}/v1/inbox?agent=helper", content=raw, headers=headers)
    assert again.json()["id"] == first.json()["id"]
    done = wait(api, first.json()["id"], TERMINAL | PARKED)
    started = json.loads(api.store.journal(done["id"])[0].payload)
    assert [p["trust"] for p in started["parts"]] == ["user", "untrusted"]
    assert "Subject: question" in started["parts"][1]["text"]
    changed = raw.replace(b"what is x?", b"what is y?")
    is_problem(
        httpx.post(f"{api.url}/v1/inbox?agent=helper", content=changed, headers=headers), 409
    )
    is_problem(httpx.post(f"{api.url}/v1/inbox?agent=helper", content=b"hi", headers=headers), 400)
    is_problem(httpx.post(f"{api.url}/v1/inbox", content=raw, headers=headers), 400)  # no agent


def test_reading_a_run_reads_its_row_and_journal_once(api: Api) -> None:
    """GET /v1/runs/{id} reads the run row once and its journal once, on one connection:
    not once per layer (gateway, runtime, route) as it did."""
    import re

    import sqlalchemy as sa

    run_id = submit(api, "count my reads").json()["id"]
    wait(api, run_id, TERMINAL)
    selects: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            selects.append(statement)

    sa.event.listen(api.store.engine, "before_cursor_execute", seen)
    try:
        got = httpx.get(f"{api.url}/v1/runs/{run_id}", headers=api.auth())
    finally:
        sa.event.remove(api.store.engine, "before_cursor_execute", seen)
    assert got.status_code == 200 and got.json()["status"] == "completed"
    # The embedded worker polls the queue meanwhile: count only reads of one run by its id.
    from_runs = [s for s in selects if re.search(r"\bFROM runs\s+WHERE runs\.id = ", s)]
    from_steps = [s for s in selects if re.search(r"\bFROM steps\s+WHERE steps\.run_id = ", s)]
    assert (len(from_runs), len(from_steps)) == (1, 1), selects
