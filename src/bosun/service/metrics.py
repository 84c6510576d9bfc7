"""Prometheus metrics of the service: HTTP traffic, and the queue read from the store.

Counts that live in the store (runs by status, queue depth, approvals pending) are read when
Prometheus scrapes, so every API process reports the same numbers and none keeps counters
that a restart would lose. Each app has its own registry (tests build many apps).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator

from fastapi import FastAPI, Request, Response
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from bosun.data.queue import RunQueue
from bosun.runtime.state import RunStatus

__all__ = ["ServiceMetrics"]


class _StoreCollector(Collector):
    def __init__(self, queue: RunQueue) -> None:
        self.queue = queue

    def collect(self) -> Iterator[GaugeMetricFamily]:
        counts = self.queue.counts()
        runs = GaugeMetricFamily("bosun_runs", "Runs in the store by status", labels=["status"])
        for status in RunStatus:
            runs.add_metric([status.value], counts.get(status.value, 0))
        yield runs
        yield GaugeMetricFamily(
            "bosun_queue_depth",
            "Runs a worker could claim now (queued, or leases expired)",
            value=self.queue.depth(),
        )
        yield GaugeMetricFamily(
            "bosun_approvals_pending",
            "Runs waiting for an approval decision",
            value=counts.get(RunStatus.WAITING_APPROVAL.value, 0),
        )
        yield GaugeMetricFamily(
            "bosun_escalations_open",
            "Runs waiting for a person",
            value=counts.get(RunStatus.ESCALATED.value, 0)
            + counts.get(RunStatus.WAITING_HUMAN.value, 0),
        )


class ServiceMetrics:
    """The service's metrics registry."""

    def __init__(self, queue: RunQueue, *, registry: CollectorRegistry | None = None) -> None:
        """`registry`: add to it (the runtime's `RunMetrics` registry) rather than a new one."""
        self.registry = registry or CollectorRegistry()
        self.registry.register(_StoreCollector(queue))
        self.requests = Counter(
            "bosun_http_requests",
            "HTTP requests by route, method and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "bosun_http_request_seconds",
            "HTTP request latency by route",
            ["route", "method"],
            registry=self.registry,
        )

    def instrument(self, app: FastAPI) -> None:
        """Count and time every request by its route template (never the raw path, whose
        ids would make unbounded label values)."""

        @app.middleware("http")
        async def measure(
            request: Request, call_next: Callable[[Request], Awaitable[Response]]
        ) -> Response:
            start = time.perf_counter()
            status = 500
            try:
                response = await call_next(request)
                status = response.status_code
                return response
            finally:
                # The router leaves the matched route in the scope.
                route = getattr(request.scope.get("route"), "path", "unmatched")
                self.latency.labels(route, request.method).observe(time.perf_counter() - start)
                self.requests.labels(route, request.method, str(status)).inc()

    async def render(self) -> tuple[bytes, str]:
        """The exposition text (the store collector queries in a thread)."""
        body = await asyncio.to_thread(generate_latest, self.registry)
        return body, CONTENT_TYPE_LATEST
