"""Bad input against the real server, over plain HTTP (what a browser would send, and what an
attacker's page or script could): forged, missing and cross-site CSRF, expired, tampered and
revoked sessions, a role posting beyond its scopes, decisions on decided approvals, two
reviewers at once, oversized fields. Each is refused with a page that says why, and nothing
changes."""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from pathlib import Path

import httpx
import pytest
from harness import Served, logged_in, session
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from bosun.gateway.vault import load_or_create_key


def csrf_of(client: httpx.Client, path: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', client.get(path).text)
    assert found is not None
    return found.group(1)


def approval_of(served: Served, email: str) -> str:
    with served.api() as api:
        held = api.get("/v1/approvals", params={"limit": 200}).json()
    (found,) = [a["id"] for a in held if a["run_id"] == served.runs[email]]
    return str(found)


def still_waiting(served: Served, email: str) -> bool:
    return served.run(served.runs[email])["status"] == "waiting_approval"


def decisions(served: Served, email: str) -> list[dict[str, object]]:
    store = served.store()
    try:
        journal = store.journal(served.runs[email])
    finally:
        store.close()
    return [json.loads(s.payload) for s in journal if s.kind == "approval_decided"]


def test_forged_missing_and_cross_site_csrf_change_nothing(served: Served) -> None:
    approval = approval_of(served, "billing-04")
    path = f"/approvals/{approval}"
    with session(served) as client:
        real = csrf_of(client, path)
        for data, headers in (
            ({"decision": "approve"}, {}),  # no token
            ({"decision": "approve", "csrf": "forged" + real[6:]}, {}),  # a wrong one
            ({"decision": "approve", "csrf": real}, {"Origin": "https://evil.example"}),
            ({"decision": "approve", "csrf": real}, {"Origin": "null"}),
        ):
            answer = client.post(path, data=data, headers=headers)
            assert answer.status_code == 403, answer.text
            assert "Nothing was changed" in answer.text
        # Another session's token is not this session's.
        with session(served) as other:
            answer = other.post(path, data={"decision": "approve", "csrf": real})
            assert answer.status_code == 403
    assert still_waiting(served, "billing-04")
    assert decisions(served, "billing-04") == []
    # The login form has its own token.
    with httpx.Client(base_url=served.url) as anonymous:
        anonymous.get("/login")
        answer = anonymous.post("/login", data={"api_key": served.admin_key, "csrf": "x"})
        assert answer.status_code == 403
        assert "bosun_session" not in anonymous.cookies


def _signed(served: Served, payload: object, *, age_s: float) -> str:
    """A session cookie signed with the server's key, issued `age_s` seconds ago."""
    key = load_or_create_key(Path(served.home) / "session.key")

    class Past(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time() - age_s)

    signer = URLSafeTimedSerializer(
        key,
        salt="bosun.dashboard.session",
        signer=Past,
        signer_kwargs={"digest_method": hashlib.sha256},
    )
    return str(signer.dumps(payload))


def test_expired_tampered_and_revoked_sessions_log_in_again(served: Served) -> None:
    approval = approval_of(served, "billing-04")
    with session(served) as client:
        cookie = client.cookies["bosun_session"]
    key_id = served.admin_key.split("_")[1]
    cases = {
        "expired": _signed(served, {"k": key_id, "c": "t"}, age_s=9 * 3600),  # TTL is 8 h
        "invalid": cookie[:-2] + ("AA" if not cookie.endswith("AA") else "BB"),
    }
    for reason, value in cases.items():
        with httpx.Client(base_url=served.url, follow_redirects=False) as client:
            client.cookies.set("bosun_session", value)
            answer = client.get("/approvals")
            assert answer.status_code == 303
            assert answer.headers["location"].startswith(f"/login?reason={reason}")
            posted = client.post(
                f"/approvals/{approval}", data={"decision": "approve", "csrf": "t"}
            )
            assert posted.status_code == 303 and "/login" in posted.headers["location"]
    # A fresh cookie signed the same way is accepted: the expiry, not the signing, refused it.
    with httpx.Client(base_url=served.url, follow_redirects=False) as client:
        client.cookies.set("bosun_session", _signed(served, {"k": key_id, "c": "t"}, age_s=60))
        assert client.get("/approvals").status_code == 200
    # Revoking the key ends its sessions at their next request.
    key = served.key("rex", "reviewer")
    with session(served, key) as client:
        assert client.get("/approvals").status_code == 200
        served.revoke(key)
        answer = client.get("/approvals")
        assert answer.status_code == 303
        assert answer.headers["location"].startswith("/login?reason=revoked")
    assert still_waiting(served, "billing-04")


def test_roles_cannot_post_beyond_their_scopes(served: Served) -> None:
    with session(served, served.key("rosa", "reviewer")) as reviewer:
        token = csrf_of(reviewer, "/prompts/support_desk")
        answer = reviewer.post(
            "/prompts/support_desk/labels",
            data={"csrf": token, "action": "promote", "version": "1.0.0", "label": "canary-x"},
        )
        assert answer.status_code == 403, answer.text
        assert "prompts:edit" in answer.text
        answer = reviewer.post(
            "/prompts/support_desk/versions",
            data={"csrf": token, "base": "1.0.0", "version": "9.9.9", "template": "x"},
        )
        assert answer.status_code == 403
        assert reviewer.get("/ops").status_code == 403
    approval = approval_of(served, "bug-01")
    with session(served, served.key("moe", "monitor")) as monitor:
        token = csrf_of(monitor, "/ops")
        answer = monitor.post(f"/approvals/{approval}", data={"csrf": token, "decision": "approve"})
        assert answer.status_code == 403
    with session(served) as admin:
        labels = admin.get("/prompts/support_desk").text
    assert "canary-x" not in labels and "9.9.9" not in labels
    assert still_waiting(served, "bug-01")


def test_deciding_a_decided_approval_is_a_conflict(served: Served) -> None:
    approval = approval_of(served, "billing-02")
    path = f"/approvals/{approval}"
    with session(served) as client:
        token = csrf_of(client, path)
        first = client.post(path, data={"csrf": token, "decision": "reject", "reason": "no"})
        assert first.status_code == 303
        again = client.post(path, data={"csrf": token, "decision": "approve"})
        assert again.status_code == 409, again.text
        assert "already rejected by admin" in again.text
        assert "Nothing was changed" in again.text
    assert len(decisions(served, "billing-02")) == 1


def test_two_reviewers_at_once_exactly_one_wins(served: Served) -> None:
    approval = approval_of(served, "billing-03")
    path = f"/approvals/{approval}"
    clients = [logged_in(served, served.key(name, "reviewer")) for name in ("ria", "sam")]
    tokens = [csrf_of(c, path) for c in clients]
    barrier = threading.Barrier(2)
    answers: list[httpx.Response] = []

    def decide(client: httpx.Client, token: str) -> None:
        barrier.wait()
        answers.append(client.post(path, data={"csrf": token, "decision": "approve"}))

    threads = [
        threading.Thread(target=decide, args=pair) for pair in zip(clients, tokens, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for client in clients:
        client.close()
    assert sorted(a.status_code for a in answers) == [303, 409]
    (lost,) = [a for a in answers if a.status_code == 409]
    made = decisions(served, "billing-03")
    assert len(made) == 1  # exactly one decision in the journal
    assert f"already approved by {made[0]['decided_by']}" in lost.text or "same moment" in lost.text


@pytest.mark.parametrize(
    ("field", "size", "status", "says"),
    [
        ("reason", 10_000, 413, "the reason is too long: 10,000 characters, at most 2,000"),
        ("reason", 300_000, 413, "the form is too large"),
    ],
)
def test_oversized_fields_are_refused_with_a_page(
    served: Served, field: str, size: int, status: int, says: str
) -> None:
    approval = approval_of(served, "billing-06")
    path = f"/approvals/{approval}"
    with session(served) as client:
        token = csrf_of(client, path)
        answer = client.post(path, data={"csrf": token, "decision": "approve", field: "x" * size})
    assert answer.status_code == status
    assert says in answer.text and "Nothing was changed" in answer.text
    assert answer.headers["content-type"].startswith("text/html")
    assert still_waiting(served, "billing-06")
    assert decisions(served, "billing-06") == []


def test_an_oversized_template_creates_no_version(served: Served) -> None:
    with session(served) as client:
        token = csrf_of(client, "/prompts/support_desk")
        answer = client.post(
            "/prompts/support_desk/versions",
            data={"csrf": token, "base": "1.0.0", "version": "7.0.0", "template": "x" * 250_000},
        )
        assert answer.status_code == 413
        assert "the template is too long" in answer.text
        assert "7.0.0" not in client.get("/prompts/support_desk").text


def test_a_forged_page_cursor_is_a_clear_error(served: Served) -> None:
    with session(served) as client:
        for path in ("/approvals", "/escalations", "/runs"):
            answer = client.get(path, params={"after": "1.5~zz'--"})
            assert answer.status_code == 400, (path, answer.status_code)
            assert "not one this list gave out" in answer.text
