"""A process that runs (or resumes) one run and may SIGKILL itself at a chosen point.

Used by test_crash.py:  python crash_agent.py DB_URL EFFECTS_DB start|resume [RUN_ID]
Environment: CRASH_AT_WRITE=N kills the process around its N-th journal write (CRASH_WHEN=
before|after the commit); CRASH_IN_TOOL=N kills it inside the N-th side-effecting tool call,
after the side effect is committed but before the tool returns.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import sys
from typing import Any

from bosun.data.store import Store
from bosun.models.base import ModelRequest, ModelResponse
from bosun.runtime import Agent, Runtime
from bosun.testing import ScriptedModel, call, calls, reply
from bosun.tools import Reconciliation, ToolContext, tool

EFFECTS_DB = sys.argv[2]
_tool_calls = 0


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def effects() -> sqlite3.Connection:
    conn = sqlite3.connect(EFFECTS_DB, timeout=30, isolation_level=None)
    conn.execute(
        "CREATE TABLE IF NOT EXISTS effects (key TEXT PRIMARY KEY, run_id TEXT, item TEXT)"
    )
    conn.execute("CREATE TABLE IF NOT EXISTS charges (key TEXT, run_id TEXT, item TEXT)")
    return conn


def maybe_die_in_tool() -> None:
    global _tool_calls
    _tool_calls += 1
    if os.environ.get("CRASH_IN_TOOL") == str(_tool_calls):
        die()


@tool(side_effect=True, risk="write", idempotent=True)
def record(ctx: ToolContext, item: str) -> str:
    """Record an item; deduplicates by the idempotency key."""
    with effects() as conn:
        conn.execute(
            "INSERT OR IGNORE INTO effects VALUES (?, ?, ?)",
            (ctx.idempotency_key, ctx.run_id, item),
        )
    maybe_die_in_tool()
    return f"recorded {item}"


@tool(side_effect=True, risk="irreversible")
def charge(ctx: ToolContext, item: str) -> str:
    """Charge for an item. Not idempotent: a replay must ask `reconcile` first."""
    with effects() as conn:
        conn.execute(
            "INSERT INTO charges VALUES (?, ?, ?)", (ctx.idempotency_key, ctx.run_id, item)
        )
    maybe_die_in_tool()
    return f"charged {item}"


@charge.reconciler
def charge_happened(args: dict[str, Any], ctx: ToolContext) -> Reconciliation:
    with effects() as conn:
        row = conn.execute(
            "SELECT item FROM charges WHERE key = ?", (ctx.idempotency_key,)
        ).fetchone()
    return Reconciliation(done=row is not None, data=None if row is None else f"charged {row[0]}")


@tool
def lookup(q: str) -> str:
    """Read-only lookup."""
    return q[::-1]


PLAN = [
    call("record", {"item": "a"}),
    call("charge", {"item": "b"}),
    calls(("record", {"item": "c"}), ("record", {"item": "d"})),
    call("lookup", {"q": "abc"}),
    call("charge", {"item": "e"}),
    reply("done"),
]


def policy(request: ModelRequest) -> ModelResponse:
    # A function of the conversation, not of a position: a new process answers the same.
    return PLAN[sum(m.role == "assistant" for m in request.messages)]


agent = Agent(name="crashy", tools=[record, charge, lookup], model=ScriptedModel(policy))


def install_write_crash(store: Store) -> None:
    crash_at = int(os.environ.get("CRASH_AT_WRITE", "0"))
    if not crash_at:
        return
    before = os.environ.get("CRASH_WHEN", "after") == "before"
    original = store.write
    count = 0

    def write(ops: Any) -> None:
        nonlocal count
        count += 1
        if count == crash_at and before:
            die()
        original(ops)
        if count == crash_at:
            die()

    store.write = write  # type: ignore[method-assign]


async def main() -> None:
    store = Store.open(sys.argv[1])
    install_write_crash(store)
    async with Runtime(store=store, agents=[agent]) as rt:
        if sys.argv[3] == "start":
            run_id = await rt.start(agent, "do the five things")
            print(run_id, flush=True)
        else:
            run_id = sys.argv[4]
        result = await rt.resume(run_id)
        print(result.status.value, flush=True)
    store.close()


if __name__ == "__main__":
    asyncio.run(main())
