"""The scripted policy: deterministic models for the pipeline's agents (tests, offline runs).

Each agent's model is a function of its conversation, so a run resumed in another process
continues where it stopped. They call the tools one at a time, read the results, and answer
with their stage's JSON, as tau-bench's policy asks of a real agent; a real model (the local
one) plugs in instead through `build(model=...)`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from bosun.models.base import ModelRequest, ToolMessage, UserMessage
from bosun.testing import ScriptedModel, call, reply
from bosun.testing.scripted import ScriptItem

__all__ = ["POLICIES", "scripted"]

_JSON_LINE = re.compile(r"^(?:([a-z_]+): )?(\{.*\})$")
_ORDER_ACTIONS = {
    "cancel_pending_order": "pending",
    "modify_pending_order_items": "pending",
    "modify_pending_order_payment": "pending",
    "modify_pending_order_address": "pending",
    "exchange_delivered_order_items": "delivered",
    "return_delivered_order_items": "delivered",
}
_CANCEL_REASONS = ("no longer needed", "ordered by mistake")

Step = Callable[[dict[str, Any], list[tuple[str, dict[str, Any], Any]]], ScriptItem]


def stage_input(request: ModelRequest) -> dict[str, Any]:
    """The JSON data of the run's input (one object, or one per named upstream)."""
    text = next(m.content for m in request.messages if isinstance(m, UserMessage))
    data: dict[str, Any] = {}
    for line in text.splitlines():
        match = _JSON_LINE.match(line.strip())
        if match is None:
            continue
        value = json.loads(match.group(2))
        if match.group(1):
            data[match.group(1)] = value
        elif "properties" not in value:  # not the schema the pipeline states
            data.update(value)
    return data


def results(request: ModelRequest) -> list[tuple[str, dict[str, Any], Any]]:
    """(tool, arguments, result) for each tool call so far; a failed call's result is None."""
    calls = {
        c.id: (c.name, json.loads(c.arguments))
        for m in request.messages
        if m.role == "assistant"
        for c in m.tool_calls
    }
    found = []
    for m in request.messages:
        if isinstance(m, ToolMessage):
            body = json.loads(m.content)
            name, arguments = calls[m.call_id]
            found.append((name, arguments, body.get("data") if body.get("ok") else None))
    return found


def answer(value: dict[str, Any]) -> ScriptItem:
    return reply(json.dumps(value))


def _next(
    wanted: list[tuple[str, dict[str, Any]]], done: list[tuple[str, dict[str, Any], Any]]
) -> ScriptItem | None:
    """The first wanted call not made yet."""
    made = [(name, args) for name, args, _ in done]
    for name, args in wanted:
        if (name, args) not in made:
            return call(name, args)
    return None


def validator(data: dict[str, Any], done: list[tuple[str, dict[str, Any], Any]]) -> ScriptItem:
    identity = data["identity"]
    user_id = next((r for n, _, r in done if n.startswith("find_user") and r), None)
    if user_id is None:
        tried = [a for n, a, _ in done if n.startswith("find_user")]
        for email in identity["emails"]:
            if {"email": email} not in tried:
                return call("find_user_id_by_email", {"email": email})
        by_name = {k: identity[k] for k in ("first_name", "last_name", "zip")}
        if by_name not in tried and all(by_name.values()):
            return call("find_user_id_by_name_zip", by_name)
        return answer({"error": "the customer could not be authenticated"})
    orders = [a["arguments"]["order_id"] for a in data["actions"] if "order_id" in a["arguments"]]
    step = _next([("get_order_details", {"order_id": o}) for o in dict.fromkeys(orders)], done)
    if step is not None:
        return step
    details = {a["order_id"]: r for n, a, r in done if n == "get_order_details"}
    for action in data["actions"]:
        order_id = action["arguments"]["order_id"]
        order = details.get(order_id)
        if order is None:
            return answer({"error": f"order {order_id} not found"})
        if order["user_id"] != user_id:
            return answer({"error": f"order {order_id} belongs to another customer"})
        if order["status"] != _ORDER_ACTIONS[action["name"]]:
            return answer(
                {
                    "error": f"{action['name']} needs a {_ORDER_ACTIONS[action['name']]} "
                    f"order; {order_id} is {order['status']}"
                }
            )
    statuses = {o: d["status"] for o, d in details.items() if d is not None}
    return answer({"user_id": user_id, "actions": data["actions"], "orders": statuses})


def inventory(data: dict[str, Any], done: list[tuple[str, dict[str, Any], Any]]) -> ScriptItem:
    swaps = [a for a in data["actions"] if "new_item_ids" in a["arguments"]]
    step = _next(
        [("get_order_details", {"order_id": a["arguments"]["order_id"]}) for a in swaps], done
    )
    if step is not None:
        return step
    orders = {a["order_id"]: r for n, a, r in done if n == "get_order_details"}
    wanted: dict[str, str] = {}  # new item -> product
    for action in swaps:
        items = {
            i["item_id"]: i["product_id"] for i in orders[action["arguments"]["order_id"]]["items"]
        }
        for old, new in zip(
            action["arguments"]["item_ids"], action["arguments"]["new_item_ids"], strict=False
        ):
            wanted[new] = items.get(old, "")
    step = _next(
        [("get_product_details", {"product_id": p}) for p in dict.fromkeys(wanted.values())], done
    )
    if step is not None:
        return step
    products = {a["product_id"]: r for n, a, r in done if n == "get_product_details"}
    missing = [
        new
        for new, product in wanted.items()
        if not (products.get(product) or {}).get("variants", {}).get(new, {}).get("available")
    ]
    return answer({"missing": missing})


def fraud(data: dict[str, Any], done: list[tuple[str, dict[str, Any], Any]]) -> ScriptItem:
    user_id = data["user_id"]
    step = _next([("get_user_details", {"user_id": user_id})], done)
    if step is not None:
        return step
    user = next(r for n, _, r in done if n == "get_user_details")
    reasons = []
    for action in data["actions"]:
        arguments = action["arguments"]
        if arguments.get("order_id") not in user["orders"]:
            reasons.append(f"{arguments.get('order_id')} is not the customer's order")
        method = arguments.get("payment_method_id")
        if method is not None and method not in user["payment_methods"]:
            reasons.append(f"{method} is not the customer's payment method")
    return answer({"ok": not reasons, "reasons": reasons})


def fulfilment(data: dict[str, Any], done: list[tuple[str, dict[str, Any], Any]]) -> ScriptItem:
    orders = [a["arguments"]["order_id"] for a in data["actions"]]
    step = _next([("get_order_details", {"order_id": o}) for o in dict.fromkeys(orders)], done)
    if step is not None:
        return step
    writes = [(n, a, r) for n, a, r in done if n != "get_order_details"]
    for index, action in enumerate(data["actions"]):
        if index >= len(writes):
            return call(action["name"], action["arguments"])
        if writes[index][2] is None:
            return answer({"error": f"{action['name']} failed"})
    return answer({"done": [a["name"] for a in data["actions"]]})


def reviewer(request: ModelRequest) -> ScriptItem:
    """Checks a proposed cancellation or refund against the policy and the order itself."""
    text = next(m.content for m in request.messages if isinstance(m, UserMessage))
    proposal = next(line for line in text.splitlines() if line.startswith("Proposed action: "))
    name, _, raw = proposal.removeprefix("Proposed action: ").partition(" ")
    arguments = json.loads(raw)
    done = results(request)
    step = _next([("get_order_details", {"order_id": arguments["order_id"]})], done)
    if step is not None:
        return step
    order = done[-1][2]
    if order is None:
        return answer({"allow": False, "reason": "the order does not exist"})
    if name == "cancel_pending_order":
        if order["status"] != "pending":
            return answer({"allow": False, "reason": f"the order is {order['status']}"})
        if arguments["reason"] not in _CANCEL_REASONS:
            return answer({"allow": False, "reason": "not a cancellation reason the policy allows"})
    if name == "return_delivered_order_items":
        original = order["payment_history"][0]["payment_method_id"]
        method = arguments["payment_method_id"]
        if method != original and "gift_card" not in method:
            return answer(
                {
                    "allow": False,
                    "reason": "refunds go to the original payment method or a gift card",
                }
            )
    return answer({"allow": True, "reason": "within policy"})


def exception_agent(
    data: dict[str, Any], done: list[tuple[str, dict[str, Any], Any]]
) -> ScriptItem:
    """Known failure modes: an order id written without its '#', looked up; an item out of
    stock, substituted by the closest available option of the same product."""
    failure = data
    given = failure["input"]
    if failure["stage"] == "validation" and "not found" in failure["error"]:
        loose = [
            a["arguments"]["order_id"]
            for a in given["actions"]
            if not a["arguments"]["order_id"].startswith("#")
        ]
        step = _next([("get_order_details", {"order_id": f"#{o}"}) for o in loose], done)
        if step is not None:
            return step
        if loose and all(r is not None for _, _, r in done):
            for action in given["actions"]:
                action["arguments"]["order_id"] = "#" + action["arguments"]["order_id"].lstrip("#")
            return answer({"action": "retry", "input": given, "reason": "order ids start with '#'"})
    if failure["stage"] == "payment" and "out of stock" in failure["error"]:
        return _substitute(given, done)
    return answer({"action": "escalate", "reason": f"no known fix for: {failure['error']}"})


def _substitute(given: dict[str, Any], done: list[tuple[str, dict[str, Any], Any]]) -> ScriptItem:
    missing = set(given["inventory"]["missing"])
    swaps = [a for a in given["validation"]["actions"] if "new_item_ids" in a["arguments"]]
    step = _next(
        [("get_order_details", {"order_id": a["arguments"]["order_id"]}) for a in swaps], done
    )
    if step is not None:
        return step
    orders = {a["order_id"]: r for n, a, r in done if n == "get_order_details"}
    products = {p: r for n, a, r in done if n == "get_product_details" for p in [a["product_id"]]}
    for action in swaps:
        order = orders[action["arguments"]["order_id"]]
        new_ids = action["arguments"]["new_item_ids"]
        for i, (old, new) in enumerate(zip(action["arguments"]["item_ids"], new_ids, strict=False)):
            if new not in missing:
                continue
            item = next(x for x in order["items"] if x["item_id"] == old)
            if item["product_id"] not in products:
                return call("get_product_details", {"product_id": item["product_id"]})
            variants = products[item["product_id"]]["variants"]
            wanted = variants.get(new, {}).get("options", {})
            # By policy: the available option of the same product closest to the one asked.
            best = max(
                (v for v in variants.values() if v["available"] and v["item_id"] != old),
                key=lambda v: sum(v["options"].get(k) == o for k, o in wanted.items()),
                default=None,
            )
            if best is None:
                return answer({"action": "escalate", "reason": f"no substitute for {new}"})
            new_ids[i] = best["item_id"]
    given["inventory"]["missing"] = []
    return answer({"action": "retry", "input": given, "reason": "substituted by policy"})


def _stage(step: Step) -> Callable[[ModelRequest], ScriptItem]:
    return lambda request: step(stage_input(request), results(request))


POLICIES: dict[str, Callable[[ModelRequest], ScriptItem]] = {
    "validator": _stage(validator),
    "inventory": _stage(inventory),
    "fraud": _stage(fraud),
    "fulfilment": _stage(fulfilment),
    "reviewer": reviewer,
    "exception": _stage(exception_agent),
}


def scripted(agent: str) -> ScriptedModel:
    """The scripted model of one of the pipeline's agents."""
    return ScriptedModel(POLICIES[agent], name=f"scripted-{agent}")
