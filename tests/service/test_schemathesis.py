"""The published OpenAPI schema, held to account by schemathesis against a real server.

Every operation of ``/openapi.json`` gets seeded, generated requests, valid and (where an
invalid request exists) invalid, as an admin of tenant ``acme``, against uvicorn over a real
store with its embedded worker. Path ids are either generated or those of fresh runs in each
state (completed, waiting for approval, waiting for a person), and valid submissions name a
served agent, so the handlers past the 404 are reached too. Each response must be no 5xx and
have a status code, content type and body the schema declares for that operation; the
server-sent events of ``/v1/runs/{id}/events`` are validated one by one against the
``itemSchema`` of ``text/event-stream``. Nothing may be logged at ERROR either: a handler that
fails after a streamed response has started cannot change its 200 any more.

The operations come from the live schema, so a new endpoint is exercised without editing this
file. (schemathesis's `pytest.from_fixture` does not run on pytest 9, whose nodes have no
``_nodeid``; the documented `as_strategy` route with Hypothesis does the same work.)
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import hypothesis
import pytest
import schemathesis
from api_harness import make_app
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from bosun.config import ServiceSettings
from bosun.gateway.auth import ApiKeys, Roles
from servers import serve

SETTINGS = ServiceSettings(lease_s=5, poll_s=0.05, sweep_s=0.1, max_queue=100_000)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
HYPOTHESIS = hypothesis.settings(
    max_examples=25,  # per operation and generation mode
    derandomize=True,
    database=None,
    deadline=None,
    # Requests over HTTP are slow for Hypothesis, and invalid data is found by filtering.
    suppress_health_check=[
        hypothesis.HealthCheck.too_slow,
        hypothesis.HealthCheck.filter_too_much,
        hypothesis.HealthCheck.data_too_large,
    ],
    print_blob=False,
)
AGENT = "helper"
"""An agent the harness serves: valid submissions name it, so some runs are accepted."""
SAMPLES = {
    "message/rfc822": (
        b"From: Ann <ann@example.com>\r\nTo: desk@example.com\r\nSubject: order A-1\r\n"
        b"Message-ID: <a1@example.com>\r\n\r\nWhere is my order A-1?\r\n"
    )
}
"""A well-formed body for media types whose schema is only "binary"."""

# A raw email is bytes on the wire, as application/octet-stream is.
schemathesis.serializer.alias("message/rfc822", "application/octet-stream")


@dataclass
class Target:
    """The served API, its schema, and a source of real ids to aim path parameters at."""

    url: str
    schema: schemathesis.BaseSchema
    fresh_ids: Callable[[], dict[str, list[str]]]


def _seed(url: str, auth: dict[str, str]) -> dict[str, list[str]]:
    """New runs in each interesting state: done, holding a call for approval, asking a
    person; with the held call's approval id."""
    runs = []
    for text in ("what is x?", "send a note", "ask them"):
        body = {"agent": AGENT, "input": text}
        response = httpx.post(f"{url}/v1/runs", json=body, headers=auth)
        assert response.status_code == 202, response.text
        runs.append(response.json()["id"])
    deadline = time.monotonic() + 20
    while True:
        states = [httpx.get(f"{url}/v1/runs/{i}", headers=auth).json()["status"] for i in runs]
        if states == ["completed", "waiting_approval", "waiting_human"]:
            break
        assert time.monotonic() < deadline, states
        time.sleep(0.05)
    approvals = httpx.get(f"{url}/v1/approvals", headers=auth, params={"limit": 200}).json()
    held = [a["id"] for a in approvals if a["run_id"] == runs[1]]
    assert len(held) == 1, approvals
    return {"run_id": runs, "approval_id": held}


@pytest.fixture
def target(db_url: str) -> Iterator[Target]:
    app, store, _ = make_app(db_url, SETTINGS)
    admin = ApiKeys(store, roles=Roles.builtin()).create("ada", tenant="acme", roles=["admin"])
    auth = {"Authorization": f"Bearer {admin.key}"}
    config = schemathesis.Config.from_dict(
        {
            "headers": auth,
            # The admin key is the one credential; generated tokens would only meet 401.
            "generation": {"with-security-parameters": False},
            "request-timeout": 10,
        }
    )
    with serve(app) as url:
        schema = schemathesis.openapi.from_url(f"{url}/openapi.json", config=config)
        yield Target(url=url, schema=schema, fresh_ids=lambda: _seed(url, auth))
    store.close()


def _negatable(operation: schemathesis.APIOperation) -> bool:
    """Whether an invalid request exists: a body, query or header to break. (A path id is
    any string, and security parameters are not generated.)"""
    return bool(len(operation.query) or len(operation.headers) or operation.body)


def _served_agent(case: schemathesis.Case) -> schemathesis.Case:
    if isinstance(case.body, dict) and isinstance(case.body.get("agent"), str):
        case.body["agent"] = AGENT
    if case.query is not None and any(p.name == "agent" for p in case.operation.query):
        case.query["agent"] = AGENT
    return case


def _cases(
    operation: schemathesis.APIOperation, mode: GenerationMode, ids: dict[str, list[str]]
) -> st.SearchStrategy[schemathesis.Case]:
    generated = operation.as_strategy(generation_mode=mode)
    branches = [generated]
    if mode is GenerationMode.POSITIVE:
        branches.append(generated.map(_served_agent))
        for body in operation.body:
            if body.media_type in SAMPLES:
                sample = operation.as_strategy(
                    body=SAMPLES[body.media_type], media_type=body.media_type
                )
                branches.append(sample.map(_served_agent))
    names = [p.name for p in operation.path_parameters]
    if names and all(name in ids for name in names):
        for value in dict.fromkeys(v for n in names for v in ids[n]):
            fixed = {n: value for n in names}
            branches.append(operation.as_strategy(generation_mode=mode, path_parameters=fixed))
    return st.one_of(*branches)


def _exercise(target: Target, operation: schemathesis.APIOperation, mode: GenerationMode) -> None:
    ids = target.fresh_ids() if len(operation.path_parameters) else {}

    @HYPOTHESIS
    @hypothesis.given(case=_cases(operation, mode, ids))
    def check(case: schemathesis.Case) -> None:
        case.call_and_validate(base_url=target.url, checks=CHECKS)

    check()


def test_every_operation_answers_as_its_schema_declares(
    target: Target, caplog: pytest.LogCaptureFixture
) -> None:
    failures: dict[str, str] = {}
    tested = []
    for result in target.schema.get_all_operations():
        operation = result.ok()
        tested.append(operation.label)
        modes = [GenerationMode.POSITIVE]
        if _negatable(operation):
            modes.append(GenerationMode.NEGATIVE)
        for mode in modes:
            try:
                _exercise(target, operation, mode)
            except (Exception, schemathesis.errors.FailureGroup) as exc:
                failures[f"{operation.label} ({mode.value})"] = "".join(
                    traceback.format_exception_only(exc)
                )
    assert len(tested) >= 14, tested  # the routes of bosun.service.app, probes included
    assert not failures, "\n\n".join(f"== {label}\n{text}" for label, text in failures.items())
    errors = [f"{r.name}: {r.getMessage()}" for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, "\n".join(errors)
