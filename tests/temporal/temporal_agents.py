"""The agents of the Temporal tests. Worker processes import them by name
(``bosun worker -a temporal_agents:effects`` with tests/temporal on PYTHONPATH).

Side effects land in the directory named by TEMPORAL_TEST_EFFECTS, as a remote system would
keep them:

- ``effects/<key digest>``: created once per idempotency key (O_EXCL), the way an idempotent
  API deduplicates;
- ``executions.log``: one line per *execution* (``key item pid``), so a call executed again
  after a kill shows up as an extra line.

TEMPORAL_TEST_DELAY=<seconds> slows each call down. With TEMPORAL_TEST_HANG=<path>, the tool
touches <path> right after its first effect and then hangs: the test kills the process there,
between the effect and its journaled result.

The scripted models answer as a function of the conversation, so any process continues a run
where its journal ends.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from pathlib import Path

from bosun.errors import TransientToolError
from bosun.models.base import ModelRequest
from bosun.runtime import Agent, Budget, ModelPolicy
from bosun.testing import ScriptedModel, call, calls, reply
from bosun.testing.scripted import Fault, ScriptItem
from bosun.tools import ToolContext, tool
from bosun.tools.base import RetryPolicy

ITEMS = ("a", "b", "c")
"""The effects every run of `effects` leaves, once each."""


def effects_dir() -> Path:
    return Path(os.environ["TEMPORAL_TEST_EFFECTS"])


def executions() -> list[tuple[str, str]]:
    """(key, item) of every execution of `record`, in order."""
    log = effects_dir() / "executions.log"
    if not log.exists():
        return []
    return [tuple(line.split()[:2]) for line in log.read_text().splitlines()]  # type: ignore[misc]


def effects_done() -> set[str]:
    """Digests of the keys whose effect happened (each at most once by construction)."""
    return {p.name for p in (effects_dir() / "effects").glob("*")}


@tool(side_effect=True, risk="write", idempotent=True)
def record(ctx: ToolContext, item: str) -> str:
    """Record an item; deduplicated by the idempotency key."""
    root = effects_dir()
    (root / "effects").mkdir(parents=True, exist_ok=True)
    with (root / "executions.log").open("a") as log:
        log.write(f"{ctx.idempotency_key} {item} {os.getpid()}\n")
    digest = hashlib.sha256(ctx.idempotency_key.encode()).hexdigest()[:32]
    try:
        fd = os.open(root / "effects" / digest, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        os.write(fd, f"{ctx.run_id} {item}".encode())
        os.close(fd)
    except FileExistsError:
        pass  # done before: the key deduplicates it
    time.sleep(float(os.environ.get("TEMPORAL_TEST_DELAY", "0")))  # a slow remote system
    hang = os.environ.get("TEMPORAL_TEST_HANG")
    if hang and not Path(hang).exists():
        Path(hang).write_text(ctx.idempotency_key)
        time.sleep(600)  # killed here
    return f"recorded {item}"


@tool
def lookup(q: str) -> str:
    """Read-only lookup."""
    return q[::-1]


@tool(side_effect=True, risk="irreversible", requires_approval=True)
def refund(amount: int) -> str:
    """Refund an amount (a person approves it first)."""
    return f"refunded {amount}"


# --- effects: the kill and restart tests ----------------------------------------------------

EFFECTS_PLAN: list[ScriptItem] = [
    call("record", {"item": "a"}),
    calls(("record", {"item": "b"}), ("lookup", {"q": "xyz"})),
    call("record", {"item": "c"}),
    reply("done"),
]


async def effects_policy(request: ModelRequest) -> ScriptItem:
    await asyncio.sleep(0.05)  # a model's latency
    return EFFECTS_PLAN[sum(m.role == "assistant" for m in request.messages)]


effects = Agent(name="effects", tools=[record, lookup], model=ScriptedModel(effects_policy))


# --- approvals: parked runs --------------------------------------------------------------------


def approvals_policy(request: ModelRequest) -> ScriptItem:
    if any(m.role == "tool" for m in request.messages):
        return reply("refund handled")
    return call("refund", {"amount": 40})


approvals = Agent(name="approvals", tools=[refund, lookup], model=ScriptedModel(approvals_policy))


def asker_policy(request: ModelRequest) -> ScriptItem:
    answers = [m.content for m in request.messages if m.role == "tool"]
    if answers:
        return reply(f"noted: {answers[-1]}")
    return call("ask_human", {"question": "Which order do you mean?"})


asker = Agent(name="asker", model=ScriptedModel(asker_policy), ask_human=True)
"""Asks a person, then answers with what the hand-back said."""


# --- shapes: the same runs through either engine ------------------------------------------------

SHAPES = ("plain", "tools", "flaky-tool", "flaky-model", "budget")
"""Inputs of `shapes`: a reply; tool calls in parallel; a tool failing once (the tool
pipeline's retry); the model failing once (the driver's retry); a run over its budget."""


def shapes() -> Agent:
    """A fresh `shapes` agent (its flaky parts keep their own memory of what failed)."""
    failed: set[str] = set()

    @tool(retry=RetryPolicy(attempts=3, initial_delay_s=0.01, jitter_s=0.0))
    def flaky(key: str) -> str:
        """Fails the first time for each key."""
        if key not in failed:
            failed.add(key)
            raise TransientToolError("try again")
        return f"ok {key}"

    def policy(request: ModelRequest) -> ScriptItem:
        task = next(m.content for m in request.messages if m.role == "user") or ""
        turn = sum(m.role == "assistant" for m in request.messages)
        if "flaky-model" in task and turn == 0 and "model" not in failed:
            failed.add("model")
            return Fault.server_error()
        if "plain" in task or "flaky-model" in task:
            return reply(f"answer to {task}")
        if "budget" in task:
            return call("lookup", {"q": f"page {turn}"})  # never ends on its own
        if "flaky-tool" in task:
            return call("flaky", {"key": "k"}) if turn == 0 else reply("flaky done")
        plan = [
            calls(("lookup", {"q": "abc"}), ("record", {"item": "t"})),
            call("lookup", {"q": "def"}),
            reply("tools done"),
        ]
        return plan[turn]

    return Agent(
        name="shapes",
        tools=[lookup, record, flaky],
        model=ScriptedModel(policy),
        budget=Budget(max_steps=4),
        model_policy=ModelPolicy(retry=RetryPolicy(attempts=3, initial_delay_s=0.01)),
    )
