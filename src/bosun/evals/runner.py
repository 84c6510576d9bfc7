"""Offline evaluation: run a golden dataset through an agent, check its behaviour, gate promotion.

`Evaluator.evaluate` runs every case of a dataset (`bosun.evals.dataset`) through a real
`Runtime` (on a throwaway SQLite store unless given one), with the agent's tools in the
sandbox (`bosun.evals.sandbox`: fixtures answer calls, side effects are recorded and
never executed), then checks the case's assertions (`bosun.evals.checks`). With a prompt
name, the agent's instructions are that prompt's version, pinned, with the case's template
variables and the version's model settings. The report has a verdict per assertion with its
reason, cost, latency and steps per case, and the aggregate (pass rate, cost, p50/p95
latency); `save_report` stores it in ``eval_runs``.

`run_gate` evaluates a candidate version and the ``production`` version on the same cases and
compares the paired outcomes (`bosun.evals.gate` explains the test). The verdict is
stored with the candidate's evaluation run, where `PromptRegistry.promote` looks for it.

Runs that wait for a person: a call held for approval counts as called (the assertion is about
the intended action), and the runner decides it as the case says (``approve: true`` by
default), so the run goes on and the rest of the case is checked; an approved side effect is
still only recorded. A question to a person (``ask_human``) is answered from the case's
``answers`` in order; when they run out the run stays parked and the case ends there, which
counts as escalated.
"""

from __future__ import annotations

import asyncio
import json
import logging
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bosun.config import Settings, load_settings
from bosun.data.store import Store
from bosun.errors import UserError
from bosun.evals.checks import AssertionResult, CaseTrace, ProposedCall, check, judge
from bosun.evals.dataset import (
    Case,
    Dataset,
    DatasetError,
    JudgeAssertion,
    MustCall,
    MustNotCall,
)
from bosun.evals.gate import GateConfig, GateVerdict, compare
from bosun.evals.report import CaseReport, EvalReport, save_report, sum_known
from bosun.evals.sandbox import SandboxSecrets, ToolSandbox, check_fixture
from bosun.models import infer_model
from bosun.models.base import AssistantMessage, Model, ModelSettings
from bosun.prompts.registry import (
    PRODUCTION,
    PromptRef,
    PromptRegistry,
    PromptSource,
    PromptVersion,
)
from bosun.runtime.agent import ASK_HUMAN, Agent, ModelPolicy
from bosun.runtime.runtime import RunResult, Runtime, new_run_id
from bosun.runtime.state import RunStatus
from bosun.tools.secrets import SecretsProvider
from bosun.trust import Content

__all__ = [
    "CaseReport",
    "EvalOptions",
    "EvalReport",
    "Evaluator",
    "GateResult",
    "run_gate",
    "save_report",
]

logger = logging.getLogger(__name__)

OnCase = Callable[["CaseReport"], None]
"""Called as each case finishes (a progress bar)."""


@dataclass(frozen=True, kw_only=True)
class EvalOptions:
    """How an evaluation runs."""

    concurrency: int = 4
    """Cases run at once."""
    judge: Model | str | None = None
    """The judge for rubrics that name no model."""
    secrets: SecretsProvider | None = None
    """Credentials for read-only tools that run for real."""
    decided_by: str = "bosun-eval"
    """Who approvals and answers are recorded as."""
    max_rounds: int = 25
    """Approvals and answers one case may take before it stops where it is."""


class Evaluator:
    """Runs datasets through one agent with its tools sandboxed.

    `registry` is needed to evaluate a prompt version; `run_store` keeps the evaluation's runs
    (default: a throwaway SQLite store, deleted afterwards).
    """

    def __init__(
        self,
        agent: Agent,
        *,
        registry: PromptRegistry | None = None,
        run_store: Store | None = None,
        options: EvalOptions | None = None,
        settings: Settings | None = None,
    ) -> None:
        self.agent = agent
        self.registry = registry
        self.options = options or EvalOptions()
        if self.options.concurrency < 1:
            raise UserError("concurrency must be at least 1")
        self._run_store = run_store
        self._settings = settings or load_settings()
        self._judges: dict[str, Model] = {}

    def prompt_name(self, prompt: str | None) -> str | None:
        """The prompt evaluated: the one named, else the one the agent's instructions follow."""
        if prompt is not None:
            return prompt
        source = self.agent.instructions
        return source.ref.name if isinstance(source, PromptSource) else None

    def default_version(self, prompt: str) -> str:
        """The version evaluated when none is named: ``production``'s, else the latest."""
        label = self._registry().label(prompt, PRODUCTION)
        return label.version if label is not None else self._registry().latest(prompt).version

    async def evaluate(
        self,
        dataset: Dataset,
        *,
        prompt: str | None = None,
        version: str | None = None,
        on_case: OnCase | None = None,
    ) -> EvalReport:
        """Run every case; `prompt` and `version` pick the instructions (see the class)."""
        name = self.prompt_name(prompt)
        pinned: PromptVersion | None = None
        if name is not None:
            pinned = self._registry().get(name, version or self.default_version(name))
        elif version is not None:
            raise UserError("a prompt version needs a prompt name (--prompt)")
        self._bind(dataset)
        model = self.agent.resolve_model(self._settings.model)
        semaphore = asyncio.Semaphore(self.options.concurrency)

        async def one(case: Case, store: Store) -> CaseReport:
            async with semaphore:
                report = await self._run_case(case, dataset, store, model, pinned)
            if on_case is not None:
                on_case(report)
            return report

        with _run_store(self._run_store) as store:
            reports = await asyncio.gather(*(one(c, store) for c in dataset.cases))
        return EvalReport(
            id=new_run_id(),
            dataset=dataset.name,
            dataset_path=dataset.path,
            dataset_digest=dataset.digest,
            agent=self.agent.name,
            prompt_name=None if pinned is None else pinned.name,
            prompt_version=None if pinned is None else pinned.version,
            cases=tuple(reports),
        )

    # --- one case ---------------------------------------------------------------------------

    async def _run_case(
        self,
        case: Case,
        dataset: Dataset,
        store: Store,
        model: Model,
        pinned: PromptVersion | None,
    ) -> CaseReport:
        sandbox = ToolSandbox(dataset.fixtures_for(case))
        changes: dict[str, Any] = {"model": model}
        if pinned is not None:
            ref = PromptRef(pinned.name)
            variables = dataset.variables_for(case)
            changes["instructions"] = PromptSource(
                self._registry(), ref, variables=variables, version=pinned.version
            )
            changes["model_policy"] = _with_settings(self.agent, pinned)
        agent = sandbox.agent(self.agent, **changes)
        runtime = Runtime(
            store=store,
            agents=[agent],
            secrets=SandboxSecrets(self.options.secrets),
            settings=self._settings,
        )
        t0 = time.perf_counter()
        try:
            async with runtime:
                result = await runtime.run(agent, _input(case))
                result = await self._settle(runtime, result, case)
                state = await runtime.state(result.run_id)
        except Exception as exc:  # one broken case must not end a long evaluation
            logger.warning("evaluation case %r could not run", case.id, exc_info=True)
            error = f"{type(exc).__name__}: {exc}"
            return _failed_case(case, error, (time.perf_counter() - t0) * 1000, sandbox)
        latency_ms = (time.perf_counter() - t0) * 1000
        calls = tuple(
            _proposed(call.name, call.arguments)
            for message in state.messages
            if isinstance(message, AssistantMessage)
            for call in message.tool_calls
        )
        trace = CaseTrace(
            input=state.objective,
            status=result.status.value,
            output=result.output,
            escalated=result.status in (RunStatus.ESCALATED, RunStatus.WAITING_HUMAN),
            calls=calls,
            cost_usd=result.cost_usd,
            steps=result.model_calls,
        )
        verdicts = await self._check(case, trace)
        return CaseReport(
            id=case.id,
            passed=all(v.passed for v in verdicts),
            critical=case.critical,
            status=result.status.value,
            output=result.output,
            assertions=tuple(verdicts),
            cost_usd=result.cost_usd,
            judge_cost_usd=sum_known(v.cost_usd for v in verdicts),
            latency_ms=latency_ms,
            steps=result.model_calls,
            calls=calls,
            recorded=tuple(sandbox.calls),
            run_id=result.run_id,
        )

    async def _settle(self, runtime: Runtime, result: RunResult, case: Case) -> RunResult:
        """Decide held calls and answer questions as the case says (see the module doc)."""
        answers = list(case.answers)
        by = self.options.decided_by
        for _ in range(self.options.max_rounds):
            if result.status is RunStatus.WAITING_APPROVAL and result.waiting_for:
                # One decision at a time: the run resumes, runs what was approved and holds
                # the rest again.
                result = await runtime.decide(
                    result.run_id,
                    result.waiting_for[0].id,
                    approved=case.approve,
                    decided_by=by,
                    reason=None if case.approve else "rejected by the evaluation case",
                )
            elif result.status is RunStatus.WAITING_HUMAN and answers:
                result = await runtime.hand_back(result.run_id, answers.pop(0), by=by)
            else:
                break
        return result

    async def _check(self, case: Case, trace: CaseTrace) -> list[AssertionResult]:
        verdicts = []
        for assertion in case.expect:
            if isinstance(assertion, JudgeAssertion):
                spec = assertion.judge
                verdicts.append(await judge(spec, trace, self._judge(spec.model)))
            else:
                verdicts.append(check(assertion, trace))
        return verdicts

    # --- checks before running ------------------------------------------------------------

    def _bind(self, dataset: Dataset) -> None:
        """Mistakes in the dataset that only the agent reveals: fixtures or assertions for
        tools it does not have, fixture results its tools cannot return, rubrics without a
        judge. All reported at once, by case."""
        tools = {t.name: t for t in self.agent.tools}
        known = set(tools) | ({ASK_HUMAN.name} if self.agent.ask_human else set())
        problems = []
        for case in dataset.cases:
            issues = []
            for tool, fixtures in dataset.fixtures_for(case).items():
                if tool not in tools:
                    issues.append(f"fixtures for {tool!r}, which the agent does not have")
                    continue
                issues += [p for f in fixtures if (p := check_fixture(tools[tool], f))]
            for assertion in case.expect:
                named = None
                if isinstance(assertion, MustCall):
                    named = assertion.must_call
                elif isinstance(assertion, MustNotCall):
                    named = assertion.must_not_call
                if named is not None and named not in known:
                    issues.append(f"an assertion names {named!r}, which the agent does not have")
                if isinstance(assertion, JudgeAssertion):
                    try:
                        self._judge(assertion.judge.model)
                    except UserError as exc:
                        issues.append(str(exc))
            problems += [f"case {case.id!r}: {issue}" for issue in issues]
        if problems:
            available = ", ".join(sorted(known)) or "none"
            raise DatasetError(
                f"dataset {dataset.path or dataset.name} does not fit agent "
                f"{self.agent.name!r} (tools: {available}):\n- " + "\n- ".join(problems)
            )

    def _judge(self, spec: str | None) -> Model:
        if spec is None:
            default = self.options.judge
            if default is None:
                raise UserError(
                    "a judge rubric names no model and the evaluation has no judge: pass "
                    "--judge MODEL or set `model:` in the rubric"
                )
            if isinstance(default, Model):
                return default
            spec = default
        model = self._judges.get(spec)
        if model is None:
            model = self._judges[spec] = infer_model(spec)
        return model

    def _registry(self) -> PromptRegistry:
        if self.registry is not None:
            return self.registry
        source = self.agent.instructions
        if isinstance(source, PromptSource):
            return source.registry
        raise UserError("evaluating a prompt needs a prompt registry (a store: --db)")


# --- the gate ---------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class GateResult:
    """Both evaluations and the verdict."""

    candidate: EvalReport
    """The candidate version's evaluation (saved with the verdict)."""
    baseline: EvalReport | None
    """Production's, when there is a production version other than the candidate."""
    verdict: GateVerdict
    """Pass or fail, with the reasons and numbers."""

    def to_json(self) -> dict[str, Any]:
        """The ``gate`` column of the candidate's evaluation run."""
        base = self.baseline
        return {
            **self.verdict.to_json(),
            "candidate": {"prompt_version": self.candidate.prompt_version},
            "baseline": None
            if base is None
            else {"prompt_version": base.prompt_version, "eval_run_id": base.id},
        }


async def run_gate(
    evaluator: Evaluator,
    dataset: Dataset,
    *,
    prompt: str,
    candidate: str | None = None,
    baseline: str | None = None,
    config: GateConfig | None = None,
    save_to: Store | None = None,
    on_case: OnCase | None = None,
) -> GateResult:
    """Evaluate `candidate` (default: the latest version) and `baseline` (default: the
    ``production`` version) on `dataset`, compare them, and save both evaluations, the
    verdict with the candidate's, to `save_to` (default: the registry's store)."""
    registry = evaluator._registry()
    candidate = candidate or registry.latest(prompt).version
    if baseline is None:
        label = registry.label(prompt, PRODUCTION)
        baseline = None if label is None else label.version
    if baseline == candidate:
        baseline = None  # judged alone: comparing a version with itself shows nothing
    tried = await evaluator.evaluate(dataset, prompt=prompt, version=candidate, on_case=on_case)
    base = None
    if baseline is not None:
        base = await evaluator.evaluate(dataset, prompt=prompt, version=baseline, on_case=on_case)
    verdict = compare(
        tried.outcomes(), None if base is None else base.outcomes(), config or GateConfig()
    )
    result = GateResult(candidate=tried, baseline=base, verdict=verdict)
    store = save_to or registry.store
    if base is not None:
        save_report(store, base)
    save_report(store, tried, gate=result.to_json(), gate_passed=verdict.passed)
    return result


# --- helpers --------------------------------------------------------------------------------


@contextmanager
def _run_store(given: Store | None) -> Iterator[Store]:
    """The given store, or a throwaway SQLite store deleted on exit."""
    if given is not None:
        yield given
        return
    with tempfile.TemporaryDirectory(prefix="bosun-eval-") as tmp:
        store = Store.open(f"sqlite:///{Path(tmp) / 'runs.db'}")
        try:
            yield store
        finally:
            store.close()


def _input(case: Case) -> str | list[Content]:
    if isinstance(case.input, str):
        return case.input
    return [Content(text=p.text, trust=p.trust, source=p.source) for p in case.input]


def _with_settings(agent: Agent, version: PromptVersion) -> ModelPolicy:
    merged = {**agent.model_policy.settings.model_dump(exclude_none=True), **version.model_settings}
    return replace(agent.model_policy, settings=ModelSettings.model_validate(merged))


def _proposed(name: str, arguments: str) -> ProposedCall:
    try:
        parsed: Mapping[str, Any] | None = json.loads(arguments) if arguments.strip() else {}
    except ValueError:
        parsed = None
    return ProposedCall(name, parsed if isinstance(parsed, dict) else None)


def _failed_case(case: Case, error: str, latency_ms: float, sandbox: ToolSandbox) -> CaseReport:
    return CaseReport(
        id=case.id,
        passed=False,
        critical=case.critical,
        status="error",
        output=None,
        assertions=(),
        cost_usd=None,
        judge_cost_usd=None,
        latency_ms=latency_ms,
        steps=0,
        recorded=tuple(sandbox.calls),
        error=error,
    )
