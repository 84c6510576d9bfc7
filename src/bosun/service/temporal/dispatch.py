"""`Dispatcher`: hands queued runs to Temporal, one workflow per run.

```
claim queued runs (lease: "temporal:dispatcher", marked running)   RunQueue.claim
signal-with-start workflow id = run id: start it, or wake it        WAKE
  ok     -> let go of the lease; the run is Temporal's ("running", no lease)
  failed -> let go and queue the run again: the next pass tries again (Temporal down)
sweep: deadlines, webhooks, background jobs                          as the queue's Worker
       runs cancelled while parked -> WAKE (their workflows close)
```

Why a dispatcher rather than API processes starting workflows: the API, the gateway, the
dashboard and ``bosun approvals`` write runs and decisions to the store as they always do,
whichever engine drives the runs, and never need Temporal to be up to accept work. A
decision is a journal entry first (audited, raced safely on the journal's key) and then a
``queued`` run; the wake signal only tells the run's workflow to read its journal again. A
signal that cannot be sent leaves the run queued, so nothing is lost while Temporal is down.
Signal-with-start on the run id makes a repeated dispatch a second wake, never a second
workflow.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

from temporalio.client import Client

from bosun.config import ServiceSettings, TemporalSettings
from bosun.data.queue import Claim
from bosun.runtime.runtime import Runtime
from bosun.service.temporal.activities import DISPATCHER
from bosun.service.temporal.messages import RUN_WORKFLOW, WAKE, RunPlan
from bosun.service.worker import Worker

if TYPE_CHECKING:
    from bosun.service.webhooks import WebhookDispatcher

__all__ = ["Dispatcher"]

logger = logging.getLogger(__name__)

_BATCH = 200
"""Runs claimed per pass; a full batch is followed by another pass at once."""


class Dispatcher(Worker):
    """A `Worker` whose claimed runs go to Temporal instead of being driven here. It keeps
    the queue worker's sweep: approval and escalation deadlines, webhooks, background jobs."""

    def __init__(
        self,
        runtime: Runtime,
        *,
        client: Client,
        temporal: TemporalSettings,
        settings: ServiceSettings | None = None,
        webhooks: WebhookDispatcher | None = None,
        background: Sequence[Callable[[], Awaitable[object]]] = (),
    ) -> None:
        super().__init__(runtime, settings=settings, webhooks=webhooks, background=background)
        self.client = client
        self.temporal = temporal
        self.dispatched = 0
        """Wakes sent (a run is woken once per submission, decision or hand-back)."""
        self._down = False
        # Cancels before this process started are left to the workflows' own rechecks.
        self._cancels_seen = self._clock()

    async def claim(self) -> list[Claim]:
        """Claim queued runs and start or wake their workflows."""
        if not self._claiming:
            return []
        claims = await self._queue(
            self.queue.claim,
            DISPATCHER,
            limit=_BATCH,
            lease_s=self.settings.lease_s,
            agents=set(self.runtime.agents),
            running=True,
        )
        if claims:
            sent = await asyncio.gather(*(self._dispatch(c.run_id) for c in claims))
            self._reachable(all(sent), sum(not ok for ok in sent))
            if len(claims) == _BATCH and all(sent):
                self.notify()  # more may be waiting
        return claims

    async def sweep(self) -> None:
        """The queue worker's sweep, then: wake the workflows of runs cancelled while they
        waited for a person (the API cancels such a run in the store; nothing queues it)."""
        await super().sweep()
        cancelled = await self._queue(self.queue.cancelled_since, self._cancels_seen)
        for run_id, _ in cancelled:
            # A workflow already closed (the run was cancelled mid-step) refuses the
            # signal: nothing to do.
            with contextlib.suppress(Exception):
                await self.client.get_workflow_handle(run_id).signal(WAKE)
        if cancelled:
            # Strictly after the last one seen: a cancel written in the same instant as it
            # but read later is rare, and the workflow's own recheck covers it.
            self._cancels_seen = max(t for _, t in cancelled) + 1e-6

    def plan(self, run_id: str) -> RunPlan:
        """The workflow input for a run, from this worker's settings."""
        s = self.settings
        return RunPlan(
            run_id=run_id,
            heartbeat_s=s.lease_s,
            step_timeout_s=self.temporal.step_timeout_s,
            retry_max_s=s.lease_s,
            recheck_parked_s=self.temporal.recheck_parked_s,
        )

    async def _dispatch(self, run_id: str) -> bool:
        try:
            await self.client.start_workflow(
                RUN_WORKFLOW,
                self.plan(run_id),
                id=run_id,
                task_queue=self.temporal.task_queue,
                start_signal=WAKE,
            )
        except Exception:
            if not self._down:
                logger.warning("could not hand run %s to Temporal", run_id, exc_info=True)
            with contextlib.suppress(Exception):  # an unreleased lease expires on its own
                await self._queue(self.queue.release, DISPATCHER, run_id, requeue=True)
            return False
        self.dispatched += 1
        with contextlib.suppress(Exception):
            await self._queue(self.queue.release, DISPATCHER, run_id, requeue=False)
        return True

    def _reachable(self, ok: bool, failed: int) -> None:
        if ok and self._down:
            logger.warning("Temporal answers again: queued runs are handed over")
        elif not ok and not self._down:
            logger.error(
                "Temporal at %s does not answer: %d runs stay queued until it does",
                self.temporal.address,
                failed,
            )
        self._down = not ok
