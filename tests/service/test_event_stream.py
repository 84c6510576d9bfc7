"""``GET /v1/runs/{id}/events`` over a real server: the model's text as it streams from a real
OpenAI-compatible server process, a client that disconnects mid-run and resumes from its
last event id, and entries written by a worker in another process (on PostgreSQL they
arrive by LISTEN/NOTIFY: the test turns the endpoint's re-read timers off)."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import stream_worker
from api_harness import Api, make_app

from bosun.config import ServiceSettings
from bosun.gateway.guardrails import SecretsGuard
from bosun.models.openai import OpenAIModel
from bosun.runtime import Agent
from bosun.service import events
from bosun.tools import tool
from servers import serve

PROVIDER = Path(__file__).parents[1] / "models" / "fake_provider.py"
_spec = importlib.util.spec_from_file_location("fake_provider", PROVIDER)
assert _spec is not None and _spec.loader is not None
fake_provider = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fake_provider)

FAST = ServiceSettings(lease_s=5, poll_s=0.05, sweep_s=0.1, max_queue=50)
DEADLINE_S = 60.0
"""Fail rather than hang; a healthy stream takes a second or two."""
ANSWER = ("The answer ", "is 4", "2. Next", " one.")
SENTENCES = ["The answer is 42. ", "Next one."]
"""What the client gets: text a sentence at a time (the last one with the entry)."""
KEY = "sk-" + "proj-" + "Zq3" * 10 + "f3a9"
GATE = threading.Event()
"""Opened by a test once its client follows the run: what comes after cannot be missed."""


@tool
async def gate() -> str:
    """Wait for the test to let the run go on."""
    opened = await asyncio.to_thread(GATE.wait, DEADLINE_S)
    return "open" if opened else "timed out"


GATE_CALL = [
    {"index": 0, "id": "g1", "type": "function", "function": {"name": "gate", "arguments": "{}"}}
]


class Provider:
    """The fake OpenAI-compatible server, a process of its own."""

    def __init__(self, url: str) -> None:
        self.url = url

    def script(self, *replies: dict[str, Any]) -> None:
        httpx.post(f"{self.url}/_reset", json={}).raise_for_status()
        httpx.post(f"{self.url}/_script", json={"replies": list(replies)}).raise_for_status()

    def pending(self) -> int:
        pending: int = httpx.get(f"{self.url}/_requests").json()["pending"]
        return pending


@pytest.fixture(scope="module")
def provider() -> Iterator[Provider]:
    process = subprocess.Popen(
        [sys.executable, str(PROVIDER), "--port", "0"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        yield Provider(f"http://127.0.0.1:{int(process.stdout.readline())}")
    finally:
        process.terminate()
        process.wait(timeout=5)
        if process.stdout is not None:
            process.stdout.close()


@pytest.fixture
def writer_api(request: pytest.FixtureRequest, db_url: str, provider: Provider) -> Iterator[Api]:
    """The API (embedded worker) with ``writer``: a real OpenAI-compatible model that calls
    `gate`, then streams `ANSWER` (or the pieces a test gives with ``@pytest.mark.parametrize
    ("answer", ...)``), behind the secrets guardrail."""
    GATE.clear()
    answer = getattr(request, "param", ANSWER)
    model = OpenAIModel(model="fake-1", base_url=provider.url + "/v1", api_key="k")
    writer = Agent(name="writer", tools=[gate], model=model)
    provider.script(
        fake_provider.openai_stream(tool_calls=GATE_CALL, finish="tool_calls"),
        fake_provider.openai_stream(*answer, gap=0.05),
    )
    app, store, keys = make_app(db_url, FAST, extra=[writer], guardrails=SecretsGuard())
    with serve(app) as url:
        yield Api(url, store, keys)
    GATE.set()
    store.close()
    assert provider.pending() == 0, "the model was not called as scripted"


def sse(response: httpx.Response) -> Iterator[dict[str, str]]:
    """The events of an SSE response as ``{"event", "id", "data"}``; fails past the deadline
    (keep-alive comments arrive every 15 s, so a stalled stream is noticed)."""
    deadline = time.monotonic() + DEADLINE_S
    event = {"event": "", "id": "", "data": ""}
    for line in response.iter_lines():
        assert time.monotonic() < deadline, "the stream stalled"
        if not line:
            if event["data"]:
                yield event
            event = {"event": "", "id": "", "data": ""}
            continue
        field, _, value = line.partition(":")
        if field in event:
            event[field] = value.strip()


def submit(api: Api, agent: str, **extra: Any) -> str:
    response = httpx.post(
        f"{api.url}/v1/runs", json={"agent": agent, "input": "go", **extra}, headers=api.auth()
    )
    assert response.status_code == 202, response.text
    run_id: str = response.json()["id"]
    return run_id


def follow(api: Api, run_id: str, query: str = "", last: str | None = None) -> Any:
    headers = api.auth() if last is None else {**api.auth(), "Last-Event-ID": last}
    return httpx.stream(
        "GET", f"{api.url}/v1/runs/{run_id}/events{query}", headers=headers, timeout=DEADLINE_S
    )


def test_the_answer_streams_as_text_before_its_entry(writer_api: Api) -> None:
    run_id = submit(writer_api, "writer", stream=True)
    seen: list[dict[str, str]] = []
    with follow(writer_api, run_id, "?text=true") as response:
        for event in sse(response):
            seen.append(event)
            GATE.set()  # following now: let the model answer
    kinds = [e["event"] for e in seen]
    final = json.loads(seen[-1]["data"])
    assert kinds[-1] == "run" and final["status"] == "completed"
    texts = [json.loads(e["data"]) for e in seen if e["event"] == "text"]
    assert [t["text"] for t in texts] == SENTENCES
    assert "".join(t["text"] for t in texts) == final["output"]
    assert all(e["id"] == "" for e in seen if e["event"] == "text"), "text is not resumable"
    # The text comes before the entry that journals the answer, at the position it takes.
    answer_at = max(i for i, e in enumerate(seen) if e["event"] == "model_response")
    assert max(i for i, e in enumerate(seen) if e["event"] == "text") < answer_at
    assert {t["step"] for t in texts} == {int(seen[answer_at]["id"])}


@pytest.mark.parametrize(
    "writer_api",
    [("Here it is. ", f"Use {KEY[:12]}", f"{KEY[12:]} for that. ", "Bye.")],
    indirect=True,
)
def test_text_the_output_guardrails_refuse_never_leaves(writer_api: Api) -> None:
    run_id = submit(writer_api, "writer", stream=True)
    with follow(writer_api, run_id, "?text=true") as response:
        seen = []
        for event in sse(response):
            seen.append(event)
            GATE.set()
    assert [json.loads(e["data"])["text"] for e in seen if e["event"] == "text"] == ["Here it is. "]
    assert KEY[:12] not in "".join(e["data"] for e in seen)
    final = json.loads(seen[-1]["data"])
    assert final["status"] == "completed" and final["output"] is None  # blocked whole too


def test_without_text_the_stream_is_the_journal_only(writer_api: Api) -> None:
    run_id = submit(writer_api, "writer", stream=True)
    with follow(writer_api, run_id) as response:
        kinds = []
        for event in sse(response):
            kinds.append(event["event"])
            GATE.set()
    assert "text" not in kinds and kinds[-1] == "run"


def test_a_client_that_leaves_mid_run_resumes_from_its_last_event(writer_api: Api) -> None:
    run_id = submit(writer_api, "writer", stream=True)
    with follow(writer_api, run_id, "?text=true") as response:
        for event in sse(response):
            if event["id"]:
                last = event["id"]
            if event["event"] == "text":
                break  # gone mid-answer, connection closed
            GATE.set()
    # The run goes on without it...
    deadline = time.monotonic() + DEADLINE_S
    while (
        run := httpx.get(f"{writer_api.url}/v1/runs/{run_id}", headers=writer_api.auth()).json()
    )["status"] != "completed":
        assert time.monotonic() < deadline, run
        time.sleep(0.05)
    assert run["output"] == "".join(ANSWER)
    # ... and the stream resumes after the last entry the client saw: none twice, none lost.
    with follow(writer_api, run_id, "?text=true", last=last) as response:
        rest = list(sse(response))
    ids = [int(e["id"]) for e in rest if e["id"]]
    assert ids == list(range(int(last) + 1, len(run["steps"])))
    assert rest[-1]["event"] == "run"


@pytest.fixture
def split_api(db_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Api]:
    """The API without a worker, beside `stream_worker.py` in its own process."""
    if db_url.startswith("postgresql"):
        # Only notifications move the stream on: no timer re-reads the journal.
        monkeypatch.setattr(events, "_SAFETY_S", 3600.0)
        monkeypatch.setattr(events, "_FALLBACK_S", 3600.0)
    app, store, keys = make_app(db_url, FAST, extra=stream_worker.agents(), embedded_worker=False)
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        worker = subprocess.Popen(
            [sys.executable, stream_worker.__file__, db_url], stdout=out, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + DEADLINE_S
        while "serving as" not in log.read_text():
            assert worker.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        with serve(app) as url:
            yield Api(url, store, keys)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        store.close()


def test_entries_written_by_a_worker_in_another_process_stream(split_api: Api) -> None:
    run_id = submit(split_api, "pacer")
    with follow(split_api, run_id) as response:
        seen = list(sse(response))
    final = json.loads(seen[-1]["data"])
    assert seen[-1]["event"] == "run" and final["status"] == "completed"
    ids = [int(e["id"]) for e in seen if e["id"]]
    assert ids == list(range(len(final["steps"])))
    assert [e["event"] for e in seen].count("tool_result") == stream_worker.LOOKUPS


def test_a_last_event_id_past_any_entry_resumes_with_nothing_more(writer_api: Api) -> None:
    run_id = submit(writer_api, "writer", stream=True)
    GATE.set()
    with follow(writer_api, run_id, last="99999999999999999999") as response:
        assert response.status_code == 200
        seen = list(sse(response))
    assert [e["event"] for e in seen] == ["run"]
