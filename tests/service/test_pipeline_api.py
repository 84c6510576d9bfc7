"""Pipelines over the REST API: a real server (uvicorn) assembled by `compose`, with the
pipeline worker embedded beside the run worker, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from served_pipelines import build

from bosun.config import ServiceSettings, load_settings
from bosun.data.store import Store
from bosun.service.compose import compose
from servers import serve

FAST = ServiceSettings(lease_s=5, poll_s=0.05, sweep_s=0.1, mask_pii=False, screen_injections=False)


@dataclass
class Served:
    url: str
    keys: dict[str, str]

    def client(self, who: str) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.keys[who]}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=10)


@pytest.fixture
def served(db_url: str, tmp_path: Path) -> Iterator[Served]:
    settings = load_settings(home=tmp_path, database_url=db_url, service=FAST)
    system = compose(settings, [], store=Store.open(db_url), pipelines=[build()])
    assert system.pipeline_worker is not None
    keys = system.gateway.keys
    made = {
        "alice": keys.create("alice", tenant="acme", roles=["submitter"]).key,
        "bob": keys.create("bob", tenant="globex", roles=["submitter"]).key,
        "mo": keys.create("mo", tenant="acme", roles=["monitor"]).key,
    }
    with serve(system.app()) as url:
        yield Served(url, made)
    system.store.close()


@contextmanager
def _dashboard(served: Served, who: str) -> Iterator[httpx.Client]:
    """A client logged in to the dashboard through its login form."""
    with httpx.Client(base_url=served.url, follow_redirects=False, timeout=10) as client:
        token = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text)
        assert token is not None
        form = {"csrf": token.group(1), "api_key": served.keys[who], "next": "/"}
        assert client.post("/login", data=form).status_code == 303
        yield client


def _settled(client: httpx.Client, pipeline_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while True:
        got = client.get(f"/v1/pipelines/runs/{pipeline_id}")
        assert got.status_code == 200, got.text
        body: dict[str, Any] = got.json()
        if body["status"] not in ("queued", "running"):
            return body
        assert time.monotonic() < deadline, body
        time.sleep(0.05)


def test_a_pipeline_started_over_the_api_is_driven_by_the_worker(served: Served) -> None:
    with served.client("alice") as alice:
        order, key = {"input": {"order_id": "#W7", "quantity": 2}}, {"Idempotency-Key": "k1"}
        started = alice.post("/v1/pipelines/orders/runs", json=order, headers=key)
        assert started.status_code == 202, started.text
        pipeline_id = started.json()["id"]
        again = alice.post("/v1/pipelines/orders/runs", json=order, headers=key)
        assert again.status_code == 202 and again.json()["id"] == pipeline_id
        other = {"input": {"order_id": "#W7", "quantity": 3}}  # the same key, another order
        conflict = alice.post("/v1/pipelines/orders/runs", json=other, headers=key)
        assert conflict.status_code == 409 and pipeline_id in conflict.json()["detail"]

        done = _settled(alice, pipeline_id)
        assert done["status"] == "completed", done
        assert done["output"] == {"order_id": "#W7", "label": "#W7 x2"}
        assert done["trust"] == "user"
        stages = {s["name"]: s for s in done["stages"]}
        assert list(stages) == ["validate", "check", "ship"]
        assert {s["status"] for s in stages.values()} == {"completed"}
        assert stages["check"]["kind"] == "agent"
        assert stages["check"]["outputs"][0]["output"]["approved"] is True
        (check_run,) = stages["check"]["runs"]
        # The stage's run is an ordinary run of the caller's tenant: the runs API (and the
        # dashboard's run view, at /runs/{id}) show it.
        run = alice.get(f"/v1/runs/{check_run}")
        assert run.status_code == 200 and run.json()["agent"] == "checker"

        failing = alice.post(
            "/v1/pipelines/orders/runs", json={"input": {"order_id": "W8", "quantity": 1}}
        )
        escalated = _settled(alice, failing.json()["id"])
        assert escalated["status"] == "escalated"
        assert "not found" in escalated["error"]
        first = escalated["stages"][0]
        assert (first["name"], first["status"]) == ("validate", "failed")
        assert "ids start with '#'" in first["error"]
        assert [s["status"] for s in escalated["stages"][1:]] == ["pending", "pending"]

    with served.client("bob") as bob:  # another tenant: not found, never forbidden
        other = bob.get(f"/v1/pipelines/runs/{pipeline_id}")
        assert other.status_code == 404, other.text
        assert other.headers["content-type"].startswith("application/problem+json")
        assert bob.get(f"/v1/runs/{check_run}").status_code == 404

    # The dashboard's page of the pipeline links each stage run to the run view.
    with _dashboard(served, "alice") as page:
        shown = page.get(f"/pipelines/{pipeline_id}")
        assert shown.status_code == 200, shown.text
        assert f'href="/runs/{check_run}"' in shown.text and "#W7 x2" in shown.text
        assert page.get(f"/runs/{check_run}").status_code == 200
    with _dashboard(served, "bob") as page:
        assert page.get(f"/pipelines/{pipeline_id}").status_code == 404


def test_bad_input_unknown_pipelines_and_missing_scopes_are_refused(served: Served) -> None:
    with served.client("alice") as alice:
        bad = alice.post(
            "/v1/pipelines/orders/runs", json={"input": {"order_id": "#W1", "quantity": 0}}
        )
        assert bad.status_code == 422, bad.text
        problem = bad.json()
        assert "quantity" in problem["detail"] and "'orders'" in problem["detail"]
        assert problem["errors"][0]["loc"] == ["body", "input", "quantity"]
        missing = alice.post("/v1/pipelines/orders/runs", json={"input": {"quantity": 1}})
        assert missing.status_code == 422 and "order_id" in missing.json()["detail"]

        unknown = alice.post("/v1/pipelines/invoices/runs", json={"input": {}})
        assert unknown.status_code == 404 and "orders" in unknown.json()["detail"]
        assert alice.get("/v1/pipelines/runs/0123abcd").status_code == 404

        (listed,) = alice.get("/v1/pipelines").json()
        assert listed["name"] == "orders" and listed["stages"] == ["validate", "check", "ship"]
        assert "quantity" in listed["input_schema"]["properties"]

        schema = alice.get("/openapi.json").json()
        start = schema["paths"]["/v1/pipelines/{name}/runs"]["post"]
        assert {"202", "404", "422"} <= set(start["responses"])
        assert "/v1/pipelines/runs/{pipeline_id}" in schema["paths"]
    with served.client("mo") as monitor:  # metrics only: neither starts nor reads runs
        order = {"input": {"order_id": "#1", "quantity": 1}}
        refused = monitor.post("/v1/pipelines/orders/runs", json=order)
        assert refused.status_code == 403, refused.text
        assert monitor.get("/v1/pipelines").status_code == 403
    anonymous = httpx.post(f"{served.url}/v1/pipelines/orders/runs", json={"input": {}})
    assert anonymous.status_code == 401
