"""Run metrics observed from the journal of real runs."""

from __future__ import annotations

from prometheus_client import generate_latest

from bosun.errors import PermanentToolError
from bosun.observe.metrics import RunMetrics
from bosun.runtime import Agent, Runtime
from bosun.testing import Fault, ScriptedModel, call, reply
from bosun.tools import BreakerPolicy, tool


@tool
def fetch(q: str) -> str:
    """Fetch something."""
    return q


@tool(breaker=BreakerPolicy(failure_threshold=1, cooldown_s=600))
def flaky(q: str) -> str:
    """Always refuses."""
    raise PermanentToolError("no such record")


@tool(side_effect=True, risk="write", requires_approval=True)
def write(q: str) -> str:
    """Needs approval."""
    return q


def sample(metrics: RunMetrics, name: str, **labels: str) -> float | None:
    value = metrics.registry.get_sample_value(name, labels)
    return value


async def test_counters_and_histograms_follow_the_journal(db_url: str) -> None:
    metrics = RunMetrics()
    script = [
        Fault.server_error(),  # retried
        call("fetch", {"q": "a"}),
        call("flaky", {"q": "b"}),
        call("write", {"q": "c"}),
    ]
    agent = Agent(name="metered", tools=[fetch, flaky, write], model=ScriptedModel(script))
    async with Runtime(store=db_url, agents=[agent], observer=metrics, sleep=_no_sleep) as rt:
        metrics.watch_breakers(rt.breakers)
        parked = await rt.run(agent, "go")
        assert parked.status.value == "waiting_approval"
        done = await rt.cancel(parked.run_id, by="ops")
        assert done.status.value == "cancelled"
        text = generate_latest(metrics.registry).decode()
    assert sample(metrics, "bosun_model_errors_total", model="unknown", kind="unavailable") == 1
    assert sample(metrics, "bosun_model_latency_seconds_count", model="scripted") == 3
    assert sample(metrics, "bosun_tool_calls_total", tool="fetch", status="ok") == 1
    assert sample(metrics, "bosun_tool_calls_total", tool="flaky", status="failed") == 1
    assert sample(metrics, "bosun_tool_latency_seconds_count", tool="fetch") == 1
    assert sample(metrics, "bosun_approvals_requested_total", agent="metered") == 1
    assert sample(metrics, "bosun_runs_finished_total", agent="metered", status="cancelled") == 1
    assert 'bosun_breaker_state{agent="metered",state="open",tool="flaky"} 1.0' in text
    assert 'bosun_breaker_state{agent="metered",state="closed",tool="flaky"} 0.0' in text


async def _no_sleep(_: float) -> None:
    return None


async def test_a_finished_run_observes_its_active_seconds(db_url: str) -> None:
    metrics = RunMetrics()
    agent = Agent(name="quick", model=ScriptedModel([reply("done")]))
    async with Runtime(store=db_url, agents=[agent], observer=metrics) as rt:
        await rt.run(agent, "go")
    assert sample(metrics, "bosun_run_active_seconds_count", agent="quick") == 1
    assert sample(metrics, "bosun_runs_finished_total", agent="quick", status="completed") == 1
