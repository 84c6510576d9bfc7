"""The retail store of tau-bench's retail domain: users, orders, products (tools: `tools`).

The data is read from the tau-bench copy in the shared datasets (``agents/tau-bench/retail``,
MIT licensed by Sierra), never copied into the project. The write tools follow tau-bench's
rules for what each action does to the database (its statuses, refunds, gift card
balances), written here again from its documented behaviour, because tau-bench's score is
"the final database equals the one the expected actions produce": `data_hash` compares them.

Every write is idempotent: the store remembers each idempotency key's result, so a call
replayed after a crash returns the first result instead of acting twice.
"""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

from bosun.errors import ModelRetry

__all__ = ["RetailStore", "load_data"]

_CANCEL_REASONS = ("no longer needed", "ordered by mistake")


def load_data(directory: Path) -> dict[str, Any]:
    """users, orders and products from tau-bench's retail ``data/`` directory."""
    return {
        name: json.loads((directory / "data" / f"{name}.json").read_text())
        for name in ("users", "orders", "products")
    }


class RetailStore:
    """One copy of the store's data, changed by the tools."""

    def __init__(self, data: dict[str, Any]) -> None:
        # Copy on write: records are shared with `data` until a write changes one (a deep
        # copy of the 2 MB store per task would cost more than the task).
        self.data = {name: dict(records) for name, records in data.items()}
        self._owned: set[tuple[str, str]] = set()
        self.applied: dict[str, Any] = {}
        """Results by idempotency key: a replayed write answers from here."""
        self.writes: list[tuple[str, dict[str, Any]]] = []
        """Writes that changed the data, in order (for tests)."""

    def data_hash(self) -> str:
        """sha256 of the data, keys sorted: equal hashes, equal databases."""
        text = json.dumps(self.data, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    # --- reads ------------------------------------------------------------------------------

    def user_by_email(self, email: str) -> str:
        for user_id, user in self.data["users"].items():
            if user["email"].lower() == email.lower():
                return str(user_id)
        raise ModelRetry("user not found")

    def user_by_name_zip(self, first_name: str, last_name: str, zip: str) -> str:
        for user_id, user in self.data["users"].items():
            name = user["name"]
            if (
                name["first_name"].lower() == first_name.lower()
                and name["last_name"].lower() == last_name.lower()
                and user["address"]["zip"] == zip
            ):
                return str(user_id)
        raise ModelRetry("user not found")

    def order(self, order_id: str) -> dict[str, Any]:
        order = self.data["orders"].get(order_id)
        if order is None:
            raise ModelRetry("order not found")
        return dict(order)

    def user(self, user_id: str) -> dict[str, Any]:
        user = self.data["users"].get(user_id)
        if user is None:
            raise ModelRetry("user not found")
        return dict(user)

    def product(self, product_id: str) -> dict[str, Any]:
        product = self.data["products"].get(product_id)
        if product is None:
            raise ModelRetry("product not found")
        return dict(product)

    # --- writes (tau-bench's rules) -------------------------------------------------------------

    def write(self, key: str, action: str, arguments: dict[str, Any]) -> Any:
        """Apply `action` once per idempotency key; an invalid action raises `ModelRetry`
        with tau-bench's error text and changes nothing."""
        if key in self.applied:
            return self.applied[key]
        result = getattr(self, f"_{action}")(**arguments)
        self.applied[key] = result
        self.writes.append((action, arguments))
        return result

    def apply(self, action: str, arguments: dict[str, Any]) -> Any:
        """Apply an action without a key (replaying the expected actions)."""
        return getattr(self, f"_{action}")(**arguments)

    def _own(self, table: str, key: str) -> dict[str, Any] | None:
        """The record, copied into this store the first time it is to change."""
        record = self.data[table].get(key)
        if record is not None and (table, key) not in self._owned:
            record = self.data[table][key] = copy.deepcopy(record)
            self._owned.add((table, key))
        return record

    def _own_order(self, order_id: str) -> dict[str, Any] | None:
        return self._own("orders", order_id)

    def _methods(self, user_id: str) -> dict[str, Any]:
        user = self._own("users", user_id)
        assert user is not None
        return user["payment_methods"]  # type: ignore[no-any-return]

    def _pending(self, order_id: str, verb: str) -> dict[str, Any]:
        order = self._own_order(order_id)
        if order is None:
            raise ModelRetry("Error: order not found")
        if order["status"] != "pending":
            raise ModelRetry(f"Error: non-pending order cannot be {verb}")
        return order

    def _delivered(self, order_id: str, verb: str) -> dict[str, Any]:
        order = self._own_order(order_id)
        if order is None:
            raise ModelRetry("Error: order not found")
        if order["status"] != "delivered":
            raise ModelRetry(f"Error: non-delivered order cannot be {verb}")
        return order

    def _method(self, order: dict[str, Any], payment_method_id: str) -> dict[str, Any]:
        methods = self._methods(order["user_id"])
        if payment_method_id not in methods:
            raise ModelRetry("Error: payment method not found")
        return methods[payment_method_id]  # type: ignore[no-any-return]

    def _cancel_pending_order(self, order_id: str, reason: str) -> dict[str, Any]:
        order = self._pending(order_id, "cancelled")
        if reason not in _CANCEL_REASONS:
            raise ModelRetry("Error: invalid reason")
        refunds = []
        for payment in order["payment_history"]:
            method_id = payment["payment_method_id"]
            refunds.append(
                {
                    "transaction_type": "refund",
                    "amount": payment["amount"],
                    "payment_method_id": method_id,
                }
            )
            if "gift_card" in method_id:  # back on the gift card at once
                method = self._methods(order["user_id"])[method_id]
                method["balance"] = round(method["balance"] + payment["amount"], 2)
        order["status"] = "cancelled"
        order["cancel_reason"] = reason
        order["payment_history"].extend(refunds)
        return order

    def _swap_price(
        self, order: dict[str, Any], item_ids: list[str], new_item_ids: list[str]
    ) -> float:
        owned = [item["item_id"] for item in order["items"]]
        for item_id in item_ids:
            if item_ids.count(item_id) > owned.count(item_id):
                raise ModelRetry(f"Error: {item_id} not found")
        if len(item_ids) != len(new_item_ids):
            raise ModelRetry("Error: the number of items to be exchanged should match")
        diff = 0.0
        for item_id, new_id in zip(item_ids, new_item_ids, strict=True):
            item = next(i for i in order["items"] if i["item_id"] == item_id)
            variants = self.data["products"][item["product_id"]]["variants"]
            if new_id not in variants or not variants[new_id]["available"]:
                raise ModelRetry(f"Error: new item {new_id} not found or available")
            diff += variants[new_id]["price"] - item["price"]
        return diff

    def _exchange_delivered_order_items(
        self, order_id: str, item_ids: list[str], new_item_ids: list[str], payment_method_id: str
    ) -> dict[str, Any]:
        order = self._delivered(order_id, "exchanged")
        diff = round(self._swap_price(order, item_ids, new_item_ids), 2)
        method = self._method(order, payment_method_id)
        if method["source"] == "gift_card" and method["balance"] < diff:
            raise ModelRetry(
                "Error: insufficient gift card balance to pay for the price difference"
            )
        order["status"] = "exchange requested"
        order["exchange_items"] = sorted(item_ids)
        order["exchange_new_items"] = sorted(new_item_ids)
        order["exchange_payment_method_id"] = payment_method_id
        order["exchange_price_difference"] = diff
        return order

    def _modify_pending_order_items(
        self, order_id: str, item_ids: list[str], new_item_ids: list[str], payment_method_id: str
    ) -> dict[str, Any]:
        order = self._pending(order_id, "modified")
        diff = self._swap_price(order, item_ids, new_item_ids)
        method = self._method(order, payment_method_id)
        if method["source"] == "gift_card" and method["balance"] < diff:
            raise ModelRetry("Error: insufficient gift card balance to pay for the new item")
        order["payment_history"].append(
            {
                "transaction_type": "payment" if diff > 0 else "refund",
                "amount": abs(diff),
                "payment_method_id": payment_method_id,
            }
        )
        if method["source"] == "gift_card":
            method["balance"] = round(method["balance"] - diff, 2)
        for item_id, new_id in zip(item_ids, new_item_ids, strict=True):
            item = next(i for i in order["items"] if i["item_id"] == item_id)
            variant = self.data["products"][item["product_id"]]["variants"][new_id]
            item.update(item_id=new_id, price=variant["price"], options=variant["options"])
        order["status"] = "pending (item modified)"
        return order

    def _modify_pending_order_payment(
        self, order_id: str, payment_method_id: str
    ) -> dict[str, Any]:
        order = self._pending(order_id, "modified")
        method = self._method(order, payment_method_id)
        history = order["payment_history"]
        if len(history) > 1 or history[0]["transaction_type"] != "payment":
            raise ModelRetry("Error: there should be exactly one payment for a pending order")
        old_id = history[0]["payment_method_id"]
        if old_id == payment_method_id:
            raise ModelRetry(
                "Error: the new payment method should be different from the current one"
            )
        amount = history[0]["amount"]
        if method["source"] == "gift_card" and method["balance"] < amount:
            raise ModelRetry("Error: insufficient gift card balance to pay for the order")
        history.extend(
            [
                {
                    "transaction_type": "payment",
                    "amount": amount,
                    "payment_method_id": payment_method_id,
                },
                {"transaction_type": "refund", "amount": amount, "payment_method_id": old_id},
            ]
        )
        if method["source"] == "gift_card":
            method["balance"] = round(method["balance"] - amount, 2)
        if "gift_card" in old_id:
            old = self._methods(order["user_id"])[old_id]
            old["balance"] = round(old["balance"] + amount, 2)
        return order

    def _modify_pending_order_address(
        self,
        order_id: str,
        address1: str,
        address2: str,
        city: str,
        state: str,
        country: str,
        zip: str,
    ) -> dict[str, Any]:
        order = self._pending(order_id, "modified")
        order["address"] = {
            "address1": address1,
            "address2": address2,
            "city": city,
            "state": state,
            "country": country,
            "zip": zip,
        }
        return order

    def _return_delivered_order_items(
        self, order_id: str, item_ids: list[str], payment_method_id: str
    ) -> dict[str, Any]:
        order = self._delivered(order_id, "returned")
        self._method(order, payment_method_id)
        original = order["payment_history"][0]["payment_method_id"]
        if "gift_card" not in payment_method_id and payment_method_id != original:
            raise ModelRetry(
                "Error: payment method should be either the original payment method or a gift card"
            )
        owned = [item["item_id"] for item in order["items"]]
        if any(item_ids.count(i) > owned.count(i) for i in item_ids):
            raise ModelRetry("Error: some item not found")
        order["status"] = "return requested"
        order["return_items"] = sorted(item_ids)
        order["return_payment_method_id"] = payment_method_id
        return order
