"""Drift detection: baselines per agent and prompt version, windows compared, alerts raised.

Most runs here are written straight into the store (rows and journal entries shaped as the
runtime writes them) by a seeded generator, so a test can have hundreds of runs in a second;
one test derives the features from runs a real `Runtime` drove, to keep the two honest.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from bosun.cli.drift import drift_command
from bosun.data.store import NewRun, RunUpdate, Step, Store, WriteOp
from bosun.drift.detector import (
    DriftConfig,
    check_drift,
    check_drift_and_notify,
    get_baseline,
    set_baseline,
)
from bosun.drift.features import PromptRef, prompt_versions, read_window
from bosun.drift.stats import (
    bin_counts,
    compare_counts,
    compare_rates,
    psi,
    quantile_edges,
)
from bosun.errors import UserError
from bosun.models.base import ModelRequest, ModelResponse
from bosun.observe.alerts import Alert, list_alerts
from bosun.runtime import Agent, Runtime
from bosun.runtime.agent import ResolvedInstructions
from bosun.testing import Fault, ScriptedModel, call, calls, reply
from bosun.tools import tool

AGENT = "support"
V1 = ("triage", "1.0.0")
V2 = ("triage", "2.0.0")


# --- a seeded generator of finished runs ------------------------------------------------------


@dataclass(frozen=True)
class Behaviour:
    """How the simulated agent behaves: its tool preferences and how its runs end."""

    tools: dict[str, float] = field(
        default_factory=lambda: {"lookup_order": 0.6, "search_kb": 0.3, "issue_refund": 0.1}
    )
    escalation: float = 0.05
    error: float = 0.03


STEADY = Behaviour()
SHIFTED = Behaviour(
    tools={"lookup_order": 0.3, "search_kb": 0.3, "issue_refund": 0.4}, escalation=0.25
)


class Stream:
    """Writes runs of one agent, oldest first, with strictly increasing creation times."""

    def __init__(self, store: Store, *, agent: str = AGENT) -> None:
        self.store = store
        self.agent = agent
        self.clock = 1_700_000_000.0
        self.count = 0

    def write(
        self,
        behaviour: Behaviour,
        n: int,
        *,
        seed: int,
        prompt: tuple[str, str] | None = V1,
    ) -> list[str]:
        rng = random.Random(seed)
        ids: list[str] = []
        ops: list[WriteOp] = []
        for _ in range(n):
            self.count += 1
            self.clock += 1.0
            run_id = f"run_{self.count:06d}"
            ids.append(run_id)
            ops += _run_ops(rng, run_id, self.agent, self.clock, behaviour, prompt)
            if len(ops) > 1500:
                self.store.write(ops)
                ops = []
        if ops:
            self.store.write(ops)
        return ids


def _run_ops(
    rng: random.Random,
    run_id: str,
    agent: str,
    at: float,
    behaviour: Behaviour,
    prompt: tuple[str, str] | None,
) -> list[WriteOp]:
    model_calls = rng.choice([1, 2, 2, 3, 3, 4])
    roll = rng.random()
    status = (
        "escalated"
        if roll < behaviour.escalation
        else "failed"
        if roll < behaviour.escalation + behaviour.error
        else "completed"
    )
    started: dict[str, Any] = {"input": "where is my order?", "instructions": "Help.", "t": 0.0}
    if prompt is not None:
        started["prompt"] = {"name": prompt[0], "version": prompt[1], "label": "production"}
    ops: list[WriteOp] = [
        NewRun(id=run_id, agent=agent, status="running", input="?", grants="[]", created_at=at),
        Step(run_id=run_id, seq=0, kind="run_started", payload=json.dumps(started), created_at=at),
    ]
    seq, cost = 1, Decimal(0)
    names, weights = list(behaviour.tools), list(behaviour.tools.values())
    for i in range(model_calls):
        tokens = rng.randint(200, 800)
        step_cost = Decimal(tokens) * Decimal("0.000002")
        cost += step_cost
        response = {"text": None, "usage": {"input_tokens": tokens, "output_tokens": 20}}
        ops.append(
            Step(
                run_id=run_id,
                seq=seq,
                kind="model_response",
                payload=json.dumps({"response": response, "latency_ms": 300.0, "t": seq}),
                created_at=at,
                model="scripted",
                status="ok",
                input_tokens=tokens,
                output_tokens=20,
                cost_usd=step_cost,
            )
        )
        seq += 1
        if i == model_calls - 1:
            break
        name = rng.choices(names, weights)[0]
        call_id = f"call_{seq - 1}_0"
        for kind, body in (
            ("tool_started", {"call_id": call_id, "tool": name}),
            ("tool_result", {"call_id": call_id, "tool": name, "result": {"ok": True}}),
        ):
            ops.append(
                Step(
                    run_id=run_id,
                    seq=seq,
                    kind=kind,
                    payload=json.dumps({**body, "t": seq}),
                    created_at=at,
                    tool=name,
                    call_id=call_id,
                    status="ok" if kind == "tool_result" else None,
                )
            )
            seq += 1
    output = "x" * rng.randint(80, 400) if status == "completed" else None
    handoff = json.dumps({"reason": "unsure"}) if status == "escalated" else None
    error = "model authentication failed" if status == "failed" else None
    finished = {"status": status, "output": output, "handoff": handoff, "error": error}
    ops += [
        Step(
            run_id=run_id,
            seq=seq,
            kind="run_finished",
            payload=json.dumps({**finished, "t": seq}),
            created_at=at,
            status=status,
        ),
        RunUpdate(run_id=run_id, values={**finished, "cost_usd": cost, "updated_at": at}),
    ]
    return ops


def drift_alerts(store: Store) -> list[dict[str, Any]]:
    return list_alerts(store, kind="drift")


# --- end to end on both backends ---------------------------------------------------------------


def test_a_shift_in_tool_mix_and_escalation_rate_raises_an_alert_with_evidence(
    store: Store,
) -> None:
    stream = Stream(store)
    stream.write(STEADY, 300, seed=1)
    baseline = set_baseline(store, AGENT, "triage@1.0.0", runs=300, now=5.0)
    assert (baseline.runs, baseline.prompt_version) == (300, "triage@1.0.0")
    stream.write(SHIFTED, 300, seed=2)

    [report] = check_drift(store, config=DriftConfig(window_runs=300), now=10.0)

    assert report.status == "drift"
    assert sorted(report.drifted) == ["escalation_rate", "tool_mix"]
    assert report.window is not None and report.window["runs"] == 300
    assert report.alert_new
    [alert] = drift_alerts(store)
    assert (alert["kind"], alert["subject"]) == ("drift", "support/triage@1.0.0")
    assert alert["severity"] in ("warning", "critical")
    assert "tool_mix" in alert["message"] and "escalation_rate" in alert["message"]
    evidence = alert["evidence"]
    assert evidence["drifted"] == ["tool_mix", "escalation_rate"]
    mix = evidence["metrics"]["tool_mix"]
    assert mix["test"] == "chi-square" and mix["p_value"] < 1e-6 and mix["psi"] > 0.2
    assert mix["baseline"]["calls"] == sum(mix["baseline"]["counts"].values()) > 0
    assert (
        mix["current"]["shares"]["issue_refund"] > 0.3 > mix["baseline"]["shares"]["issue_refund"]
    )
    escalation = evidence["metrics"]["escalation_rate"]
    assert escalation["test"] == "two-proportion z"
    assert escalation["baseline"]["n"] == escalation["current"]["n"] == 300
    assert escalation["current"]["rate"] > escalation["baseline"]["rate"]
    assert escalation["p_value"] < 0.01 / 6 and escalation["cohen_h"] > 0.1
    # The metrics that did not move are in the evidence too, with their verdicts.
    assert evidence["metrics"]["steps"]["verdict"] == "ok"
    assert evidence["metrics"]["error_rate"]["verdict"] == "ok"


def test_an_unshifted_stream_of_the_same_size_raises_nothing(store: Store) -> None:
    stream = Stream(store)
    stream.write(STEADY, 300, seed=1)
    set_baseline(store, AGENT, "triage@1.0.0", runs=300)
    stream.write(STEADY, 300, seed=2)

    [report] = check_drift(store, config=DriftConfig(window_runs=300))

    assert report.status == "ok"
    assert [m.verdict for m in report.metrics] == ["ok"] * 6
    assert report.alert is None
    assert drift_alerts(store) == []


def test_a_small_window_is_insufficient_data_not_an_alert(store: Store) -> None:
    stream = Stream(store)
    stream.write(STEADY, 300, seed=1)
    set_baseline(store, AGENT, "triage@1.0.0", runs=300)
    stream.write(SHIFTED, 12, seed=2)  # shifted, but too few runs to say so

    [report] = check_drift(store)

    assert report.status == "insufficient data"
    assert report.window is not None and report.window["runs"] == 12
    assert {m.verdict for m in report.metrics} == {"insufficient data"}
    assert drift_alerts(store) == []


def test_the_same_drift_in_the_same_window_is_alerted_once(store: Store) -> None:
    stream = Stream(store)
    stream.write(STEADY, 200, seed=1)
    set_baseline(store, AGENT, "triage@1.0.0", runs=200)
    stream.write(SHIFTED, 200, seed=2)
    config = DriftConfig(window_runs=200)
    notified: list[Alert] = []

    first = check_drift(store, config=config, notify=notified.append)
    again = check_drift(store, config=config, notify=notified.append)

    assert first[0].alert_new and not again[0].alert_new
    assert again[0].alert is not None and first[0].alert is not None
    assert again[0].alert.dedupe_key == first[0].alert.dedupe_key
    assert len(drift_alerts(store)) == 1
    assert [a.subject for a in notified] == ["support/triage@1.0.0"]

    # A whole new window later the drift persists: reported again, once.
    stream.write(SHIFTED, 200, seed=3)
    check_drift(store, config=config, notify=notified.append)
    check_drift(store, config=config, notify=notified.append)
    assert len(drift_alerts(store)) == 2
    assert len(notified) == 2


def test_each_prompt_version_is_compared_with_its_own_baseline(store: Store) -> None:
    stream = Stream(store)
    stream.write(STEADY, 200, seed=1, prompt=V1)
    stream.write(STEADY, 200, seed=2, prompt=V1)
    stream.write(SHIFTED, 100, seed=3, prompt=V2)  # very different from v1's baseline
    config = DriftConfig(window_runs=200, baseline_runs=200)

    reports = {r.prompt_version: r for r in check_drift(store, AGENT, config=config)}

    assert set(reports) == {"triage@1.0.0", "triage@2.0.0"}
    assert reports["triage@1.0.0"].status == "ok"  # an automatic baseline: the first 200
    assert reports["triage@1.0.0"].baseline is not None
    assert reports["triage@1.0.0"].baseline.runs == 200
    v2 = reports["triage@2.0.0"]
    assert (v2.status, v2.baseline, v2.runs) == ("no baseline", None, 100)
    assert get_baseline(store, AGENT, "triage@2.0.0") is None

    # Once v2 has runs enough, it gets its own baseline and is steady against it.
    stream.write(SHIFTED, 200, seed=4, prompt=V2)
    [v2] = check_drift(store, AGENT, prompt_version="triage@2.0.0", config=config)
    assert v2.status == "ok"
    baseline = get_baseline(store, AGENT, "triage@2.0.0")
    assert baseline is not None
    assert baseline.stats["prompt"] == {"name": "triage", "version": "2.0.0"}
    assert baseline.stats["tool_mix"]["counts"]["issue_refund"] > 100  # v2's own mix
    assert drift_alerts(store) == []


def test_runs_without_a_versioned_prompt_form_their_own_group(store: Store) -> None:
    stream = Stream(store)
    stream.write(STEADY, 40, seed=1, prompt=None)
    stream.write(STEADY, 40, seed=2, prompt=V1)
    found = {(v.agent, v.prompt.key): v.runs for v in prompt_versions(store)}
    assert found == {(AGENT, ""): 40, (AGENT, "triage@1.0.0"): 40}
    baseline = set_baseline(store, AGENT, "", runs=None)
    assert baseline.runs == 40
    set_baseline(store, AGENT, "", runs=35)  # replaces the earlier one
    stored = get_baseline(store, AGENT, "")
    assert stored is not None and stored.runs == 35 == stored.stats["window"]["runs"]
    with pytest.raises(UserError, match="versions with runs"):
        set_baseline(store, AGENT, "triage@9.9.9")


def test_a_time_window_and_read_only_checks(store: Store) -> None:
    stream = Stream(store)
    stream.write(STEADY, 200, seed=1)
    set_baseline(store, AGENT, "triage@1.0.0", runs=200)
    stream.write(STEADY, 300, seed=2)
    boundary = stream.clock + 0.5  # since is inclusive: the first shifted run onwards
    stream.write(SHIFTED, 150, seed=3)

    [report] = check_drift(store, since=boundary, record=False)

    assert report.window is not None and report.window["runs"] == 150
    assert "tool_mix" in report.drifted
    assert report.alert is not None and not report.alert_new
    assert drift_alerts(store) == []  # record=False only looks


async def test_an_async_notifier_hears_of_each_new_alert_once(store: Store) -> None:
    stream = Stream(store)
    stream.write(STEADY, 200, seed=1)
    set_baseline(store, AGENT, "triage@1.0.0", runs=200)
    stream.write(SHIFTED, 200, seed=2)
    heard: list[str] = []

    async def notifier(alert: Alert) -> None:
        heard.append(alert.subject)

    await check_drift_and_notify(store, notifier, config=DriftConfig(window_runs=200))
    await check_drift_and_notify(store, notifier, config=DriftConfig(window_runs=200))
    assert heard == ["support/triage@1.0.0"]


def test_a_failing_notify_hook_does_not_lose_the_reports(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    stream = Stream(store)
    stream.write(STEADY, 200, seed=1)
    set_baseline(store, AGENT, "triage@1.0.0", runs=200)
    stream.write(SHIFTED, 200, seed=2)

    def broken(alert: Alert) -> None:
        raise RuntimeError("webhook down")

    [report] = check_drift(store, config=DriftConfig(window_runs=200), notify=broken)
    assert report.status == "drift"
    assert len(drift_alerts(store)) == 1
    assert "notification failed" in caplog.text


# --- features from real runs -------------------------------------------------------------------


@tool
def lookup_order(order_id: str) -> dict[str, str]:
    """Find an order.

    Args:
        order_id: The order's id.
    """
    return {"order_id": order_id, "state": "shipped"}


@tool
def search_kb(query: str) -> list[str]:
    """Search the knowledge base.

    Args:
        query: What to look for.
    """
    return [f"article about {query}"]


class Versioned:
    def resolve(self, *, key: str) -> ResolvedInstructions:
        return ResolvedInstructions(
            text="Help customers.", source={"name": "triage", "version": "3.1.0"}
        )


def scripted(request: ModelRequest) -> ModelResponse | Fault:
    """Behaviour chosen by the run's input; proceeds by how many tool results it has seen."""
    text = request.messages[1].content or ""
    seen = sum(m.role == "tool" for m in request.messages)
    if text == "refuse":
        return Fault.refusal()
    if text == "broken":
        return Fault.auth()
    if text == "ask" and seen == 0:
        return call("ask_human", {"question": "Which order?"})
    if text == "busy" and seen == 0:
        return calls(("lookup_order", {"order_id": "A1"}), ("search_kb", {"query": "late"}))
    if text == "busy" and seen == 2:
        return call("lookup_order", {"order_id": "A2"})
    return reply(f"done with {text} after {seen} tool results")


async def test_features_match_the_journals_of_real_runs(db_url: str) -> None:
    model = ScriptedModel(scripted, cost_per_1k_tokens=Decimal("0.01"))
    agent = Agent(
        name="real",
        instructions=Versioned(),
        tools=[lookup_order, search_kb],
        model=model,
        ask_human=True,
    )
    async with Runtime(store=db_url, agents=[agent]) as rt:
        results = {text: await rt.run(agent, text) for text in ("busy", "hi", "refuse", "ask")}
        results["broken"] = await rt.run(agent, "broken")
        store = rt.store

        [version] = prompt_versions(store, "real")
        assert (version.prompt, version.runs) == (PromptRef("triage", "3.1.0"), 5)
        window = read_window(store, "real", version.prompt)

        assert window.available == 5
        by_id = {f.run_id: f for f in window.runs}
        assert set(by_id) == {r.run_id for r in results.values()}
        all_tools: Counter[str] = Counter()
        for text, result in results.items():
            features = by_id[result.run_id]
            journal = store.journal(result.run_id)
            row = store.get_run(result.run_id)
            tools = [s.tool for s in journal if s.kind == "tool_result"]
            all_tools.update(t for t in tools if t is not None)
            assert features.status == row.status == result.status.value, text
            assert features.model_calls == sum(s.kind == "model_response" for s in journal)
            assert features.tool_calls == len(tools)
            assert features.response_chars == (None if row.output is None else len(row.output))
            assert features.cost_usd == (None if row.cost_usd is None else float(row.cost_usd))
        assert window.tool_counts == dict(all_tools)
        assert window.tool_counts == {"lookup_order": 2, "search_kb": 1}

        busy = by_id[results["busy"].run_id]
        assert (busy.model_calls, busy.tool_calls, busy.escalated) == (3, 3, False)
        assert busy.cost_usd is not None and busy.cost_usd > 0
        assert by_id[results["refuse"].run_id].escalated
        assert by_id[results["ask"].run_id].status == "waiting_human"
        assert by_id[results["ask"].run_id].escalated
        assert by_id[results["broken"].run_id].failed
        assert not by_id[results["broken"].run_id].escalated
        assert by_id[results["hi"].run_id].response_chars == len(
            "done with hi after 0 tool results"
        )

        # Answered, the run that asked a person completes, and still counts as escalated once.
        await rt.hand_back(results["ask"].run_id, "order A7", by="erin")
        after = {f.run_id: f for f in read_window(store, "real", version.prompt).runs}
        asked = after[results["ask"].run_id]
        assert (asked.status, asked.escalated) == ("completed", True)


async def test_cancelled_and_unfinished_runs_are_not_counted(db_url: str) -> None:
    agent = Agent(name="quiet", model=ScriptedModel([reply("ok")]))
    async with Runtime(store=db_url, agents=[agent]) as rt:
        done = await rt.run(agent, "hi")
        queued = await rt.start(agent, "later")
        store = rt.store
        [version] = prompt_versions(store, "quiet")
        assert version.prompt == PromptRef(None, None) and version.prompt.key == ""
        window = read_window(store, "quiet", version.prompt)
    assert [f.run_id for f in window.runs] == [done.run_id]
    assert queued not in {f.run_id for f in window.runs}


# --- the command line --------------------------------------------------------------------------


def test_bosun_drift_shows_verdicts_and_alerts(db_url: str) -> None:
    store = Store.open(db_url)
    stream = Stream(store)
    stream.write(STEADY, 200, seed=1)
    stream.write(SHIFTED, 200, seed=2)
    stream.write(STEADY, 10, seed=3, prompt=V2)
    store.close()
    app = typer.Typer()
    app.command()(drift_command)
    runner = CliRunner()

    shown = runner.invoke(app, ["--db", db_url, "--window", "200", "--json"])
    assert shown.exit_code == 0, shown.output
    body = json.loads(shown.output)
    statuses = {r["prompt_version"]: r["status"] for r in body["reports"]}
    assert statuses == {"triage@1.0.0": "drift", "triage@2.0.0": "no baseline"}
    assert body["alerts"] == []  # showing does not raise alerts

    recorded = runner.invoke(app, ["--db", db_url, "--window", "200", "--record"])
    assert recorded.exit_code == 0, recorded.output
    for text in ("triage@1.0.0", "tool_mix", "escalation_rate", "chi-square", "no baseline"):
        assert text in recorded.output
    assert "drift alerts" in recorded.output

    again = runner.invoke(app, ["--db", db_url, "--agent", AGENT, "--window", "200", "--json"])
    alerts = json.loads(again.output)["alerts"]
    assert [a["subject"] for a in alerts] == ["support/triage@1.0.0"]
    other = runner.invoke(app, ["--db", db_url, "--agent", "nobody", "--json"])
    assert json.loads(other.output) == {"reports": [], "alerts": []}


# --- the statistics ----------------------------------------------------------------------------


def test_quantile_bins_keep_integer_edges_and_count_every_value() -> None:
    steps = [1, 1, 1, 2, 2, 2, 2, 3, 3, 4]
    edges = quantile_edges(steps, 10)
    assert edges == [1.0, 2.0, 3.0]
    assert bin_counts(steps, edges) == [3, 4, 2, 1]
    assert bin_counts([0, 5], edges) == [1, 0, 0, 1]
    assert quantile_edges([], 10) == []
    assert quantile_edges([7.0] * 50, 10) == [7.0]


def test_sparse_categories_are_merged_before_the_chi_square() -> None:
    result = compare_counts(
        ["a", "b", "rare1", "rare2"], [100, 100, 4, 3], [100, 100, 3, 2], ordered=False
    )
    assert result.test == "chi-square"
    assert result.detail["categories"] == {"a": [100, 100], "b": [100, 100], "rare1/rare2": [7, 5]}
    # Still too rare together: folded into the next rarest category, never dropped.
    folded = compare_counts(["a", "b", "rare"], [100, 50, 1], [100, 50, 1], ordered=False)
    assert folded.detail["categories"] == {"a": [100, 100], "b/rare": [51, 51]}
    tiny = compare_counts(["a", "b"], [3, 0], [0, 3], ordered=False)
    assert tiny.test == "fisher exact"
    assert compare_counts(["a"], [10], [10], ordered=False).test == "none"


def test_rates_use_fishers_exact_test_when_events_are_rare() -> None:
    assert compare_rates(1, 100, 3, 100).test == "fisher exact"
    common = compare_rates(10, 200, 50, 200)
    assert common.test == "two-proportion z"
    assert common.p_value < 1e-6 and common.effect > 0.4
    assert compare_rates(0, 100, 0, 100).p_value == 1.0


def test_psi_is_zero_for_identical_shares_and_grows_with_the_shift() -> None:
    assert psi([50, 30, 20], [100, 60, 40]) == pytest.approx(0.0)
    assert 0 < psi([50, 30, 20], [45, 35, 20]) < psi([50, 30, 20], [20, 30, 50])
    assert psi([50, 0], [40, 10]) > 0.2  # an empty baseline bin is not infinite


def test_false_alarm_rate_of_the_tests_under_no_shift() -> None:
    """Under the null each test's p-value is (close to) uniform: about 1% below 0.01."""
    rng = random.Random(7)
    trials, low_mix, low_rate = 400, 0, 0
    for _ in range(trials):
        a = Counter(rng.choices("abc", [0.6, 0.3, 0.1], k=300))
        b = Counter(rng.choices("abc", [0.6, 0.3, 0.1], k=300))
        mix = compare_counts("abc", [a[c] for c in "abc"], [b[c] for c in "abc"], ordered=False)
        low_mix += mix.p_value < 0.01
        k1 = sum(rng.random() < 0.1 for _ in range(300))
        k2 = sum(rng.random() < 0.1 for _ in range(300))
        low_rate += compare_rates(k1, 300, k2, 300).p_value < 0.01
    assert low_mix <= 10 and low_rate <= 10  # expected 4 each; 10 is p < 0.01 by chance


def test_a_config_is_keyword_only() -> None:
    config = DriftConfig(window_runs=50)
    assert replace(config, alpha=0.05).alpha == 0.05
    with pytest.raises(TypeError):
        DriftConfig(50)  # type: ignore[misc]
