"""The support desk served with default settings handles its inbox posted to ``POST /v1/inbox``
exactly as the demo does: same statuses, same held calls, same escalations. Served agents
get their tools by default (least privilege per agent), and every path builds the run input
from an email the same way."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from bosun.config import load_settings
from bosun.data.store import Store
from bosun.service.compose import compose
from examples.support_desk import build_agent, seed
from servers import serve

INBOX = Path(__file__).resolve().parents[2] / "examples" / "support_desk" / "inbox"
MANIFEST: dict[str, dict[str, Any]] = yaml.safe_load(
    (INBOX / "MANIFEST.yaml").read_text(encoding="utf-8")
)["emails"]
MANIFEST = {name.removesuffix(".eml"): entry for name, entry in MANIFEST.items()}
SETTLED = {"completed", "failed", "escalated", "waiting_approval", "waiting_human", "cancelled"}


def _settle(client: httpx.Client, run_ids: dict[str, str]) -> dict[str, dict[str, Any]]:
    done: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + 120
    while len(done) < len(run_ids) and time.monotonic() < deadline:
        for name, run_id in run_ids.items():
            if name not in done:
                run = client.get(f"/v1/runs/{run_id}").json()
                if run["status"] in SETTLED:
                    done[name] = run
        time.sleep(0.1)
    assert len(done) == len(run_ids), sorted(set(run_ids) - set(done))
    return done


@pytest.mark.slow
def test_every_demo_email_posted_to_the_inbox_ends_as_in_the_demo(
    db_url: str, tmp_path: Path
) -> None:
    settings = load_settings(home=tmp_path / "home", database_url=db_url)
    desk = seed(tmp_path / "helpdesk.db")
    system = compose(settings, [build_agent(desk.path)], store=Store.open(db_url))
    # Default settings: the submitter role may hand a run exactly its agent's tool scopes.
    assert system.grants["support_desk"] == tuple(
        sorted(system.runtime.agents["support_desk"].scopes)
    )
    key = system.gateway.keys.create("inbox", tenant="support", roles=["submitter"]).key
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "message/rfc822"}
    with serve(system.app()) as url, httpx.Client(base_url=url, headers=headers) as client:
        run_ids = {}
        for path in sorted(INBOX.glob("*.eml")):
            posted = client.post("/v1/inbox", content=path.read_bytes())  # no ?agent=
            assert posted.status_code == 202, (path.name, posted.text)
            run_ids[path.stem] = posted.json()["id"]
        runs = _settle(client, run_ids)
    system.store.close()
    assert set(runs) == set(MANIFEST)
    for name, run in runs.items():
        expect = MANIFEST[name]["expect"]
        reason = (run["handoff"] or {}).get("reason", "")
        question = (run["handoff"] or {}).get("pending_question") or ""
        assert run["status"] == expect["outcome"], (name, reason, question)
        assert [c["tool"] for c in run["waiting_for"]] == expect.get("held", []), name
        if "escalation" in expect:
            assert expect["escalation"] in f"{reason} {question}", name
        assert "unauthorized" not in f"{reason} {question}", name
