"""A small pipeline served by the pipeline API and command tests (`--pipeline
served_pipelines:orders`, or `served_pipelines:build` for a function that builds one).

```
validate (function) -> check (agent, scripted) -> ship (function)
```

An order id without '#' fails validation: no exception handler, so the pipeline escalates
with the reason.
"""

from __future__ import annotations

import json

from pydantic import BaseModel, Field

from bosun.models.base import ModelRequest, ModelResponse, UserMessage
from bosun.orchestration import Pipeline, agent_stage, function_stage
from bosun.runtime import Agent
from bosun.testing import ScriptedModel, reply


class Order(BaseModel):
    order_id: str
    quantity: int = Field(ge=1, le=100)


class Checked(BaseModel):
    order_id: str
    quantity: int
    approved: bool


class Shipped(BaseModel):
    order_id: str
    label: str


def validate(order: Order) -> Order:
    if not order.order_id.startswith("#"):
        raise ValueError(f"order {order.order_id!r} not found: ids start with '#'")
    return order


def _check(request: ModelRequest) -> ModelResponse:
    """Answers the stage's output schema with the order read from the stage input."""
    text = next(m.content for m in request.messages if isinstance(m, UserMessage)) or ""
    given = next(
        json.loads(line)
        for line in map(str.strip, text.splitlines())
        if line.startswith("{") and '"properties"' not in line
    )
    checked = Checked(order_id=given["order_id"], quantity=given["quantity"], approved=True)
    return reply(checked.model_dump_json())


def ship(checked: Checked) -> Shipped:
    return Shipped(order_id=checked.order_id, label=f"{checked.order_id} x{checked.quantity}")


def build() -> Pipeline:
    """The pipeline, built fresh (each server gets its own agent and model)."""
    checker = Agent(name="checker", model=ScriptedModel(_check))
    return Pipeline(
        name="orders",
        input=Order,
        stages=[
            function_stage("validate", validate),
            agent_stage("check", checker, input=Order, output=Checked, after=["validate"]),
            function_stage("ship", ship, after=["check"]),
        ],
    )


orders = build()
