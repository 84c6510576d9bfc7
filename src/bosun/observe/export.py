"""Sending runs' traces to an OpenTelemetry backend (OTLP over HTTP, or any SDK exporter).

A trace is derived from the journal after the fact (`bosun.observe.tracing`), so export is not
on the hot path either: the worker calls `TraceExporter.export` when it stops driving a run,
and the spans go out with the times and ids the journal implies. Only finished spans are
sent: a run parked for a person sends what it has done so far, and its root span (and the
wait) once the run ends.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Mapping

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

from bosun.data.store import Store
from bosun.observe.tracing import Span, Trace, trace_of

__all__ = ["TraceExporter", "export_run", "to_readable_spans"]

logger = logging.getLogger("bosun.observe.tracing")

_SCOPE = InstrumentationScope("bosun")
_KINDS = {"internal": SpanKind.INTERNAL, "client": SpanKind.CLIENT}
_REMEMBERED_RUNS = 10_000


def _ns(seconds: float) -> int:
    return int(round(seconds * 1e9))


def to_readable_spans(trace: Trace, *, resource: Resource | None = None) -> list[ReadableSpan]:
    """The trace's finished spans as OpenTelemetry SDK spans, with their derived ids and
    journaled times (open spans, such as a wait still pending, are left out)."""
    resource = resource or Resource.create({"service.name": "bosun"})
    trace_id = int(trace.trace_id, 16)
    flags = TraceFlags(TraceFlags.SAMPLED)

    def context(span_id: str) -> SpanContext:
        return SpanContext(trace_id, int(span_id, 16), is_remote=False, trace_flags=flags)

    def readable(span: Span) -> ReadableSpan:
        assert span.end is not None
        status = (
            Status(StatusCode.ERROR, span.status_message)
            if span.status == "error"
            else Status(StatusCode.UNSET)
        )
        return ReadableSpan(
            name=span.name,
            context=context(span.span_id),
            parent=None if span.parent_id is None else context(span.parent_id),
            resource=resource,
            attributes=dict(span.attributes),
            events=[Event(e.name, dict(e.attributes), timestamp=_ns(e.time)) for e in span.events],
            kind=_KINDS[span.kind],
            status=status,
            start_time=_ns(span.start),
            end_time=_ns(span.end),
            instrumentation_scope=_SCOPE,
        )

    return [readable(s) for s in trace.spans if s.end is not None]


def export_run(
    store: Store, run_id: str, exporter: SpanExporter, *, resource: Resource | None = None
) -> int:
    """Derive run `run_id`'s trace and export its finished spans; returns how many were sent
    (0 when the exporter failed: it logs why)."""
    spans = to_readable_spans(trace_of(store, run_id), resource=resource)
    if not spans:
        return 0
    return len(spans) if exporter.export(spans) is SpanExportResult.SUCCESS else 0


class TraceExporter:
    """Exports runs' traces as they stop, each span once per process.

    The worker calls `export_async(run_id)` (or `export`) whenever it stops driving a run:
    finished, parked for a person, or escalated. Spans sent before are not sent again by this
    exporter, so a run that parks and resumes sends each span once; another process may send
    a span this one already did (same ids: backends keep one).
    """

    def __init__(
        self,
        store: Store,
        exporter: SpanExporter,
        *,
        service_name: str = "bosun",
        resource_attributes: Mapping[str, str] | None = None,
    ) -> None:
        self.store = store
        self.exporter = exporter
        self.resource = Resource.create(
            {"service.name": service_name, **(resource_attributes or {})}
        )
        self._sent: OrderedDict[str, set[str]] = OrderedDict()

    @classmethod
    def otlp(
        cls,
        store: Store,
        *,
        endpoint: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout_s: float = 10.0,
        service_name: str = "bosun",
    ) -> TraceExporter:
        """Export over OTLP/HTTP (protobuf) to `endpoint`, e.g.
        ``http://collector:4318/v1/traces``. With no endpoint, the SDK's standard
        ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` / ``OTEL_EXPORTER_OTLP_ENDPOINT`` apply."""
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(
            endpoint=endpoint, headers=dict(headers) if headers else None, timeout=timeout_s
        )
        return cls(store, exporter, service_name=service_name)

    def export(self, run_id: str) -> int:
        """Send the run's finished spans not sent yet; returns how many were sent. An
        exporter failure is logged and the spans are tried again at the next call."""
        trace = trace_of(self.store, run_id)
        sent = self._sent.get(run_id, set())
        fresh = [s for s in trace.spans if s.end is not None and s.span_id not in sent]
        if not fresh:
            return 0
        batch = Trace(trace_id=trace.trace_id, run_id=run_id, spans=tuple(fresh))
        spans = to_readable_spans(batch, resource=self.resource)
        try:
            result = self.exporter.export(spans)
        except Exception:  # a tracing backend must never take a run's worker down
            logger.exception("exporting the trace of run %s failed", run_id)
            return 0
        if result is not SpanExportResult.SUCCESS:
            logger.warning("exporting the trace of run %s failed; will retry", run_id)
            return 0
        if trace.root.end is not None:  # the run ended: nothing more will come
            self._sent.pop(run_id, None)
        else:
            self._sent[run_id] = sent | {s.span_id for s in fresh}
            self._sent.move_to_end(run_id)
            while len(self._sent) > _REMEMBERED_RUNS:
                self._sent.popitem(last=False)
        return len(spans)

    async def export_async(self, run_id: str) -> int:
        """`export` off the event loop (it reads the store and makes an HTTP request)."""
        return await asyncio.to_thread(self.export, run_id)

    def shutdown(self) -> None:
        """Flush and close the underlying exporter."""
        self.exporter.shutdown()
