"""Failures as the model sees them: exception mapping, result checks, fallback, no tracebacks."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from datetime import date
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from bosun.errors import ModelRetry, PermanentToolError, ToolDefinitionError, TransientToolError
from bosun.models.base import ToolCall
from bosun.tools import (
    ErrorKind,
    Invocation,
    RetryPolicy,
    ToolContext,
    ToolExecutor,
    ToolResult,
    tool,
)


class Ticket(BaseModel):
    id: int
    subject: str


@tool(retry=None)
def open_ticket(subject: str, priority: str = "normal") -> Ticket:
    """Open a support ticket."""
    return Ticket(id=7, subject=f"[{priority}] {subject}")


# --- exceptions and results -------------------------------------------------------------------


def _raiser(exc: Exception) -> Any:
    @tool(name="raiser", retry=None)
    def raiser() -> None:
        """Raise."""
        raise exc

    return raiser


@pytest.mark.parametrize(
    ("exc", "kind", "guidance"),
    [
        (
            ModelRetry("no order 42; list orders first"),
            ErrorKind.RETRY_WITH_GUIDANCE,
            "no order 42; list orders first",
        ),
        (PermanentToolError("order 42 is closed"), ErrorKind.FAILED, "order 42 is closed"),
        (
            TransientToolError("503 from CRM"),
            ErrorKind.TRANSIENT,
            "'raiser' failed temporarily: 503 from CRM",
        ),
        (
            TimeoutError("socket"),
            ErrorKind.TRANSIENT,
            "'raiser' failed temporarily (TimeoutError).",
        ),
        (
            ConnectionResetError("peer"),
            ErrorKind.TRANSIENT,
            "'raiser' failed temporarily (ConnectionResetError).",
        ),
        (
            KeyError("internal detail /etc/passwd"),
            ErrorKind.FAILED,
            "'raiser' failed with an internal error (KeyError).",
        ),
    ],
)
async def test_exceptions_become_error_kinds(
    make_executor: Any, make_inv: Any, exc: Exception, kind: ErrorKind, guidance: str
) -> None:
    result = await make_executor(_raiser(exc)).execute(make_inv("raiser"))

    assert result.error_kind is kind
    assert result.guidance == guidance


async def test_unexpected_exceptions_are_logged_not_returned(
    make_executor: Any, make_inv: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="bosun.tools"):
        result = await make_executor(_raiser(ValueError("db password is x"))).execute(
            make_inv("raiser")
        )

    assert result.guidance == "'raiser' failed with an internal error (ValueError)."
    assert [r.exc_info[0] for r in caplog.records if r.exc_info] == [ValueError]


async def test_result_not_matching_the_annotation_is_invalid_result(
    make_executor: Any, make_inv: Any
) -> None:
    @tool
    def count() -> int:
        """Count."""
        return "many"  # type: ignore[return-value]

    @tool
    def opaque():  # type: ignore[no-untyped-def]
        """No annotation, unserialisable value."""
        return object()

    executor = make_executor(count, opaque)
    for name in ("count", "opaque"):
        result = await executor.execute(make_inv(name))
        assert result.error_kind is ErrorKind.INVALID_RESULT
        assert result.guidance is not None
        assert "not in your call" in result.guidance


async def test_results_are_serialised_to_json_data(make_executor: Any, make_inv: Any) -> None:
    @tool
    def plan() -> dict[str, date | tuple[int, ...]]:
        """A plan."""
        return {"due": date(2025, 1, 31), "steps": (1, 2)}

    result = await make_executor(plan).execute(make_inv("plan"))

    assert result.data == {"due": "2025-01-31", "steps": [1, 2]}


# --- fallback ---------------------------------------------------------------------------------


async def test_fallback_runs_with_the_same_arguments(make_executor: Any, make_inv: Any) -> None:
    @tool(fallback="sms", retry=None)
    def email(to: str, text: str) -> str:
        """Email."""
        raise PermanentToolError("smtp rejected")

    @tool
    def sms(to: str, text: str) -> str:
        """SMS."""
        return f"sms to {to}: {text}"

    executor = make_executor(email, sms)
    result = await executor.execute(
        make_inv("email", {"to": "+33", "text": "hi"}, grants={"tools:email", "tools:sms"})
    )

    assert result == ToolResult(ok=True, data="sms to +33: hi", attempts=1)


async def test_fallback_is_authorized_on_its_own(make_executor: Any, make_inv: Any) -> None:
    calls: list[str] = []

    @tool(fallback="sms", retry=None)
    def email(to: str) -> None:
        """Email."""
        raise TransientToolError("down")

    @tool
    def sms(to: str) -> None:
        """SMS."""
        calls.append(to)

    result = await make_executor(email, sms).execute(make_inv("email", {"to": "x"}))

    assert result.error_kind is ErrorKind.UNAUTHORIZED
    assert calls == []


async def test_model_mistakes_do_not_fall_back(make_executor: Any, make_inv: Any) -> None:
    calls: list[str] = []

    @tool(fallback="sms")
    def email(to: str) -> None:
        """Email."""
        raise ModelRetry("no such recipient")

    @tool
    def sms(to: str) -> None:
        """SMS."""
        calls.append(to)

    result = await make_executor(email, sms).execute(
        make_inv("email", {"to": "x"}, grants={"tools:email", "tools:sms"})
    )

    assert result.error_kind is ErrorKind.RETRY_WITH_GUIDANCE
    assert calls == []


def test_fallback_loops_are_definition_errors() -> None:
    @tool(fallback="b")
    def a() -> None:
        """A."""

    @tool(fallback="a")
    def b() -> None:
        """B."""

    with pytest.raises(ToolDefinitionError, match="fallback chain loops: a -> b -> a"):
        ToolExecutor([a, b])


# --- no tracebacks, whatever happens ----------------------------------------------------------


def _looks_like_a_traceback(text: str) -> bool:
    return "Traceback" in text or 'File "' in text or re.search(r"line \d+, in ", text) is not None


class _Weird(Exception):
    def __str__(self) -> str:
        return 'Traceback (most recent call last):\n  File "/srv/app.py", line 3, in <module>'


def _chained() -> None:
    try:
        {}["missing"]
    except KeyError as exc:
        raise RuntimeError("wrapped") from exc


async def test_no_result_ever_contains_a_traceback(make_executor: Any, make_inv: Any) -> None:
    @tool(retry=RetryPolicy(attempts=2, jitter_s=0.0))
    def boom(kind: str) -> int:
        """Fail in many ways."""
        if kind == "chained":
            _chained()
        if kind == "weird":
            raise _Weird()
        if kind == "validation":
            Ticket.model_validate({"id": "x"})
        if kind == "transient":
            raise TransientToolError("503")
        if kind == "result":
            return "not an int"  # type: ignore[return-value]
        raise RecursionError()

    executor = make_executor(boom)
    invocations = [
        make_inv("boom", {"kind": kind})
        for kind in ("chained", "weird", "validation", "transient", "result", "other")
    ] + [
        make_inv("boom", '{"kind": '),
        make_inv("boom", {"kind": 1}),
        make_inv("boom", {"kind": "x"}, grants=set()),
        make_inv("nope"),
    ]
    results = [await executor.execute(inv) for inv in invocations]

    assert all(not r.ok for r in results)
    assert {r.error_kind for r in results} >= {
        ErrorKind.FAILED,
        ErrorKind.TRANSIENT,
        ErrorKind.INVALID_RESULT,
        ErrorKind.INVALID_ARGUMENTS,
        ErrorKind.UNAUTHORIZED,
        ErrorKind.UNKNOWN_TOOL,
    }
    for result in results:
        assert not _looks_like_a_traceback(result.for_model()), result


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
"""Any JSON value: what a confused model might send instead of the arguments object."""


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=200) | JSON_VALUES.map(json.dumps))
def test_any_argument_text_gets_a_structured_answer(raw: str) -> None:
    executor = ToolExecutor([open_ticket])
    inv = Invocation(
        call=ToolCall(id="c", name="open_ticket", arguments=raw),
        ctx=ToolContext(run_id="r", step=1, call_id="c"),
        grants=frozenset({"tools:open_ticket"}),
    )

    result = asyncio.run(executor.execute(inv))

    assert result.ok or result.error_kind is ErrorKind.INVALID_ARGUMENTS
    assert not _looks_like_a_traceback(result.for_model())
