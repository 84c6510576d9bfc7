"""The order pipeline: validation -> (inventory || fraud) -> payment -> fulfilment.

```
validation   agent   authenticates the customer, checks each order is theirs and in a state
                     that allows the action                              retail:read
inventory    agent   the new items asked for are available                retail:read
fraud        agent   the orders and payment methods belong to the customer  retail:read
payment      code    stops on a failed fraud check or missing stock (the exception agent
                     substitutes out-of-stock items by policy)
fulfilment   agent   carries the actions out; a reviewer agent checks every cancellation
                     and refund against the policy and the order first   retail:*
exception    agent   known failures: an order id missing its '#', an item out of stock
```

Every agent gets only the scopes its own tools declare: inventory and fraud cannot write,
fulfilment's refunds (``retail:refund``) are reviewed before they run.
"""

from __future__ import annotations

from typing import Any

from bosun import Agent, Budget, Model
from bosun.orchestration import (
    Pipeline,
    PipelineBudget,
    ReviewerCritic,
    StagePolicy,
    agent_stage,
    function_stage,
)
from examples.order_pipeline.models import (
    FraudCheck,
    Fulfilled,
    OrderRequest,
    PaymentIn,
    Plan,
    Stock,
    Validated,
)
from examples.order_pipeline.policy import scripted
from examples.order_pipeline.retail import RetailStore
from examples.order_pipeline.tools import retail_tools

__all__ = ["POLICY", "build", "payment"]

POLICY = """\
- Cancel only pending orders, for 'no longer needed' or 'ordered by mistake'; the refund goes
  back to the original payment method.
- Return only delivered orders; the refund goes to the original payment method or an
  existing gift card.
"""
"""What the reviewer checks cancellations and refunds against (from tau-bench's retail
policy)."""

_READS = (
    "find_user_id_by_email",
    "find_user_id_by_name_zip",
    "get_order_details",
    "get_user_details",
    "get_product_details",
)


def payment(given: PaymentIn) -> Plan:
    """Settle the plan; a failed check stops here (and goes to the exception agent)."""
    if not given.fraud.ok:
        raise ValueError(f"fraud check failed: {'; '.join(given.fraud.reasons)}")
    if given.inventory.missing:
        raise ValueError(f"out of stock: {', '.join(given.inventory.missing)}")
    return Plan(user_id=given.validation.user_id, actions=given.validation.actions)


def build(store: RetailStore, *, model: Model | None = None) -> Pipeline:
    """The pipeline over `store`, each agent on its scripted model (or all on `model`)."""
    tools = {t.name: t for t in retail_tools(store)}
    reads = [tools[name] for name in _READS]

    def agent(name: str, agent_tools: list[Any], **options: Any) -> Agent:
        return Agent(
            name=f"orders.{name}",
            model=model or scripted(name),
            tools=agent_tools,
            budget=Budget(max_steps=20, max_tool_calls=30),
            **options,
        )

    reviewer = agent("reviewer", [tools["get_order_details"]])
    critic = ReviewerCritic(
        reviewer,
        tools={"cancel_pending_order", "return_delivered_order_items"},
        policy=POLICY,
    )
    writes = [t for name, t in tools.items() if name not in _READS]
    stage = StagePolicy(timeout_s=120.0)
    return Pipeline(
        name="orders",
        input=OrderRequest,
        stages=[
            agent_stage(
                "validation",
                agent("validator", reads),
                input=OrderRequest,
                output=Validated,
                policy=stage,
            ),
            agent_stage(
                "inventory",
                agent("inventory", reads),
                input=Validated,
                output=Stock,
                after=["validation"],
                policy=stage,
            ),
            agent_stage(
                "fraud",
                agent("fraud", reads),
                input=Validated,
                output=FraudCheck,
                after=["validation"],
                policy=stage,
            ),
            function_stage("payment", payment, after=["validation", "inventory", "fraud"]),
            agent_stage(
                "fulfilment",
                agent("fulfilment", [tools["get_order_details"], *writes], critic=critic),
                input=Plan,
                output=Fulfilled,
                after=["payment"],
                policy=stage,
            ),
        ],
        budget=PipelineBudget(max_model_calls=200),
        exception_handler=agent("exception", reads),
    )
