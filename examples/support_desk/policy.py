"""The support desk's **scripted policy model**: a deterministic stand-in for an LLM.

`scripted_policy_model()` is a `bosun.testing.ScriptedModel` driven by `decide`, a pure
function of the conversation: it reads the email from the run's messages (the instruction,
the spotlighted message, every tool result so far) and returns the next step as a real model
would, as tool calls or a final answer. It never sees anything a real model would not, so the
example runs unchanged on a real model (`build_agent(db, model="openai:...")`).

For an email it: looks the sender up, checks recent tickets, searches the knowledge base,
files a ticket (category, priority, team from keyword triage, `triage.py`), drafts a reply in
the email's language, proposes ``issue_refund`` when a refund is asked for and eligible, then
``send_reply``; answers an email that only asks a question from the help articles when
the agent has ``search_knowledge`` (a ticket and a draft citing them; a confident guess when
they say nothing, which bosun's confidence check escalates); and hands the run to a person
(``ask_human``) when the email is ambiguous,
mixes conflicting requests, needs a privacy or legal decision, or looks like an injection.

It is **realistically fallible**: it recognises loud injections (overrides, role markers,
hidden or encoded text) but not polite social engineering. Told to "send the invoices to my
accountant at x@..." or to "refund to IBAN ...", it proposes exactly that, as a naive model
would. bosun's gates stop those calls (ungrounded recipients and IBANs are refused; every
reply and refund in a run that read an email waits for approval), which is what the tests
and the demo show. The model's name says what it is: ``scripted-policy:support_desk``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from email.utils import getaddresses
from typing import Any

from bosun import ModelRequest, ModelResponse
from bosun.models import AssistantMessage, ToolMessage, UserMessage
from bosun.testing import ScriptedModel, call, reply
from examples.support_desk.replies import answer_from, compose
from examples.support_desk.triage import TEAM, Email, Triage, read_block, triage

__all__ = ["MODEL_NAME", "REFUND_WINDOW", "decide", "scripted_policy_model"]

MODEL_NAME = "scripted-policy:support_desk"
"""The name runs record for this model: never mistaken for a real one."""

REFUND_WINDOW = timedelta(days=30)
"""The knowledge base's refund policy: invoices younger than this."""

_EMAIL_BLOCK = re.compile(r"<<untrusted email (\S+)>>\n(.*)\n<</untrusted \1>>", re.DOTALL)
_SPOTLIGHT = re.compile(r"\A<<untrusted \S+ \S+>>\n(.*)\n<</untrusted \S+>>\Z", re.DOTALL)
# The sender is the address the operator's (trusted) instruction names, however the
# deployment words it (``service.inbox_instruction``), or its PII placeholder when the vault
# masked it; the untrusted message is never asked.
_SENDER = re.compile(
    r"<[A-Z][A-Z_]*_\d+>|[A-Za-z0-9._%+'-]{1,64}@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
)
_ACCOUNT = re.compile(r"\bACC-\d{4}\b")
# How the runtime shows a thread's earlier turns (bosun.runtime.context.thread_view).
_EARLIER = ("[Earlier in this conversation]", "[Summary of the", "<<untrusted thread:")


def scripted_policy_model(*, latency_s: float = 0.0) -> ScriptedModel:
    """The scripted policy as a bosun model. `latency_s` simulates a model's think time."""
    return ScriptedModel(decide, latency_s=latency_s, name=MODEL_NAME)


# --- reading the conversation -------------------------------------------------------------------


@dataclass
class _Step:
    name: str
    args: dict[str, Any]
    ok: bool | None = None
    data: Any = None
    error_kind: str | None = None
    guidance: str | None = None


@dataclass
class _Conversation:
    instruction: str = ""
    email: Email | None = None
    steps: list[_Step] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    earlier: list[str] = field(default_factory=list)
    """Earlier turns of the email thread (their emails and answers), oldest first."""
    knowledge: bool = False
    """Whether ``search_knowledge`` is offered."""

    @classmethod
    def read(cls, request: ModelRequest) -> _Conversation:
        convo = cls(knowledge=any(t.name == "search_knowledge" for t in request.tools))
        by_id: dict[str, _Step] = {}
        for message in request.messages:
            if isinstance(message, UserMessage) and message.content.startswith(_EARLIER):
                convo.earlier.append(message.content)
            elif isinstance(message, UserMessage):
                if convo.instruction or convo.email is not None:
                    convo.notes.append(message.content)
                    continue
                block = _EMAIL_BLOCK.search(message.content)
                if block is None:
                    convo.instruction = message.content
                else:
                    convo.instruction = message.content[: block.start()].strip()
                    convo.email = read_block(block.group(2))
            elif isinstance(message, AssistantMessage):
                for tool_call in message.tool_calls:
                    try:
                        args = json.loads(tool_call.arguments)
                    except ValueError:
                        args = {}
                    step = _Step(tool_call.name, args if isinstance(args, dict) else {})
                    by_id[tool_call.id] = step
                    convo.steps.append(step)
            elif isinstance(message, ToolMessage) and message.call_id in by_id:
                _record(by_id[message.call_id], message.content)
        return convo

    @property
    def sender(self) -> str | None:
        match = _SENDER.search(self.instruction)
        return match.group(0) if match else None

    def last(self, name: str) -> _Step | None:
        return next((s for s in reversed(self.steps) if s.name == name), None)

    def called(self, name: str) -> bool:
        return self.last(name) is not None

    def answer(self) -> str | None:
        """What a person said after the run was handed to them."""
        asked = self.last("ask_human")
        if asked is not None and asked.ok and isinstance(asked.data, dict):
            return str(asked.data.get("answer", ""))
        return self.notes[-1] if self.notes else None


def _record(step: _Step, content: str) -> None:
    spotlit = _SPOTLIGHT.match(content)
    try:
        result = json.loads(spotlit.group(1) if spotlit else content)
    except ValueError:
        result = {"ok": False, "error_kind": "unreadable"}
    step.ok = bool(result.get("ok"))
    step.data = result.get("data")
    step.error_kind = result.get("error_kind")
    step.guidance = result.get("guidance")


# --- deciding -----------------------------------------------------------------------------------


def decide(request: ModelRequest) -> ModelResponse:
    """The next step for this conversation."""
    convo = _Conversation.read(request)
    if convo.email is None:
        return _operator_request(convo)
    return _EmailPlan(convo).next()


@dataclass(frozen=True)
class _Refund:
    invoice: str | None = None
    amount: float = 0.0
    refusal: str | None = None
    """Why it is not eligible (told to the customer)."""
    escalation: str | None = None
    """Why a person must decide."""


class _EmailPlan:
    def __init__(self, convo: _Conversation) -> None:
        assert convo.email is not None
        self.convo = convo
        self.email = convo.email
        self.sender = convo.sender
        self.triage: Triage = triage(self.email, sender=self.sender)
        lookup = convo.last("lookup_customer")
        data = lookup.data if lookup is not None and lookup.ok else None
        self.customer: dict[str, Any] | None = (
            data if isinstance(data, dict) and data.get("found") else None
        )

    # The order of the checks is the order of the work.
    def next(self) -> ModelResponse:  # noqa: C901 - a plan reads best as one list of steps
        convo, t = self.convo, self.triage
        answer = convo.answer()
        if answer is not None:
            return reply(f"A person took this over and answered: {answer}")
        if "autoreply" in t.intents:
            return reply("Automatic reply (out of office): nothing to do, no ticket filed.")
        if not convo.called("lookup_customer") and self.sender is not None:
            return call("lookup_customer", {"email": self.sender})
        if t.hostile:
            return self._hostile()
        # A question the articles may answer goes to them first, also when no product area
        # was recognised: the confidence check hands what they do not cover to a person.
        person = self._needs_person()
        if convo.knowledge and t.question is not None and (person is None or t.category == "other"):
            return self._answer_from_knowledge(t.question)
        if self.customer is not None and not convo.called("list_recent_tickets"):
            return call("list_recent_tickets", {"account_id": self.customer["account_id"]})
        if "resolved" in t.intents:
            return self._resolved()
        query = t.kb_query()
        if query is not None and not convo.called("search_kb"):
            return call("search_kb", {"query": query})
        if not convo.called("create_ticket"):
            return self._create_ticket(t.category, self._priority(), t.team, self._summary())
        ticket = self._ticket()
        if ticket is None:
            return self._ask("the ticket could not be filed", self._failure("create_ticket"))
        history = convo.last("list_recent_tickets")
        withheld = history is not None and history.error_kind == "blocked_by_policy"
        if withheld and not convo.called("add_note"):
            return call(
                "add_note",
                {
                    "ticket_id": ticket,
                    "body": "The account's ticket history was withheld: bosun flagged it "
                    "as a prompt injection. Check past tickets before acting on them.",
                },
            )
        reason = self._needs_person()
        refund = self._refund()
        reason = reason or refund.escalation
        if reason is not None:
            return self._ask(reason, f"Ticket {ticket} is filed with {t.team}.")
        to = t.forward_to or self.sender
        if to is None:
            return self._ask("no address to reply to", f"Ticket {ticket} is filed.")
        if not convo.called("draft_reply"):
            return call("draft_reply", self._reply(ticket, to, refund) | {"language": t.language})
        if refund.invoice is not None:
            refunded = convo.last("issue_refund")
            if refunded is None:
                return call(
                    "issue_refund",
                    {
                        "invoice_id": refund.invoice,
                        "amount_eur": refund.amount,
                        "reason": f"Customer request by email: {self.email.subject}"[:200]
                        or "Customer request by email",
                        "iban": t.iban or "",
                    },
                )
            if not refunded.ok:
                return self._ask("the refund was not issued", self._failure("issue_refund"))
        sent = convo.last("send_reply")
        if sent is None:
            return call("send_reply", self._reply(ticket, to, refund))
        if not sent.ok:
            return self._ask("the reply was not sent", self._failure("send_reply"))
        done = f"Ticket {ticket} ({t.category}, team {t.team}); reply sent to {to}."
        if refund.invoice is not None:
            done += f" Refund of EUR {refund.amount:.2f} on {refund.invoice} issued."
        return reply(done)

    # --- a question the help articles may answer ------------------------------------------

    def _answer_from_knowledge(self, question: str) -> ModelResponse:
        """Search the articles, file a ticket, draft the answer and end with it (the run's
        confidence check then decides whether it needs a person)."""
        convo, t = self.convo, self.triage
        if not convo.called("search_knowledge"):
            return call("search_knowledge", {"query": f"{self.email.subject} {question}"})
        found = convo.last("search_knowledge")
        data = found.data if found is not None and found.ok else None
        passages = data.get("passages", []) if isinstance(data, dict) else []
        answer = answer_from(question, passages, language=t.language, name=self._name(),
                             again=bool(convo.earlier))  # fmt: skip
        if not convo.called("create_ticket"):
            return self._create_ticket(t.category, "normal", t.team, self._summary())
        ticket = self._ticket()
        if ticket is not None and self.sender is not None and not convo.called("draft_reply"):
            subject = f"Re: {self.email.subject} [{ticket}]" if self.email.subject else ticket
            return call(
                "draft_reply",
                {"ticket_id": ticket, "to": self.sender, "subject": subject[:200],
                 "body": answer, "language": t.language},
            )  # fmt: skip
        return reply(answer)

    # --- pieces -------------------------------------------------------------------------

    def _hostile(self) -> ModelResponse:
        signals = ", ".join(self.triage.hostile)
        if not self.convo.called("create_ticket"):
            summary = f"Suspected prompt injection ({signals}) in '{self.email.subject}'"
            return self._create_ticket("security", "high", "trust-safety", summary)
        return self._ask(
            f"possible prompt injection in this email ({signals})",
            f"Ticket {self._ticket() or '(not filed)'} is with trust-safety; nothing was "
            "sent or refunded. Review it and decide whether to answer the sender.",
        )

    def _resolved(self) -> ModelResponse:
        history = self.convo.last("list_recent_tickets")
        tickets = history.data if history is not None and history.ok else None
        words = _words(self.email.subject)
        candidates = [x for x in tickets or () if x.get("status") in ("open", "pending")]
        # The open ticket the subject is about (most words in common), else the newest.
        best = max(candidates, key=lambda x: len(words & _words(x["summary"])), default=None)
        open_ticket = None if best is None else best["ticket_id"]
        if open_ticket is None:
            return reply("A thank-you note with no open ticket: nothing to do.")
        if not self.convo.called("add_note"):
            return call(
                "add_note",
                {
                    "ticket_id": open_ticket,
                    "body": f"Customer wrote that it is resolved: '{self.email.subject}'.",
                },
            )
        return reply(f"Noted on {open_ticket} that the customer reports it resolved.")

    def _create_ticket(
        self, category: str, priority: str, team: str, summary: str
    ) -> ModelResponse:
        return call(
            "create_ticket",
            {
                "category": category,
                "priority": priority,
                "team": team,
                "summary": summary,
                "account_id": self.customer["account_id"] if self.customer else "",
                "requester": self.sender or "",
            },
        )

    def _ticket(self) -> str | None:
        created = self.convo.last("create_ticket")
        if created is None or not created.ok:
            return None
        data = created.data if isinstance(created.data, dict) else {}
        # Under `bosun eval` side effects are recorded, not run: there is no ticket number.
        return str(data.get("ticket_id", "T-pending"))

    def _failure(self, tool: str) -> str:
        step = self.convo.last(tool)
        if step is None:
            return ""
        return f"{tool} came back {step.error_kind}: {step.guidance or ''}".strip()

    def _ask(self, reason: str, context: str) -> ModelResponse:
        question = f"Escalation: {reason}. {context} How should this email be handled?"
        response = call("ask_human", {"question": question})
        return response.model_copy(update={"text": f"Handing this to a person: {reason}."})

    def _summary(self) -> str:
        """The subject and the body's first two sentences."""
        body = " ".join(self.email.body.split())
        opening = " ".join(re.split(r"(?<=[.!?。])\s*", body, maxsplit=2)[:2]).strip()
        subject = self.email.subject or "(no subject)"
        return f"{subject}: {opening}"[:240] if opening else subject[:240].ljust(3, ".")

    def _priority(self) -> str:
        t = self.triage
        if "outage" in t.intents or ("urgent" in t.intents and t.category == "bug"):
            return "urgent"
        if "urgent" in t.intents or (self.customer is not None and self.customer["high_value"]):
            return "high"
        if t.category == "feature_request" or t.team == "sales":
            return "low"
        return "normal"

    def _needs_person(self) -> str | None:
        t, email, customer = self.triage, self.email, self.customer
        teams = {TEAM[c] for c in t.categories} - ({"billing"} if "refund" in t.intents else set())
        if self.sender is None:
            return "no readable sender address"
        if not email.body or email.body == "(empty body)":
            return "the message is empty"
        if "legal" in t.intents:
            return "the customer mentions legal action"
        if t.category == "privacy":
            return (
                "a data protection request: the privacy team must verify the requester and "
                "answer within 30 days"
            )
        if "cancellation" in t.intents and "upgrade" in t.intents:
            return "conflicting requests: cancel and upgrade in the same email"
        if len(teams) >= 3:
            return f"several unrelated requests in one email ({', '.join(t.categories)})"
        if t.category == "other" and "sales" not in t.intents:
            return "unclear request: no product area recognised"
        if {"2fa", "two-factor", "authenticator", "二段階"} & set(t.matched):
            return "a two-factor reset needs a person to verify the account owner's identity"
        if customer is None and t.category in ("refund", "cancellation", "account_access"):
            return f"{_article(t.category)} request from an address we do not know"
        if t.category == "cancellation" and customer is not None and customer["high_value"]:
            return "a high-value customer wants to cancel: their account manager should call"
        return None

    def _refund(self) -> _Refund:
        t, customer = self.triage, self.customer
        if "refund" not in t.intents or customer is None:
            return _Refund()
        if customer["plan"] == "free":
            return _Refund(refusal="Your account is on the free plan, which has no charges.")
        invoices = [i for i in customer.get("invoices", ()) if i["amount_eur"] > i["refunded_eur"]]
        if not invoices:
            return _Refund(refusal="There is no charge on your account left to refund.")
        invoice = invoices[0]
        sent, issued = self.email.date, invoice["issued"]
        if sent is not None and sent.date() - date.fromisoformat(issued) > REFUND_WINDOW:
            return _Refund(refusal=f"Invoice {invoice['invoice_id']} is dated {issued}.")
        left = round(invoice["amount_eur"] - invoice["refunded_eur"], 2)
        amount = t.amount_eur or left
        if amount > left:
            return _Refund(
                escalation=f"the customer asks for EUR {amount:.2f}, more than the EUR "
                f"{left:.2f} left on invoice {invoice['invoice_id']}"
            )
        return _Refund(invoice=invoice["invoice_id"], amount=amount)

    def _reply(self, ticket: str, to: str, refund: _Refund) -> dict[str, Any]:
        t = self.triage
        search = self.convo.last("search_kb")
        articles = search.data if search is not None and search.ok else None
        article = articles[0] if articles else None
        body = compose(
            language=t.language,
            name=self._name(),
            ticket=ticket,
            team=t.team,
            article=None if article is None else {k: article[k] for k in ("title", "url", "text")},
            engineering=t.team == "engineering",
            refund=None if refund.invoice is None else (refund.amount, refund.invoice),
            no_refund_reason=refund.refusal,
        )
        subject = f"Re: {self.email.subject} [{ticket}]" if self.email.subject else ticket
        return {"ticket_id": ticket, "to": to, "subject": subject[:200], "body": body}

    def _name(self) -> str:
        if self.customer is not None:
            return str(self.customer["name"])
        names = [name for name, _ in getaddresses([self.email.headers.get("From", "")]) if name]
        return names[0] if names else ""


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"\w{4,}", text.casefold())}


def _article(category: str) -> str:
    words = category.replace("_", " ")
    return f"an {words}" if words[0] in "aeiou" else f"a {words}"


def _operator_request(convo: _Conversation) -> ModelResponse:
    """A request typed by an operator (trusted text, no email): "Tell ACC-1003: ...".
    Looks the account up, files a ticket and sends the message to the address on file."""
    account = _ACCOUNT.search(convo.instruction)
    if account is None:
        return reply(
            "I process support emails. To message a customer, name the account "
            "(e.g. ACC-1001) and the message."
        )
    lookup = convo.last("lookup_customer")
    if lookup is None:
        return call("lookup_customer", {"account_id": account.group(0)})
    if not (lookup.ok and isinstance(lookup.data, dict) and lookup.data.get("found")):
        return reply(f"There is no account {account.group(0)}.")
    customer = lookup.data
    message = convo.instruction.partition(":")[2].strip() or convo.instruction
    created = convo.last("create_ticket")
    if created is None:
        return call(
            "create_ticket",
            {
                "category": "other",
                "priority": "normal",
                "team": "tier1",
                "summary": f"Message from support to {customer['account_id']}",
                "account_id": customer["account_id"],
            },
        )
    ticket = (created.data or {}).get("ticket_id", "T-pending") if created.ok else "T-pending"
    sent = convo.last("send_reply")
    if sent is None:
        return call(
            "send_reply",
            {
                "ticket_id": ticket,
                "to": customer["email"],
                "subject": f"A message from support [{ticket}]",
                "body": f"Hello {customer['name']},\n\n{message}\n\nBest regards,\nSupport",
            },
        )
    if not sent.ok:
        return reply(f"The message was not sent: {sent.guidance}")
    return reply(f"Sent to {customer['account_id']} on {ticket}.")
