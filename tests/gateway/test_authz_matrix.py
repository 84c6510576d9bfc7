"""The authorization matrix: every role x every scope (built-in and tool), allowed exactly where
the role's definition says, and the same answer end to end through a real run.

`EXPECTED` is written out by hand from the role definitions, not computed from them, so a
change to a role or to scope matching shows up here as a diff someone has to agree with.
"""

from __future__ import annotations

import json
from itertools import product

import pytest

from bosun.data.store import Store
from bosun.errors import Forbidden
from bosun.gateway.auth import (
    ADMIN,
    APPROVALS_DECIDE,
    KB_READ,
    KB_WRITE,
    METRICS_READ,
    PROMPTS_EDIT,
    RUNS_READ,
    RUNS_SUBMIT,
    ApiKeys,
    Principal,
    Role,
    Roles,
)
from bosun.runtime import Agent, RunStatus, Runtime
from bosun.testing import ScriptedModel, call, reply
from bosun.tools import tool

ran: list[str] = []


@tool
def lookup_customer(email: str) -> str:
    """Find a customer.

    Args:
        email: Their address.
    """
    ran.append("lookup_customer")
    return "gold"


@tool
def send_email(to: str) -> str:
    """Send an email.

    Args:
        to: Recipient.
    """
    ran.append("send_email")
    return "sent"


@tool(scope="crm:write")
def update_crm(note: str) -> str:
    """Write a CRM note.

    Args:
        note: The note.
    """
    ran.append("update_crm")
    return "noted"


@tool(scope="toolsx:probe")
def probe(x: int) -> int:
    """A tool whose scope merely starts like the 'tools:' family.

    Args:
        x: Anything.
    """
    ran.append("probe")
    return x


TOOLS = {t.name: t for t in (lookup_customer, send_email, update_crm, probe)}
ARGS = {"lookup_customer": {"email": "a@b.c"}, "send_email": {"to": "a@b.c"}}
ARGS |= {"update_crm": {"note": "hi"}, "probe": {"x": 1}}
TOOL_SCOPES = ("tools:lookup_customer", "tools:send_email", "crm:write", "toolsx:probe")
BUILTIN = (
    RUNS_SUBMIT,
    RUNS_READ,
    APPROVALS_DECIDE,
    PROMPTS_EDIT,
    KB_READ,
    KB_WRITE,
    METRICS_READ,
    ADMIN,
)
SCOPES = BUILTIN + TOOL_SCOPES

ROLES = Roles.builtin(
    tool_scopes=["tools:lookup_customer"],
    extra=[
        Role(name="support", scopes=frozenset({RUNS_SUBMIT, "tools:*"})),
        Role(name="crm_writer", scopes=frozenset({"crm:write"})),
        Role(name="nothing", scopes=frozenset()),
    ],
)

EXPECTED: dict[str, set[str]] = {
    "viewer": {RUNS_READ, KB_READ},
    "submitter": {RUNS_SUBMIT, RUNS_READ, KB_READ, "tools:lookup_customer"},
    "reviewer": {RUNS_READ, APPROVALS_DECIDE, KB_READ},
    "prompt_editor": {RUNS_READ, PROMPTS_EDIT},
    "kb_editor": {KB_READ, KB_WRITE},
    "monitor": {METRICS_READ},
    "admin": set(SCOPES),
    "support": {RUNS_SUBMIT, "tools:lookup_customer", "tools:send_email"},
    "crm_writer": {"crm:write"},
    "nothing": set(),
}


def principal(role: str) -> Principal:
    return ROLES.principal(id=f"{role}-user", tenant="acme", roles=[role])


def test_the_matrix_covers_every_role_and_every_tool() -> None:
    assert set(EXPECTED) == set(ROLES.names)
    assert {t.policy.scope for t in TOOLS.values()} == set(TOOL_SCOPES)


@pytest.mark.parametrize(("role", "scope"), list(product(sorted(EXPECTED), SCOPES)))
def test_role_x_scope(role: str, scope: str) -> None:
    who = principal(role)
    allowed = scope in EXPECTED[role]

    assert who.has(scope) is allowed
    assert ROLES.get(role).grants(scope) is allowed
    assert (scope in who.grants_for(TOOL_SCOPES)) is (allowed and scope in TOOL_SCOPES)
    if allowed:
        who.require(scope)
    else:
        with pytest.raises(Forbidden, match=scope):
            who.require(scope)


@pytest.mark.parametrize("scope", ["tools", "tools:", "toolsx:send_email", "tool:send_email"])
def test_a_family_wildcard_covers_its_family_only(scope: str) -> None:
    assert not principal("support").has(scope)
    assert principal("support").has("tools:a:b")


def test_roles_add_up() -> None:
    both = ROLES.principal(id="u", tenant="acme", roles=["reviewer", "crm_writer"])
    assert {s for s in SCOPES if both.has(s)} == EXPECTED["reviewer"] | EXPECTED["crm_writer"]


@pytest.mark.parametrize(("role", "tool_name"), list(product(sorted(EXPECTED), TOOLS)))
async def test_a_run_uses_a_tool_only_with_its_scope(
    store: Store, role: str, tool_name: str
) -> None:
    # The whole path: an API key authenticates, the principal's grants go on the run, and the
    # tool pipeline answers the model's call.
    keys = ApiKeys(store, roles=ROLES)
    who = keys.authenticate(keys.create(f"{role}-user", tenant="acme", roles=[role]).key)
    model = ScriptedModel([call(tool_name, ARGS[tool_name]), reply("done")])
    agent = Agent(
        name="matrix", instructions="Use the tool.", tools=list(TOOLS.values()), model=model
    )
    ran.clear()

    async with Runtime(store=store) as rt:
        result = await rt.run(
            agent,
            "go",
            grants=who.grants_for(agent.scopes),
            principal=who.id,
            tenant=who.tenant,
        )

    allowed = TOOLS[tool_name].policy.scope in EXPECTED[role]
    assert result.status is RunStatus.COMPLETED
    tool_message = json.loads(model.requests[1].messages[-1].content)  # type: ignore[arg-type]
    if allowed:
        assert tool_message["ok"] is True
        assert ran == [tool_name]
    else:
        assert tool_message == {
            "ok": False,
            "error_kind": "unauthorized",
            "guidance": f"This run is not permitted to use {tool_name!r}.",
        }
        assert ran == []
    run = store.get_run(result.run_id)
    assert (run.principal, run.tenant) == (f"{role}-user", "acme")
    assert set(json.loads(run.grants)) == set(TOOL_SCOPES) & EXPECTED[role]
    model.assert_consumed()
