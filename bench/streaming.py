"""Time to first token through the API against the model server's own (issue #19).

A streaming OpenAI-compatible server (tests/models/fake_provider.py, its own process) answers
after --delay seconds with "Hello there. " and then more text. Three figures, each over
--runs samples (median, p95):

  model TTFT     the model server's own: a request straight to it -> its first text delta
                 (OpenAIModel.stream, the adapter the runs use);
  API TTFT       POST /v1/runs (stream: true) -> the first ``text`` event on
                 GET /v1/runs/{id}/events?text=true: queueing, starting the run, the model's
                 own time to first token, the output guardrails, the event stream;
  stream path    the model server flushing its first token (its own clock) -> that text
                 arriving at the API's client: what streaming through bosun adds to a token
                 (aim: within 20 ms). The first piece ends a sentence, so the sentence gate
                 (text held to a sentence boundary before the guardrails check it) holds
                 nothing back here; with a longer first sentence the gate adds the time
                 the model takes to finish it.

The API is `bosun serve`'s shape: uvicorn with the embedded worker, the secrets guardrail on
the output, SQLite in a temporary directory (PostgreSQL too with BOSUN_TEST_PG_URL).

    python bench/streaming.py [--runs 30] [--delay 0.2] [--sqlite-only]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
import uvicorn

from bosun.config import ServiceSettings, load_settings
from bosun.data.store import Store
from bosun.gateway.auth import ApiKeys, Roles
from bosun.gateway.gateway import Gateway
from bosun.gateway.guardrails import SecretsGuard
from bosun.models.base import ModelRequest, TextDelta, UserMessage
from bosun.models.openai import OpenAIModel
from bosun.runtime import Agent, Runtime
from bosun.service.app import create_app
from bosun.service.worker import Worker

ROOT = Path(__file__).resolve().parents[1]
PROVIDER = ROOT / "tests" / "models" / "fake_provider.py"
PIECES = ("Hello there. ", "Here is ", "the rest ", "of the answer.")
WARMUP = 3


def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    data = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "fake-1"}
    return {"data": {**data, "choices": [choice]}}


def streamed_reply(delay: float) -> dict[str, Any]:
    """The first event carries the first text, so the server's clock stamps it."""
    events = [chunk({"role": "assistant", "content": PIECES[0]})]
    events += [chunk({"content": piece}) for piece in PIECES[1:]]
    events += [chunk({}, "stop"), {"data": "[DONE]"}]
    return {"sse": events, "delay": delay, "gap": 0.01}


class Provider:
    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(PROVIDER), "--port", "0"], stdout=subprocess.PIPE, text=True
        )
        assert self.process.stdout is not None
        self.url = f"http://127.0.0.1:{int(self.process.stdout.readline())}"

    def script(self, reply: dict[str, Any]) -> None:
        httpx.post(f"{self.url}/_reset", json={}).raise_for_status()
        httpx.post(f"{self.url}/_script", json={"replies": [reply]}).raise_for_status()

    def first_token_at(self) -> float:
        (request,) = httpx.get(f"{self.url}/_requests").json()["requests"]
        at: float = request["first_event_at"]
        return at

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=5)
        if self.process.stdout is not None:
            self.process.stdout.close()


@contextmanager
def api(db_url: str, provider: Provider) -> Iterator[tuple[str, dict[str, str]]]:
    store = Store.open(db_url)
    service = ServiceSettings(lease_s=30, max_queue=1000)
    model = OpenAIModel(model="fake-1", base_url=provider.url + "/v1", api_key="k")
    runtime = Runtime(
        store=store,
        agents=[Agent(name="talker", model=model)],
        settings=load_settings(service=service),
    )
    keys = ApiKeys(store, roles=Roles.builtin())
    key = keys.create("bench", tenant="t", roles=["submitter"]).key
    gateway = Gateway(runtime=runtime, keys=keys, guardrails=SecretsGuard())
    app = create_app(
        gateway, store=store, settings=service, worker=Worker(runtime, settings=service)
    )
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {key}"}
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        store.close()


def first_text(url: str, auth: dict[str, str]) -> tuple[float, float]:
    """Submit a run and follow its text: (submitted at, first text received at), time.time()."""
    with httpx.Client(timeout=30) as client:
        submitted = time.time()
        response = client.post(
            f"{url}/v1/runs", json={"agent": "talker", "input": "hi", "stream": True}, headers=auth
        )
        response.raise_for_status()
        run_id = response.json()["id"]
        first: float | None = None
        with client.stream(
            "GET", f"{url}/v1/runs/{run_id}/events?text=true", headers=auth
        ) as events:
            for line in events.iter_lines():
                if first is None and line == "event: text":
                    first = time.time()
                if line == "event: run":  # the last event: the run, finished
                    break
    assert first is not None, "no text event"
    return submitted, first


async def model_ttft(provider: Provider, delay: float) -> float:
    model = OpenAIModel(model="fake-1", base_url=provider.url + "/v1", api_key="k")
    try:
        provider.script(streamed_reply(delay))
        start = time.perf_counter()
        async for event in model.stream(ModelRequest(messages=(UserMessage(content="hi"),))):
            if isinstance(event, TextDelta) and event.text:
                return time.perf_counter() - start
        raise AssertionError("no text")
    finally:
        await model.aclose()


def summary(name: str, values: list[float]) -> str:
    ms = sorted(v * 1000 for v in values)
    p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
    return f"  {name:<13} median {statistics.median(ms):7.1f} ms   p95 {p95:7.1f} ms"


def bench(backend: str, db_url: str, provider: Provider, runs: int, delay: float) -> None:
    direct = [asyncio.run(model_ttft(provider, delay)) for _ in range(WARMUP + runs)][WARMUP:]
    through, path = [], []
    with api(db_url, provider) as (url, auth):
        for index in range(WARMUP + runs):
            provider.script(streamed_reply(delay))
            submitted, first = first_text(url, auth)
            if index >= WARMUP:
                through.append(first - submitted)
                path.append(first - provider.first_token_at())
    print(f"{backend} ({runs} runs, model answers after {delay * 1000:.0f} ms):")
    print(summary("model TTFT", direct))
    print(summary("API TTFT", through))
    print(summary("stream path", path))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--delay", type=float, default=0.2)
    parser.add_argument("--sqlite-only", action="store_true")
    args = parser.parse_args()
    provider = Provider()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            bench("SQLite", f"sqlite:///{tmp}/bench.db", provider, args.runs, args.delay)
        base = os.environ.get("BOSUN_TEST_PG_URL")
        if base and not args.sqlite_only:
            schema = f"bench_{uuid.uuid4().hex[:8]}"
            admin = sa.create_engine(base)
            with admin.begin() as conn:
                conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
            try:
                url = sa.make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
                bench("PostgreSQL", url.render_as_string(hide_password=False), provider,
                      args.runs, args.delay)  # fmt: skip
            finally:
                with admin.begin() as conn:
                    conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
                admin.dispose()
    finally:
        provider.close()


if __name__ == "__main__":
    main()
