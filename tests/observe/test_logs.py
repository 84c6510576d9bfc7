"""Structured logs: JSON lines from structlog and stdlib logging, carrying run and trace ids."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from bosun.data.store import Store
from bosun.observe.logs import bind_run, configure_logging
from bosun.observe.tracing import span_id_for, trace_of
from bosun.runtime import Agent, Runtime
from bosun.testing import ScriptedModel, call, reply
from bosun.tools import tool


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    """Logging configured into a buffer; the process's logging restored afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    buffer = io.StringIO()
    yield buffer
    for handler in root.handlers:
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)
    structlog.reset_defaults()


def lines(buffer: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


def test_stdlib_and_structlog_lines_are_json_with_the_bound_run(stream: io.StringIO) -> None:
    configure_logging("INFO", stream=stream)
    with bind_run("run-1"):
        logging.getLogger("bosun.runtime").warning("run %s stalled", "run-1")
        structlog.get_logger("bosun.spine").info("scored", score=0.5)
        logging.getLogger("bosun.runtime").debug("below the level")
    logging.getLogger("other").error("after the run")

    first, second, third = lines(stream)
    assert first["event"] == "run run-1 stalled"
    assert (first["level"], first["logger"]) == ("warning", "bosun.runtime")
    assert first["timestamp"].endswith("Z")
    assert (second["event"], second["score"], second["logger"]) == ("scored", 0.5, "bosun.spine")
    for line in (first, second):
        assert line["run_id"] == "run-1"
        assert len(line["trace_id"]) == 32 and line["span_id"] == span_id_for("run-1", "run")
    assert third["event"] == "after the run"
    assert "run_id" not in third and "trace_id" not in third


def test_exceptions_are_rendered_into_the_line(stream: io.StringIO) -> None:
    configure_logging("WARNING", stream=stream)
    try:
        raise KeyError("lost")
    except KeyError:
        logging.getLogger("bosun").exception("step failed")
    (line,) = lines(stream)
    assert line["event"] == "step failed"
    assert "KeyError: 'lost'" in line["exception"]


def test_configuring_again_replaces_the_handler(stream: io.StringIO) -> None:
    configure_logging("INFO", stream=io.StringIO())
    configure_logging("INFO", json=False, stream=stream)
    with bind_run("run-2"):
        logging.getLogger("bosun").info("readable")
    (text,) = stream.getvalue().splitlines()
    assert "readable" in text and "run_id=run-2" in text
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)


@tool
def lookup(email: str) -> str:
    """Find a customer."""
    logging.getLogger("myapp.crm").info("looking up %s", email)
    return "gold"


async def test_a_line_logged_while_a_run_is_driven_carries_its_trace_id(
    store: Store, stream: io.StringIO
) -> None:
    configure_logging("INFO", stream=stream)
    agent = Agent(
        name="support",
        tools=[lookup],
        model=ScriptedModel([call("lookup", {"email": "a@b.c"}), reply("gold")]),
    )
    async with Runtime(store=store) as rt:
        run_id = await rt.start(agent, "who is a@b.c?", queued=False)
        with bind_run(run_id):
            await rt.resume(run_id)  # the driving task inherits the bound context
    (line,) = [entry for entry in lines(stream) if entry.get("logger") == "myapp.crm"]
    assert line["event"] == "looking up a@b.c"
    trace = trace_of(store, run_id)
    assert (line["run_id"], line["trace_id"], line["span_id"]) == (
        run_id,
        trace.trace_id,
        trace.root.span_id,
    )


async def test_the_runtime_binds_the_run_it_drives_without_help(
    store: Store, stream: io.StringIO
) -> None:
    configure_logging("INFO", stream=stream)
    agent = Agent(
        name="support",
        tools=[lookup],
        model=ScriptedModel([call("lookup", {"email": "a@b.c"}), reply("gold")]),
    )
    async with Runtime(store=store) as rt:
        result = await rt.run(agent, "who is a@b.c?")
    logging.getLogger("myapp.crm").info("outside any run")
    inside, outside = [e for e in lines(stream) if e.get("logger") == "myapp.crm"]
    trace = trace_of(store, result.run_id)
    assert (inside["run_id"], inside["trace_id"]) == (result.run_id, trace.trace_id)
    assert "run_id" not in outside and "trace_id" not in outside
