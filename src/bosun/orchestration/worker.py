"""`PipelineWorker`: claims queued pipelines through leases, drives them, hands them back.

```
loop:       claim up to (concurrency - in flight) pipelines -> drive each in its own task
heartbeat:  every lease/3 s renew the leases; a lost lease -> stop driving, write nothing
shutdown:   stop claiming; wait up to the grace period; interrupt and release the rest
```

The same shape as the run `Worker` (`bosun.service.worker`), over the pipelines table: a
worker process that dies stops heartbeating, its leases expire, and another worker claims
its pipelines and resumes them from their journals. Finished stages are read back; the run
of an agent stage that was in flight is resumed where its own journal ends (in-process runs
are never claimed by run workers, so only the pipeline's driver resumes them); a function
stage in flight runs again with the same `StageContext.idempotency_key`. The journal's
(pipeline, seq) key fences a driver that lost its lease without noticing yet.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from bosun.config import ServiceSettings
from bosun.data.pipelines import PipelineClaim
from bosun.errors import JournalConflict
from bosun.orchestration.runner import Pipelines

__all__ = ["PipelineWorker"]

logger = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")


class PipelineWorker:
    """Drives queued pipelines of `pipelines`. Run with ``await worker.serve(stop)``."""

    def __init__(
        self,
        pipelines: Pipelines,
        *,
        owner: str,
        settings: ServiceSettings | None = None,
    ) -> None:
        """`settings` supplies lease_s, poll_s, concurrency, max_attempts and
        shutdown_grace_s, as for the run worker."""
        self.pipelines = pipelines
        self.owner = owner
        self.settings = settings or pipelines.runtime.settings.service
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._lost: set[str] = set()
        self._claiming = True
        self._pool: ThreadPoolExecutor | None = None
        self.driven = 0
        """Pipelines this worker drove to a stop (finished or escalated)."""

    async def serve(self, stop: asyncio.Event) -> None:
        """Claim and drive pipelines until `stop` is set, then shut down gracefully."""
        beat = asyncio.create_task(self._heartbeats())
        try:
            while not stop.is_set():
                try:
                    await self.claim()
                except Exception:  # the store blinked: keep what we hold, look again
                    logger.exception("pipeline worker %s: claim failed", self.owner)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.settings.poll_s)
            await self.shutdown()
        finally:
            beat.cancel()
            await asyncio.gather(beat, return_exceptions=True)
            if self._pool is not None:
                self._pool.shutdown(wait=False)

    async def claim(self) -> list[PipelineClaim]:
        """Claim pipelines for the free slots and start driving them."""
        free = self.settings.concurrency - len(self._tasks)
        if not self._claiming or free <= 0:
            return []
        rows = self.pipelines.rows
        claims = await self._queue(
            rows.claim,
            self.owner,
            limit=free,
            lease_s=self.settings.lease_s,
            names=set(self.pipelines.pipelines),
        )
        claims = [c for c in claims if c.pipeline_id not in self._tasks]
        for claim in claims:
            self._lost.discard(claim.pipeline_id)
            self._tasks[claim.pipeline_id] = asyncio.create_task(self._drive(claim))
        return claims

    async def _drive(self, claim: PipelineClaim) -> None:
        pipeline_id = claim.pipeline_id
        try:
            if claim.attempts > self.settings.max_attempts:
                logger.error(
                    "pipeline %s claimed %d times: every worker that drove it died; left for a "
                    "person",
                    pipeline_id,
                    claim.attempts,
                )
            else:
                await self.pipelines.resume(pipeline_id)
                self.driven += 1
        except JournalConflict:
            logger.warning("pipeline worker %s lost %s to another writer", self.owner, pipeline_id)
            self._lost.add(pipeline_id)
        except asyncio.CancelledError:
            pass  # lease lost or shutting down: the journal says where it stopped
        except Exception:
            logger.exception("pipeline worker %s: driving %s failed", self.owner, pipeline_id)
        finally:
            try:
                if pipeline_id in self._lost:
                    self._lost.discard(pipeline_id)
                else:
                    with contextlib.suppress(Exception):  # an unreleased lease expires
                        await asyncio.shield(
                            self._queue(self.pipelines.rows.release, self.owner, pipeline_id)
                        )
            finally:
                del self._tasks[pipeline_id]

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(self.settings.lease_s / 3)
            try:
                await self.heartbeat()
            except Exception:  # the store blinked: try again next period
                logger.exception("pipeline worker %s: heartbeat failed", self.owner)

    async def heartbeat(self) -> None:
        """Renew leases; stop driving the pipelines whose lease was lost."""
        if not self._tasks:
            return
        held = dict(self._tasks)
        lost = await self._queue(
            self.pipelines.rows.heartbeat, self.owner, set(held), lease_s=self.settings.lease_s
        )
        for pipeline_id in lost:
            if self._tasks.get(pipeline_id) is held[pipeline_id]:
                logger.warning("pipeline worker %s lost the lease on %s", self.owner, pipeline_id)
                self._lost.add(pipeline_id)
                await self.pipelines.abandon(pipeline_id)

    async def shutdown(self) -> None:
        """Stop claiming; let pipelines in flight finish within the grace period; interrupt
        and release the rest."""
        self._claiming = False
        if self._tasks:
            _, pending = await asyncio.wait(
                set(self._tasks.values()), timeout=self.settings.shutdown_grace_s
            )
            for pipeline_id in list(self._tasks):
                await self.pipelines.abandon(pipeline_id)
            if pending:
                await asyncio.wait(pending, timeout=5)

    async def _queue(self, call: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        # Lease operations on the worker's own threads, so heartbeats never queue behind
        # stage work in the default pool and let leases lapse.
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="bosun-plead")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, functools.partial(call, *args, **kwargs))
