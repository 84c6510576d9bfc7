"""Stale tool output is stubbed out of a request before the token budget is reached, keeping
its ids and amounts, never the model's latest results, and deterministically from the state
(a resumed run sends the same request)."""

from __future__ import annotations

import json

from bosun.data.store import Store
from bosun.memory.pruning import estimate_tokens, prune_stale_tool_output
from bosun.memory.threads import ThreadMemory
from bosun.models.base import (
    AssistantMessage,
    ModelRequest,
    ModelResponse,
    SystemMessage,
    ToolCall,
    ToolMessage,
    UserMessage,
)
from bosun.runtime import Agent, RunStatus, Runtime
from bosun.testing import ScriptedModel, call, reply
from bosun.tools import tool
from bosun.trust import Trust

BIG = "lorem ipsum " * 400  # ~1,200 tokens


def conversation() -> list[UserMessage | SystemMessage | AssistantMessage | ToolMessage]:
    def turn(
        n: int, content: str, trust: Trust = Trust.TRUSTED
    ) -> list[AssistantMessage | ToolMessage]:
        cid = f"c{n}"
        return [
            AssistantMessage(tool_calls=(ToolCall(id=cid, name=f"t{n}", arguments="{}"),)),
            ToolMessage(call_id=cid, name=f"t{n}", content=content, trust=trust),
        ]

    untrusted = f"<<untrusted tool:t2 b0b0>>\nInvoice INV-9 for €12.00 {BIG}\n<</untrusted b0b0>>"
    return [
        SystemMessage(content="sys"),
        UserMessage(content="go"),
        *turn(1, f"order A-1001 costs 42.50 EUR {BIG}"),
        *turn(2, untrusted, Trust.UNTRUSTED),
        *turn(3, f"fresh {BIG}"),
    ]


def test_under_the_ceiling_the_request_is_untouched() -> None:
    messages = conversation()
    same, pruned = prune_stale_tool_output(messages, ceiling=10_000)
    assert same is messages and pruned == 0


def test_over_the_ceiling_the_oldest_results_become_stubs_keeping_ids_and_amounts() -> None:
    messages = conversation()
    total = estimate_tokens(messages)
    out, pruned = prune_stale_tool_output(messages, ceiling=total - 100)
    assert pruned == 1  # the oldest alone was enough
    assert out[3].content == (
        f"[tool output of t1 pruned: {len(messages[3].content)} chars; kept: 42.50 EUR, A-1001]"
    )
    assert out[5] == messages[5] and out[7] == messages[7]
    assert messages[3].content.startswith("order")  # the state's messages are not changed


def test_untrusted_stubs_stay_marked_and_the_latest_results_are_never_pruned() -> None:
    messages = conversation()
    out, pruned = prune_stale_tool_output(messages, ceiling=10)
    assert pruned == 2
    stub = out[5].content
    assert stub.startswith("<<untrusted tool:t2 b0b0>>\n[tool output of t2 pruned")
    assert stub.endswith("kept: €12.00, INV-9]\n<</untrusted b0b0>>")
    assert out[5].trust is Trust.UNTRUSTED
    assert out[7] == messages[7]  # the answer to the latest call stays whole


def test_small_results_stay_whole_however_far_over_the_ceiling() -> None:
    # A huge input overflows; stubbing a 600-character customer record would save ~150
    # tokens and lose the account a later step files a ticket with (golden huge-01).
    record = json.dumps({"account_id": "ACC-1", "plan": "business", "notes": "x" * 500})
    messages = [
        UserMessage(content="log line\n" * 20_000),
        AssistantMessage(tool_calls=(ToolCall(id="c1", name="lookup", arguments="{}"),)),
        ToolMessage(call_id="c1", name="lookup", content=record),
        *conversation()[2:],
    ]
    out, pruned = prune_stale_tool_output(messages, ceiling=100)
    assert out[2] == messages[2]
    assert pruned == 2  # the two large stale results (t1, t2), not the record


@tool(scope="docs:read")
def read_doc(name: str) -> str:
    """Read a long document."""
    return f"{name}: order A-{len(name)} " + BIG


async def test_a_run_prunes_its_requests_and_journals_that_it_did(store: Store) -> None:
    def respond(request: ModelRequest) -> ModelResponse:
        done = sum(m.role == "tool" for m in request.messages)
        return call("read_doc", {"name": f"doc{done}"}) if done < 3 else reply("read them")

    model = ScriptedModel(respond)
    agent = Agent(
        name="reader",
        model=model,
        tools=[read_doc],
        memory=ThreadMemory(token_budget=2_000, prune_at=0.9),
    )
    async with Runtime(store=store) as rt:
        result = await rt.run(agent, "read three docs")
    assert result.status is RunStatus.COMPLETED
    sizes = [estimate_tokens(r.messages) for r in model.requests]
    assert sizes[2] <= 1_800 < sizes[2] + 1_000  # the third request was pruned to fit
    assert "[tool output of read_doc pruned" in (model.requests[3].messages[2].content or "")
    assert "kept: A-4" in (model.requests[3].messages[2].content or "")
    pruned = [
        json.loads(s.payload).get("pruned", 0)
        for s in store.journal(result.run_id)
        if s.kind == "model_response"
    ]
    assert pruned == [0, 0, 1, 2]
    # the journal keeps the whole results: pruning is only in what is sent
    state = await Runtime(store=store).state(result.run_id)
    assert BIG in (state.messages[2].content or "")
