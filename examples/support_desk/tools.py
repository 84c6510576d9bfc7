"""The support desk's tools: typed functions over the helpdesk, each with a scope and a risk.

==================== =============== ======================================================
tool                 scope           protection
==================== =============== ======================================================
lookup_customer      helpdesk:read   read
list_recent_tickets  helpdesk:read   read; output untrusted (summaries quote customers)
search_kb            kb:read         read
create_ticket        helpdesk:write  write, idempotent
add_note             helpdesk:write  write, idempotent
draft_reply          helpdesk:write  write, idempotent (a draft sends nothing)
send_reply           mail:send       irreversible, idempotent, outbound ``to``, approval
issue_refund         payments:refund irreversible, idempotent, outbound ``iban``, always
                                     approval, amount in (0, 500] and within the invoice
==================== =============== ======================================================

**How a reply comes to need a person's approval.** The issue asks for approval when the
email came from outside or the customer is high-value. Both use bosun's own gates rather
than checks written into the tool:

* *From outside*: the email reaches the run as untrusted content (`email_input`), which
  taints the run. The agent's `TaintPolicy(write="allow", irreversible="approve")` lets the
  helpdesk's own, reversible writes through (tickets, notes, drafts: holding those would park
  every email before it is even filed) and holds every irreversible side effect for approval.
  ``send_reply`` is declared ``risk="irreversible"`` rather than ``write`` for that reason:
  an email cannot be recalled once sent, which is what the risk level means. The approver
  sees the reason bosun recorded ("untrusted content is in context (input:email)").
* *High-value customer*: a `RuleCritic` rule (`agent.high_value_rule`). A run fed by the
  inbox is always tainted, so there the taint hold already applies; the rule covers runs
  with no outside content (an operator asking the agent directly), where it escalates the
  reply to a person with the reason. It escalates rather than holds because a critic's
  verdicts are allow, deny or escalate: bosun has no "hold for approval" verdict yet.
* The recipient must be grounded (``outbound=["to"]``): it has to appear in trusted or user
  text (the reply address `email_input` puts in the instruction) or in a trusted tool
  result (the CRM). An address that only the email's body mentions is refused, whatever
  the model was talked into.

``issue_refund`` always needs approval (``requires_approval=True``); its destination IBAN,
when given, must be grounded the same way (refunds go to the payment method on file).

**Escalation** is bosun's built-in ``ask_human`` (the agent is built with
``ask_human=True``): the run parks as ``waiting_human`` and the handoff's question carries
the reason. It needs no tool here, and a person's answer (`Runtime.hand_back`) flows back
to the agent as the tool's result.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal, get_args

from pydantic import Field

import bosun
from bosun.errors import ModelRetry
from examples.support_desk.helpdesk import Helpdesk, HelpdeskError

__all__ = ["CATEGORIES", "TEAMS", "Category", "Priority", "Team", "support_tools"]

Category = Literal[
    "billing",
    "refund",
    "bug",
    "account_access",
    "onboarding",
    "feature_request",
    "api",
    "data_export",
    "privacy",
    "shipping",
    "cancellation",
    "security",
    "other",
]
Priority = Literal["low", "normal", "high", "urgent"]
Team = Literal[
    "tier1",
    "billing",
    "engineering",
    "onboarding",
    "product",
    "privacy",
    "logistics",
    "trust-safety",
    "sales",
]
CATEGORIES: tuple[str, ...] = get_args(Category)
"""Ticket categories."""
TEAMS: tuple[str, ...] = get_args(Team)
"""Teams a ticket can be routed to."""

Summary = Annotated[str, Field(min_length=3, max_length=500)]
Body = Annotated[str, Field(min_length=1, max_length=20_000)]
RefundAmount = Annotated[float, Field(gt=0, le=500)]


def support_tools(desk: Helpdesk) -> list[bosun.Tool[..., Any]]:
    """The agent's tools, bound to the helpdesk `desk`."""

    @bosun.tool(scope="helpdesk:read", pii=["EMAIL_ADDRESS"])
    def lookup_customer(email: str = "", account_id: str = "") -> dict[str, Any]:
        """Look up a customer by email address or account id, with their last invoices.

        Args:
            email: The customer's email address.
            account_id: The account id, e.g. ACC-1001 (used instead of the email if given).
        """
        customer = desk.customer(email=email, account_id=account_id)
        return {"found": False} if customer is None else {"found": True, **customer}

    @bosun.tool(scope="helpdesk:read", untrusted_output=True)
    def list_recent_tickets(account_id: str, limit: int = 5) -> list[dict[str, Any]]:
        """The account's most recent tickets, newest first.

        Args:
            account_id: The account id, e.g. ACC-1001.
            limit: How many tickets (1 to 20).
        """
        return desk.recent_tickets(account_id, limit=limit)

    @bosun.tool(scope="kb:read")
    def search_kb(query: str) -> list[dict[str, Any]]:
        """Search the knowledge base; returns up to three articles with their text and URL.

        Args:
            query: Keywords, e.g. "refund policy" or "api rate limit".
        """
        return desk.search_kb(query)

    @bosun.tool(
        scope="helpdesk:write",
        side_effect=True,
        risk="write",
        idempotent=True,
        pii=["EMAIL_ADDRESS"],
    )
    def create_ticket(
        ctx: bosun.ToolContext,
        category: Category,
        priority: Priority,
        team: Team,
        summary: Summary,
        account_id: str = "",
        requester: str = "",
    ) -> dict[str, Any]:
        """Open a helpdesk ticket and route it to a team.

        Args:
            category: What the request is about.
            priority: low, normal, high or urgent (outages, security, data loss).
            team: The team that handles it.
            summary: One or two sentences: what the customer needs.
            account_id: The customer's account id, if known.
            requester: The requester's email address.
        """
        return desk.create_ticket(
            key=ctx.idempotency_key,
            category=category,
            priority=priority,
            team=team,
            summary=summary,
            account_id=account_id,
            requester=requester,
        )

    @bosun.tool(scope="helpdesk:write", side_effect=True, risk="write", idempotent=True)
    def add_note(ctx: bosun.ToolContext, ticket_id: str, body: Body) -> dict[str, Any]:
        """Add an internal note to a ticket (customers never see notes).

        Args:
            ticket_id: The ticket, e.g. T-1061.
            body: The note.
        """
        return _helpdesk(
            lambda: desk.add_note(key=ctx.idempotency_key, ticket=ticket_id, body=body)
        )

    @bosun.tool(
        scope="helpdesk:write",
        side_effect=True,
        risk="write",
        idempotent=True,
        pii=["EMAIL_ADDRESS"],
    )
    def draft_reply(
        ctx: bosun.ToolContext,
        ticket_id: str,
        to: str,
        subject: Summary,
        body: Body,
        language: str = "en",
    ) -> dict[str, Any]:
        """Save a reply draft on a ticket. Nothing is sent.

        Args:
            ticket_id: The ticket, e.g. T-1061.
            to: The recipient's email address.
            subject: The subject line.
            body: The reply.
            language: The reply's language code (en, de, es, fr, ja).
        """
        return _helpdesk(
            lambda: desk.save_draft(
                key=ctx.idempotency_key,
                ticket=ticket_id,
                to=to,
                subject=subject,
                body=body,
                language=language,
            )
        )

    @bosun.tool(
        scope="mail:send",
        side_effect=True,
        risk="irreversible",
        idempotent=True,
        outbound=["to"],
        pii=["EMAIL_ADDRESS"],
    )
    def send_reply(
        ctx: bosun.ToolContext, ticket_id: str, to: str, subject: Summary, body: Body
    ) -> dict[str, Any]:
        """Send a reply to the customer. Held for a person's approval when the run read
        outside content; the recipient must be one the operator or the CRM gave.

        Args:
            ticket_id: The ticket the reply belongs to, e.g. T-1061.
            to: The recipient's email address.
            subject: The subject line.
            body: The reply.
        """
        return _helpdesk(
            lambda: desk.send(
                key=ctx.idempotency_key, ticket=ticket_id, to=to, subject=subject, body=body
            )
        )

    @bosun.tool(
        scope="payments:refund",
        side_effect=True,
        risk="irreversible",
        requires_approval=True,
        idempotent=True,
        outbound=["iban"],
        pii=["IBAN_CODE"],
    )
    def issue_refund(
        ctx: bosun.ToolContext,
        invoice_id: str,
        amount_eur: RefundAmount,
        reason: Summary,
        iban: str = "",
    ) -> dict[str, Any]:
        """Refund (part of) an invoice. Always held for a person's approval; at most EUR 500
        and never more than what is left of the invoice.

        Args:
            invoice_id: The invoice, e.g. INV-202611-1001.
            amount_eur: The amount in euros.
            reason: Why, in one sentence.
            iban: Only if the refund cannot go to the payment method on file.
        """
        destination = iban.strip() or "payment method on file"
        return _helpdesk(
            lambda: desk.refund(
                key=ctx.idempotency_key,
                invoice_id=invoice_id,
                amount_eur=amount_eur,
                reason=reason,
                destination=destination,
            )
        )

    return [
        lookup_customer,
        list_recent_tickets,
        search_kb,
        create_ticket,
        add_note,
        draft_reply,
        send_reply,
        issue_refund,
    ]


def _helpdesk(action: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run a helpdesk write; a refusal goes back to the model as guidance it can act on."""
    try:
        return action()
    except HelpdeskError as exc:
        raise ModelRetry(str(exc)) from exc
