"""An idempotency key names one request: the same request again is the same run; a different
request under the same key is refused, never answered with the old run."""

from __future__ import annotations

import asyncio

import pytest

from bosun.data.store import NewRun
from bosun.errors import IdempotencyConflict
from bosun.runtime import Agent, Runtime
from bosun.testing import ScriptedModel, reply
from bosun.trust import Content, Trust

AGENTS = {name: Agent(name=name, model=ScriptedModel([reply("ok")])) for name in ("a", "b")}


def agent(name: str = "a") -> Agent:
    return AGENTS[name]


async def test_the_same_request_again_is_the_same_run(db_url: str) -> None:
    async with Runtime(store=db_url) as rt:
        first = await rt.start(agent(), "refund order 7", idempotency_key="k")
        assert await rt.start(agent(), "refund order 7", idempotency_key="k") == first
        # A plain string is one part of user content: the same request as that part.
        assert await rt.start(agent(), [Content(text="refund order 7")], idempotency_key="k") == (
            first
        )


@pytest.mark.parametrize(
    ("name", "input"),
    [
        ("a", "refund order 8"),
        ("b", "refund order 7"),
        ("a", [Content(text="refund order 7", trust=Trust.UNTRUSTED, source="email")]),
        ("a", [Content(text="refund order 7"), Content(text="and order 8")]),
    ],
    ids=["other-input", "other-agent", "other-trust", "more-parts"],
)
async def test_a_different_request_under_the_same_key_is_refused(
    db_url: str, name: str, input: str | list[Content]
) -> None:
    async with Runtime(store=db_url) as rt:
        first = await rt.start(agent(), "refund order 7", idempotency_key="k")
        with pytest.raises(IdempotencyConflict) as caught:
            await rt.start(agent(name), input, idempotency_key="k")
        assert caught.value.status == 409
        assert caught.value.run_id == first
        assert "Idempotency-Key 'k' was used for a different request" in str(caught.value)
        assert len(rt.store.list_runs()) == 1
        with pytest.raises(IdempotencyConflict):  # run(), too
            await rt.run(agent(name), input, idempotency_key="k")


async def test_keys_are_per_tenant(db_url: str) -> None:
    async with Runtime(store=db_url) as rt:
        ours = await rt.start(agent(), "x", tenant="acme", idempotency_key="k")
        theirs = await rt.start(agent(), "y", tenant="globex", idempotency_key="k")
        assert ours != theirs


async def test_racing_submissions_of_different_requests_make_one_run(db_url: str) -> None:
    # Both may pass the lookup before either writes; the loser learns of the winner from the
    # unique index and must still compare the requests.
    async with Runtime(store=db_url) as rt:
        outcomes = await asyncio.gather(
            rt.start(agent(), "first", idempotency_key="k"),
            rt.start(agent(), "second", idempotency_key="k"),
            return_exceptions=True,
        )
    ids = [o for o in outcomes if isinstance(o, str)]
    refused = [o for o in outcomes if isinstance(o, IdempotencyConflict)]
    assert len(ids) == 1 and len(refused) == 1, outcomes
    assert refused[0].run_id == ids[0]


async def test_a_run_stored_before_digests_keeps_its_key_for_its_own_agent(db_url: str) -> None:
    async with Runtime(store=db_url) as rt:
        rt.store.write(
            [
                NewRun(
                    id="old",
                    agent="a",
                    status="completed",
                    input="whatever",
                    grants="[]",
                    idempotency_key="k",
                    created_at=1.0,
                )
            ]
        )
        assert await rt.start(agent(), "anything", idempotency_key="k") == "old"
        with pytest.raises(IdempotencyConflict):
            await rt.start(agent("b"), "anything", idempotency_key="k")
