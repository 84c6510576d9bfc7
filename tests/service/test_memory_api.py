"""Threads and long-term memory through the REST API, on SQLite and PostgreSQL: a run with a
``thread_id`` sees the thread's earlier turns, an email reply joins its conversation, and a
tenant never reads another tenant's memory or thread."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from bosun.config import ServiceSettings, load_settings
from bosun.data.store import Store
from bosun.gateway.auth import ApiKeys, Roles
from bosun.gateway.gateway import Gateway
from bosun.memory import LongTermMemory, ThreadMemory
from bosun.models.base import ModelRequest, ModelResponse
from bosun.runtime import Agent, Runtime
from bosun.service.app import create_app
from bosun.service.worker import Worker
from bosun.testing import ScriptedModel, call, reply
from servers import serve

FAST = ServiceSettings(lease_s=5, poll_s=0.05, sweep_s=0.1, max_queue=50)


def policy(request: ModelRequest) -> ModelResponse:
    """'remember X' -> remember(X); 'recall Q' -> recall(Q) and answer with what came back;
    anything else -> answer with the earlier turns it was shown."""
    text = request.messages[-1].content or ""
    results = [m.content or "" for m in request.messages if m.role == "tool"]
    if results:
        return reply(results[-1])
    if text.startswith("remember "):
        return call("remember", {"text": text.removeprefix("remember ")})
    if text.startswith("recall "):
        return call("recall", {"query": text.removeprefix("recall ")})
    earlier = [m.content or "" for m in request.messages[:-1] if m.role == "user"]
    return reply(json.dumps({"earlier": earlier}))


class Served:
    def __init__(self, url: str, store: Store, keys: dict[str, str]) -> None:
        self.url, self.store, self.keys = url, store, keys

    def post(self, who: str, body: dict[str, Any]) -> str:
        response = httpx.post(
            f"{self.url}/v1/runs", json={"agent": "desk", **body}, headers=self.auth(who)
        )
        assert response.status_code == 202, response.text
        run_id: str = response.json()["id"]
        return run_id

    def email(self, who: str, raw: bytes) -> str:
        headers = {**self.auth(who), "content-type": "message/rfc822"}
        response = httpx.post(f"{self.url}/v1/inbox?agent=desk", content=raw, headers=headers)
        assert response.status_code == 202, response.text
        run_id: str = response.json()["id"]
        return run_id

    def done(self, who: str, run_id: str) -> dict[str, Any]:
        deadline = time.monotonic() + 20
        while True:
            body: dict[str, Any] = httpx.get(
                f"{self.url}/v1/runs/{run_id}", headers=self.auth(who)
            ).json()
            if body["status"] in {"completed", "failed", "escalated", "waiting_approval"}:
                return body
            assert time.monotonic() < deadline, body
            time.sleep(0.05)

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[who]}"}


@pytest.fixture
def served(db_url: str) -> Iterator[Served]:
    store = Store.open(db_url)
    agent = Agent(
        name="desk",
        tools=[*LongTermMemory(store).tools()],
        model=ScriptedModel(policy),
        memory=ThreadMemory(window_turns=3),
    )
    runtime = Runtime(store=store, agents=[agent], settings=load_settings(service=FAST))
    keys_ = ApiKeys(store, roles=Roles.builtin(tool_scopes=["memory:*"]))
    keys = {
        "alice": keys_.create("alice", tenant="acme", roles=["submitter"]).key,
        "bob": keys_.create("bob", tenant="globex", roles=["submitter"]).key,
    }
    gateway = Gateway(runtime=runtime, keys=keys_)
    app = create_app(gateway, store=store, settings=FAST, worker=Worker(runtime, settings=FAST))
    with serve(app) as url:
        yield Served(url, store, keys)
    store.close()


def test_a_tenant_never_recalls_another_tenants_memory(served: Served) -> None:
    served.done("alice", served.post("alice", {"input": "remember the discount code is ALPHA-7"}))
    bob = served.done("bob", served.post("bob", {"input": "recall discount code"}))
    assert json.loads(bob["output"])["data"]["memories"] == []
    alice = served.done("alice", served.post("alice", {"input": "recall discount code"}))
    found = json.loads(alice["output"])["data"]["memories"]
    assert [m["text"] for m in found] == ["the discount code is ALPHA-7"]


def test_a_thread_id_carries_the_conversation_within_a_tenant(served: Served) -> None:
    first = served.done(
        "alice", served.post("alice", {"input": "my order is A-1", "thread_id": "t1"})
    )
    assert first["thread_id"] == "t1"
    second = served.done(
        "alice", served.post("alice", {"input": "which order?", "thread_id": "t1"})
    )
    assert any("my order is A-1" in e for e in json.loads(second["output"])["earlier"])
    # the same thread id in another tenant is another thread
    other = served.done("bob", served.post("bob", {"input": "which order?", "thread_id": "t1"}))
    assert json.loads(other["output"])["earlier"] == []


FIRST = (
    b"From: Ann <ann@example.com>\r\nTo: support@example.com\r\nSubject: refund\r\n"
    b"Message-ID: <m1@example.com>\r\n\r\nPlease refund order A-1001.\r\n"
)
REPLY = (
    b"From: Ann <ann@example.com>\r\nTo: support@example.com\r\nSubject: Re: refund\r\n"
    b"Message-ID: <m2@example.com>\r\nIn-Reply-To: <r1@support.example.com>\r\n"
    b"References: <m1@example.com> <r1@support.example.com>\r\n\r\nAny news?\r\n"
)
STRANGER = REPLY.replace(b"ann@example.com", b"eve@evil.example").replace(b"<m2@", b"<m3@")


def test_an_email_reply_is_a_turn_of_its_conversation_and_a_stranger_is_not(
    served: Served,
) -> None:
    first = served.done("alice", served.email("alice", FIRST))
    reply_run = served.done("alice", served.email("alice", REPLY))
    stranger = served.done("alice", served.email("alice", STRANGER))
    shown = json.loads(reply_run["output"])["earlier"]
    assert any("Please refund order A-1001." in e for e in shown)
    assert reply_run["thread_id"] == first["thread_id"] is not None
    assert stranger["thread_id"] != first["thread_id"]
    assert json.loads(stranger["output"])["earlier"] == []
    entry = next(s for s in served.store.journal(reply_run["id"]) if s.kind == "thread_context")
    window = json.loads(entry.payload)["window"]
    assert [t["run_id"] for t in window] == [first["id"]]
    assert [p["trust"] for p in window[0]["parts"]] == ["user", "untrusted"]
