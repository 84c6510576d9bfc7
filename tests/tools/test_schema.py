"""What the model is told about a tool: names, descriptions and JSON schemas from signatures."""

from __future__ import annotations

import inspect
from typing import Annotated, Any, Literal, Optional

import pytest
from pydantic import BaseModel, Field, ValidationError

from bosun.errors import ToolDefinitionError
from bosun.tools import (
    BreakerPolicy,
    RetryPolicy,
    Risk,
    Secret,
    Tool,
    ToolContext,
    ToolPolicy,
    tool,
)


class Address(BaseModel):
    """A postal address."""

    street: str
    city: str = "Paris"


class Opaque:
    """A class pydantic cannot describe."""


@tool
def create_customer(
    name: str,
    tier: Literal["free", "pro"],
    tags: list[str],
    address: Address,
    note: Optional[str] = None,  # noqa: UP045 - the Optional spelling must work too
    limit: Annotated[int, Field(ge=1)] = 10,
) -> dict[str, int]:
    """Create a customer in the CRM.

    Use only after checking that the customer does not exist.

    Args:
        name: Full name of the customer.
        tier: Subscription plan.
        tags: Labels for routing.
        address: Billing address.
        note: Free text for the account manager.
        limit: Maximum number of seats.

    Returns:
        Ids of what was created.
    """
    return {"id": 1}


def test_schema_from_signature_and_google_docstring() -> None:
    definition = create_customer.definition()

    assert definition.name == "create_customer"
    assert definition.description == (
        "Create a customer in the CRM.\n\nUse only after checking that the customer does not exist."
    )
    assert definition.parameters == {
        "$defs": {
            "Address": {
                "description": "A postal address.",
                "properties": {
                    "street": {"type": "string"},
                    "city": {"default": "Paris", "type": "string"},
                },
                "required": ["street"],
                "title": "Address",
                "type": "object",
            }
        },
        "additionalProperties": False,
        "properties": {
            "name": {"description": "Full name of the customer.", "type": "string"},
            "tier": {
                "description": "Subscription plan.",
                "enum": ["free", "pro"],
                "type": "string",
            },
            "tags": {
                "description": "Labels for routing.",
                "items": {"type": "string"},
                "type": "array",
            },
            "address": {"$ref": "#/$defs/Address", "description": "Billing address."},
            "note": {
                "anyOf": [{"type": "string"}, {"type": "null"}],
                "default": None,
                "description": "Free text for the account manager.",
            },
            "limit": {
                "default": 10,
                "description": "Maximum number of seats.",
                "minimum": 1,
                "type": "integer",
            },
        },
        "required": ["name", "tier", "tags", "address"],
        "type": "object",
    }


def test_rest_docstring_and_undocumented_parameters() -> None:
    @tool
    def lookup(order_id: int, verbose: bool = False) -> str:
        """Look up an order.

        :param order_id: The order number.
        """
        return ""

    assert lookup.description == "Look up an order."
    assert lookup.definition().parameters == {
        "additionalProperties": False,
        "properties": {
            "order_id": {"description": "The order number.", "type": "integer"},
            "verbose": {"default": False, "type": "boolean"},
        },
        "required": ["order_id"],
        "type": "object",
    }


def test_injected_parameters_stay_out_of_the_schema() -> None:
    @tool(credential="CRM_TOKEN")
    async def ping(host: str, ctx: ToolContext, token: Secret) -> None:
        """Ping a host.

        Args:
            host: Where.
            ctx: The call context.
            token: The CRM token.
        """

    assert ping.definition().parameters == {
        "additionalProperties": False,
        "properties": {"host": {"description": "Where.", "type": "string"}},
        "required": ["host"],
        "type": "object",
    }


def test_parameters_that_clash_with_pydantic_keep_their_names() -> None:
    @tool
    def store(json: str, schema: int = 1) -> None:
        """Store a document."""

    parameters = store.definition().parameters
    assert list(parameters["properties"]) == ["json", "schema"]
    assert parameters["required"] == ["json"]
    assert store.validate_arguments({"json": "{}", "schema": 2}).model_dump(by_alias=True) == {
        "json": "{}",
        "schema": 2,
    }


def test_name_description_and_default_policy() -> None:
    @tool(name="crm-search", description="Search the CRM.")
    def search(query: str) -> list[str]:
        """Ignored docstring."""
        return []

    assert search.name == "crm-search"
    assert search.definition().description == "Search the CRM."
    assert search.policy == ToolPolicy(scope="tools:crm-search")


def test_policy_options_reach_the_policy() -> None:
    retry = RetryPolicy(attempts=5)
    breaker = BreakerPolicy(failure_threshold=2, cooldown_s=1.0)

    @tool(
        scope="crm:write",
        risk="irreversible",
        side_effect=True,
        requires_approval=True,
        timeout_s=3.0,
        retry=retry,
        rate_limit="5/second",
        breaker=breaker,
        idempotent=True,
        fallback="other",
    )
    def delete(customer_id: int) -> None:
        """Delete a customer."""

    assert delete.policy == ToolPolicy(
        scope="crm:write",
        risk=Risk.IRREVERSIBLE,
        side_effect=True,
        requires_approval=True,
        timeout_s=3.0,
        retry=retry,
        rate_limit="5/second",
        breaker=breaker,
        idempotent=True,
        fallback="other",
    )


def test_retry_and_breaker_can_be_disabled() -> None:
    @tool(retry=None, breaker=None)
    def fragile() -> None:
        """Do it once."""

    assert fragile.policy.retry is None
    assert fragile.policy.breaker is None


def test_definition_is_built_once() -> None:
    assert create_customer.definition() is create_customer.definition()


def test_validate_arguments_returns_a_model_or_raises() -> None:
    args = create_customer.validate_arguments(
        {"name": "Ada", "tier": "pro", "tags": [], "address": {"street": "1 rue X"}}
    )
    assert args.model_dump() == {
        "name": "Ada",
        "tier": "pro",
        "tags": [],
        "address": {"street": "1 rue X", "city": "Paris"},
        "note": None,
        "limit": 10,
    }
    with pytest.raises(ValidationError):
        create_customer.validate_arguments({"name": "Ada", "tier": "gold"})


async def test_decorated_functions_stay_callable() -> None:
    @tool
    def add(a: int, b: int) -> int:
        """Add."""
        return a + b

    @tool
    async def sub(a: int, b: int) -> int:
        """Subtract."""
        return a - b

    assert isinstance(add, Tool)
    assert add(2, 3) == 5
    assert await sub(5, 3) == 2
    assert add.__name__ == "add"
    assert add.__doc__ == "Add."
    assert str(inspect.signature(add)) == "(a: 'int', b: 'int') -> 'int'"


# --- developer mistakes -----------------------------------------------------------------------


def _untyped(customer_id, note: str) -> None:  # type: ignore[no-untyped-def]
    """Missing annotation."""


def test_untyped_parameter_is_named() -> None:
    with pytest.raises(ToolDefinitionError, match="parameter 'customer_id' has no type annotation"):
        tool(_untyped)


def _variadic(*items: str) -> None:
    """Variadic."""


def _ctx_optional(ctx: ToolContext | None = None) -> None:
    """Optional context."""


def _two_contexts(a: ToolContext, b: ToolContext) -> None:
    """Two contexts."""


def _returns_opaque() -> Opaque:
    """Opaque result."""
    return Opaque()


def _takes_opaque(thing: Opaque) -> None:
    """Opaque argument."""


def _unresolvable(x: NotDefinedAnywhere) -> None:  # type: ignore[name-defined]  # noqa: F821
    """Forward reference to nothing."""


def _secret_only(token: Secret) -> None:
    """Secret without credential."""


def _plain() -> None:
    """Nothing to inject."""


@pytest.mark.parametrize(
    ("function", "options", "message"),
    [
        (_variadic, {}, "variadic parameter 'items'"),
        (_ctx_optional, {}, "exactly ToolContext or Secret"),
        (_two_contexts, {}, "'a' and 'b' are both ToolContext"),
        (_returns_opaque, {}, "return annotation"),
        (_takes_opaque, {}, "cannot build a JSON schema"),
        (_unresolvable, {}, "cannot resolve the type annotations"),
        (_secret_only, {}, "declares no credential"),
        (_plain, {"credential": "TOKEN"}, "no parameter is annotated Secret"),
        (_plain, {"name": "has space"}, "tool name 'has space' is invalid"),
        (_plain, {"name": "x" * 65}, "is invalid"),
        (_plain, {"rate_limit": "lots"}, "rate_limit='lots'"),
        (_plain, {"risk": "catastrophic"}, "risk='catastrophic'"),
        (_plain, {"timeout_s": 0}, "timeout_s must be positive"),
        (_plain, {"retry": RetryPolicy(attempts=0)}, "retry.attempts"),
        (_plain, {"fallback": "_plain"}, "its own fallback"),
        (_plain, {"scope": ""}, "scope must not be empty"),
    ],
)
def test_definition_mistakes(function: Any, options: dict[str, Any], message: str) -> None:
    with pytest.raises(ToolDefinitionError, match=message):
        tool(**options)(function)


class _AsyncCallable:
    """Look up a price."""

    async def __call__(self, sku: str) -> int:
        return len(sku)


async def test_empty_parentheses_and_async_callable_objects(
    make_executor: Any, make_inv: Any
) -> None:
    price = tool(name="price")(_AsyncCallable())

    @tool()
    def plain() -> int:
        """Plain."""
        return 1

    executor = make_executor(price, plain)

    assert (await executor.execute(make_inv("price", {"sku": "abc"}))).data == 3
    assert (await executor.execute(make_inv("plain"))).data == 1
