"""The retail tools over a `RetailStore`: reads, and idempotent writes.

================================ ============== ==========================================
tool                             scope          protection
================================ ============== ==========================================
find_user_id_by_*                retail:read    read
get_order/user/product_details   retail:read    read
cancel_pending_order             retail:write   write, idempotent; reviewed
modify_pending_order_*           retail:write   write, idempotent
exchange_delivered_order_items   retail:write   write, idempotent
return_delivered_order_items     retail:refund  write, idempotent; reviewed
================================ ============== ==========================================
"""

from __future__ import annotations

from typing import Any

from bosun.tools import ToolContext, tool
from examples.order_pipeline.retail import RetailStore

__all__ = ["retail_tools"]


def retail_tools(store: RetailStore) -> list[Any]:
    """The tools over `store`: reads (scope ``retail:read``) and idempotent writes (scope
    ``retail:write``; returns ``retail:refund``), side effects of risk ``write``."""

    @tool(scope="retail:read")
    def find_user_id_by_email(email: str) -> str:
        """Find a user id by email."""
        return store.user_by_email(email)

    @tool(scope="retail:read")
    def find_user_id_by_name_zip(first_name: str, last_name: str, zip: str) -> str:
        """Find a user id by first name, last name and zip code."""
        return store.user_by_name_zip(first_name, last_name, zip)

    @tool(scope="retail:read")
    def get_order_details(order_id: str) -> dict[str, Any]:
        """The status and details of an order, such as '#W0000000'."""
        return store.order(order_id)

    @tool(scope="retail:read")
    def get_user_details(user_id: str) -> dict[str, Any]:
        """A user's profile, payment methods and orders."""
        return store.user(user_id)

    @tool(scope="retail:read")
    def get_product_details(product_id: str) -> dict[str, Any]:
        """A product's variants (item ids, options, availability, prices)."""
        return store.product(product_id)

    def write(ctx: ToolContext, action: str, **arguments: Any) -> dict[str, Any]:
        return store.write(ctx.idempotency_key, action, arguments)  # type: ignore[no-any-return]

    @tool(scope="retail:write", side_effect=True, risk="write", idempotent=True)
    def cancel_pending_order(ctx: ToolContext, order_id: str, reason: str) -> dict[str, Any]:
        """Cancel a pending order; reason is 'no longer needed' or 'ordered by mistake'. The
        payment is refunded."""
        return write(ctx, "cancel_pending_order", order_id=order_id, reason=reason)

    @tool(scope="retail:write", side_effect=True, risk="write", idempotent=True)
    def modify_pending_order_items(
        ctx: ToolContext,
        order_id: str,
        item_ids: list[str],
        new_item_ids: list[str],
        payment_method_id: str,
    ) -> dict[str, Any]:
        """Swap items of a pending order for other options of the same products (once)."""
        return write(
            ctx,
            "modify_pending_order_items",
            order_id=order_id,
            item_ids=item_ids,
            new_item_ids=new_item_ids,
            payment_method_id=payment_method_id,
        )

    @tool(scope="retail:write", side_effect=True, risk="write", idempotent=True)
    def modify_pending_order_payment(
        ctx: ToolContext, order_id: str, payment_method_id: str
    ) -> dict[str, Any]:
        """Pay a pending order with another of the user's payment methods."""
        return write(
            ctx,
            "modify_pending_order_payment",
            order_id=order_id,
            payment_method_id=payment_method_id,
        )

    @tool(scope="retail:write", side_effect=True, risk="write", idempotent=True)
    def modify_pending_order_address(
        ctx: ToolContext,
        order_id: str,
        address1: str,
        address2: str,
        city: str,
        state: str,
        country: str,
        zip: str,
    ) -> dict[str, Any]:
        """Change the shipping address of a pending order."""
        return write(
            ctx,
            "modify_pending_order_address",
            order_id=order_id,
            address1=address1,
            address2=address2,
            city=city,
            state=state,
            country=country,
            zip=zip,
        )

    @tool(scope="retail:write", side_effect=True, risk="write", idempotent=True)
    def exchange_delivered_order_items(
        ctx: ToolContext,
        order_id: str,
        item_ids: list[str],
        new_item_ids: list[str],
        payment_method_id: str,
    ) -> dict[str, Any]:
        """Exchange items of a delivered order for other options of the same products."""
        return write(
            ctx,
            "exchange_delivered_order_items",
            order_id=order_id,
            item_ids=item_ids,
            new_item_ids=new_item_ids,
            payment_method_id=payment_method_id,
        )

    @tool(scope="retail:refund", side_effect=True, risk="write", idempotent=True)
    def return_delivered_order_items(
        ctx: ToolContext, order_id: str, item_ids: list[str], payment_method_id: str
    ) -> dict[str, Any]:
        """Return items of a delivered order; the refund goes to the original payment method
        or a gift card."""
        return write(
            ctx,
            "return_delivered_order_items",
            order_id=order_id,
            item_ids=item_ids,
            payment_method_id=payment_method_id,
        )

    return [
        find_user_id_by_email,
        find_user_id_by_name_zip,
        get_order_details,
        get_user_details,
        get_product_details,
        cancel_pending_order,
        modify_pending_order_items,
        modify_pending_order_payment,
        modify_pending_order_address,
        exchange_delivered_order_items,
        return_delivered_order_items,
    ]
