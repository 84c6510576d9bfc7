"""Assembling the service from settings: agents by import path, the runtime with the PII vault
and the injection screen, the gateway with API keys and rate limits. `bosun serve`,
`bosun worker` and tests build through here, so they run the same stack."""

from __future__ import annotations

from collections.abc import Sequence

from bosun.config import Settings
from bosun.data.store import Store
from bosun.gateway.auth import ApiKeys, Roles
from bosun.gateway.gateway import Gateway
from bosun.gateway.ratelimit import RateLimiter, RateLimitPolicy
from bosun.observe.metrics import RunMetrics
from bosun.runtime.agent import Agent
from bosun.runtime.runtime import Runtime

__all__ = ["build_gateway", "build_runtime"]


def build_runtime(
    settings: Settings, agents: Sequence[Agent], *, store: Store, warm: bool = False
) -> Runtime:
    """A runtime over `store` with the gateway's PII vault and injection screen, as the
    settings ask. ``warm=True`` loads the PII recognizers now (about two seconds) rather
    than in the first run, for long-lived processes."""
    privacy = screen = None
    cfg = settings.service
    if cfg.mask_pii:
        from bosun.gateway.pii import PiiDetector
        from bosun.gateway.vault import PiiVault, VaultCipher, load_or_create_key

        key_b64 = None if cfg.vault_key is None else cfg.vault_key.get_secret_value()
        key = load_or_create_key(settings.home / "vault.key", key_b64=key_b64)
        detector = PiiDetector()
        if warm:
            detector.load()
        privacy = PiiVault(detector, VaultCipher(key))
    if cfg.screen_injections:
        from bosun.gateway.injection import InjectionScreen

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


def build_gateway(runtime: Runtime, settings: Settings) -> Gateway:
    """The gateway over `runtime`, for the agents registered in it."""
    cfg = settings.service
    pepper = None if cfg.key_pepper is None else cfg.key_pepper.get_secret_value().encode()
    keys = ApiKeys(runtime.store, roles=Roles.builtin(tool_scopes=cfg.tool_scopes), pepper=pepper)
    policy = RateLimitPolicy(
        principal_requests=cfg.requests_per_principal,
        principal_tokens=cfg.tokens_per_principal,
    )
    limiter = RateLimiter(policy, storage_uri=cfg.rate_limit_storage)
    return Gateway(
        runtime=runtime,
        keys=keys,
        agents=dict(runtime.agents),
        limiter=limiter,
        screen=runtime.screen,
    )
