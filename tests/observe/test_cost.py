"""Cost caps: enforced before the call that would break them; alerts at 80% and 100%."""

from __future__ import annotations

import time
from decimal import Decimal

from bosun.data.store import Store
from bosun.models.base import ModelRequest, ModelResponse
from bosun.observe.alerts import Alert, list_alerts
from bosun.observe.cost import CostCaps, CostGuard, spend_report
from bosun.runtime import Agent, Runtime
from bosun.testing import ScriptedModel, call
from bosun.tools import tool

CENT = Decimal("0.01")


@tool
def step(n: int) -> str:
    """Do one step."""
    return f"step {n}"


def priced(request: ModelRequest) -> ModelResponse:
    """Ten tool-calling turns, then an answer; every call costs one cent."""
    turn = sum(m.role == "assistant" for m in request.messages)
    response = call("step", {"n": turn}) if turn < 10 else call("step", {"n": 99})
    if turn >= 10:
        response = ModelResponse(text="done", model="priced", provider="scripted")
    return response.model_copy(update={"cost_usd": CENT})


def agent(name: str = "spender") -> Agent:
    return Agent(name=name, tools=[step], model=ScriptedModel(priced))


async def test_a_run_cap_stops_the_run_before_the_call_that_would_break_it(db_url: str) -> None:
    store = Store.open(db_url)
    guard = CostGuard(store, CostCaps(per_run_usd=Decimal("0.035")))
    a = agent()
    async with Runtime(store=store, agents=[a], spend=guard) as rt:
        result = await rt.run(a, "go")
    assert result.status.value == "escalated"
    assert result.cost_usd == Decimal("0.03")  # a fourth cent would have crossed 0.035
    assert "run cost cap" in (result.handoff.reason if result.handoff else "")
    store.close()


async def test_a_daily_agent_cap_spans_runs_and_alerts_at_80_and_100(db_url: str) -> None:
    store = Store.open(db_url)
    sent: list[Alert] = []

    async def notify(alert: Alert) -> None:
        sent.append(alert)

    caps = CostCaps(per_agent_day_usd={"spender": Decimal("0.15")})
    guard = CostGuard(store, caps, notify=notify, refresh_s=0)
    a, other = agent(), agent("frugal")
    async with Runtime(store=store, agents=[a, other], spend=guard) as rt:
        first = await rt.run(a, "go")  # 11 calls = 0.11
        second = await rt.run(a, "go again")
        unaffected = await rt.run(other, "go")
    assert first.status.value == "completed" and first.cost_usd == Decimal("0.11")
    assert second.status.value == "escalated"
    assert second.cost_usd == Decimal("0.04")  # 0.11 + 0.04 = 0.15: the next cent would cross
    assert "daily cost cap of agent 'spender'" in (second.handoff.reason if second.handoff else "")
    assert unaffected.status.value == "completed"  # another agent, no cap
    assert [(x.severity, x.evidence["share"]) for x in sent] == [
        ("warning", 0.8),
        ("critical", 1.0),
    ]
    stored = list_alerts(store, kind="cost_cap")
    assert len(stored) == 2 and stored[0]["subject"] == "agent:spender"
    store.close()


async def test_a_fresh_guard_reads_todays_spend_from_the_store(db_url: str) -> None:
    store = Store.open(db_url)
    a = agent()
    async with Runtime(store=store, agents=[a]) as rt:
        await rt.run(a, "spend first, unguarded")  # 0.11 journaled today
    caps = CostCaps(per_agent_day_usd={"*": Decimal("0.10")})
    guard = CostGuard(store, caps)
    async with Runtime(store=store, agents=[a], spend=guard) as rt:
        result = await rt.run(a, "go")
    assert result.status.value == "escalated" and result.model_calls == 0
    # The 100% alert is raised once however often the cap is hit.
    async with Runtime(store=store, agents=[a], spend=guard) as rt:
        await rt.run(a, "again")
    assert len(list_alerts(store, kind="cost_cap")) == 1
    store.close()


async def test_tenant_caps_and_the_spend_report(db_url: str) -> None:
    store = Store.open(db_url)
    caps = CostCaps(per_tenant_day_usd={"acme": Decimal("0.05")})
    a = agent()
    async with Runtime(store=store, agents=[a], spend=CostGuard(store, caps)) as rt:
        acme = await rt.run(a, "go", tenant="acme")
        globex = await rt.run(a, "go", tenant="globex")
    assert acme.status.value == "escalated" and acme.cost_usd == Decimal("0.05")
    assert globex.status.value == "completed"
    since = time.time() - 3600
    by_tenant = {r["tenant"]: r for r in spend_report(store, since=since, by="tenant")}
    assert by_tenant["acme"]["cost_usd"] == Decimal("0.05")
    assert by_tenant["globex"]["cost_usd"] == Decimal("0.11")
    assert by_tenant["globex"]["model_calls"] == 11 and by_tenant["globex"]["runs"] == 1
    by_day = spend_report(store, since=since, by="day")
    assert len(by_day) == 1 and by_day[0]["cost_usd"] == Decimal("0.16")
    by_agent = spend_report(store, since=since, by="agent")
    assert by_agent == [
        {
            "agent": "spender",
            "cost_usd": Decimal("0.16"),
            "input_tokens": by_agent[0]["input_tokens"],
            "output_tokens": by_agent[0]["output_tokens"],
            "model_calls": 16,
            "runs": 2,
        }
    ]
    store.close()


def test_settings_turn_on_the_guard(tmp_path: object) -> None:
    from bosun.config import load_settings
    from bosun.service.compose import build_runtime

    settings = load_settings(cost={"per_agent_day_usd": {"*": "1.5"}}, service={"mask_pii": False})
    store = Store.open("sqlite://")
    runtime = build_runtime(settings, [agent()], store=store)
    assert isinstance(runtime.spend, CostGuard)
    assert runtime.spend.caps.per_agent_day_usd == {"*": Decimal("1.5")}
    bare = build_runtime(load_settings(service={"mask_pii": False}), [agent()], store=store)
    assert bare.spend is None
    store.close()


async def test_alert_webhook_posts_a_signed_alert() -> None:
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from bosun.observe.alerts import AlertWebhook
    from bosun.signing import verify

    received: list[tuple[dict[str, str], bytes]] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"]))
            received.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(500 if len(received) == 1 else 204)  # fail once, then accept
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    hook = AlertWebhook(f"http://127.0.0.1:{server.server_address[1]}/", "s3cret")
    alert = Alert(
        kind="cost_cap",
        subject="agent:x",
        severity="warning",
        message="80%",
        evidence={"share": 0.8},
        dedupe_key="cost:agent:x:2026-11-29:80",
    )
    try:
        await hook(alert)
    finally:
        await hook.aclose()
        server.shutdown()
        server.server_close()
    assert len(received) == 2  # retried after the 500
    headers, body = received[-1]
    assert verify("s3cret", headers, body)
    assert json.loads(body) == {"type": "alert.cost_cap", "data": alert.to_json()}
