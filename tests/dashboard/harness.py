"""What the dashboard tests share: a real ``bosun serve`` process, started with the README's command
(no arguments: the reference agent on SQLite, a printed admin key), fed through
``POST /v1/inbox``, and driven by a headless Chromium (Debian's, never a downloaded one).

One server serves the whole directory: each test works on its own emails' runs, so flows do
not interfere. Screenshots of every page go to ``$BOSUN_TEST_ARTIFACTS/dashboard`` (default:
the system's temporary directory), printed at the end of the run; every page is checked with
axe-core for serious and critical accessibility violations.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page

from bosun.data.store import Store

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
INBOX = ROOT / "examples" / "support_desk" / "inbox"
ARTIFACTS = Path(os.environ.get("BOSUN_TEST_ARTIFACTS") or tempfile.gettempdir()) / "dashboard"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SETTLED = {"completed", "failed", "escalated", "waiting_approval", "waiting_human", "cancelled"}
# Each test works on the runs of its own emails (see the test modules).
EMAILS = [
    "refund-01",  # issue_refund held: approved with an edited amount
    "billing-01",  # send_reply held: rejected
    "billing-02",  # decided twice: the second is a 409
    "billing-03",  # two reviewers at once
    "billing-04",  # forged and missing CSRF tokens, other sites, expired sessions
    "billing-06",  # oversized fields, a monitor's decision
    "bug-01",  # spare approval for the role checks
    "ambiguous-01",  # escalation handed back
    "ambiguous-02",  # escalation taken over and closed
    "resolved-01",  # completes after tool calls: waterfall, replay, feedback
    "gdpr-01",
    "hostile-01",
]
HOSTILE = b"""From: Mallory <mallory@example.com>
To: Support <support@example.com>
Subject: Invoice <script>window.pwned = 1</script><img src=x onerror="window.pwned=2">
Date: Mon, 16 Nov 2026 08:41:12 +0100
Message-ID: <xss-1.dashboard@mail.example.com>
Content-Type: text/plain; charset=utf-8

Hello <script>window.pwned = 3</script>
Please <a href="javascript:window.pwned=4">click me</a> for my invoice.
<img src="x" onerror="window.pwned=5"><svg onload="window.pwned=6"></svg>
</pre></td></tr></table></main><script>window.pwned=7</script>
<iframe src="javascript:window.top.pwned=8"></iframe>
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve_command() -> str:
    """The README's ``bosun serve`` line (after the demo line), pointed at this venv."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    first = re.search(r"```bash\n(.*?)```", readme, flags=re.S)
    assert first is not None
    lines = [line.split("#")[0].strip() for line in first.group(1).splitlines()]
    (line,) = [line for line in lines if "bosun serve" in line]
    return line.replace(".venv/bin/bosun", str(BIN / "bosun"))


@dataclass
class Served:
    """The running server and what the tests need to reach it."""

    url: str
    admin_key: str
    home: Path
    env: dict[str, str]
    runs: dict[str, str] = field(default_factory=dict)
    """Email name -> its run id."""
    output: list[str] = field(default_factory=list)
    _keys: dict[str, str] = field(default_factory=dict)

    def api(self, key: str | None = None) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {key or self.admin_key}"}
        )

    def key(self, principal: str, role: str, tenant: str = "default") -> str:
        """A key of a new principal, made with ``bosun keys create`` (once per principal)."""
        if principal not in self._keys:
            out = subprocess.run(
                [
                    str(BIN / "bosun"),
                    "keys",
                    "create",
                    principal,
                    "--tenant",
                    tenant,
                    "--role",
                    role,
                ],
                env=self.env,
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=60,
                check=True,
            )
            self._keys[principal] = out.stdout.strip().splitlines()[-1]
        return self._keys[principal]

    def revoke(self, key: str) -> None:
        """Revoke a key with ``bosun keys revoke``."""
        key_id = key.split("_")[1]
        subprocess.run(
            [str(BIN / "bosun"), "keys", "revoke", key_id],
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            timeout=60,
            check=True,
        )

    def store(self) -> Store:
        """The server's store, opened beside it (SQLite in WAL mode: readers do not block)."""
        return Store.open(f"sqlite:///{self.home / 'bosun.db'}", migrate=False)

    def run(self, run_id: str) -> dict[str, Any]:
        with self.api() as client:
            return dict(client.get(f"/v1/runs/{run_id}").json())

    def settle(self, run_ids: list[str], *, moved_from: str | None = None) -> None:
        """Wait until every run stopped (and, with `moved_from`, left that status)."""
        deadline = time.monotonic() + 60
        with self.api() as client:
            for run_id in run_ids:
                while True:
                    status = client.get(f"/v1/runs/{run_id}").json()["status"]
                    if status in SETTLED and status != moved_from:
                        break
                    assert time.monotonic() < deadline, f"run {run_id} stayed {status}"
                    time.sleep(0.1)

    def post_email(self, raw: bytes) -> str:
        with self.api() as client:
            posted = client.post(
                "/v1/inbox", content=raw, headers={"Content-Type": "message/rfc822"}
            )
        assert posted.status_code == 202, posted.text
        return str(posted.json()["id"])


def login(page: Page, served: Served, key: str | None = None) -> None:
    """Log in through the login form."""
    page.goto(f"{served.url}/login")
    page.fill("#api_key", key or served.admin_key)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/login" not in url)


_AXE = Axe()


def check(page: Page, name: str) -> None:
    """Save a screenshot of the page, and fail on serious or critical axe violations."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    results = _AXE.run(page)
    bad = [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert not bad, f"{name}: " + "; ".join(bad)


def logged_in(served: Served, key: str | None = None) -> httpx.Client:
    """A client logged in through the login form, like a browser."""
    client = httpx.Client(base_url=served.url, follow_redirects=False)
    form = client.get("/login").text
    token = re.search(r'name="csrf" value="([^"]+)"', form)
    assert token is not None
    done = client.post(
        "/login",
        data={"csrf": token.group(1), "api_key": key or served.admin_key, "next": "/"},
    )
    assert done.status_code == 303, done.text
    return client


@contextmanager
def session(served: Served, key: str | None = None) -> Iterator[httpx.Client]:
    client = logged_in(served, key)
    try:
        yield client
    finally:
        client.close()
