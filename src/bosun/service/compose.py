"""The one place the system is assembled: store -> runtime -> gateway -> worker -> app.

```
compose(settings, agents)
  store    Store.open(settings.resolved_database_url)            (or the one handed in)
  economy  the agents' models -> Router(tiers) / SemanticCache     (when [economy] says so)
  runtime  Runtime(store, agents, PII vault, injection screen, cost guard, metrics)
  gateway  Gateway(runtime, ApiKeys(store, roles), rate limiter, screen)
  pipelines Pipelines(runtime, pipelines): their agents join the runtime  (when any given)
  worker   Worker(runtime, webhooks, trace exporter, online evaluation + shadow jobs)
           PipelineWorker(pipelines) beside it                    (when any pipelines)
  app      create_app(gateway, store, worker, pipelines)           (System.app(), on demand)
```

`bosun serve`, `bosun worker`, `bosun inbox`, the demo and the service tests all build through
`compose`, so they run the same stack. Each part gets what it needs handed to it; none reaches
through another for its store or agents.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING

from bosun.config import Settings
from bosun.data.store import Store
from bosun.errors import ConfigError
from bosun.gateway.auth import ApiKeys, Roles
from bosun.gateway.gateway import Gateway
from bosun.gateway.ratelimit import RateLimiter, RateLimitPolicy
from bosun.observe.metrics import RunMetrics
from bosun.orchestration.pipeline import Pipeline
from bosun.orchestration.runner import Pipelines
from bosun.orchestration.worker import PipelineWorker
from bosun.runtime.agent import Agent
from bosun.runtime.runtime import Runtime
from bosun.service.worker import Worker

if TYPE_CHECKING:
    from fastapi import FastAPI

    from bosun.gateway.guardrails import Guardrail

__all__ = [
    "System",
    "background_jobs",
    "build_gateway",
    "build_runtime",
    "build_worker",
    "compose",
    "economise",
    "roles_for",
    "submitter_grants",
]

Job = Callable[[], Awaitable[object]]


@dataclass(kw_only=True)
class System:
    """bosun assembled: every part, built once and handed to the parts above it."""

    settings: Settings
    """What it was built from."""
    store: Store
    """The system of record."""
    runtime: Runtime
    """Drives runs of the served agents."""
    gateway: Gateway
    """The perimeter in front of the runtime."""
    worker: Worker | None
    """Claims queued runs; None for an API-only process."""
    pipelines: Pipelines | None = None
    """The served pipelines over the runtime; None when there are none."""
    pipeline_worker: PipelineWorker | None = None
    """Claims queued pipelines (beside `worker`); None without pipelines or a worker."""
    _app: FastAPI | None = field(default=None, repr=False)

    @property
    def grants(self) -> dict[str, tuple[str, ...]]:
        """Per agent, the tool scopes a ``submitter``'s runs carry (printed at startup)."""
        return submitter_grants(self.gateway.keys.roles, self.runtime.agents.values())

    def app(self) -> FastAPI:
        """The REST API over this system (built on first use; FastAPI loads only then)."""
        if self._app is None:
            from bosun.service.app import create_app

            self._app = create_app(
                self.gateway,
                store=self.store,
                settings=self.settings.service,
                worker=self.worker,
                pipelines=self.pipelines,
                pipeline_worker=self.pipeline_worker,
            )
        return self._app

    async def aclose(self) -> None:
        """Close what the parts hold: webhook client, trace exporter, runtime, store."""
        worker = self.worker
        if worker is not None and worker.webhooks is not None:
            await worker.webhooks.aclose()
        if worker is not None and worker.tracer is not None:
            worker.tracer.shutdown()
        await self.runtime.aclose()
        self.store.close()


def compose(
    settings: Settings,
    agents: Sequence[Agent],
    *,
    store: Store | None = None,
    worker: bool = True,
    warm: bool = False,
    pipelines: Sequence[Pipeline] = (),
) -> System:
    """Build the system for `agents` and `pipelines` as `settings` say. `store` defaults to
    the configured database (migrated on open); ``worker=False`` builds an API-only process;
    ``warm=True`` loads the PII recognizers now rather than in the first run (long-lived
    processes). The pipelines' agents are served too."""
    if not agents and not pipelines:
        raise ConfigError(
            "no agents to serve: pass --agent MODULE:AGENT (or --pipeline MODULE:PIPELINE), "
            "or set agents (or pipelines) in bosun.toml"
        )
    store = store if store is not None else Store.open(settings.resolved_database_url)
    if settings.economy.any:
        economise(settings, [*agents, *(a for p in pipelines for a in p.agents)], store=store)
    runtime = build_runtime(settings, agents, store=store, warm=warm)
    # Before the gateway: the pipelines' agents join the runtime here, and the submitter
    # role's tool scopes are drawn from the runtime's agents.
    served = Pipelines(runtime, pipelines) if pipelines else None
    gateway = build_gateway(runtime, settings, store=store)
    run_worker = build_worker(runtime, settings, store=store) if worker else None
    pipeline_worker = None
    if served is not None and run_worker is not None:
        pipeline_worker = PipelineWorker(
            served, owner=f"{run_worker.owner}:pipelines", settings=settings.service
        )
    return System(
        settings=settings,
        store=store,
        runtime=runtime,
        gateway=gateway,
        worker=run_worker,
        pipelines=served,
        pipeline_worker=pipeline_worker,
    )


def economise(settings: Settings, agents: Sequence[Agent], *, store: Store) -> None:
    """Serve `agents` through the tiers and the semantic cache of ``[economy]``: each
    agent it applies to gets the router (or its own model in the cache) as its model, in
    place, so that a pipeline sharing the agent object uses it too. An agent whose model is
    already a router or a cache (built in code) is left as it is."""
    from bosun.economy.configured import Economy

    economy = Economy(settings.economy, store=store)
    economy.check_agents({a.name for a in agents})
    for agent in agents:
        if economy.applies_to(agent.name) and not economy.configured_in_code(agent.model):
            agent.model = economy.model_for(partial(agent.resolve_model, settings.model))


def build_runtime(
    settings: Settings, agents: Sequence[Agent], *, store: Store, warm: bool = False
) -> Runtime:
    """A runtime over `store` with the gateway's PII vault and injection screen, as the
    settings ask. ``warm=True`` loads the PII recognizers now (about two seconds) rather
    than in the first run, for long-lived processes."""
    privacy = screen = None
    cfg = settings.service
    if cfg.mask_pii:
        from bosun.gateway.pii import DEFAULT_ENTITIES, WITH_NER, PiiDetector
        from bosun.gateway.vault import PiiVault, VaultCipher, load_or_create_key

        key_b64 = None if cfg.vault_key is None else cfg.vault_key.get_secret_value()
        key = load_or_create_key(settings.home / "vault.key", key_b64=key_b64)
        detector = PiiDetector(entities=WITH_NER if cfg.pii_names else DEFAULT_ENTITIES)
        if warm:
            detector.load()
        privacy = PiiVault(detector, VaultCipher(key))
    if cfg.screen_injections:
        from bosun.gateway.injection import InjectionScreen

        if cfg.screen_embeddings:
            from bosun.gateway.injection.embedding import MiniLmEmbedder

            screen = InjectionScreen(embedder=MiniLmEmbedder())
        else:
            screen = InjectionScreen()
    spend = None
    if settings.cost.any:
        from bosun.observe.alerts import AlertWebhook
        from bosun.observe.cost import CostCaps, CostGuard

        c = settings.cost
        notify = None
        if c.alert_webhook is not None:
            secret = "" if c.alert_secret is None else c.alert_secret.get_secret_value()
            notify = AlertWebhook(c.alert_webhook, secret)
        caps = CostCaps(
            per_run_usd=c.per_run_usd,
            per_agent_day_usd=c.per_agent_day_usd,
            per_tenant_day_usd=c.per_tenant_day_usd,
        )
        spend = CostGuard(store, caps, notify=notify)
    metrics = RunMetrics()
    runtime = Runtime(
        store=store,
        agents=agents,
        settings=settings,
        privacy=privacy,
        screen=screen,
        spend=spend,
        observer=metrics,
    )
    metrics.watch_breakers(runtime.breakers)
    return runtime


def build_gateway(runtime: Runtime, settings: Settings, *, store: Store) -> Gateway:
    """The gateway over `runtime`: API keys in `store`, roles and rate limits from settings,
    output guardrails unless switched off."""
    cfg = settings.service
    pepper = None if cfg.key_pepper is None else cfg.key_pepper.get_secret_value().encode()
    keys = ApiKeys(store, roles=roles_for(settings, runtime.agents.values()), pepper=pepper)
    policy = RateLimitPolicy(
        principal_requests=cfg.requests_per_principal,
        principal_tokens=cfg.tokens_per_principal,
    )
    limiter = RateLimiter(policy, storage_uri=cfg.rate_limit_storage)
    guardrails = None
    if cfg.output_guardrails:
        from bosun.gateway.guardrails import Guardrails, PiiGuard, SecretsGuard
        from bosun.gateway.vault import PiiVault

        guards: list[Guardrail] = [SecretsGuard()]
        if isinstance(runtime.privacy, PiiVault):
            guards.append(PiiGuard(runtime.privacy.detector))
        guardrails = Guardrails(guards)
    return Gateway(
        runtime=runtime, keys=keys, limiter=limiter, screen=runtime.screen, guardrails=guardrails
    )


def roles_for(settings: Settings, agents: Iterable[Agent]) -> Roles:
    """bosun's roles with the ``submitter``'s tool scopes: `tool_scopes` when set, else the
    scopes the agents' tools declare (see `ServiceSettings.tool_scopes`)."""
    scopes = settings.service.tool_scopes
    if scopes is None:
        scopes = tuple(sorted({s for agent in agents for s in agent.scopes}))
    return Roles.builtin(tool_scopes=scopes)


def submitter_grants(roles: Roles, agents: Iterable[Agent]) -> dict[str, tuple[str, ...]]:
    """Per agent, the tool scopes a run submitted by a plain ``submitter`` carries: what
    `bosun serve` prints at startup. A scope missing here makes that tool answer
    "unauthorized" in every such run."""
    role = roles.get("submitter")
    return {a.name: tuple(sorted(s for s in a.scopes if role.grants(s))) for a in agents}


def build_worker(runtime: Runtime, settings: Settings, *, store: Store) -> Worker:
    """A worker over `runtime` with the webhooks, trace export and background jobs the
    settings ask for."""
    webhooks = None
    if settings.service.webhooks:
        from bosun.service.webhooks import WebhookDispatcher

        webhooks = WebhookDispatcher(store, settings.service.webhooks)
    tracer = None
    if settings.otlp_endpoint:
        from bosun.observe.export import TraceExporter

        tracer = TraceExporter.otlp(
            store, endpoint=settings.otlp_endpoint, headers=settings.otlp_headers
        )
    return Worker(
        runtime,
        settings=settings.service,
        webhooks=webhooks,
        tracer=tracer,
        background=background_jobs(runtime, settings, store=store),
    )


def background_jobs(runtime: Runtime, settings: Settings, *, store: Store) -> list[Job]:
    """Online evaluation, shadow runs and memory pruning, as the settings ask."""
    jobs: list[Job] = []
    online = settings.online
    if online.enabled:
        from bosun.evals.dataset import Judge
        from bosun.evals.online import OnlineEvaluator

        judges = [Judge(rubric=text, name=name) for name, text in online.rubrics.items()]
        judge_model = None
        if judges:
            if online.judge_model is None:
                raise ConfigError("online.rubrics need online.judge_model")
            from bosun.models import infer_model

            judge_model = infer_model(online.judge_model)
        evaluator = OnlineEvaluator(
            store,
            judges=judges,
            judge_model=judge_model,
            sample_rate=online.sample_rate if judges else 0.0,
            agents=list(runtime.agents),
        )
        jobs.append(evaluator.score_due)
    if online.shadow:
        from bosun.evals.shadow import ShadowRunner
        from bosun.prompts.registry import PromptSource

        for agent in runtime.agents.values():
            if isinstance(agent.instructions, PromptSource):
                source = agent.instructions
                runner = ShadowRunner(
                    store, source.registry, agent, prompt=source.ref.name, label=source.ref.label
                )
                jobs.append(runner.shadow_due)
    memory = settings.memory
    if memory.prune_every_s:
        from bosun.memory.upkeep import MemoryUpkeep

        upkeep = MemoryUpkeep(
            store,
            every_s=memory.prune_every_s,
            unused_days=memory.unused_days,
            similarity=memory.similarity,
        )
        jobs.append(upkeep.prune_due)
    return jobs
