"""The executor end to end: lookup, validation, authorization, approval, the call, results."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any, Literal

import pytest
from pydantic import BaseModel

from bosun.errors import PermanentToolError, ToolDefinitionError
from bosun.tools import (
    ApprovalDecision,
    ApprovalRequired,
    ErrorKind,
    MappingSecrets,
    Secret,
    ToolContext,
    ToolExecutor,
    ToolResult,
    idempotency_key,
    tool,
)


class Ticket(BaseModel):
    id: int
    subject: str


@tool(retry=None)
def open_ticket(subject: str, priority: str = "normal") -> Ticket:
    """Open a support ticket."""
    return Ticket(id=7, subject=f"[{priority}] {subject}")


# --- happy paths ------------------------------------------------------------------------------


async def test_sync_tool_runs_in_a_worker_thread(make_executor: Any, make_inv: Any) -> None:
    threads: list[int] = []

    @tool
    def where(x: int) -> int:
        """Record the thread."""
        threads.append(threading.get_ident())
        return x * 2

    result = await make_executor(where).execute(make_inv("where", {"x": 21}))

    assert result == ToolResult(ok=True, data=42, attempts=1)
    assert threads and threads[0] != threading.get_ident()


async def test_async_tool_and_model_result(make_executor: Any, make_inv: Any) -> None:
    @tool
    async def fetch(ticket_id: int) -> Ticket:
        """Fetch a ticket."""
        await asyncio.sleep(0)
        return Ticket(id=ticket_id, subject="printer on fire")

    result = await make_executor(fetch).execute(make_inv("fetch", {"ticket_id": 3}))

    assert result.ok
    assert result.data == {"id": 3, "subject": "printer on fire"}
    assert result.for_model() == '{"ok":true,"data":{"id":3,"subject":"printer on fire"}}'


async def test_definitions_and_get(make_executor: Any) -> None:
    @tool
    def other() -> None:
        """Other."""

    executor = make_executor(open_ticket, other)

    assert executor.definitions() == (open_ticket.definition(), other.definition())
    assert executor.get("other") is other
    assert executor.get("nope") is None


def test_executor_rejects_duplicates_and_plain_functions() -> None:
    with pytest.raises(ToolDefinitionError, match="two tools are named 'open_ticket'"):
        ToolExecutor([open_ticket, open_ticket])
    with pytest.raises(ToolDefinitionError, match="decorate it with @bosun.tools.tool"):
        ToolExecutor([print])  # type: ignore[list-item]


# --- context and idempotency ------------------------------------------------------------------


@tool(side_effect=True, scope="mail:send")
async def send_mail(to: str, ctx: ToolContext) -> dict[str, str]:
    """Send a mail, deduplicated by the idempotency key."""
    return {"key": ctx.idempotency_key, "run": ctx.run_id}


async def test_context_injection_and_stable_idempotency_key(
    make_executor: Any, make_inv: Any
) -> None:
    executor = make_executor(send_mail)
    inv = make_inv("send_mail", {"to": "a@b.c"}, grants={"mail:send"}, call_id="c-1")

    first = await executor.execute(inv)
    replay = await executor.execute(inv)
    other = await executor.execute(
        make_inv("send_mail", {"to": "a@b.c"}, grants={"mail:send"}, call_id="c-2")
    )

    expected = idempotency_key("run-1", 3, "c-1")
    assert first.data == {"key": expected, "run": "run-1"}
    assert replay.data == first.data
    assert other.data["key"] != expected


# --- secrets ----------------------------------------------------------------------------------

TOKEN = "tok_9f8e7d6c5b4a"


@tool(credential="CRM_TOKEN")
def crm_lookup(email: str, token: Secret) -> dict[str, Any]:
    """Look a customer up in the CRM."""
    assert isinstance(token, Secret)
    return {"email": email, "authorized": token.reveal() == TOKEN, "token": str(token)}


async def test_secret_is_injected_and_never_shown(make_executor: Any, make_inv: Any) -> None:
    executor = make_executor(crm_lookup, secrets=MappingSecrets({"CRM_TOKEN": TOKEN}))

    result = await executor.execute(make_inv("crm_lookup", {"email": "a@b.c"}))

    assert result.ok
    assert result.data["authorized"] is True
    assert TOKEN not in result.for_model()
    assert TOKEN not in json.dumps([d.model_dump() for d in executor.definitions()])


@pytest.mark.parametrize("secrets", [None, MappingSecrets({}), MappingSecrets({"CRM_TOKEN": ""})])
async def test_missing_credential_means_not_configured(
    make_executor: Any, make_inv: Any, secrets: Any
) -> None:
    result = await make_executor(crm_lookup, secrets=secrets).execute(
        make_inv("crm_lookup", {"email": "a@b.c"})
    )

    assert result.error_kind is ErrorKind.FAILED
    assert result.guidance is not None
    assert "not configured" in result.guidance
    assert "CRM_TOKEN" not in result.guidance


async def test_a_result_or_message_carrying_the_secret_is_scrubbed(
    make_executor: Any, make_inv: Any
) -> None:
    @tool(credential="CRM_TOKEN")
    def leaky(echo: bool, token: Secret) -> str:
        """Careless tool."""
        if echo:
            return f"used {token.reveal()}"
        raise PermanentToolError(f"token {token.reveal()} was rejected")

    executor = make_executor(leaky, secrets=MappingSecrets({"CRM_TOKEN": TOKEN}))

    returned = await executor.execute(make_inv("leaky", {"echo": True}))
    raised = await executor.execute(make_inv("leaky", {"echo": False}))

    assert returned.error_kind is ErrorKind.FAILED
    assert raised.error_kind is ErrorKind.FAILED
    assert raised.guidance == "token [redacted] was rejected"
    for result in (returned, raised):
        assert TOKEN not in result.for_model()


# --- arguments --------------------------------------------------------------------------------


async def test_invalid_arguments_guide_the_model_to_a_fix(
    make_executor: Any, make_inv: Any
) -> None:
    calls: list[str] = []

    @tool
    def escalate(ticket_id: int, level: str, urgency: int = 1) -> str:
        """Escalate a ticket."""
        calls.append(level)
        return "ok"

    executor = make_executor(escalate)

    bad = await executor.execute(
        make_inv("escalate", {"ticket_id": "seven", "urgency": 2, "colour": "red"})
    )

    assert bad.error_kind is ErrorKind.INVALID_ARGUMENTS
    assert bad.attempts == 0
    assert bad.guidance is not None
    assert "- ticket_id: Input should be a valid integer" in bad.guidance
    assert "- level: Field required" in bad.guidance
    assert "- colour: Extra inputs are not permitted" in bad.guidance
    assert calls == []

    fixed = await executor.execute(make_inv("escalate", {"ticket_id": 7, "level": "L2"}))

    assert fixed.ok
    assert calls == ["L2"]


async def test_literal_errors_name_the_allowed_values(make_executor: Any, make_inv: Any) -> None:
    @tool
    def setp(priority: Literal["low", "high"]) -> None:
        """Set the priority."""

    result = await make_executor(setp).execute(make_inv("setp", {"priority": "urgent"}))

    assert result.guidance is not None
    assert "'low' or 'high'" in result.guidance


@pytest.mark.parametrize("raw", ['{"subject": ', "[1, 2]", '"text"', "[" * 100_000])
async def test_arguments_that_are_not_a_json_object(
    make_executor: Any, make_inv: Any, raw: str
) -> None:
    result = await make_executor(open_ticket).execute(make_inv("open_ticket", raw))

    assert result.error_kind is ErrorKind.INVALID_ARGUMENTS
    assert result.guidance is not None
    assert "JSON object" in result.guidance


async def test_empty_arguments_mean_an_empty_object(make_executor: Any, make_inv: Any) -> None:
    @tool
    def now() -> str:
        """The time."""
        return "noon"

    assert (await make_executor(now).execute(make_inv("now", ""))).data == "noon"


async def test_unknown_tool_lists_the_tools_this_run_may_use(
    make_executor: Any, make_inv: Any
) -> None:
    executor = make_executor(open_ticket, send_mail, crm_lookup)

    result = await executor.execute(
        make_inv("open_tiket", {}, grants={"tools:open_ticket", "tools:crm_lookup"})
    )

    assert result.error_kind is ErrorKind.UNKNOWN_TOOL
    assert result.guidance == (
        "There is no tool named 'open_tiket'. Available tools: crm_lookup, open_ticket."
    )


# --- authorization ----------------------------------------------------------------------------


async def test_authorization_allows_holders_of_the_scope(make_executor: Any, make_inv: Any) -> None:
    result = await make_executor(send_mail).execute(
        make_inv("send_mail", {"to": "a@b.c"}, grants={"mail:send", "crm:read"})
    )
    assert result.ok


async def test_authorization_denies_without_suggesting_a_workaround(
    make_executor: Any, make_inv: Any
) -> None:
    calls: list[str] = []

    @tool(scope="mail:send")
    def mail(to: str) -> None:
        """Send."""
        calls.append(to)

    result = await make_executor(mail).execute(make_inv("mail", {"to": "x"}, grants={"mail:read"}))

    assert result.error_kind is ErrorKind.UNAUTHORIZED
    assert result.guidance == "This run is not permitted to use 'mail'."
    assert calls == []


# --- approval ---------------------------------------------------------------------------------


@tool(scope="pay", requires_approval=True, side_effect=True, retry=None)
def refund(order_id: int, amount: int) -> dict[str, int]:
    """Refund an order."""
    return {"order_id": order_id, "amount": amount}


async def test_approval_required_is_signalled(make_executor: Any, make_inv: Any) -> None:
    with pytest.raises(ApprovalRequired) as signal:
        await make_executor(refund).execute(
            make_inv("refund", {"order_id": 1, "amount": 5}, grants={"pay"}, call_id="c-7")
        )
    assert (signal.value.tool, signal.value.call_id) == ("refund", "c-7")


async def test_approved_call_runs(make_executor: Any, make_inv: Any) -> None:
    approval = ApprovalDecision(approved=True, decided_by="bob")
    result = await make_executor(refund).execute(
        make_inv("refund", {"order_id": 1, "amount": 5}, grants={"pay"}, approval=approval)
    )
    assert result.data == {"order_id": 1, "amount": 5}


async def test_rejected_call_carries_the_reason(make_executor: Any, make_inv: Any) -> None:
    approval = ApprovalDecision(approved=False, decided_by="bob", reason="amount too high")
    result = await make_executor(refund).execute(
        make_inv("refund", {"order_id": 1, "amount": 5000}, grants={"pay"}, approval=approval)
    )
    assert result.error_kind is ErrorKind.APPROVAL_REJECTED
    assert result.guidance == "A human reviewer rejected this call: amount too high"


async def test_approver_edits_replace_the_arguments(make_executor: Any, make_inv: Any) -> None:
    executor = make_executor(refund)
    edited = ApprovalDecision(
        approved=True, decided_by="bob", arguments={"order_id": 1, "amount": 50}
    )
    broken = ApprovalDecision(approved=True, decided_by="bob", arguments={"order_id": 1})

    result = await executor.execute(
        make_inv("refund", {"order_id": 1, "amount": 5000}, grants={"pay"}, approval=edited)
    )
    invalid = await executor.execute(
        make_inv("refund", {"order_id": 1, "amount": 5000}, grants={"pay"}, approval=broken)
    )

    assert result.data == {"order_id": 1, "amount": 50}
    assert invalid.error_kind is ErrorKind.INVALID_ARGUMENTS
    assert invalid.guidance is not None
    assert "the reviewer approved" in invalid.guidance


async def test_force_approval_holds_any_tool(make_executor: Any, make_inv: Any) -> None:
    with pytest.raises(ApprovalRequired):
        await make_executor(open_ticket).execute(
            make_inv("open_ticket", {"subject": "x"}, force_approval=True)
        )


async def test_authorization_is_checked_before_approval(make_executor: Any, make_inv: Any) -> None:
    result = await make_executor(refund).execute(
        make_inv("refund", {"order_id": 1, "amount": 5}, grants=set())
    )
    assert result.error_kind is ErrorKind.UNAUTHORIZED
