"""Session memory: tokens per run of a 10-turn thread, with and without the summary window.

Each turn is one run of the thread: a customer message (~900 characters, with order ids,
amounts and dates), two lookups returning ~3,000 characters each, then an answer (~500
characters), so three model calls per run. The scripted model counts tokens as providers
roughly do for English (4 characters a token), from exactly what it is sent.

Configurations:
  no thread      each run alone: what a run costs with no memory at all (it cannot follow
                 up: shown for scale)
  full history   thread, every earlier turn word for word (window_turns=10)
  window 3       thread, the 3 latest turns word for word, older ones in a running summary
                 written by a cheap model (its tokens are counted separately)
  window 3+prune as "window 3", with token_budget=4000 (stale tool output stubbed over
                 3,200 estimated tokens)

    python bench/memory.py [--turns 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
from dataclasses import dataclass

from bosun import Agent, Runtime, Store, ThreadMemory, tool
from bosun.models.base import ModelRequest, ModelResponse
from bosun.testing import ScriptedModel, call, reply

FILLER = (
    "The parcel left our warehouse in good order and the carrier scanned it at the depot; "
    "since then the tracking page has not changed and I have not received any notice. "
)


def message(turn: int) -> str:
    return (
        f"Hello again, this is about order A-{1000 + turn} placed on 2024-03-{turn + 1:02d}. "
        f"I was charged €{40 + turn}.50 but the invoice INV-{2024}-{turn} says "
        f"€{38 + turn}.00. {FILLER * 4}Could you check what happened and refund the "
        f"difference? Also, when will order A-{1000 + turn} arrive?"
    )


def answer(turn: int) -> str:
    return (
        f"Thanks for your patience. Order A-{1000 + turn} is with the carrier and should "
        f"arrive within 3 business days. We will refund €{2 + turn}.50 to your card by "
        f"2024-04-{turn + 1:02d}; you will get a confirmation email. " + FILLER * 2
    )


@tool(scope="crm:read")
def order_history(order: str) -> str:
    """The order's event history."""
    return json.dumps({"order": order, "events": [f"event {i}: " + FILLER for i in range(18)]})


@tool(scope="billing:read")
def invoices(order: str) -> str:
    """The order's invoices and payments."""
    return json.dumps({"order": order, "lines": [f"line {i}: €12.50 " + FILLER for i in range(18)]})


def policy(request: ModelRequest) -> ModelResponse:
    tools_done = sum(m.role == "tool" for m in request.messages[_start(request) :])
    text = request.messages[_start(request)].content or ""
    turn = int(text.split("order A-")[1][:4]) - 1000 if "order A-" in text else 0
    if tools_done == 0:
        return call("order_history", {"order": f"A-{1000 + turn}"})
    if tools_done == 1:
        return call("invoices", {"order": f"A-{1000 + turn}"})
    return reply(answer(turn))


def _start(request: ModelRequest) -> int:
    # The run's own input is the last user message: what follows it is this run's work.
    for i in range(len(request.messages) - 1, -1, -1):
        if request.messages[i].role == "user":
            return i
    return 0


def summarize(request: ModelRequest) -> ModelResponse:
    # A cheap model's short summary; what it drops, bosun appends word for word.
    return reply(
        "The customer has written several times about late orders and invoice differences; "
        "refunds of the differences were promised each time."
    )


@dataclass
class Row:
    main: list[int]
    summarizer: list[int]


async def thread(store: Store, name: str, turns: int, memory: ThreadMemory | None) -> Row:
    agent = Agent(
        name=name,
        instructions="You are the support desk of Acme. Answer the customer's questions.",
        tools=[order_history, invoices],
        model=ScriptedModel(policy),
        memory=memory,
    )
    main, summarizer = [], []
    async with Runtime(store=store) as runtime:
        for turn in range(turns):
            options = {"thread": f"bench-{name}"} if memory is not None else {}
            result = await runtime.run(agent, message(turn), **options)
            assert result.status.value == "completed", result
            steps = store.journal(result.run_id)
            main.append(sum(s.input_tokens or 0 for s in steps if s.kind == "model_response"))
            summarizer.append(sum(s.input_tokens or 0 for s in steps if s.kind == "thread_context"))
    return Row(main, summarizer)


async def main(turns: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(f"sqlite:///{tmp}/bench.db")
        cheap = ScriptedModel(summarize, name="cheap")
        configs = {
            "no thread": None,
            "full history": ThreadMemory(window_turns=turns),
            "window 3": ThreadMemory(summarizer_model=cheap, window_turns=3),
            "window 3+prune": ThreadMemory(
                summarizer_model=cheap, window_turns=3, token_budget=4000
            ),
        }
        rows = {}
        for i, (label, memory) in enumerate(configs.items()):
            rows[label] = await thread(store, f"c{i}", turns, memory)
        store.close()
    print(f"input tokens per run of a {turns}-turn thread (3 model calls a run)\n")
    header = "turn  " + "  ".join(f"{label:>14}" for label in rows)
    print(header)
    for t in range(turns):
        cells = []
        for row in rows.values():
            extra = f"+{row.summarizer[t]}" if row.summarizer[t] else ""
            cells.append(f"{str(row.main[t]) + extra:>14}")
        print(f"{t + 1:>4}  " + "  ".join(cells))
    print("-" * len(header))
    totals = []
    for row in rows.values():
        total = (
            f"{sum(row.main)}+{sum(row.summarizer)}" if sum(row.summarizer) else str(sum(row.main))
        )
        totals.append(f"{total:>14}")
    print("sum   " + "  ".join(totals))
    last = {label: row.main[-1] + row.summarizer[-1] for label, row in rows.items()}
    print(
        f"\nturn {turns}: window 3 sends {last['window 3']} tokens against "
        f"{last['full history']} for the full history "
        f"({1 - last['window 3'] / last['full history']:.0%} fewer); with pruning "
        f"{last['window 3+prune']}. '+N' is the cheap summarizer's input that run."
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=10)
    asyncio.run(main(parser.parse_args().turns))
