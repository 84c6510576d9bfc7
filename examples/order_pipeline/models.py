"""What travels between the order pipeline's stages."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

__all__ = [
    "Action",
    "FraudCheck",
    "Fulfilled",
    "Identity",
    "OrderRequest",
    "PaymentIn",
    "Plan",
    "Stock",
    "Validated",
]


class Identity(BaseModel):
    """Who the customer says they are."""

    emails: list[str] = []
    first_name: str = ""
    last_name: str = ""
    zip: str = ""


class Action(BaseModel):
    """One thing the customer asked for: a retail tool and its arguments."""

    name: str
    arguments: dict[str, Any]


class OrderRequest(BaseModel):
    """The pipeline's input."""

    identity: Identity
    actions: list[Action] = []


class Validated(BaseModel):
    """validation: the customer authenticated, every order theirs and in a state that allows
    the action."""

    user_id: str
    actions: list[Action]
    orders: dict[str, str]
    """Order id -> status, as validated."""


class Stock(BaseModel):
    """inventory: are the items asked for available?"""

    missing: list[str] = []
    """New item ids that are not available."""


class FraudCheck(BaseModel):
    """fraud: do the orders and payment methods belong to the customer?"""

    ok: bool
    reasons: list[str] = []


class PaymentIn(BaseModel):
    """payment's input: the three stages before it."""

    validation: Validated
    inventory: Stock
    fraud: FraudCheck


class Plan(BaseModel):
    """payment: the actions to carry out, payment methods settled."""

    user_id: str
    actions: list[Action]


class Fulfilled(BaseModel):
    """fulfilment: what was done."""

    done: list[str]
