"""The CLI in a real terminal 80 columns wide: a pseudo-terminal with its window size set,
no COLUMNS in the environment, so Rich measures the terminal as it would for a person."""

from __future__ import annotations

import asyncio
import json
import os
import re
import select
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest

from bosun.data.store import Store
from bosun.models.base import ModelRequest, ModelResponse
from bosun.runtime import Agent, Runtime
from bosun.testing import ScriptedModel, call, reply
from bosun.tools import tool

if sys.platform == "win32":  # pragma: no cover
    pytest.skip("pseudo-terminals are POSIX", allow_module_level=True)

import fcntl
import struct
import termios

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")


def in_terminal(args: list[str], *, columns: int = 80, timeout: float = 120) -> tuple[int, str]:
    """Run ``bosun ARGS`` on a pseudo-terminal `columns` wide; its exit code and what the
    terminal received, escape codes removed and line ends as ``\\n``."""
    leader, follower = os.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    env["TERM"] = "xterm-256color"
    process = subprocess.Popen(
        [sys.executable, "-m", "bosun.cli.main", *args],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env=env,
        start_new_session=True,
    )
    os.close(follower)
    received = bytearray()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 1.0)
            if not ready:
                if process.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            received += chunk
        code = process.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(leader)
    return code, _ANSI.sub("", received.decode("utf-8", "replace")).replace("\r\n", "\n")


def screen_lines(text: str) -> list[str]:
    """What the terminal shows line by line: a carriage return (progress bars redrawing)
    starts the line over."""
    return [line.split("\r")[-1] for line in text.split("\n")]


def priced(response: ModelResponse, usd: str) -> ModelResponse:
    return response.model_copy(update={"cost_usd": Decimal(usd)})


@tool(side_effect=True, risk="write", requires_approval=True)
def notify_customer(text: str) -> str:
    """Tell the customer (a person approves)."""
    return "sent"


def _policy(request: ModelRequest) -> ModelResponse:
    text = next(m.content or "" for m in request.messages if m.role == "user")
    if "notify" in text and len(request.messages) < 3:
        return priced(call("notify_customer", {"text": "hello"}), "0.0042")
    return priced(reply("done"), "0.0123")


def test_runs_list_is_readable_at_80_columns(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    store = Store.open(db)
    support = Agent(
        name="customer_support_triage",
        tools=[notify_customer],
        model=ScriptedModel(_policy),
    )
    unpriced = Agent(name="summariser", model=ScriptedModel(lambda _: reply("ok")))
    long_input = "please look into the order " + "that never arrived and " * 10

    async def make_runs() -> list[str]:
        async with Runtime(store=store, agents=[support, unpriced]) as rt:
            runs = [
                await rt.run(support, "notify the customer about the delay"),
                await rt.run(support, long_input),
                await rt.run(unpriced, "summarise the thread"),
            ]
        return [r.run_id for r in runs]

    ids = asyncio.run(make_runs())
    rows = {row.id: row for row in store.list_runs()}
    store.close()
    # A parked run's row has no usage yet: its cost reads "unknown" like an unpriced run's.
    costs = {i: "unknown" if r.cost_usd is None else f"${r.cost_usd:.6f}" for i, r in rows.items()}
    assert costs[ids[1]] == "$0.012300" and costs[ids[2]] == "unknown"
    tokens = {i: str(r.input_tokens + r.output_tokens) for i, r in rows.items()}
    assert tokens[ids[1]] != "0"
    expected = {
        ids[0]: ("customer_support_triage", "waiting_approval"),
        ids[1]: ("customer_support_triage", "completed"),
        ids[2]: ("summariser", "completed"),
    }

    code, out = in_terminal(["runs", "list", "--db", db])
    assert code == 0, out
    lines = [line for line in screen_lines(out) if line.strip()]
    assert all(len(line) <= 80 for line in lines), "\n".join(lines)
    assert lines[0].split()[:5] == ["run", "agent", "status", "tokens", "cost"]
    shown: dict[str, str] = {}
    for run_id, (agent, status) in expected.items():
        (row,) = [line for line in lines if run_id.startswith(line.split()[0])]
        short, *cells = row.split()
        # Every column whole: the agent, the full status word, the tokens, the cost.
        assert cells[:4] == [agent, status, tokens[run_id], costs[run_id]], row
        assert len(short) >= 8
        shown[run_id] = short
    assert len(set(shown.values())) == 3

    # An abbreviated id is what a person copies next: it names the run.
    code, out = in_terminal(["runs", "show", shown[ids[1]], "--db", db])
    assert code == 0, out
    assert f"run {ids[1]}" in out
    # A wide terminal has room for whole ids and the input.
    code, out = in_terminal(["runs", "list", "--db", db], columns=200)
    assert code == 0, out
    assert all(run_id in out for run_id in ids)
    assert "please look into the order that never arrived" in out


def test_the_demo_reads_at_80_columns(tmp_path: Path) -> None:
    data = tmp_path / "demo"
    code, out = in_terminal(["demo", "--data", str(data)], timeout=300)
    assert code == 0, out
    lines = screen_lines(out)
    db = f"sqlite:///{data / 'bosun.db'}"
    store = Store.open(db)
    runs = {r.id for r in store.list_runs(limit=500)}
    handoffs = [json.loads(r.handoff) for r in store.list_runs(limit=500) if r.handoff]
    store.close()

    # The commands to copy are each on a line of their own, whole, however long the path.
    trace = re.fullmatch(
        r"  bosun trace ([0-9a-f]{28}) --db (.+)", lines[lines.index("open a trace:") + 1]
    )
    assert trace is not None and trace[1] in runs and trace[2] == db
    hints = {
        "open a trace:": trace[0],
        "list the runs:": f"  bosun runs list --db {db}",
        "review the held calls:": f"  bosun approvals list --db {db}",
        "take an escalation:": f"  bosun escalations list --db {db}",
        "logs (JSON lines with trace ids):": f"  {data / 'bosun.log'}",
    }
    for label, command in hints.items():
        assert lines[lines.index(label) + 1] == command
    assert len(hints["open a trace:"]) > 80  # so the test shows a long one stays whole
    # Everything else fits the terminal.
    too_long = [line for line in lines if len(line) > 80 and line not in hints.values()]
    assert too_long == []

    # Escalation reasons are cut after a whole word, with an ellipsis.
    reasons = {" ".join((h.get("pending_question") or h["reason"]).split()) for h in handoffs}
    start = lines.index(next(line for line in lines if line.startswith("escalated to a person")))
    shown = lines[start + 1 : lines.index(next(x for x in lines if x.startswith("injections")))]
    assert shown
    cut = 0
    for line in shown:
        text = line[16:].strip()
        if text in reasons:
            continue
        assert text.endswith("…"), line
        head = text[:-1]
        full = next(r for r in reasons if r.startswith(head))
        assert not full[len(head)].isalnum(), f"cut mid-word: {line!r} of {full!r}"
        cut += 1
    assert cut  # the sample inbox has reasons longer than a line
