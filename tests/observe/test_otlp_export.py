"""Traces exported over OTLP/HTTP to a real local receiver that decodes the protobuf."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span as ProtoSpan
from opentelemetry.proto.trace.v1.trace_pb2 import Status as ProtoStatus

from bosun.data.store import Store
from bosun.observe.export import TraceExporter, export_run
from bosun.observe.tracing import trace_id_for, trace_of
from bosun.runtime import Agent, RunStatus, Runtime
from bosun.testing import Fault, ScriptedModel, call, reply
from bosun.tools import tool


class Receiver:
    """An OTLP/HTTP trace endpoint on 127.0.0.1: decodes and keeps every request."""

    def __init__(self) -> None:
        self.requests: list[ExportTraceServiceRequest] = []
        self.status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                assert self.path == "/v1/traces"
                assert self.headers["Content-Type"] == "application/x-protobuf"
                if receiver.status == 200:
                    request = ExportTraceServiceRequest()
                    request.ParseFromString(body)
                    receiver.requests.append(request)
                reply = ExportTraceServiceResponse().SerializeToString()
                self.send_response(receiver.status)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}/v1/traces"

    def spans(self) -> list[ProtoSpan]:
        return [
            span
            for request in self.requests
            for resource in request.resource_spans
            for scope in resource.scope_spans
            for span in scope.spans
        ]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    thread = threading.Thread(target=r.server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield r
    r.server.shutdown()
    r.server.server_close()
    thread.join(5)


def value(v: AnyValue) -> Any:
    kind = v.WhichOneof("value")
    if kind == "array_value":
        return tuple(value(x) for x in v.array_value.values)
    return getattr(v, kind)


def attributes(span: ProtoSpan) -> dict[str, Any]:
    return {kv.key: value(kv.value) for kv in span.attributes}


@tool
def ping(n: int) -> int:
    """Ping."""
    return n


async def no_sleep(delay: float) -> None:
    pass


async def test_a_run_arrives_as_one_trace_with_its_links_and_attributes(
    store: Store, receiver: Receiver
) -> None:
    model = ScriptedModel(
        [Fault.server_error(), call("ping", {"n": 1}), reply("pong")],
        cost_per_1k_tokens=Decimal("0.01"),
    )
    agent = Agent(name="pinger", tools=[ping], model=model)
    async with Runtime(store=store, sleep=no_sleep) as rt:
        result = await rt.run(agent, "ping")
    exporter = TraceExporter.otlp(store, endpoint=receiver.endpoint, service_name="support-svc")
    assert await exporter.export_async(result.run_id) == 5
    exporter.shutdown()

    (request,) = receiver.requests
    (resource,) = request.resource_spans
    resource_attrs = {kv.key: value(kv.value) for kv in resource.resource.attributes}
    assert resource_attrs["service.name"] == "support-svc"
    (scope,) = resource.scope_spans
    assert scope.scope.name == "bosun"
    spans = {s.name: s for s in scope.spans}
    assert sorted(spans) == ["chat", "chat scripted", "execute_tool ping", "invoke_agent pinger"]
    assert len(scope.spans) == 5  # two successful chat spans share a name

    expected = trace_of(store, result.run_id)
    assert {s.trace_id for s in scope.spans} == {bytes.fromhex(trace_id_for(result.run_id))}
    root = spans["invoke_agent pinger"]
    assert root.parent_span_id == b""
    assert root.span_id == bytes.fromhex(expected.root.span_id)
    assert all(s.parent_span_id == root.span_id for s in scope.spans if s is not root)
    # Times are the journal's, to the nanosecond.
    assert root.start_time_unix_nano == round(expected.root.start * 1e9)
    assert expected.root.end is not None
    assert root.end_time_unix_nano == round(expected.root.end * 1e9)

    assert attributes(root)["gen_ai.operation.name"] == "invoke_agent"
    assert attributes(root)["bosun.cost_usd"] == pytest.approx(float(result.cost_usd or 0))
    failed = spans["chat"]
    assert failed.kind == ProtoSpan.SPAN_KIND_CLIENT
    assert failed.status.code == ProtoStatus.STATUS_CODE_ERROR
    assert failed.status.message == "internal server error"
    assert attributes(failed)["error.type"] == "unavailable"
    answer = [s for s in scope.spans if s.name == "chat scripted"][-1]
    assert attributes(answer)["gen_ai.response.finish_reasons"] == ("stop",)
    assert attributes(answer)["gen_ai.usage.output_tokens"] > 0
    tool_span = spans["execute_tool ping"]
    assert tool_span.kind == ProtoSpan.SPAN_KIND_INTERNAL
    assert tool_span.status.code == ProtoStatus.STATUS_CODE_UNSET
    assert attributes(tool_span)["gen_ai.tool.name"] == "ping"


@tool(side_effect=True, risk="irreversible", requires_approval=True)
def refund(order: str) -> str:
    """Refund an order."""
    return "refunded"


async def test_a_parked_run_sends_what_is_done_and_the_rest_once_it_ends(
    store: Store, receiver: Receiver
) -> None:
    model = ScriptedModel([call("refund", {"order": "A1"}), reply("done")])
    agent = Agent(name="refunder", tools=[refund], model=model)
    exporter = TraceExporter.otlp(store, endpoint=receiver.endpoint)
    async with Runtime(store=store) as rt:
        parked = await rt.run(agent, "refund A1")
        assert parked.status is RunStatus.WAITING_APPROVAL
        # Parked: the model call is done; the run and the approval wait are still open.
        assert exporter.export(parked.run_id) == 1
        assert exporter.export(parked.run_id) == 0  # nothing new
        await rt.decide(parked.run_id, parked.waiting_for[0].id, approved=True, decided_by="bob")
    assert exporter.export(parked.run_id) == 4
    sent = [s.span_id for s in receiver.spans()]
    assert len(sent) == len(set(sent)) == 5
    assert {bytes.fromhex(s.span_id) for s in trace_of(store, parked.run_id).spans} == set(sent)
    names = [s.name for s in receiver.spans()]
    assert names[0] == "chat scripted"
    assert "await_approval refund" in names[1:]
    exporter.shutdown()


async def test_a_failing_backend_is_logged_and_retried_later(
    store: Store, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    agent = Agent(name="a", model=ScriptedModel([reply("x")]))
    async with Runtime(store=store) as rt:
        result = await rt.run(agent, "x")
    exporter = TraceExporter.otlp(store, endpoint=receiver.endpoint)
    receiver.status = 400  # not retryable: the exporter gives up at once
    with caplog.at_level(logging.WARNING, logger="bosun.observe.tracing"):
        assert exporter.export(result.run_id) == 0
    assert f"exporting the trace of run {result.run_id} failed" in caplog.text
    receiver.status = 200
    assert exporter.export(result.run_id) == 2
    assert export_run(store, result.run_id, exporter.exporter) == 2  # a plain re-export
    assert len(receiver.requests) == 2
    exporter.shutdown()
