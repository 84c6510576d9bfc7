"""`TemporalEngine`: ``bosun worker --engine temporal``. One process runs a Temporal worker
(bosun's workflow and its step activities) and a `Dispatcher` (queued runs -> workflows).

```
connect     Client.connect(address): unreachable -> ConfigError naming the address
serve       temporalio Worker: RunWorkflow + RunSteps (max concurrent steps = concurrency)
            Dispatcher.serve: claims queued runs, signal-with-start; deadlines, webhooks
stop        the dispatcher stops claiming; the Temporal worker finishes the steps in flight
            within shutdown_grace_s, then cancels the rest (retried on another worker)
```
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from datetime import timedelta

from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner
from temporalio.worker import Worker as TemporalWorker

from bosun.config import Settings, TemporalSettings
from bosun.errors import ConfigError
from bosun.runtime.runtime import Runtime
from bosun.service.temporal.activities import RunSteps
from bosun.service.temporal.dispatch import Dispatcher
from bosun.service.temporal.workflow import RunWorkflow
from bosun.service.worker import Worker, worker_id

__all__ = ["TemporalEngine", "connect"]

_CONNECT_TIMEOUT_S = 10.0
_STICKY_S = 10.0
"""Temporal's default wait for a workflow's task on the worker that has it cached."""


async def connect(settings: TemporalSettings, *, timeout_s: float = _CONNECT_TIMEOUT_S) -> Client:
    """A client of the Temporal frontend at ``settings.address``; a `ConfigError` naming the
    address and the cause when it does not answer within `timeout_s`."""
    address = settings.address
    try:
        return await asyncio.wait_for(
            Client.connect(address, namespace=settings.namespace), timeout=timeout_s
        )
    except TimeoutError:
        cause = f"no answer within {timeout_s:g} s"
    except Exception as exc:  # the SDK raises RuntimeError with the transport's debug text
        text = " ".join(str(exc).split())
        found = re.search(r'(?:message|error): "([^"]+)"', text)
        cause = found.group(1).lower() if found else text[:300] or type(exc).__name__
    raise ConfigError(
        f"cannot reach Temporal at {address} ({cause}): start it, or pass --temporal-address "
        "HOST:PORT (or set temporal.address)"
    )


class TemporalEngine:
    """Drives the runs of `runtime`'s agents as Temporal workflows. Build with `connect`'s
    client; run with ``await engine.serve(stop)``."""

    def __init__(
        self,
        runtime: Runtime,
        client: Client,
        *,
        settings: Settings,
        worker: Worker | None = None,
    ) -> None:
        """`worker` is the queue worker `compose` built (its webhooks, trace exporter and
        background jobs are kept: the dispatcher sweeps as it would)."""
        self.runtime = runtime
        self.client = client
        self.settings = settings
        service = settings.service
        self.owner = f"temporal:{worker_id()}"
        self.steps = RunSteps(
            runtime,
            settings=service,
            owner=self.owner,
            tracer=None if worker is None else worker.tracer,
        )
        self.dispatcher = Dispatcher(
            runtime,
            client=client,
            temporal=settings.temporal,
            settings=service,
            webhooks=None if worker is None else worker.webhooks,
            background=() if worker is None else worker.background,
        )

    def temporal_worker(self) -> TemporalWorker:
        """The Temporal worker of this engine (workflow and step activities)."""
        service = self.settings.service
        return TemporalWorker(
            self.client,
            task_queue=self.settings.temporal.task_queue,
            workflows=[RunWorkflow],
            activities=self.steps.activities(),
            max_concurrent_activities=service.concurrency,
            # The workflow is a short deterministic loop that only schedules activities and
            # waits; the sandbox would re-import its modules for every run.
            workflow_runner=UnsandboxedWorkflowRunner(),
            graceful_shutdown_timeout=timedelta(seconds=service.shutdown_grace_s),
            identity=self.owner,
            # A killed worker's workflows wait this long on its private (sticky) queue before
            # any worker may take their next task: no longer than a lease, as on the queue.
            sticky_queue_schedule_to_start_timeout=timedelta(
                seconds=min(service.lease_s, _STICKY_S)
            ),
        )

    async def serve(self, stop: asyncio.Event) -> None:
        """Run the Temporal worker and the dispatcher until `stop` is set."""
        worker = self.temporal_worker()
        running = asyncio.create_task(worker.run())
        dispatching = asyncio.create_task(self.dispatcher.serve(stop))
        try:
            done, _ = await asyncio.wait(
                {running, dispatching}, return_when=asyncio.FIRST_COMPLETED
            )
            if running in done:  # the Temporal worker stopped on its own: a fatal error
                stop.set()
                await dispatching
                running.result()
        finally:
            stop.set()
            with contextlib.suppress(asyncio.CancelledError):
                await dispatching
            if not running.done():
                await worker.shutdown()
                with contextlib.suppress(Exception):  # shutting down: what is left is logged
                    await running
            self.steps.close()

    @property
    def stopped(self) -> int:
        """Runs whose steps here finished them or handed them to a person."""
        return self.steps.stopped
