"""`Worker`: claims queued runs, drives them, keeps their leases alive, hands them back.

```
loop:       claim up to (concurrency - in flight) runs  -> drive each in its own task
            (a run claimed again journals ``run_reclaimed``; after max_attempts claims in a
            row that moved it on not at all it is given up on: failed, or escalated when
            its side effects may have happened)
heartbeat:  every lease/3 s renew the leases; a lost lease -> stop driving, write nothing;
            a requested cancel -> cancel the run (journaled by this worker)
sweep:      parked runs past their deadline -> reject / close / escalate further;
            webhooks due -> delivered
shutdown:   stop claiming; wait up to the grace period; interrupt what is left and release
            its leases (the runs go back to the queue; their journals say where they were)
```

A worker process that is killed simply stops heartbeating; other workers claim its runs when
the leases expire and resume them from their journals (`bosun.data.queue`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, ParamSpec, TypeVar

from bosun.config import ServiceSettings
from bosun.data.queue import Claim, RunQueue
from bosun.errors import JournalConflict, UserError
from bosun.runtime.runtime import Runtime
from bosun.runtime.state import RunStatus

if TYPE_CHECKING:
    from bosun.observe.export import TraceExporter
    from bosun.service.webhooks import WebhookDispatcher

__all__ = ["Worker", "worker_id"]

logger = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

APPROVAL_TIMEOUT = "system:approval-timeout"
RECLAIMED = "run_reclaimed"  # journaled when a run is claimed again, with the stalled streak
ESCALATION_TIMEOUT = "system:escalation-timeout"


def worker_id() -> str:
    """host:pid:random, unique per worker instance (a restarted process gets a new one)."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{secrets.token_hex(3)}"


class Worker:
    """Drives queued runs of the `runtime`'s agents. Run with ``await worker.serve(stop)``."""

    def __init__(
        self,
        runtime: Runtime,
        *,
        settings: ServiceSettings | None = None,
        owner: str | None = None,
        webhooks: WebhookDispatcher | None = None,
        tracer: TraceExporter | None = None,
        background: Sequence[Callable[[], Awaitable[object]]] = (),
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`background` jobs run at every sweep after the deadlines and webhooks (online
        evaluation, shadow runs): off every run's path, one failing never stops the rest."""
        self.runtime = runtime
        self.settings = settings or runtime.settings.service
        self.owner = owner or worker_id()
        self.queue = RunQueue(runtime.store, clock=clock)
        self.webhooks = webhooks
        self.tracer = tracer
        self.background = tuple(background)
        self._clock = clock
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._lost: set[str] = set()
        self._wake: asyncio.Event | None = None
        self._claiming = True
        self._pool: ThreadPoolExecutor | None = None
        self.driven = 0
        """Runs this worker drove to a stop (finished, parked, cancelled)."""

    @property
    def in_flight(self) -> frozenset[str]:
        """Runs this worker is driving now."""
        return frozenset(self._tasks)

    def notify(self) -> None:
        """New work may be queued: look now rather than at the next poll (same process)."""
        if self._wake is not None:
            self._wake.set()

    # --- the loops ----------------------------------------------------------------------------

    async def serve(self, stop: asyncio.Event) -> None:
        """Claim and drive runs until `stop` is set, then shut down gracefully."""
        self._wake = asyncio.Event()
        background = [
            asyncio.create_task(self._every(self.settings.lease_s / 3, self.heartbeat)),
            asyncio.create_task(self._every(self.settings.sweep_s, self.sweep)),
        ]
        stopping = asyncio.create_task(stop.wait())
        try:
            while not stop.is_set():
                try:
                    await self.claim()
                except Exception:  # the store blinked: keep driving what we hold, look again
                    logger.exception("worker %s: claim failed", self.owner)
                woken = asyncio.create_task(self._wake.wait())
                await asyncio.wait(
                    {woken, stopping},
                    timeout=self.settings.poll_s,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                woken.cancel()
                self._wake.clear()
            await self.shutdown()
        finally:
            stopping.cancel()
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            if self._pool is not None:
                self._pool.shutdown(wait=False)
                self._pool = None

    async def _every(self, period: float, job: Callable[[], Awaitable[object]]) -> None:
        while True:
            await asyncio.sleep(period)
            try:
                await job()
            except Exception:  # the store blinked: try again next period
                logger.exception("worker %s: %s failed", self.owner, job.__name__)

    async def claim(self) -> list[Claim]:
        """Claim runs for the free slots and start driving them."""
        free = self.settings.concurrency - len(self._tasks)
        if not self._claiming or free <= 0:
            return []
        claims = await self._queue(
            self.queue.claim,
            self.owner,
            limit=free,
            lease_s=self.settings.lease_s,
            agents=set(self.runtime.agents),
            agent_limits=self.settings.agent_concurrency or None,
        )
        # A run can come back to the worker already driving it, when a late heartbeat let its
        # lease lapse: the claim renewed the lease; one driver is enough.
        claims = [c for c in claims if c.run_id not in self._tasks]
        for claim in claims:
            self._lost.discard(claim.run_id)  # a heartbeat racing an earlier release
            self._tasks[claim.run_id] = asyncio.create_task(self._drive(claim))
        return claims

    async def _drive(self, claim: Claim) -> None:
        run_id = claim.run_id
        try:
            if claim.cancel_requested_by:
                await self.runtime.cancel(run_id, by=claim.cancel_requested_by)
            elif claim.attempts > 1 and await self._poisoned(claim):
                pass  # ended: the claims before this one died without moving the run on
            else:
                await self.runtime.resume(run_id)
            self.driven += 1
            if self.tracer is not None:  # the spans the run has finished, once each
                await self.tracer.export_async(run_id)
        except JournalConflict:  # another worker writes this run now
            logger.warning("worker %s lost run %s to another writer", self.owner, run_id)
            self._lost.add(run_id)
        except asyncio.CancelledError:
            pass  # lease lost, cancelled, or shutting down: the journal says where it stopped
        except Exception:  # the store failed, or a bug: the run goes back to the queue
            logger.exception("worker %s: driving run %s failed", self.owner, run_id)
        finally:
            try:
                if run_id in self._lost:
                    self._lost.discard(run_id)  # the lease is someone else's: leave it
                else:
                    await asyncio.shield(self._release(run_id))
            finally:
                # Only now: shutdown waits for the tasks in flight, releases included.
                del self._tasks[run_id]
                if self._wake is not None:
                    self._wake.set()

    async def _poisoned(self, claim: Claim) -> bool:
        """Journal that the run was claimed again, and give up on it once ``max_attempts``
        claims in a row ended without its journal moving on: a run that kills every worker
        at the same step. A claim that made progress before it was lost (its worker was
        killed, or its lease lapsed, for reasons of its own) does not count, so a healthy run
        caught in crashes is never given up on. A run given up on whose side effects may
        have happened is escalated to a person, never failed quietly."""
        run_id = claim.run_id
        journal = await asyncio.to_thread(self.runtime.store.journal, run_id)
        marks = [e for e in journal if e.kind == RECLAIMED]
        if marks:  # the last claim that journaled one; claims since then journaled nothing
            mark = json.loads(marks[-1].payload)
            if marks[-1] is journal[-1]:  # stalled since: that claim and those after it
                streak = int(mark["stalled"]) + claim.attempts - int(mark["attempt"])
            else:  # that claim moved the run on; the ones after it died before they could
                streak = claim.attempts - 1 - int(mark["attempt"])
        else:  # the first claim may have moved it on (anything past run_started); no other
            moved = any(e.kind != "run_started" for e in journal)
            streak = claim.attempts - 2 if moved else claim.attempts - 1
        if streak < self.settings.max_attempts:
            await self.runtime.note(
                run_id, RECLAIMED, {"attempt": claim.attempts, "stalled": streak}, by=self.owner
            )
            return False
        why = (
            f"gave up after {streak} claims in a row that made no progress: every worker that "
            "drove this run died or lost it at the same point"
        )
        state = await self.runtime.state(run_id)
        agent = self.runtime.agents.get(state.agent)
        effecting = {t.name for t in agent.tools if t.policy.side_effect} if agent else set()
        if state.started or any(a.tool in effecting for a in state.actions):
            await self.runtime.escalate(
                run_id,
                f"{why}; side effects may already have happened",
                by=self.owner,
                audit="run_abandoned",
                question="Check which of its actions took effect, then finish it by hand.",
            )
        else:
            await self.runtime.finish(
                run_id, RunStatus.FAILED, by=self.owner, audit="run_abandoned", error=why
            )
        return True

    async def _queue(self, call: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a queue operation on the worker's own threads: sync tools and store reads fill
        the default pool, and a heartbeat queued behind them would let the leases lapse."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="bosun-lease")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, functools.partial(call, *args, **kwargs))

    async def _release(self, run_id: str) -> None:
        with contextlib.suppress(Exception):  # an unreleased lease expires on its own
            await self._queue(self.queue.release, self.owner, run_id)

    async def heartbeat(self) -> None:
        """Renew leases; stop runs whose lease was lost; cancel runs someone cancelled."""
        if not self._tasks:
            return
        held = dict(self._tasks)
        beat = await self._queue(
            self.queue.heartbeat, self.owner, set(held), lease_s=self.settings.lease_s
        )

        def still_driving(run_id: str) -> bool:
            # A run whose task ended meanwhile (its lease released) reads as lost: leave it.
            return self._tasks.get(run_id) is held[run_id]

        for run_id in filter(still_driving, beat.lost):
            logger.warning("worker %s lost the lease on run %s", self.owner, run_id)
            self._lost.add(run_id)
            await self.runtime.abandon(run_id)
        for run_id, by in beat.cancels.items():
            if still_driving(run_id):
                await self.runtime.cancel(run_id, by=by)

    async def shutdown(self) -> None:
        """Stop claiming; let in-flight runs finish within the grace period; interrupt and
        release the rest (they go back to the queue and resume elsewhere)."""
        self._claiming = False
        if self._tasks:
            _, pending = await asyncio.wait(
                set(self._tasks.values()), timeout=self.settings.shutdown_grace_s
            )
            for run_id in list(self._tasks):
                await self.runtime.abandon(run_id)
            if pending:
                await asyncio.wait(pending, timeout=5)

    # --- deadlines and webhooks --------------------------------------------------------------

    async def sweep(self) -> None:
        """Apply approval and escalation deadlines; deliver webhooks that are due."""
        s = self.settings
        now = self._clock()
        if s.approval_timeout_s is not None:
            for run_id in await self._queue(
                self.queue.parked_since, "waiting_approval", now - s.approval_timeout_s
            ):
                await self._on_deadline(run_id, "approval", s.on_approval_timeout)
        if s.escalation_timeout_s is not None:
            for status in ("escalated", "waiting_human"):
                for run_id in await self._queue(
                    self.queue.parked_since, status, now - s.escalation_timeout_s
                ):
                    await self._on_deadline(run_id, "escalation", s.on_escalation_timeout)
        if self.webhooks is not None:
            await self.webhooks.enqueue_due()
            await self.webhooks.deliver_due()
        for job in self.background:
            try:
                await job()
            except Exception:
                logger.exception("worker %s: background job %r failed", self.owner, job)

    async def _on_deadline(self, run_id: str, what: str, policy: str) -> None:
        # Take the run's lease for the decision, so two workers sweeping at once act once.
        taken = await self._queue(
            self.queue.claim_run, run_id, self.owner, lease_s=self.settings.lease_s
        )
        if not taken:
            return
        rt = self.runtime
        try:
            state = await rt.state(run_id)
            if not state.status.parked:
                return
            by = APPROVAL_TIMEOUT if what == "approval" else ESCALATION_TIMEOUT
            if policy == "reject" and state.awaiting_approval:
                call_id = next(iter(state.awaiting_approval))
                reason = "no decision before the approval deadline"
                await rt.decide(
                    run_id, call_id, approved=False, decided_by=by, reason=reason, resume=False
                )
            elif policy == "close":
                await rt.finish(
                    run_id,
                    RunStatus.CANCELLED,
                    by=by,
                    audit=f"{what}_timeout",
                    error=f"closed: nobody answered the {what} before its deadline",
                )
            else:  # escalate further: journaled and audited, webhooks fire again, timer restarts
                journal = await asyncio.to_thread(rt.store.journal, run_id)
                level = 1 + sum(1 for step in journal if step.kind == f"{what}_timeout")
                await rt.note(
                    run_id, f"{what}_timeout", {"policy": "escalate", "level": level}, by=by
                )
        except UserError:
            logger.info("run %s changed while its %s deadline was applied", run_id, what)
        finally:
            await self._release(run_id)
