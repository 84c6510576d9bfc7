"""`Gateway`: the security perimeter, wrapped around a `Runtime`.

```
submit:  authenticate -> authorize (runs:submit) -> rate limit -> check input -> screen
         -> estimate tokens -> Runtime.start(labelled parts, the principal's grants)
         (PII is masked by the runtime's `privacy` as the run is first written)
read:    authenticate -> authorize (runs:read) -> tenancy -> output guardrails
         -> placeholders resolved only for principals holding `pii:read`
decide:  authenticate -> authorize (approvals:decide) -> tenancy -> claim -> People
         (bosun.gateway.people: held calls, escalations, decisions -> Runtime)
```

Every refusal raises a `GatewayRefusal` before anything is stored. The gateway keeps no
state of its own: runs, labels and the vault live in the runtime's journal, so any number of
gateway processes can serve the same store.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from bosun.data.queue import RunQueue
from bosun.data.scores import ScoreRows
from bosun.data.store import RunRow, StepRow
from bosun.errors import Blocked, RunNotFound, RunStateConflict, UserError
from bosun.gateway.auth import (
    ADMIN,
    APPROVALS_DECIDE,
    RUNS_READ,
    RUNS_SUBMIT,
    ApiKeys,
    Principal,
)
from bosun.gateway.guardrails import Guardrail, GuardrailVerdict, OutputContext
from bosun.gateway.inputs import InputLimits, check_parts
from bosun.gateway.people import ESCALATED, Approval, People
from bosun.gateway.ratelimit import RateLimiter
from bosun.models.base import AssistantMessage, SystemMessage
from bosun.runtime.agent import Agent
from bosun.runtime.runtime import RunResult, Runtime
from bosun.runtime.state import RunState, RunStatus
from bosun.tools.privacy import reveal_placeholders
from bosun.trust import Content, ContentScreen, Trust

__all__ = ["PII_READ", "Approval", "Gateway", "GatewayResult", "ScreeningPolicy"]

logger = logging.getLogger(__name__)

PII_READ = "pii:read"
"""Scope to see PII placeholders in outputs resolved to the original values."""


@dataclass(frozen=True, kw_only=True)
class ScreeningPolicy:
    """What injection screening of a run's input leads to. Screening is a signal: taint
    gating holds whatever the screen misses."""

    user: Literal["allow", "untrust", "block"] = "untrust"
    """A user part flagged as an injection: kept, relabelled untrusted (its run is tainted
    from the start), or refused (422)."""
    untrusted: Literal["flag", "block"] = "flag"
    """An untrusted part flagged as an injection: recorded with the run, or refused."""


@dataclass(frozen=True, slots=True)
class GatewayResult:
    """A run as a principal may see it."""

    run: RunResult
    """The runtime's view: status, handoff, usage, calls waiting for approval."""
    output: str | None
    """The final answer after output guardrails; None when blocked or escalated."""
    row: RunRow
    """The stored run row as read for this result (tenant, timestamps, assignee)."""
    steps: list[StepRow]
    """The run's journal as read for this result, in the same read as `row`."""
    guardrail: GuardrailVerdict | None = None
    """The combined verdict of the output guardrails, when any ran."""

    @property
    def status(self) -> RunStatus:
        """The run's status."""
        return self.run.status

    @property
    def run_id(self) -> str:
        """The run."""
        return self.run.run_id


@dataclass(kw_only=True)
class Gateway:
    """Authenticates, authorizes, limits, screens and labels what reaches a `Runtime`, and
    checks what leaves it."""

    runtime: Runtime
    """Where runs go; give it the `privacy` (PII vault) and `screen` the runs should use."""
    keys: ApiKeys
    """API keys and principals."""
    limiter: RateLimiter | None = None
    """Request and token limits; None for none."""
    screen: ContentScreen | None = None
    """Injection screening of inputs; None to skip."""
    screening: ScreeningPolicy = field(default_factory=ScreeningPolicy)
    """What a flagged input leads to."""
    limits: InputLimits = field(default_factory=InputLimits)
    """Input size and shape limits."""
    guardrails: Guardrail | None = None
    """Output guardrails (a `Guardrails` composite for several)."""

    @property
    def agents(self) -> Mapping[str, Agent]:
        """The agents principals may run, by name: the runtime's."""
        return self.runtime.agents

    async def authenticate(self, api_key: str | None) -> Principal:
        """The principal behind an API key; `Unauthenticated` otherwise."""
        return await asyncio.to_thread(self.keys.authenticate, api_key or "")

    # --- submitting ---------------------------------------------------------------------------

    async def submit(
        self,
        principal: Principal,
        agent: str,
        input: str | Sequence[Content],
        *,
        idempotency_key: str | None = None,
        queued: bool = True,
        conversation: str | None = None,
        thread: str | None = None,
    ) -> str:
        """Start a run for `principal` and return its id (queued: a worker drives it; with
        ``queued=False`` the caller drives it at once). `thread` makes it a turn of that
        thread within the principal's tenant."""
        principal.require(RUNS_SUBMIT)
        target = self._agent(agent)
        if self.limiter is not None:
            await self.limiter.check_request(principal)
        parts = check_parts(input, limits=self.limits)
        parts, screening = self._screen(parts)
        estimate = sum(len(p.text) for p in parts) // 4 + 1
        if self.limiter is not None:
            await self.limiter.reserve_tokens(principal, estimate)
        note: dict[str, Any] = {"estimated_tokens": estimate}
        if principal.key_id is not None:
            note["key_id"] = principal.key_id
        if screening:
            note["screening"] = screening
        return await self.runtime.start(
            target,
            parts,
            grants=principal.grants_for(target.scopes),
            principal=principal.id,
            tenant=principal.tenant,
            idempotency_key=idempotency_key,
            gateway=note,
            queued=queued,
            conversation=conversation,
            thread=thread,
        )

    async def run(
        self,
        principal: Principal,
        agent: str,
        input: str | Sequence[Content],
        *,
        idempotency_key: str | None = None,
    ) -> GatewayResult:
        """Submit and drive the run in this process until it finishes or parks."""
        run_id = await self.submit(
            principal, agent, input, idempotency_key=idempotency_key, queued=False
        )
        await self.runtime.resume(run_id)
        return await self.result(principal, run_id)

    def _agent(self, name: str) -> Agent:
        try:
            return self.agents[name]
        except KeyError:
            raise UserError(f"no agent named {name[:100]!r}") from None

    def _screen(self, parts: list[Content]) -> tuple[list[Content], list[dict[str, Any]]]:
        """Screen every part; relabel or refuse per policy. Returns the parts to run and
        what the screen said about the flagged ones."""
        if self.screen is None:
            return parts, []
        kept: list[Content] = []
        findings: list[dict[str, Any]] = []
        for index, part in enumerate(parts):
            result = self.screen.screen(part.text)
            if result.verdict == "clean":
                kept.append(part)
                continue
            finding = {
                "part": index,
                "source": f"input:{part.source}",
                "trust": part.trust.value,
                "verdict": result.verdict,
                "score": round(float(result.score), 4),
                "signals": list(result.signals)[:10],
            }
            findings.append(finding)
            untrusted = part.trust is Trust.UNTRUSTED
            action = self.screening.untrusted if untrusted else self.screening.user
            if result.verdict == "injection" and action == "block":
                raise Blocked(
                    f"input part {index} ({part.source}) was refused: it looks like a prompt "
                    "injection",
                    reasons=tuple(result.signals),
                )
            if result.verdict == "injection" and action == "untrust":
                finding["relabelled"] = True
                part = Content(text=part.text, trust=Trust.UNTRUSTED, source=part.source)
            kept.append(part)
        return kept, findings

    # --- reading ------------------------------------------------------------------------------

    async def result(self, principal: Principal, run_id: str) -> GatewayResult:
        """The run as `principal` may see it: its tenant only, output through the guardrails,
        PII placeholders resolved only with `pii:read`."""
        principal.require(RUNS_READ)
        try:
            snapshot = await self.runtime.snapshot(run_id)
        except RunNotFound:
            raise RunNotFound(f"no run {run_id[:64]!r}") from None
        row, steps, state = snapshot.row, snapshot.steps, snapshot.state
        self._check_tenant(principal, row)
        run = RunResult.of(state)
        if run.status is not RunStatus.COMPLETED or run.output is None:
            return GatewayResult(run=run, output=None, row=row, steps=steps)
        output: str | None = run.output
        verdict = None
        if self.guardrails is not None:
            verdict = self.guardrails.check(run.output, OutputContext(sources=_sources(state)))
            # Audited once per run: clients poll, and the verdict on a finished run is fixed.
            if verdict.action != "allow" and not await self._audited(run_id, "output_guardrail"):
                await self.runtime.audit(
                    run_id,
                    "output_guardrail",
                    {"action": verdict.action, "reasons": list(verdict.reasons)},
                    actor=principal.id,
                )
            if verdict.action == "redact":
                output = verdict.text
            elif verdict.action in ("block", "escalate"):
                output = None
        if output is not None and principal.has(PII_READ):
            output = self._resolve(state, output)
        return GatewayResult(run=run, output=output, guardrail=verdict, row=row, steps=steps)

    async def text_check(self, run_id: str) -> Callable[[str], GuardrailVerdict] | None:
        """The output guardrails for text the run's model is writing now, checked against the
        run's sources as they stand (its input and tool results so far); None without
        guardrails. The caller has checked that the run may be read."""
        guardrails = self.guardrails
        if guardrails is None:
            return None
        context = OutputContext(sources=_sources(await self.runtime.state(run_id)))
        return lambda text: guardrails.check(text, context)

    def reveal(self, principal: Principal, state: RunState, text: str) -> str:
        """`text` from run `state` with its PII placeholders resolved, for a principal holding
        `pii:read`; unchanged for anyone else (a dashboard showing a run's content)."""
        return self._resolve(state, text) if principal.has(PII_READ) else text

    async def _audited(self, run_id: str, action: str) -> bool:
        rows = await asyncio.to_thread(self.runtime.store.audit_rows, run_id=run_id)
        return any(r["action"] == action for r in rows)

    def _resolve(self, state: RunState, text: str) -> str:
        privacy = self.runtime.privacy
        if privacy is None or not state.vault:
            return text
        entities = {e.entity for e in state.vault.values()}
        resolved: str = reveal_placeholders(
            text, state.vault, entities, lambda entry: privacy.reveal(state.run_id, entry)
        )
        return resolved

    async def _visible(self, principal: Principal, run_id: str) -> RunState:
        """The run's state if it is in the principal's tenant. Another tenant's run is
        reported as not found, so ids cannot be probed across tenants."""
        await self._row(principal, run_id)
        return await self.runtime.state(run_id)

    # --- people -------------------------------------------------------------------------------

    @property
    def people(self) -> People:
        """Held calls and escalations of the runtime's store, behind none of the checks."""
        return People(self.runtime)

    async def decide(
        self,
        principal: Principal,
        run_id: str,
        call_id: str,
        *,
        approved: bool,
        reason: str | None = None,
        arguments: dict[str, Any] | None = None,
        resume: bool = True,
    ) -> GatewayResult:
        """Approve or reject a held call as `principal` (recorded as the approver). The run
        resumes here, or with ``resume=False`` goes back to the queue for a worker."""
        principal.require(APPROVALS_DECIDE)
        await self._visible(principal, run_id)
        await self.people.decide(
            run_id,
            call_id,
            approved=approved,
            by=principal.id,
            reason=reason,
            arguments=arguments,
            resume=resume,
        )
        return await self.result(principal, run_id)

    async def hand_back(
        self, principal: Principal, run_id: str, note: str, *, resume: bool = True
    ) -> GatewayResult:
        """Answer an escalated or waiting run and let the agent continue with the note."""
        principal.require(APPROVALS_DECIDE)
        row = await self._row(principal, run_id)
        _check_assignee(row, principal)
        await self.people.hand_back(run_id, note, by=principal.id, resume=resume)
        return await self.result(principal, run_id)

    async def close(self, principal: Principal, run_id: str, note: str) -> GatewayResult:
        """Resolve an escalated run without the agent: the person's note is its outcome."""
        principal.require(APPROVALS_DECIDE)
        row = await self._row(principal, run_id)
        if row.status not in ESCALATED:
            raise RunStateConflict(f"run {run_id} is {row.status}, not escalated")
        _check_assignee(row, principal)
        await self.people.close(row, note, by=principal.id)
        return await self.result(principal, run_id)

    async def approvals(self, principal: Principal, *, limit: int = 50) -> list[Approval]:
        """Calls held for a decision in the principal's tenant, oldest run first."""
        principal.require(APPROVALS_DECIDE)
        return await self.people.approvals(tenant=principal.tenant, all_tenants=False, limit=limit)

    async def approval(self, principal: Principal, approval_id: str) -> Approval:
        """One held call, by the id `approvals` gave it."""
        principal.require(APPROVALS_DECIDE)
        run_id, _, _ = approval_id.partition(".")
        row = await self._row(principal, run_id)
        return await self.people.approval(approval_id, row=row)

    async def escalations(self, principal: Principal, *, limit: int = 50) -> list[RunRow]:
        """Runs waiting for a person in the principal's tenant, newest first."""
        principal.require(APPROVALS_DECIDE)
        return await self.people.escalations(
            tenant=principal.tenant, all_tenants=False, limit=limit
        )

    async def claim(self, principal: Principal, run_id: str) -> RunRow:
        """Take an escalated run: others see it claimed and cannot resolve it meanwhile."""
        principal.require(APPROVALS_DECIDE)
        await self._row(principal, run_id)
        store = self.runtime.store
        if not await asyncio.to_thread(store.assign, run_id, principal.id, statuses=ESCALATED):
            row = await asyncio.to_thread(store.get_run, run_id)
            holder = f"claimed by {row.assignee}" if row.assignee else row.status
            raise RunStateConflict(f"run {run_id} cannot be claimed: it is {holder}")
        await self.runtime.audit(run_id, "escalation_claimed", {}, actor=principal.id)
        return await asyncio.to_thread(store.get_run, run_id)

    # --- runs ---------------------------------------------------------------------------------

    async def list_runs(
        self,
        principal: Principal,
        *,
        status: str | None = None,
        agent: str | None = None,
        before: str | None = None,
        limit: int = 50,
    ) -> list[RunRow]:
        """The principal's tenant's runs, newest first; `before` pages (a run id)."""
        principal.require(RUNS_READ)
        return await asyncio.to_thread(
            self.runtime.store.list_runs,
            status=status,
            agent=agent,
            tenant=principal.tenant,
            all_tenants=False,
            before=before,
            limit=limit,
        )

    async def run_row(self, principal: Principal, run_id: str) -> RunRow:
        """The stored run row, if the principal may read the run (else not found)."""
        principal.require(RUNS_READ)
        return await self._row(principal, run_id)

    async def cancel(self, principal: Principal, run_id: str, *, lease_s: float = 30.0) -> bool:
        """Cancel a run. True when it is cancelled now; False when the worker driving it
        elsewhere was asked to and will at its next heartbeat."""
        principal.require(RUNS_SUBMIT)
        row = await self._row(principal, run_id)
        if RunStatus(row.status).terminal:
            raise RunStateConflict(f"run {run_id} has already {row.status}")
        runtime = self.runtime
        queue = RunQueue(runtime.store)
        leased = await asyncio.to_thread(queue.request_cancel, run_id, principal.id)
        if runtime.driving(run_id):  # an embedded worker drives it in this process
            await runtime.cancel(run_id, by=principal.id)
            return True
        if leased:
            return False
        owner = f"api:{principal.id}"[:100]
        if not await asyncio.to_thread(queue.claim_run, run_id, owner, lease_s=lease_s):
            return False  # a worker took it meanwhile: it sees the request when it claims
        try:
            await runtime.cancel(run_id, by=principal.id)
        finally:
            await asyncio.to_thread(queue.release, owner, run_id)
        return True

    async def feedback(
        self,
        principal: Principal,
        run_id: str,
        *,
        rating: int | None,
        correction: str | None = None,
        comment: str | None = None,
    ) -> int:
        """Store thumbs and corrections on a run (audited); returns the feedback's id."""
        principal.require(RUNS_READ)
        await self._row(principal, run_id)
        if rating is None and not correction and not comment:
            raise UserError("feedback needs a rating, a correction or a comment")
        feedback_id = await asyncio.to_thread(
            ScoreRows(self.runtime.store).add_feedback,
            run_id,
            principal=principal.id,
            rating=rating,
            correction=correction,
            comment=comment,
        )
        note = {"feedback_id": feedback_id, "rating": rating, "corrected": bool(correction)}
        await self.runtime.audit(run_id, "feedback", note, actor=principal.id)
        return feedback_id

    async def _row(self, principal: Principal, run_id: str) -> RunRow:
        """The run row if the principal's tenant owns it; else not found."""
        try:
            row = await asyncio.to_thread(self.runtime.store.get_run, run_id)
        except RunNotFound:
            raise RunNotFound(f"no run {run_id[:64]!r}") from None
        self._check_tenant(principal, row)
        return row

    @staticmethod
    def _check_tenant(principal: Principal, row: RunRow) -> None:
        """Another tenant's run is "not found", never "forbidden": ids cannot be probed."""
        if not principal.can_see(row.tenant):
            logger.warning("principal %s asked for run %s of another tenant", principal.id, row.id)
            raise RunNotFound(f"no run {row.id[:64]!r}")


def _check_assignee(row: RunRow, principal: Principal) -> None:
    if row.assignee is not None and row.assignee != principal.id and not principal.has(ADMIN):
        raise RunStateConflict(f"run {row.id} is claimed by {row.assignee}")


def _sources(state: RunState) -> tuple[str, ...]:
    """What an output may legitimately draw from: the input and every tool result (never the
    model's own words)."""
    return tuple(
        m.content
        for m in state.messages
        if not isinstance(m, SystemMessage | AssistantMessage) and m.content
    )
