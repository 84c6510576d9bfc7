"""The evaluation gate, started from the prompt console and run in the background.

A gate evaluates a candidate version and the ``production`` version on the prompt's golden
dataset (`bosun.evals.runner.run_gate`, exactly what ``bosun eval --gate`` runs) and stores
both evaluations with the verdict, where `PromptRegistry.promote` looks for it. It can take
minutes on a real model, so it runs as a task of this process and the page polls its
progress; the outcome lives in the store, so every process shows it once it is done. Who
started it is audited.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass, field

from bosun.config import Settings
from bosun.data.store import AuditEvent, Store
from bosun.errors import RunStateConflict, UserError
from bosun.evals.dataset import load_dataset
from bosun.evals.runner import CaseReport, EvalOptions, Evaluator, GateResult, run_gate
from bosun.prompts.registry import PromptRegistry
from bosun.runtime.agent import Agent

__all__ = ["GateJob", "GateJobs"]

logger = logging.getLogger(__name__)


@dataclass(kw_only=True)
class GateJob:
    """One gate running (or run) in this process."""

    prompt: str
    """The prompt."""
    version: str
    """The candidate version."""
    by: str
    """Who started it."""
    started_at: float
    """When."""
    total: int
    """Cases to evaluate (both versions together)."""
    done: int = 0
    """Cases evaluated so far."""
    passed: bool | None = None
    """The verdict, once there is one."""
    eval_run: str | None = None
    """The candidate's stored evaluation run, once saved."""
    error: str | None = None
    """Why it could not finish, if it could not."""
    task: asyncio.Task[None] | None = field(default=None, repr=False)

    @property
    def running(self) -> bool:
        """Whether it is still evaluating."""
        return self.task is not None and not self.task.done()

    def to_json(self) -> dict[str, object]:
        """What the page polls."""
        return {
            "running": self.running,
            "done": self.done,
            "total": self.total,
            "passed": self.passed,
            "eval_run": self.eval_run,
            "error": self.error,
        }


class GateJobs:
    """Gates started from this process, by (prompt, version)."""

    def __init__(
        self,
        *,
        store: Store,
        registry: PromptRegistry,
        agents: dict[str, Agent],
        settings: Settings,
    ) -> None:
        self._store = store
        self._registry = registry
        self._agents = agents
        self._settings = settings
        self._jobs: dict[tuple[str, str], GateJob] = {}

    def configured(self, prompt: str) -> bool:
        """Whether the prompt has a gate the dashboard can run (`ServiceSettings.prompt_gates`)."""
        return prompt in self._settings.service.prompt_gates

    def get(self, prompt: str, version: str) -> GateJob | None:
        """The gate of `version` started in this process, if any."""
        return self._jobs.get((prompt, version))

    async def start(self, prompt: str, version: str, *, by: str) -> GateJob:
        """Start the gate of `prompt`@`version`; a second start while one runs is a conflict."""
        spec = self._settings.service.prompt_gates.get(prompt)
        if spec is None:
            raise UserError(
                f"prompt {prompt!r} has no gate to run here: set service.prompt_gates."
                f"{prompt} (agent, dataset), or run `bosun eval --gate`"
            )
        agent = self._agents.get(spec.agent)
        if agent is None:
            raise UserError(f"the gate of {prompt!r} names agent {spec.agent!r}, not served here")
        await asyncio.to_thread(self._registry.get, prompt, version)  # PromptNotFound
        running = self._jobs.get((prompt, version))
        if running is not None and running.running:
            raise RunStateConflict(f"the gate of {prompt}@{version} is already running")
        dataset = await asyncio.to_thread(load_dataset, spec.dataset)
        label = await asyncio.to_thread(self._registry.label, prompt)
        twice = label is not None and label.version != version
        job = GateJob(
            prompt=prompt,
            version=version,
            by=by,
            started_at=time.time(),
            total=len(dataset.cases) * (2 if twice else 1),
        )

        def advance(_: CaseReport) -> None:
            job.done += 1

        evaluator = Evaluator(
            agent,
            registry=self._registry,
            options=EvalOptions(concurrency=spec.concurrency, decided_by=f"bosun-eval:{by}"),
            settings=self._settings,
        )

        async def go() -> None:
            try:
                result = await run_gate(
                    evaluator, dataset, prompt=prompt, candidate=version, on_case=advance
                )
            except Exception as exc:
                logger.warning("the gate of %s@%s failed", prompt, version, exc_info=True)
                job.error = f"{type(exc).__name__}: {exc}"
                return
            job.passed = result.verdict.passed
            job.eval_run = result.candidate.id
            await asyncio.to_thread(self._audit, job, result)

        self._jobs[(prompt, version)] = job
        job.task = asyncio.get_running_loop().create_task(go(), name=f"gate {prompt}@{version}")
        return job

    def _audit(self, job: GateJob, result: GateResult) -> None:
        payload = {
            "name": job.prompt,
            "version": job.version,
            "eval_run": result.candidate.id,
            "passed": result.verdict.passed,
            "reasons": list(result.verdict.reasons),
        }
        event = AuditEvent(
            action="prompt_gate_run",
            payload=json.dumps(payload, sort_keys=True),
            created_at=time.time(),
            actor=job.by,
        )
        self._store.write([event])

    async def aclose(self) -> None:
        """Stop gates still running (the process is shutting down)."""
        tasks = [job.task for job in self._jobs.values() if job.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
