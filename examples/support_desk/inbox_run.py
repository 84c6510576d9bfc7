"""Process a directory of ``.eml`` files through the real pipeline and tally the outcome.

```
.eml files -> email_input (trusted instruction + untrusted message)
           -> bosun.gateway.Gateway.submit (input checks, injection screening, the
              principal's grants; PII masked by the runtime's vault as the run is written)
           -> Runtime.resume (the agent loop: critic, taint gates, tools, journal, audit)
           -> helpdesk tables (tickets, notes, drafts; outbox and refunds only once approved)
```

`process_inbox` is what the tests and ``bosun demo`` run; `InboxReport` is what they print.
A message delivered twice (same Message-ID) is one run: the idempotency key is derived from
it as ``POST /v1/inbox`` derives it.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import bosun
from bosun.gateway.auth import ApiKeys, Principal, Roles
from bosun.gateway.gateway import Gateway
from bosun.gateway.injection import InjectionScreen
from bosun.tools.privacy import Privacy
from examples.support_desk.email_input import InboundEmail, MalformedEmail
from examples.support_desk.helpdesk import Helpdesk

__all__ = [
    "EmailOutcome",
    "InboxReport",
    "helpdesk_summary",
    "inbox_principal",
    "pipeline",
    "process_inbox",
]


@dataclass(frozen=True, kw_only=True)
class EmailOutcome:
    """One message's run, as it stands after processing."""

    name: str
    """The ``.eml`` file's stem."""
    run_id: str
    """The run."""
    status: str
    """completed, waiting_approval, waiting_human, escalated (or failed)."""
    seconds: float
    """Wall time from submission until the run stopped or parked."""
    waiting_for: tuple[str, ...] = ()
    """Tools of the calls held for approval."""
    reason: str | None = None
    """Why a person has it: the handoff's reason, or the question when the agent asked."""
    screening: tuple[str, ...] = ()
    """What injection screening said about the input parts it flagged."""
    refused: tuple[str, ...] = ()
    """Calls the taint gates refused (tool names)."""
    withheld: tuple[str, ...] = ()
    """Tool results withheld as injections (tool names)."""
    tokens: int = 0
    """Tokens over the run's model calls (estimated for the scripted model)."""
    cost_usd: str | None = None
    """The run's cost; None when unknown (the scripted model is not priced)."""


@dataclass(kw_only=True)
class InboxReport:
    """The outcome of one pass over an inbox."""

    outcomes: list[EmailOutcome] = field(default_factory=list)
    """Per message, in inbox order."""
    malformed: list[MalformedEmail] = field(default_factory=list)
    """Messages that could not be read (file, reason and raw bytes kept)."""
    seconds: float = 0.0
    """Wall time of the whole pass."""

    def by_status(self) -> Counter[str]:
        """How many runs ended in each status."""
        return Counter(o.status for o in self.outcomes)

    def latency_ms(self, quantile: float) -> float:
        """A quantile of per-message wall time (nearest rank)."""
        values = sorted(o.seconds for o in self.outcomes)
        if not values:
            return 0.0
        rank = min(max(round(quantile * len(values) + 0.5) - 1, 0), len(values) - 1)
        return values[rank] * 1000


def pipeline(agent: bosun.Agent, *, store: bosun.Store, privacy: Privacy | None = None) -> Gateway:
    """A gateway with bosun's injection screen (inputs, and untrusted tool output inside
    the loop) around a runtime over `store`; `privacy` is a PII vault
    (`bosun.gateway.vault.PiiVault`) or None. Close it with ``async with gateway.runtime``."""
    screen = InjectionScreen()
    runtime = bosun.Runtime(store=store, agents=[agent], privacy=privacy, screen=screen)
    return Gateway(
        runtime=runtime,
        keys=ApiKeys(store, roles=Roles.builtin()),
        screen=screen,
    )


def inbox_principal(agent: bosun.Agent, *, tenant: str = "support") -> Principal:
    """The principal inbox runs are submitted as: it may grant every scope the agent uses."""
    roles = Roles.builtin(tool_scopes=sorted(agent.scopes))
    return roles.principal(id="inbox", tenant=tenant, roles=["submitter"])


async def process_inbox(
    gateway: Gateway,
    agent: bosun.Agent,
    messages: Sequence[InboundEmail],
    *,
    principal: Principal | None = None,
    concurrency: int = 8,
    on_done: Callable[[EmailOutcome], None] | None = None,
) -> InboxReport:
    """Submit every message as a run of `agent` through `gateway` and drive it until it
    finishes or parks for a person. `on_done` sees each outcome as it lands (a progress
    bar)."""
    who = principal or inbox_principal(agent)
    gate = asyncio.Semaphore(max(concurrency, 1))
    runtime = gateway.runtime

    async def one(message: InboundEmail) -> EmailOutcome:
        async with gate:
            t0 = time.perf_counter()
            run_id = await gateway.submit(
                who,
                agent.name,
                message.parts(),
                idempotency_key=message.idempotency_key,
                queued=False,
            )
            result = await runtime.resume(run_id)
            seconds = time.perf_counter() - t0
            state = await runtime.state(run_id)
            outcome = _outcome(message.name, result, state, seconds)
        if on_done is not None:
            on_done(outcome)
        return outcome

    t0 = time.perf_counter()
    outcomes = await asyncio.gather(*(one(m) for m in messages))
    return InboxReport(outcomes=list(outcomes), seconds=time.perf_counter() - t0)


def _outcome(
    name: str, result: bosun.RunResult, state: bosun.RunState, seconds: float
) -> EmailOutcome:
    reason = None
    if result.handoff is not None:
        reason = result.handoff.pending_question or result.handoff.reason
        if result.status is bosun.RunStatus.ESCALATED:
            reason = result.handoff.reason
    refused = tuple(
        a.tool for a in state.actions if not a.ok and a.error_kind == "blocked_by_policy"
    )
    return EmailOutcome(
        name=name,
        run_id=result.run_id,
        status=result.status.value,
        seconds=seconds,
        waiting_for=tuple(c.name for c in result.waiting_for),
        reason=reason,
        screening=tuple(
            f"{i.get('source')}: {i.get('verdict')} ({i.get('score')})" for i in state.injections
        ),
        refused=tuple(t for t in refused if t != "list_recent_tickets"),
        withheld=tuple(t for t in refused if t == "list_recent_tickets"),
        tokens=result.usage.total_tokens,
        cost_usd=None if result.cost_usd is None else str(result.cost_usd),
    )


def helpdesk_summary(desk: Helpdesk) -> dict[str, Any]:
    """What the inbox did to the helpdesk: new tickets by category and team, notes, drafts,
    sent replies and refunds."""
    tickets = desk.new_tickets()
    return {
        "tickets": len(tickets),
        "by_category": dict(Counter(t["category"] for t in tickets).most_common()),
        "by_team": dict(Counter(t["team"] for t in tickets).most_common()),
        "notes": len(desk.rows("notes")),
        "drafts": len(desk.rows("drafts")),
        "sent": len(desk.rows("outbox")),
        "refunds": len(desk.rows("refunds")),
    }
