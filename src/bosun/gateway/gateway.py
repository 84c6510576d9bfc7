"""`Gateway`: the security perimeter, wrapped around a `Runtime`.

```
submit:  authenticate -> authorize (runs:submit) -> rate limit -> check input -> screen
         -> estimate tokens -> Runtime.start(labelled parts, the principal's grants)
         (PII is masked by the runtime's `privacy` as the run is first written)
read:    authenticate -> authorize (runs:read) -> tenancy -> output guardrails
         -> placeholders resolved only for principals holding `pii:read`
decide:  authenticate -> authorize (approvals:decide) -> tenancy -> Runtime.decide
```

Every refusal raises a `GatewayRefusal` before anything is stored. The gateway keeps no
state of its own: runs, labels and the vault live in the runtime's journal, so any number of
gateway processes can serve the same store.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from bosun.errors import Blocked, RunNotFound, UserError
from bosun.gateway.auth import APPROVALS_DECIDE, RUNS_READ, RUNS_SUBMIT, ApiKeys, Principal
from bosun.gateway.guardrails import Guardrail, GuardrailVerdict, OutputContext
from bosun.gateway.inputs import InputLimits, check_parts
from bosun.gateway.ratelimit import RateLimiter
from bosun.models.base import AssistantMessage, SystemMessage, Trust
from bosun.runtime.agent import Agent
from bosun.runtime.runtime import RunResult, Runtime
from bosun.runtime.state import RunState, RunStatus
from bosun.runtime.trust import Content, ContentScreen
from bosun.tools.privacy import reveal_placeholders

__all__ = ["PII_READ", "Gateway", "GatewayResult", "ScreeningPolicy"]

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
    agents: Mapping[str, Agent]
    """The agents principals may run, by name."""
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

    def __post_init__(self) -> None:
        for agent in self.agents.values():
            self.runtime.register(agent)

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
    ) -> str:
        """Start a run for `principal` and return its id (queued; a worker drives it)."""
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
        run_id = await self.submit(principal, agent, input, idempotency_key=idempotency_key)
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
        state = await self._visible(principal, run_id)
        run = RunResult.of(state)
        if run.status is not RunStatus.COMPLETED or run.output is None:
            return GatewayResult(run=run, output=None)
        output: str | None = run.output
        verdict = None
        if self.guardrails is not None:
            verdict = self.guardrails.check(run.output, OutputContext(sources=_sources(state)))
            if verdict.action != "allow":
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
        return GatewayResult(run=run, output=output, guardrail=verdict)

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
        try:
            row = await asyncio.to_thread(self.runtime.store.get_run, run_id)
        except RunNotFound:
            raise RunNotFound(f"no run {run_id[:64]!r}") from None
        if not principal.can_see(row.tenant):
            logger.warning("principal %s asked for run %s of another tenant", principal.id, run_id)
            raise RunNotFound(f"no run {run_id[:64]!r}")
        return await self.runtime.state(run_id)

    # --- people -------------------------------------------------------------------------------

    async def decide(
        self,
        principal: Principal,
        run_id: str,
        call_id: str,
        *,
        approved: bool,
        reason: str | None = None,
        arguments: dict[str, Any] | None = None,
    ) -> GatewayResult:
        """Approve or reject a held call as `principal` (recorded as the approver)."""
        principal.require(APPROVALS_DECIDE)
        await self._visible(principal, run_id)
        await self.runtime.decide(
            run_id,
            call_id,
            approved=approved,
            decided_by=principal.id,
            reason=reason,
            arguments=arguments,
        )
        return await self.result(principal, run_id)

    async def hand_back(self, principal: Principal, run_id: str, note: str) -> GatewayResult:
        """Answer an escalated or waiting run and let the agent continue."""
        principal.require(APPROVALS_DECIDE)
        await self._visible(principal, run_id)
        await self.runtime.hand_back(run_id, note, by=principal.id)
        return await self.result(principal, run_id)


def _sources(state: RunState) -> tuple[str, ...]:
    """What an output may legitimately draw from: the input and every tool result (never the
    model's own words)."""
    return tuple(
        m.content
        for m in state.messages
        if not isinstance(m, SystemMessage | AssistantMessage) and m.content
    )
