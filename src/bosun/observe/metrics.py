"""Prometheus metrics of the runs this process drives, observed from their journal entries.

The runtime hands every batch of entries it has made durable to `RunMetrics.observe`; each
entry updates a counter or a histogram (a dictionary lookup and an add: well under a
few microseconds per entry, measured in bench/spine.py). Nothing is parsed but the one
``run_finished`` payload per run.

```
bosun_model_latency_seconds{model}            histogram
bosun_model_errors_total{model,kind}
bosun_tokens_total{model,direction}           direction: input | output
bosun_cost_usd_total{agent,model}
bosun_tool_latency_seconds{tool}              histogram
bosun_tool_calls_total{tool,status}           status: ok | an ErrorKind
bosun_approvals_requested_total{agent}
bosun_runs_finished_total{agent,status}       escalation rate = status="escalated" / all
bosun_run_active_seconds{agent}               histogram (time parked excluded)
bosun_breaker_state{agent,tool,state}         1 for the state the breaker is in
```
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from bosun.data.store import Step, WriteOp
from bosun.tools.breaker import BreakerState

__all__ = ["RunMetrics"]

_MODEL_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64)
_TOOL_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_RUN_BUCKETS = (0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600)

BreakerStates = Callable[[], Mapping[tuple[str, str], BreakerState]]


class _Breakers(Collector):
    def __init__(self, states: BreakerStates) -> None:
        self.states = states

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "bosun_breaker_state",
            "Circuit breaker state per tool",
            labels=["agent", "tool", "state"],
        )
        for (agent, tool), current in sorted(self.states().items()):
            for state in BreakerState:
                family.add_metric([agent, tool, state.value], 1.0 if state is current else 0.0)
        yield family


class RunMetrics:
    """Counters and histograms over journal entries; ``Runtime(observer=RunMetrics())``."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.model_latency = Histogram(
            "bosun_model_latency_seconds", "Model call latency", ["model"],
            buckets=_MODEL_BUCKETS, registry=r,
        )  # fmt: skip
        self.model_errors = Counter(
            "bosun_model_errors", "Failed model calls by kind", ["model", "kind"], registry=r
        )
        self.tokens = Counter("bosun_tokens", "Model tokens", ["model", "direction"], registry=r)
        self.cost = Counter("bosun_cost_usd", "Model spend in USD", ["agent", "model"], registry=r)
        self.tool_latency = Histogram(
            "bosun_tool_latency_seconds", "Tool call latency", ["tool"],
            buckets=_TOOL_BUCKETS, registry=r,
        )  # fmt: skip
        self.tool_calls = Counter(
            "bosun_tool_calls", "Tool calls by outcome", ["tool", "status"], registry=r
        )
        self.approvals = Counter(
            "bosun_approvals_requested", "Calls held for approval", ["agent"], registry=r
        )
        self.finished = Counter(
            "bosun_runs_finished", "Runs that stopped, by status", ["agent", "status"], registry=r
        )
        self._children: dict[Any, Any] = {}
        self.run_seconds = Histogram(
            "bosun_run_active_seconds", "Active seconds per run (parked time excluded)",
            ["agent"], buckets=_RUN_BUCKETS, registry=r,
        )  # fmt: skip

    # `.labels()` takes a lock and builds a key on every call; the hot path keeps the
    # children it has already looked up.
    def _model_children(self, model: str) -> tuple[Any, Any, Any]:
        children = self._children.get(model)
        if children is None:
            children = self._children[model] = (
                self.model_latency.labels(model),
                self.tokens.labels(model, "input"),
                self.tokens.labels(model, "output"),
            )
        return children

    def _tool_latency_child(self, tool: str) -> Any:
        child = self._children.get(("latency", tool))
        if child is None:
            child = self._children[("latency", tool)] = self.tool_latency.labels(tool)
        return child

    def watch_breakers(self, states: BreakerStates) -> None:
        """Report breaker states read from `states` at each scrape (`Runtime.breakers`)."""
        self.registry.register(_Breakers(states))

    def observe(self, agent: str, ops: Sequence[WriteOp]) -> None:
        """Count the durable entries of one run of `agent`."""
        for op in ops:
            if type(op) is not Step:
                continue
            kind = op.kind
            if kind == "model_response":
                model = op.model or "unknown"
                latency, tokens_in, tokens_out = self._model_children(model)
                if op.latency_ms is not None:
                    latency.observe(op.latency_ms / 1000)
                if op.input_tokens:
                    tokens_in.inc(op.input_tokens)
                if op.output_tokens:
                    tokens_out.inc(op.output_tokens)
                if op.cost_usd:
                    self.cost.labels(agent, model).inc(float(op.cost_usd))
            elif kind == "tool_result":
                tool = op.tool or "unknown"
                status = op.status or "ok"
                calls = self._children.get((tool, status))
                if calls is None:
                    calls = self._children[(tool, status)] = self.tool_calls.labels(tool, status)
                calls.inc()
                if op.latency_ms is not None:
                    self._tool_latency_child(tool).observe(op.latency_ms / 1000)
            elif kind == "model_error":
                self.model_errors.labels(op.model or "unknown", op.status or "error").inc()
            elif kind == "approval_requested":
                self.approvals.labels(agent).inc()
            elif kind == "run_finished":
                payload = json.loads(op.payload)
                self.finished.labels(agent, str(payload.get("status"))).inc()
                self.run_seconds.labels(agent).observe(float(payload.get("t", 0.0)))
            elif kind == "human_requested":
                self.finished.labels(agent, "waiting_human").inc()
