"""Webhooks on run events: outbox, signatures, retries, filters, two dispatchers at once.

Deliveries go to a real HTTP server on 127.0.0.1; time is a clock the tests move, never a sleep.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import sqlalchemy as sa

from bosun.config import WebhookSubscription
from bosun.data.schema import runs, webhook_deliveries
from bosun.data.store import Store
from bosun.errors import ConfigError
from bosun.runtime import Agent, Runtime
from bosun.service.webhooks import WebhookDispatcher
from bosun.signing import sign, verify
from bosun.testing import Fault, ScriptedModel, reply

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


class Receiver:
    """Records every POST; `script[path]` lists (status, headers) to answer first, then 204."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.script: dict[str, list[tuple[int, dict[str, str]]]] = {}
        self.always: dict[str, int] = {}
        self.delay_s = 0.0
        lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                with lock:
                    headers = {k.lower(): v for k, v in self.headers.items()}
                    receiver.requests.append(Received(self.path, headers, body))
                    queued = receiver.script.get(self.path)
                    status, extra = queued.pop(0) if queued else (204, {})
                    status = receiver.always.get(self.path, status)
                time.sleep(receiver.delay_s)  # widens the window two dispatchers race in
                self.send_response(status)
                for name, value in extra.items():
                    self.send_header(name, value)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def to(self, path: str) -> list[Received]:
        return [r for r in self.requests if r.path == path]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    r.thread.start()
    yield r
    r.server.shutdown()
    r.server.server_close()
    r.thread.join()


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def subscription(url: str, **kw: Any) -> WebhookSubscription:
    return WebhookSubscription(url=url, secret=SECRET, **kw)  # type: ignore[arg-type]


async def a_run(store: Store, *, fault: Fault | None = None, tenant: str | None = None) -> str:
    # The fault twice: a refusal is asked again once before the run escalates.
    faults = {0: fault, 1: fault} if fault else {}
    model = ScriptedModel([] if fault else [reply("done")], faults=faults)
    agent = Agent(name="support", model=model)
    async with Runtime(store=store) as rt:
        result = await rt.run(agent, "hello", tenant=tenant)
    return result.run_id


def deliveries(store: Store) -> list[dict[str, Any]]:
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(webhook_deliveries).order_by(webhook_deliveries.c.id))
        return [dict(r._mapping) for r in rows]


async def test_a_completed_run_is_posted_once_signed(
    store: Store, receiver: Receiver, clock: Clock
) -> None:
    run_id = await a_run(store, tenant="acme")
    d = WebhookDispatcher(store, [subscription(receiver.url())], clock=clock)
    try:
        assert await d.enqueue_due() == 1
        assert await d.enqueue_due() == 0
        assert await d.deliver_due() == 1
        assert await d.deliver_due() == 0
    finally:
        await d.aclose()
    [got] = receiver.requests
    assert got.headers["content-type"] == "application/json"
    assert got.headers["user-agent"] == "bosun-webhooks"
    assert got.headers["webhook-id"].startswith("evt_")
    assert verify(SECRET, got.headers, got.body, now=clock.now)
    payload = json.loads(got.body)
    assert payload["type"] == "run.completed"
    assert payload["timestamp"].endswith("Z")
    assert payload["data"] == {
        "run_id": run_id,
        "agent": "support",
        "tenant": "acme",
        "status": "completed",
        "output": "done",
        "error": None,
        "handoff": None,
    }
    [row] = deliveries(store)
    assert (row["id"], row["status"], row["attempts"]) == (
        got.headers["webhook-id"],
        "delivered",
        1,
    )
    assert row["payload"].encode() == got.body
    assert row["delivered_at"] == clock.now
    run = store.get_run(run_id)
    with store.engine.connect() as conn:
        notified = conn.execute(sa.select(runs.c.notified_at).where(runs.c.id == run_id)).scalar()
    assert notified == run.updated_at


@pytest.mark.parametrize(
    ("fault", "event", "status"),
    [
        (Fault.refusal(), "run.escalated", "escalated"),
        (Fault.auth(), "run.failed", "failed"),
    ],
)
async def test_escalated_and_failed_runs_are_announced(
    store: Store, receiver: Receiver, clock: Clock, fault: Fault, event: str, status: str
) -> None:
    run_id = await a_run(store, fault=fault)
    d = WebhookDispatcher(store, [subscription(receiver.url())], clock=clock)
    await d.enqueue_due()
    await d.deliver_due()
    await d.aclose()
    [got] = receiver.requests
    payload = json.loads(got.body)
    assert payload["type"] == event
    assert payload["data"]["run_id"] == run_id
    assert payload["data"]["status"] == status
    if status == "escalated":
        assert "reason" in payload["data"]["handoff"]
    else:
        assert payload["data"]["error"]


async def test_each_status_maps_to_its_event(
    store: Store, receiver: Receiver, clock: Clock
) -> None:
    expected = {
        "waiting_approval": "run.waiting",
        "waiting_human": "run.escalated",
        "cancelled": "run.cancelled",
        "queued": None,
        "running": None,
    }
    ids: dict[str, str] = {}
    for status in expected:
        run_id = ids[status] = await a_run(store)
        with store.transaction() as conn:  # statuses a scripted run does not stop in
            conn.execute(runs.update().where(runs.c.id == run_id).values(status=status))
    everything = ("run.waiting", "run.escalated", "run.cancelled", "run.completed")
    d = WebhookDispatcher(store, [subscription(receiver.url(), events=everything)], clock=clock)
    assert await d.enqueue_due() == 3
    await d.deliver_due()
    await d.aclose()
    got: dict[str, str] = {}
    for r in receiver.requests:
        payload = json.loads(r.body)
        got[payload["data"]["run_id"]] = payload["type"]
    assert got == {ids[status]: event for status, event in expected.items() if event}


async def test_retries_with_backoff_until_the_receiver_recovers(
    store: Store, receiver: Receiver, clock: Clock
) -> None:
    receiver.script["/hook"] = [(500, {}), (503, {})]
    await a_run(store)
    d = WebhookDispatcher(store, [subscription(receiver.url())], clock=clock, base_delay_s=2)
    await d.enqueue_due()
    for attempt in (1, 2):
        assert await d.deliver_due() == 1
        [row] = deliveries(store)
        assert (row["status"], row["attempts"]) == ("pending", attempt)
        assert row["last_error"].startswith(f"HTTP {500 if attempt == 1 else 503}")
        assert clock.now < row["next_attempt_at"] <= clock.now + 2 * 2 ** (attempt - 1)
        assert await d.deliver_due() == 0  # not due yet
        clock.now = row["next_attempt_at"]
    assert await d.deliver_due() == 1
    await d.aclose()
    [row] = deliveries(store)
    assert (row["status"], row["attempts"], row["last_error"]) == ("delivered", 3, None)
    assert len({r.headers["webhook-id"] for r in receiver.requests}) == 1
    assert len({r.body for r in receiver.requests}) == 1
    assert len(receiver.requests) == 3


@pytest.mark.parametrize("code", [429, 503])
async def test_retry_after_is_honoured(
    store: Store, receiver: Receiver, clock: Clock, code: int
) -> None:
    receiver.script["/hook"] = [(code, {"Retry-After": "120"})]
    await a_run(store)
    d = WebhookDispatcher(store, [subscription(receiver.url())], clock=clock)
    await d.enqueue_due()
    await d.deliver_due()
    await d.aclose()
    [row] = deliveries(store)
    assert row["next_attempt_at"] == clock.now + 120


async def test_gives_up_after_max_attempts(store: Store, receiver: Receiver, clock: Clock) -> None:
    receiver.always["/hook"] = 500
    await a_run(store)
    d = WebhookDispatcher(store, [subscription(receiver.url())], clock=clock, max_attempts=3)
    await d.enqueue_due()
    for _ in range(5):
        await d.deliver_due()
        clock.now += 1000
    await d.aclose()
    [row] = deliveries(store)
    assert (row["status"], row["attempts"]) == ("failed", 3)
    assert len(receiver.requests) == 3


async def test_gone_fails_at_once_and_redirects_are_not_followed(
    store: Store, receiver: Receiver, clock: Clock
) -> None:
    receiver.always["/gone"] = 410
    receiver.script["/moved"] = [(307, {"Location": "/elsewhere"})]
    await a_run(store)
    subs = [subscription(receiver.url("/gone")), subscription(receiver.url("/moved"))]
    d = WebhookDispatcher(store, subs, clock=clock)
    await d.enqueue_due()
    assert await d.deliver_due() == 2
    await d.aclose()
    by_url = {row["url"]: row for row in deliveries(store)}
    assert by_url[receiver.url("/gone")]["status"] == "failed"
    assert by_url[receiver.url("/moved")]["status"] == "pending"
    assert by_url[receiver.url("/moved")]["last_error"].startswith("HTTP 307")
    assert receiver.to("/elsewhere") == []


async def test_an_unreachable_receiver_is_tried_once_per_round(store: Store, clock: Clock) -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    await a_run(store)
    await a_run(store)
    d = WebhookDispatcher(store, [subscription(f"http://127.0.0.1:{port}/hook")], clock=clock)
    assert await d.enqueue_due() == 2
    assert await d.deliver_due() == 1
    await d.aclose()
    rows = deliveries(store)
    assert [(r["status"], r["attempts"]) for r in rows] == [("pending", 1)] * 2
    assert all(r["last_error"] and r["next_attempt_at"] > clock.now for r in rows)


async def test_tenant_and_event_filters(store: Store, receiver: Receiver, clock: Clock) -> None:
    acme = await a_run(store, tenant="acme")
    other = await a_run(store, tenant="other")
    escalated = await a_run(store, fault=Fault.refusal(), tenant="acme")
    subs = [
        subscription(receiver.url("/all-completed"), events=("run.completed",)),
        subscription(receiver.url("/acme"), tenant="acme"),
        subscription(receiver.url("/escalations"), events=("run.escalated",)),
        subscription(receiver.url("/cancels"), events=("run.cancelled",)),
    ]
    d = WebhookDispatcher(store, subs, clock=clock)
    assert await d.enqueue_due() == 5
    assert await d.deliver_due() == 5
    await d.aclose()

    def run_ids(path: str) -> set[str]:
        return {json.loads(r.body)["data"]["run_id"] for r in receiver.to(path)}

    assert run_ids("/all-completed") == {acme, other}
    assert run_ids("/acme") == {acme, escalated}
    assert run_ids("/escalations") == {escalated}
    assert run_ids("/cancels") == set()


async def test_a_rescan_never_duplicates_and_a_new_status_is_a_new_event(
    store: Store, receiver: Receiver, clock: Clock
) -> None:
    run_id = await a_run(store)
    d = WebhookDispatcher(store, [subscription(receiver.url())], clock=clock)
    assert await d.enqueue_due() == 1
    with store.transaction() as conn:  # as if the mark were lost: the same event is found again
        conn.execute(runs.update().values(notified_at=None))
    assert await d.enqueue_due() == 0
    with store.transaction() as conn:  # the run moves on: a new event
        conn.execute(runs.update().values(status="failed", updated_at=runs.c.updated_at + 1))
    assert await d.enqueue_due() == 1
    assert await d.deliver_due() == 2
    await d.aclose()
    types = sorted(json.loads(r.body)["type"] for r in receiver.requests)
    assert types == ["run.completed", "run.failed"]
    assert {json.loads(r.body)["data"]["run_id"] for r in receiver.requests} == {run_id}


async def test_two_dispatchers_post_each_event_exactly_once(
    store: Store, db_url: str, receiver: Receiver, clock: Clock
) -> None:
    receiver.delay_s = 0.02
    subs = [subscription(receiver.url("/a")), subscription(receiver.url("/b"))]
    other = Store.open(db_url)
    first = WebhookDispatcher(store, subs, clock=clock)
    second = WebhookDispatcher(other, subs, clock=clock)

    async def drain(d: WebhookDispatcher) -> int:
        sent = 0
        while attempts := await d.deliver_due(3):
            sent += attempts
        return sent

    try:
        for _ in range(3):  # each race: both sweep the same new runs at once
            for _ in range(3):
                await a_run(store)
            created = await asyncio.gather(first.enqueue_due(), second.enqueue_due())
            assert sum(created) == 6
        # Each drains at its own pace, so one picks rows while the other still sends its own.
        assert sum(await asyncio.gather(drain(first), drain(second))) == 18
    finally:
        await first.aclose()
        await second.aclose()
        other.close()
    sent = Counter(r.headers["webhook-id"] for r in receiver.requests)
    assert len(sent) == 18
    assert set(sent.values()) == {1}
    assert {row["status"] for row in deliveries(store)} == {"delivered"}


def test_sign_matches_the_standard_webhooks_reference_vector() -> None:
    body = b'{"test": 2432232314}'
    signature = sign(SECRET, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body)
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_verify_rejects_tampering_wrong_secrets_and_stale_timestamps() -> None:
    body = b'{"type":"run.completed"}'
    now = 1_700_000_000
    good = sign(SECRET, "evt_1", now, body)
    headers = {"webhook-id": "evt_1", "webhook-timestamp": str(now), "webhook-signature": good}
    assert verify(SECRET, headers, body, now=now)
    assert verify(SECRET, {**headers, "webhook-signature": f"v1,bm9wZQ== {good}"}, body, now=now)
    assert not verify(SECRET, headers, body + b" ", now=now)
    assert not verify("whsec_" + "QUJD" * 8, headers, body, now=now)
    assert not verify("plain-text-secret", headers, body, now=now)
    assert not verify(SECRET, headers, body, now=now + 301)
    assert not verify(SECRET, headers, body, now=now - 301)
    assert not verify(SECRET, {**headers, "webhook-id": "evt_2"}, body, now=now)
    assert not verify(SECRET, {**headers, "webhook-timestamp": "soon"}, body, now=now)
    assert not verify(SECRET, {k: v for k, v in headers.items() if k != "webhook-id"}, body)
    plain = sign("plain-text-secret", "evt_1", now, body)
    assert verify("plain-text-secret", {**headers, "webhook-signature": plain}, body, now=now)


def test_one_url_with_two_secrets_is_refused(store: Store) -> None:
    subs = [
        subscription("http://127.0.0.1:9/x", tenant="a"),
        WebhookSubscription(url="http://127.0.0.1:9/x", secret="other", tenant="b"),  # type: ignore[arg-type]
    ]
    with pytest.raises(ConfigError, match="different secrets"):
        WebhookDispatcher(store, subs)
