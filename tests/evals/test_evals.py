"""Offline evaluation: datasets, the tool sandbox, assertions, judges, and the promotion gate."""

from __future__ import annotations

import json
import re
import textwrap
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import typer
from typer.testing import CliRunner

from bosun.cli.prompts import eval_command, prompts_app
from bosun.data.schema import eval_runs
from bosun.data.store import Store
from bosun.evals.dataset import DatasetError, load_dataset, parse_dataset
from bosun.evals.gate import GateConfig, compare, mcnemar_exact_p
from bosun.evals.runner import EvalOptions, Evaluator, run_gate
from bosun.evals.sandbox import RECORDED
from bosun.models.base import ModelRequest, ModelResponse
from bosun.prompts.registry import PromotionRefused, PromptRegistry
from bosun.runtime import Agent
from bosun.testing import ScriptedModel, call, reply
from bosun.tools import tool
from bosun.tools.secrets import MappingSecrets, Secret

# --- an agent whose behaviour depends on its prompt -------------------------------------------


def brain(request: ModelRequest) -> ModelResponse:
    """A scripted support agent. Its system prompt steers it: ``SKIP-LOOKUP`` makes it answer
    without looking the order up (the seeded regression), ``NO-REFUNDS`` makes it never
    refund."""
    system = request.messages[0].content or ""
    user = next(m.content for m in request.messages if m.role == "user") or ""
    done = {m.name for m in request.messages if m.role == "tool"}  # type: ignore[union-attr]
    order = int(re.search(r"\d+", user).group())  # type: ignore[union-attr]
    if "lawyer" in user and "ask_human" not in done:
        return call("ask_human", {"question": "A legal threat: how should I proceed?"})
    if "SKIP-LOOKUP" not in system and "lookup_order" not in done:
        return call("lookup_order", {"order_id": order})
    if "refund" in user and "NO-REFUNDS" not in system and "refund" not in done:
        return call("refund", {"order_id": order, "amount": 30.0, "reason": "damaged item"})
    if "close" in user and "close_account" not in done:
        return call("close_account", {"customer": "ann"})
    return reply(f"Done with order {order}.")


class Effects:
    """What the tools' own code did."""

    def __init__(self) -> None:
        self.log: list[tuple[str, Any]] = []


def support_agent(effects: Effects, *, instructions: str = "Help customers.") -> Agent:
    @tool
    def lookup_order(order_id: int) -> dict[str, Any]:
        """Look an order up."""
        effects.log.append(("lookup_order", order_id))
        return {"order_id": order_id, "status": "delivered", "total": 30}

    @tool(side_effect=True, risk="write", scope="orders:write")
    def refund(order_id: int, amount: float, reason: str) -> dict[str, Any]:
        """Refund an order."""
        effects.log.append(("refund", order_id))
        raise AssertionError("the sandbox executed a side effect")

    @tool(side_effect=True, risk="irreversible", requires_approval=True)
    def close_account(customer: str) -> str:
        """Close a customer's account."""
        effects.log.append(("close_account", customer))
        raise AssertionError("the sandbox executed a side effect")

    return Agent(
        name="support",
        instructions=instructions,
        tools=[lookup_order, refund, close_account],
        model=ScriptedModel(brain, cost_per_1k_tokens=Decimal("0.002")),
        ask_human=True,
    )


def dataset(*cases: dict[str, Any], **extra: Any) -> Any:
    return parse_dataset({"name": "golden", "cases": list(cases), **extra}, name="golden")


def by_id(report: Any) -> dict[str, Any]:
    return report.outcomes()


# --- the sandbox --------------------------------------------------------------------------------


async def test_side_effects_are_recorded_never_executed(store: Store) -> None:
    effects = Effects()
    data = dataset(
        {
            "id": "refund-12",
            "input": "Please refund order 12, it arrived broken.",
            "expect": [
                {"must_call": "lookup_order", "args": {"order_id": 12}},
                {
                    "must_call": "refund",
                    "args": {"order_id": 12, "amount": {"any": True}, "reason": {"regex": "dama"}},
                    "times": 1,
                },
                {"must_not_call": "close_account"},
                {"output_contains": "order 12"},
            ],
        }
    )
    report = await Evaluator(support_agent(effects), run_store=store).evaluate(data)
    case = report.cases[0]
    assert case.passed, case.assertions
    # The read-only tool ran for real; the side effect never reached its code.
    assert effects.log == [("lookup_order", 12)]
    assert [(r.tool, r.answered_by, r.side_effect) for r in case.recorded] == [
        ("lookup_order", "tool", False),
        ("refund", "sandbox", True),
    ]
    assert dict(case.recorded[1].arguments) == {
        "order_id": 12,
        "amount": 30.0,
        "reason": "damaged item",
    }
    # The model was told the effect was recorded, and the run journaled it like any call.
    results = [json.loads(s.payload) for s in store.journal(case.run_id) if s.kind == "tool_result"]
    assert results[1]["tool"] == "refund"
    assert (results[1]["result"]["ok"], results[1]["result"]["data"]) == (True, dict(RECORDED))


async def test_fixtures_answer_by_arguments_and_in_order(store: Store) -> None:
    effects = Effects()
    lost = {"order_id": 7, "status": "lost", "total": 30}
    data = dataset(
        {
            "id": "matched",
            "input": "Where is order 7?",
            "fixtures": {"lookup_order": [{"when": {"order_id": 7}, "result": lost}]},
            "expect": [{"must_call": "lookup_order"}],
        },
        {
            "id": "refund-fails",
            "input": "refund order 8",
            "fixtures": {
                "lookup_order": [{"result": {"order_id": 8, "status": "delivered", "total": 5}}],
                "refund": [{"error": "the payment provider refused"}],
            },
            "expect": [{"must_call": "refund"}],
        },
    )
    report = await Evaluator(support_agent(effects), run_store=store).evaluate(data)
    assert all(c.passed for c in report.cases), report.to_json()
    assert effects.log == []  # every call was answered by a fixture
    matched, failing = report.cases
    assert [r.answered_by for r in matched.recorded] == ["fixture"]
    results = [
        json.loads(s.payload)["result"]
        for case in report.cases
        for s in store.journal(case.run_id)
        if s.kind == "tool_result"
    ]
    assert results[0]["data"] == lost
    assert (results[2]["ok"], results[2]["error_kind"], results[2]["guidance"]) == (
        False,
        "failed",
        "the payment provider refused",
    )


async def test_a_held_call_counts_as_called_and_is_decided_as_the_case_says(
    store: Store,
) -> None:
    effects = Effects()
    data = dataset(
        {
            "id": "approved",
            "input": "close the account for order 3",
            "expect": [{"must_call": "close_account"}, {"escalates": False}],
        },
        {
            "id": "rejected",
            "input": "close the account for order 4",
            "approve": False,
            "expect": [{"must_call": "close_account"}],
        },
    )
    report = await Evaluator(support_agent(effects), run_store=store).evaluate(data)
    approved, rejected = report.cases
    assert approved.passed and rejected.passed
    assert approved.status == rejected.status == "completed"
    assert ("close_account", "sandbox") in [(r.tool, r.answered_by) for r in approved.recorded]
    assert "close_account" not in [r.tool for r in rejected.recorded]  # never reached the tool
    assert all(name != "close_account" for name, _ in effects.log)
    decisions = [
        json.loads(s.payload)
        for s in store.journal(rejected.run_id)
        if s.kind == "approval_decided"
    ]
    assert [(d["approved"], d["decided_by"]) for d in decisions] == [(False, "bosun-eval")]


async def test_questions_to_a_person_are_answered_or_end_the_case_as_escalated(
    store: Store,
) -> None:
    data = dataset(
        {"id": "unanswered", "input": "my lawyer about order 5", "expect": [{"escalates": True}]},
        {
            "id": "answered",
            "input": "my lawyer about order 6",
            "answers": ["Proceed normally."],
            "expect": [{"escalates": False}, {"must_call": "ask_human"}],
        },
    )
    report = await Evaluator(support_agent(Effects()), run_store=store).evaluate(data)
    assert [(c.status, c.passed) for c in report.cases] == [
        ("waiting_human", True),
        ("completed", True),
    ]


async def test_tools_with_credentials_are_sandboxed_without_the_secret() -> None:
    ran: list[str] = []

    @tool(side_effect=True, credential="CRM_TOKEN")
    def update_crm(note: str, token: Secret) -> str:
        """Write a note to the CRM."""
        ran.append(token.reveal())
        return "written"

    @tool(credential="CRM_TOKEN")
    def read_crm(customer: str, token: Secret) -> str:
        """Read the CRM."""
        ran.append(token.reveal())
        return "gold"

    script = ScriptedModel(
        [call("update_crm", {"note": "called"}), call("read_crm", {"customer": "ann"}), "ok"]
    )
    agent = Agent(name="crm", tools=[update_crm, read_crm], model=script)
    data = dataset({"id": "c", "input": "note it", "expect": [{"must_call": "update_crm"}]})
    report = await Evaluator(agent).evaluate(data)
    case = report.cases[0]
    assert case.passed and ran == []  # neither function ran: no real credential was exposed
    assert [(r.tool, r.answered_by) for r in case.recorded] == [
        ("update_crm", "sandbox"),
        ("read_crm", "tool"),
    ]
    # With the real credential, the read-only tool runs; the side effect still does not.
    script = ScriptedModel(
        [call("update_crm", {"note": "called"}), call("read_crm", {"customer": "ann"}), "ok"]
    )
    options = EvalOptions(secrets=MappingSecrets({"CRM_TOKEN": "s3cret"}))
    await Evaluator(agent.with_model(script), options=options).evaluate(data)
    assert ran == ["s3cret"]


# --- assertions and judges ------------------------------------------------------------------


async def test_failed_assertions_say_why() -> None:
    data = dataset(
        {
            "id": "strict",
            "input": "refund order 9",
            "expect": [
                {"must_call": "refund", "args": {"order_id": 10}},
                {"must_not_call": "refund", "args": {"reason": {"contains": "damaged"}}},
                {"must_call": "close_account"},
                {"output_matches": "^Refunded \\$\\d+"},
                {"output_schema": {"type": "object"}},
                {"max_steps": 2},
                {"max_cost_usd": 0},
                {"escalates": True},
            ],
        }
    )
    report = await Evaluator(support_agent(Effects())).evaluate(data)
    reasons = [(a.passed, a.reason) for a in report.cases[0].assertions]
    assert reasons == [
        (
            False,
            '0 of 1 calls matched; got {"amount": 30.0, "order_id": 9, "reason": "damaged item"}',
        ),
        (False, 'called 1 time(s): {"amount": 30.0, "order_id": 9, "reason": "damaged item"}'),
        (False, "close_account was not called (called: lookup_order, refund)"),
        (False, "not in output 'Done with order 9.'"),
        (False, "the output is not JSON"),
        (False, "3 model calls"),
        (False, f"cost ${report.cases[0].cost_usd}"),
        (False, "the run ended completed"),
    ]
    assert not report.cases[0].passed and report.pass_rate == 0


async def test_output_schema_and_limits_pass_when_met() -> None:
    def json_brain(request: ModelRequest) -> ModelResponse:
        return reply('```json\n{"status": "ok", "order": 1}\n```')

    agent = Agent(name="jsonish", model=ScriptedModel(json_brain, cost_per_1k_tokens=Decimal(1)))
    schema = {
        "type": "object",
        "required": ["status"],
        "properties": {"order": {"type": "integer"}},
    }
    data = dataset(
        {
            "id": "ok",
            "input": "status?",
            "expect": [{"output_schema": schema}, {"max_steps": 1}, {"max_cost_usd": 1}],
        }
    )
    report = await Evaluator(agent).evaluate(data)
    assert report.cases[0].passed, report.cases[0].assertions
    assert report.cost_usd is not None and report.cost_usd > 0


async def test_judge_rubrics_are_scored_by_the_judge_model_and_its_cost_counted() -> None:
    asked: list[ModelRequest] = []

    def judge_brain(request: ModelRequest) -> ModelResponse:
        asked.append(request)
        return reply('Sure. {"score": 0.8, "reason": "names the order and is polite"}')

    judge = ScriptedModel(judge_brain, cost_per_1k_tokens=Decimal("0.01"))
    data = dataset(
        {
            "id": "polite",
            "input": "where is order 4?",
            "expect": [
                {"judge": {"rubric": "Names the order number.", "threshold": 0.7}},
                {"judge": {"rubric": "Offers a discount.", "threshold": 0.9, "name": "discount"}},
            ],
        }
    )
    report = await Evaluator(support_agent(Effects()), options=EvalOptions(judge=judge)).evaluate(
        data
    )
    first, second = report.cases[0].assertions
    assert (first.passed, first.score, first.reason) == (
        True,
        0.8,
        "names the order and is polite",
    )
    assert (second.passed, second.name) == (False, "judge discount >= 0.9")
    prompt = asked[0].messages[1].content
    assert "Names the order number." in prompt and "Done with order 4." in prompt
    assert "where is order 4?" in prompt
    case = report.cases[0]
    assert case.judge_cost_usd is not None and case.judge_cost_usd > 0
    assert case.judge_cost_usd == (first.cost_usd or 0) + (second.cost_usd or 0)
    assert report.cost_usd == (case.cost_usd or 0) + case.judge_cost_usd
    assert report.aggregate()["judge_cost_usd"] == str(case.judge_cost_usd)


async def test_a_judge_that_does_not_answer_json_fails_the_rubric() -> None:
    judge = ScriptedModel(lambda request: reply("I think it is fine."))
    data = dataset({"id": "x", "input": "order 1", "expect": [{"judge": {"rubric": "Is fine."}}]})
    report = await Evaluator(support_agent(Effects()), options=EvalOptions(judge=judge)).evaluate(
        data
    )
    verdict = report.cases[0].assertions[0]
    assert not verdict.passed and "did not answer {score, reason} JSON" in verdict.reason


# --- datasets -------------------------------------------------------------------------------


def test_dataset_errors_name_the_case_and_the_field(tmp_path: Path) -> None:
    path = tmp_path / "golden.yaml"
    path.write_text(
        textwrap.dedent(
            """\
            cases:
              - id: ok
                input: hello
                expect: [{escalates: false}]
              - id: bad-matcher
                input: hello
                expect:
                  - must_call: refund
                    args: {reason: {regex: "("}}
                  - must_cal: refund
              - id: bad-fixture
                input: hello
                fixtures: {refund: [{result: 1, error: boom}]}
                expect: [{max_steps: 0}]
              - input: no id
                expect: [{escalates: true}]
              - id: ok
                input: again
                expect: [{escalates: false}]
            """
        )
    )
    with pytest.raises(DatasetError) as caught:
        load_dataset(path)
    message = str(caught.value)
    assert message.startswith(f"dataset {path} is invalid:")
    for expected in (
        "case 'bad-matcher':\n  - expect.0.args: argument 'reason': invalid regex '('",
        "  - expect.1: an assertion needs one of the keys must_call, must_not_call",
        "case 'bad-fixture':\n",
        "  - fixtures.refund.0: give exactly one of result, error, retry",
        "  - expect.0.max_steps: Input should be greater than or equal to 1",
        "case #4 (no id):\n  - id: Field required",
        "case 'ok': id repeats case #1",
    ):
        assert expected in message


def test_jsonl_datasets_and_their_errors(tmp_path: Path) -> None:
    good = tmp_path / "cases.jsonl"
    good.write_text(
        '{"id": "a", "input": "x", "expect": [{"escalates": false}]}\n\n'
        '{"id": "b", "input": [{"text": "mail", "trust": "untrusted", "source": "email"}],'
        ' "expect": [{"must_not_call": "refund"}]}\n'
    )
    data = load_dataset(good)
    assert (data.name, [c.id for c in data.cases], len(data.digest)) == ("cases", ["a", "b"], 64)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "input": "x", "expect": []}\n{oops\n')
    with pytest.raises(DatasetError, match=r"bad\.jsonl, line 2: not JSON"):
        load_dataset(bad)
    (tmp_path / "cases.csv").write_text("id,input\n")
    with pytest.raises(DatasetError, match="use a .yaml, .yml or .jsonl file"):
        load_dataset(tmp_path / "cases.csv")


async def test_a_dataset_that_does_not_fit_the_agent_is_refused_before_running() -> None:
    effects = Effects()
    data = dataset(
        {
            "id": "c1",
            "input": "order 1",
            "fixtures": {
                "lookup_ordr": [{"result": {}}],
                "close_account": [{"result": {"not": "a string"}}],
            },
            "expect": [{"must_call": "refnd"}, {"judge": {"rubric": "Good."}}],
        }
    )
    with pytest.raises(DatasetError) as caught:
        await Evaluator(support_agent(effects)).evaluate(data)
    message = str(caught.value)
    assert "case 'c1': fixtures for 'lookup_ordr', which the agent does not have" in message
    assert "case 'c1': result {\"not\": \"a string\"} does not match 'close_account'" in message
    assert "case 'c1': an assertion names 'refnd', which the agent does not have" in message
    assert "case 'c1': a judge rubric names no model" in message
    assert effects.log == []


# --- the gate -------------------------------------------------------------------------------


def test_exact_mcnemar_p_values() -> None:
    assert mcnemar_exact_p(0, 0) == 1.0
    assert mcnemar_exact_p(0, 7) == 1.0
    assert mcnemar_exact_p(5, 0) == 1 / 32
    assert mcnemar_exact_p(4, 0) == 1 / 16  # not significant at 0.05: the margin rule is needed
    assert mcnemar_exact_p(3, 1) == 5 / 16
    assert mcnemar_exact_p(1, 3) == 15 / 16
    assert 0 < mcnemar_exact_p(1500, 1400) < 0.05  # large n: exact, no float overflow


class Out:
    def __init__(self, id: str, passed: bool, critical: bool = False) -> None:
        self.id, self.passed, self.critical = id, passed, critical


def outcomes(*passed: bool, critical: int | None = None) -> dict[str, Out]:
    return {f"c{i}": Out(f"c{i}", p, critical == i) for i, p in enumerate(passed)}


def test_gate_rules_statistics_margin_and_critical_cases() -> None:
    loose = GateConfig(margin=1.0)
    # Seven regressions, no improvement: significant whatever the margin.
    verdict = compare(outcomes(*[False] * 7, True), outcomes(*[True] * 8), loose)
    assert not verdict.passed and verdict.p_value == 1 / 128
    assert "significant regression" in verdict.reasons[0]
    # Two regressions on ten cases: not significant, but 20 points below the 5-point margin.
    verdict = compare(outcomes(False, False, *[True] * 8), outcomes(*[True] * 10))
    assert not verdict.passed and len(verdict.reasons) == 1 and "margin" in verdict.reasons[0]
    # One critical case regressed, one other improved: only the critical rule fires.
    verdict = compare(
        outcomes(False, True, True, critical=0), outcomes(True, False, True, critical=0)
    )
    assert verdict.reasons == ("critical case(s) regressed: c0",)
    # Equal, or better: passes.
    assert compare(outcomes(True, False), outcomes(True, False)).passed
    better = compare(outcomes(True, True, True), outcomes(True, False, False))
    assert better.passed and better.improvements == ("c1", "c2")
    # No baseline: critical cases and the minimum pass rate.
    alone = compare(outcomes(True, False, critical=1), None)
    assert not alone.passed and alone.critical_regressions == ("c1",)
    assert not compare(outcomes(True, False), None, GateConfig(min_pass_rate=0.6)).passed


GOLDEN = [
    {
        "id": f"case-{n}",
        "input": text.format(n=n),
        "critical": n == 1,
        "expect": [{"must_call": "lookup_order", "args": {"order_id": n}}, *extra],
    }
    for n, text, extra in [
        (1, "Where is order {n}?", []),
        (2, "Status of order {n}", []),
        (3, "refund order {n} please", [{"must_call": "refund"}]),
        (4, "refund order {n}, it broke", [{"must_call": "refund"}]),
        (5, "Is order {n} late?", []),
        (6, "order {n}: when?", []),
    ]
]


async def test_the_gate_fails_a_regression_passes_an_improvement_and_guards_promotion(
    store: Store,
) -> None:
    registry = PromptRegistry(store)
    registry.create("support", "1.0.0", "Help customers. NO-REFUNDS.")
    registry.create("support", "1.1.0", "Help customers faster. SKIP-LOOKUP.")  # regression
    registry.create("support", "1.2.0", "Help customers; refunds are fine.")  # better
    evaluator = Evaluator(support_agent(Effects()), registry=registry)
    data = dataset(*GOLDEN)

    # No production version yet: judged alone (its critical case passes).
    first = await run_gate(evaluator, data, prompt="support", candidate="1.0.0")
    assert first.baseline is None and first.verdict.passed
    assert first.candidate.passed == 4  # the two refund cases fail under NO-REFUNDS
    registry.promote("support", "1.0.0", "production", by="ana")

    regressed = await run_gate(evaluator, data, prompt="support", candidate="1.1.0")
    verdict = regressed.verdict
    assert not verdict.passed
    assert verdict.regressions == ("case-1", "case-2", "case-5", "case-6")
    assert verdict.critical_regressions == ("case-1",)
    assert verdict.candidate_pass_rate == 0 and verdict.baseline_pass_rate == 4 / 6
    with pytest.raises(PromotionRefused, match="failed its latest gate"):
        registry.promote("support", "1.1.0", "production", by="ana")

    better = await run_gate(evaluator, data, prompt="support")  # the latest: 1.2.0
    assert better.candidate.prompt_version == "1.2.0"
    assert better.verdict.passed and better.verdict.improvements == ("case-3", "case-4")
    assert better.candidate.pass_rate == 1.0
    registry.promote("support", "1.2.0", "production", by="ana")
    assert registry.resolve("support").version == "1.2.0"

    registry.create("support", "1.2.1", "Help customers; refunds are fine!")  # same behaviour
    equal = await run_gate(evaluator, data, prompt="support", candidate="1.2.1")
    assert equal.verdict.passed and equal.verdict.p_value == 1.0
    assert equal.verdict.regressions == equal.verdict.improvements == ()

    with store.engine.connect() as conn:
        rows = {r.id: r for r in conn.execute(sa.select(eval_runs)).all()}
    stored = sorted(
        (r.prompt_version, r.passed, r.cases, str(r.gate_passed)) for r in rows.values()
    )
    assert stored == [
        ("1.0.0", 4, 6, "None"),  # the baseline's own runs: no verdict of their own
        ("1.0.0", 4, 6, "None"),
        ("1.0.0", 4, 6, "True"),
        ("1.1.0", 0, 6, "False"),
        ("1.2.0", 6, 6, "None"),
        ("1.2.0", 6, 6, "True"),
        ("1.2.1", 6, 6, "True"),
    ]
    candidate = rows[regressed.candidate.id]
    gate = json.loads(candidate.gate)
    assert gate["test"] == "mcnemar_exact_one_sided" and gate["p_value"] == 1 / 16
    assert gate["baseline"] == {"prompt_version": "1.0.0", "eval_run_id": regressed.baseline.id}
    assert rows[gate["baseline"]["eval_run_id"]].gate is None
    report = json.loads(candidate.report)
    assert report["aggregate"]["passed"] == 0 and len(report["cases"]) == 6
    assert report["cases"][0]["assertions"][0]["passed"] is False


async def test_prompt_model_settings_and_variables_reach_the_model(store: Store) -> None:
    seen: list[ModelRequest] = []

    def spy(request: ModelRequest) -> ModelResponse:
        seen.append(request)
        return reply("ok")

    registry = PromptRegistry(store)
    registry.create(
        "greeter",
        "1.0.0",
        "Greet {{ who }} in {{ lang }}.",
        variables={"who": "str", "lang": "str"},
        model_settings={"temperature": 0.3, "max_tokens": 50},
    )
    agent = Agent(name="greeter", model=ScriptedModel(spy))
    data = dataset(
        {"id": "a", "input": "hi", "variables": {"who": "Ann"}, "expect": [{"escalates": False}]},
        {"id": "b", "input": "hi", "variables": {"missing": 1}, "expect": [{"escalates": False}]},
        variables={"lang": "French"},
    )
    report = await Evaluator(agent, registry=registry, run_store=store).evaluate(
        data, prompt="greeter"
    )
    ok, broken = report.cases
    assert ok.passed and seen[0].messages[0].content == "Greet Ann in French."
    assert (seen[0].settings.temperature, seen[0].settings.max_tokens) == (0.3, 50)
    started = json.loads(store.journal(ok.run_id)[0].payload)
    assert started["prompt"]["name"] == "greeter" and started["prompt"]["version"] == "1.0.0"
    assert not broken.passed and broken.status == "error"
    assert "does not declare variables ['missing']" in (broken.error or "")


# --- the command line -------------------------------------------------------------------------


cli = typer.Typer()
cli.command("eval")(eval_command)
cli.add_typer(prompts_app, name="prompts")
runner = CliRunner()


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A user's project: an agent module, a golden dataset and prompt files."""
    module = f"agents_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{module}.py").write_text(
        textwrap.dedent(
            f"""
            import sys
            sys.path.insert(0, {str(Path(__file__).parent)!r})
            from test_evals import Effects, support_agent
            agent = support_agent(Effects())
            """
        )
    )
    (tmp_path / "golden.yaml").write_text(json.dumps({"name": "golden", "cases": GOLDEN}))
    (tmp_path / "prompts").mkdir()
    for version, text in [("1.0.0", "Help. NO-REFUNDS."), ("1.1.0", "Help. SKIP-LOOKUP.")]:
        (tmp_path / "prompts" / f"support-{version}.yaml").write_text(
            f"name: support\nversion: {version}\nowner: ana\ntemplate: {text}\n"
        )
    monkeypatch.chdir(tmp_path)
    return {"agent": f"{module}:agent", "db": f"sqlite:///{tmp_path / 'bosun.db'}"}


def test_cli_gate_blocks_a_regression_end_to_end(project: dict[str, str]) -> None:
    db = ["--db", project["db"]]

    def invoke(*args: str) -> Any:
        return runner.invoke(cli, [*args, *db])

    assert invoke("prompts", "create", "prompts/support-1.0.0.yaml", "--by", "ana").exit_code == 0
    gate = ["eval", "golden.yaml", "--agent", project["agent"], "--prompt", "support", "--gate"]
    first = invoke(*gate)
    assert first.exit_code == 0, first.output
    assert "4/6 passed" in first.output and "gate passed" in first.output
    assert invoke("prompts", "promote", "support", "1.0.0", "--by", "ana").exit_code == 0

    assert invoke("prompts", "create", "prompts/support-1.1.0.yaml").exit_code == 0
    regressed = invoke(*gate)
    assert regressed.exit_code == 1, regressed.output
    assert "gate FAILED" in regressed.output and "critical case(s) regressed: case-1" in (
        regressed.output
    )
    assert 'case-2: must call lookup_order with {"order_id": 2}: lookup_order was not called' in (
        regressed.output
    )
    refused = invoke("prompts", "promote", "support", "1.1.0", "--by", "ana")
    assert refused.exit_code == 2 and "cannot go to production" in refused.output

    listed = invoke("prompts", "list")
    assert "support" in listed.output and "production -> 1.0.0" in listed.output
    shown = invoke("prompts", "show", "support", "--version", "1.1.0")
    assert "SKIP-LOOKUP" in shown.output and "gate FAILED" in shown.output
    diff = invoke("prompts", "diff", "support", "1.0.0", "1.1.0")
    assert "-Help. NO-REFUNDS." in diff.output and "+Help. SKIP-LOOKUP." in diff.output

    plain = invoke("eval", "golden.yaml", "--agent", project["agent"], "--prompt", "support")
    assert plain.exit_code == 0 and "support@1.0.0" in plain.output  # production's version


def test_cli_canary_rollback_and_sync(project: dict[str, str], tmp_path: Path) -> None:
    db = ["--db", project["db"]]

    def invoke(*args: str) -> Any:
        return runner.invoke(cli, [*args, *db])

    synced = invoke("prompts", "sync", str(tmp_path / "prompts"))
    assert synced.exit_code == 0 and "2 created, 0 unchanged" in synced.output
    for version in ("1.0.0", "1.1.0"):
        assert invoke("prompts", "promote", "support", version, "-l", "staging").exit_code == 0
    canary = invoke("prompts", "promote", "support", "1.0.0", "-l", "staging", "--canary", "10")
    assert "canary 10% -> 1.0.0" in canary.output
    rolled = invoke("prompts", "rollback", "support", "-l", "staging", "--by", "bo")
    assert rolled.exit_code == 0 and "staging -> 1.0.0" in rolled.output
    assert "canary" not in rolled.output
    bad = invoke("eval", "nope.yaml", "--agent", project["agent"])
    assert bad.exit_code == 2 and "cannot read dataset" in bad.output
