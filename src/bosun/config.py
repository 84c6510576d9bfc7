"""Settings: environment variables (``BOSUN_*``) over ``bosun.toml`` over defaults, read here only.

``BOSUN_HOME`` moves the data directory (default ``~/.bosun``), so tests and demos never touch
a user's files. ``bosun.toml`` is looked up in the working directory, then in ``BOSUN_HOME``.
"""

from __future__ import annotations

import os
import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from bosun.errors import ConfigError

__all__ = [
    "INBOX_INSTRUCTION",
    "CacheSettings",
    "CostSettings",
    "EconomySettings",
    "MemorySettings",
    "KnowledgeSettings",
    "OnlineSettings",
    "PromptGate",
    "ServiceSettings",
    "Settings",
    "TemporalSettings",
    "WebhookSubscription",
    "load_settings",
    "normalise_database_url",
]

# SQLAlchemy reads a bare ``postgresql://`` as psycopg2, which bosun does not install; bosun
# ships psycopg 3. ``postgres://`` is what libpq, Heroku and most hosting dashboards print.
_POSTGRES_SCHEMES = frozenset({"postgresql", "postgres"})


def normalise_database_url(url: str) -> str:
    """`url` as SQLAlchemy should see it: ``postgresql://`` and ``postgres://`` name the
    psycopg (v3) driver bosun ships; a URL naming its driver, or another database, is kept."""
    scheme, sep, rest = url.partition("://")
    if sep and scheme.lower() in _POSTGRES_SCHEMES:
        return f"postgresql+psycopg://{rest}"
    return url


INBOX_INSTRUCTION = "Process this email from {sender}. Replies go to {sender}."
"""The trusted instruction sent with an inbound email by default (``{sender}``: its From
address), on every path: the API, IMAP, a directory, the demo."""


def _default_home() -> Path:
    return Path(os.environ.get("BOSUN_HOME") or Path.home() / ".bosun")


class WebhookSubscription(BaseModel):
    """Where run events are posted (signed; see `bosun.service.webhooks`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str
    """The receiver (http or https)."""
    secret: SecretStr
    """Signing secret shared with the receiver (``whsec_`` + base64, or any string)."""
    events: tuple[str, ...] = ("run.completed", "run.failed", "run.escalated", "run.waiting")
    """Event types to send."""
    tenant: str | None = None
    """Only runs of this tenant; None for all."""


class PromptGate(BaseModel):
    """What the dashboard's prompt console evaluates a version of one prompt with."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    agent: str
    """The served agent (by name) whose instructions the prompt is."""
    dataset: Path
    """Its golden dataset (YAML or JSONL), as for ``bosun eval --gate``."""
    concurrency: int = Field(default=4, ge=1)
    """Cases run at once."""


class ServiceSettings(BaseModel):
    """The REST service and its workers (``[service]`` in bosun.toml, ``BOSUN_SERVICE__*``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = "127.0.0.1"
    """Address `bosun serve` listens on."""
    port: int = Field(default=8080, ge=0, le=65535)
    """Port `bosun serve` listens on."""
    concurrency: int = Field(default=16, ge=1)
    """Runs one worker drives at once."""
    agent_concurrency: dict[str, int] = Field(default_factory=dict)
    """Runs of an agent driven at once across all workers, by agent name."""
    lease_s: float = Field(default=30.0, gt=0)
    """A worker's lease on a run; renewed every third of it. A dead worker's runs resume
    elsewhere after at most this long."""
    poll_s: float = Field(default=0.5, gt=0)
    """How often an idle worker looks for queued runs."""
    sweep_s: float = Field(default=2.0, gt=0)
    """How often deadlines and webhook deliveries are checked."""
    max_attempts: int = Field(default=10, ge=1)
    """Claims in a row that end without moving a run on before it is given up on (a run that
    keeps killing its workers): failed, or escalated when its side effects may have happened."""
    max_queue: int = Field(default=10_000, ge=1)
    """Queued runs beyond which the API answers 429 with Retry-After."""
    shutdown_grace_s: float = Field(default=20.0, ge=0)
    """On shutdown, how long in-flight runs may take to finish before they are handed back."""
    approval_timeout_s: float | None = None
    """How long a held call waits for a decision; None waits forever."""
    on_approval_timeout: Literal["reject", "escalate"] = "reject"
    """Past the deadline: reject the call, or escalate further (notify again, restart)."""
    escalation_timeout_s: float | None = None
    """How long an escalated run waits for a person; None waits forever."""
    on_escalation_timeout: Literal["close", "escalate"] = "escalate"
    """Past the deadline: close the run, or escalate further (notify again, restart)."""
    webhooks: tuple[WebhookSubscription, ...] = ()
    """Receivers of run events."""
    inbox_agent: str | None = None
    """The agent ``POST /v1/inbox`` hands inbound email to (by name); None: the served agent
    when there is exactly one."""
    inbox_instruction: str = INBOX_INSTRUCTION
    """The trusted instruction sent with each inbound email; ``{sender}`` is the From
    address (what lets a reply to the sender pass outbound grounding)."""
    tool_scopes: tuple[str, ...] | None = None
    """Tool scopes the ``submitter`` role grants. None (the default): the scopes the served
    agents' own tools declare, so a run of an agent may use that agent's tools and nothing
    else (a run carries only the scopes its agent's tools name). A list replaces that:
    ``[]`` for no tools, ``["tools:*"]`` for a family."""
    output_guardrails: bool = True
    """Check outputs before callers read them: secrets and (with `mask_pii`) unmasked PII
    are redacted."""
    rate_limit_storage: str = "memory://"
    """Where rate-limit counters live: ``memory://`` (one process) or ``redis://host:port``
    (shared by every API process)."""
    requests_per_principal: str | None = "600/minute"
    """API requests one principal may make (`limits` notation); None for no limit."""
    tokens_per_principal: str | None = "2000000/hour"
    """Model tokens one principal's runs may use (estimated at submission)."""
    screen_injections: bool = True
    """Screen inputs and untrusted tool output for prompt injection."""
    screen_embeddings: bool = False
    """Add the screen's embedding layer (all-MiniLM-L6-v2 on the CPU, the ``embed`` extra):
    more attacks phrased in new words are caught, at tens of milliseconds per e-mail."""
    mask_pii: bool = True
    """Mask PII in inputs and tool results (originals encrypted in the run's vault)."""
    pii_names: bool = False
    """Also mask names, places and organisations, found by spaCy's NER (the ``ner`` extra)."""
    vault_key: SecretStr | None = None
    """The PII vault's master key (base64, 32 bytes); default: ``<home>/vault.key``, created
    on first use with mode 0600."""
    key_pepper: SecretStr | None = None
    """A secret mixed into API key digests (HMAC), so a stolen database alone cannot be used
    to test guessed keys offline."""
    dashboard: bool = True
    """Serve the web dashboard at ``/`` (approvals, escalations, runs, operations, prompts);
    people log in with their API key."""
    session_key: SecretStr | None = None
    """Signs the dashboard's session cookies (base64, 32 bytes); default:
    ``<home>/session.key``, created on first use with mode 0600. Every API process of one
    deployment needs the same key; changing it ends every session."""
    session_ttl_s: float = Field(default=8 * 3600, gt=0)
    """How long a dashboard session lasts after logging in."""
    prompt_gates: dict[str, PromptGate] = Field(default_factory=dict)
    """Per prompt name, the agent and golden dataset the dashboard runs the evaluation gate
    with; a prompt without one can be edited and promoted, not gated from the dashboard."""


class CostSettings(BaseModel):
    """Spend caps across runs (``[cost]`` in bosun.toml, ``BOSUN_COST__*``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    per_run_usd: Decimal | None = None
    """One run's spend, enforced before each model call."""
    per_agent_day_usd: dict[str, Decimal] = Field(default_factory=dict)
    """Daily (UTC) spend per agent name; ``"*"`` for every other agent."""
    per_tenant_day_usd: dict[str, Decimal] = Field(default_factory=dict)
    """Daily (UTC) spend per tenant; ``"*"`` for every other tenant."""
    alert_webhook: str | None = None
    """Where alerts at 80% and 100% of a cap are posted (signed with `alert_secret`)."""
    alert_secret: SecretStr | None = None
    """Signing secret of the alert webhook."""

    @property
    def any(self) -> bool:
        """Whether any cap is set."""
        return bool(self.per_run_usd or self.per_agent_day_usd or self.per_tenant_day_usd)


class KnowledgeSettings(BaseModel):
    """The knowledge base (``[knowledge]`` in bosun.toml, ``BOSUN_KNOWLEDGE__*``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    embedder: str = "minilm"
    """``minilm`` (all-MiniLM-L6-v2, offline on the CPU) or ``openai:<model>`` for an
    OpenAI-compatible embeddings endpoint. Changing it re-embeds each document on its next
    ingest; until then a document is found by keywords only."""
    embedder_base_url: str | None = None
    """The endpoint's API root for ``openai:`` (default: api.openai.com; the key comes from
    OPENAI_API_KEY)."""
    embedder_dimensions: int | None = None
    """Ask the endpoint for vectors this long (models that support it)."""
    chunk_tokens: int = Field(default=512, ge=32, le=8192)
    """Largest chunk, in WordPiece tokens."""
    chunk_overlap: int = Field(default=64, ge=0, le=1024)
    """Tokens shared by neighbouring chunks."""


class CacheSettings(BaseModel):
    """The semantic cache of served agents (``[economy.cache]``,
    ``BOSUN_ECONOMY__CACHE__*``): answers kept in the store, scoped to tenant, agent, prompt
    version, tier and embedder; never an answer derived from untrusted text."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = False
    """Serve repeated and similar trusted requests from the cache."""
    threshold: float = Field(default=0.95, gt=0, le=1)
    """Cosine similarity at or above which a stored answer is served to a new question."""
    ttl_s: float = Field(default=86_400.0, gt=0)
    """Seconds an answer is served after it was stored."""
    semantic: bool = True
    """Match similar questions; False keeps the exact-match path only (no embedder)."""
    embedder: Literal["minilm", "hashing"] = "minilm"
    """``minilm`` (all-MiniLM-L6-v2, offline on the CPU) or ``hashing`` (a stand-in that
    sees wording, not meaning: for trying the cache out)."""


class EconomySettings(BaseModel):
    """Model tiers, routing and the semantic cache for served agents (``[economy]`` in
    bosun.toml, ``BOSUN_ECONOMY__*``). Off until `tiers` are named or the cache enabled."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tiers: dict[str, str | tuple[str, ...]] = Field(default_factory=dict)
    """Tier name to a model string or a fallback chain of them, cheapest first, e.g.
    ``{cheap = ["openai:gpt-4.1-nano", "anthropic:claude-haiku-4-5"], balanced =
    "openai:gpt-4.1-mini", premium = "anthropic:claude-sonnet-4-5"}``. When set, the
    agents' own models are replaced by a router over these tiers."""
    rules: dict[str, str] = Field(default_factory=dict)
    """A call's purpose (answer, tool_followup, plan, summarise, classify) to the tier
    that answers it; empty: summarise and classify cheap, the rest balanced."""
    default_tier: str | None = None
    """The tier of calls of no known purpose (default: the tier of answers)."""
    promote_on_invalid_tool_calls: bool = True
    """Ask the next tier up when a tier proposes a tool call that does not fit the tool."""
    agents: tuple[str, ...] = ()
    """Names of the served agents this applies to; empty: every served agent."""
    cache: CacheSettings = Field(default_factory=CacheSettings)
    """The semantic cache."""

    @field_validator("tiers")
    @classmethod
    def _chains(cls, tiers: dict[str, str | tuple[str, ...]]) -> dict[str, str | tuple[str, ...]]:
        for name, spec in tiers.items():
            if not spec:
                raise ValueError(f"tier {name!r} names no model")
        return tiers

    @property
    def any(self) -> bool:
        """Whether anything is configured."""
        return bool(self.tiers) or self.cache.enabled


class OnlineSettings(BaseModel):
    """Online evaluation of live runs by workers (``[online]``, ``BOSUN_ONLINE__*``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    """Record each finished run's implicit signals (rejected or edited approvals, refused
    writes, escalations) per prompt version."""
    sample_rate: float = Field(default=0.0, ge=0, le=1)
    """Share of finished runs the judges score."""
    judge_model: str | None = None
    """The judges' model, e.g. ``openai:gpt-4.1-mini``."""
    rubrics: dict[str, str] = Field(default_factory=dict)
    """Judge rubrics by name."""
    shadow: bool = True
    """Shadow finished runs of agents whose prompt label has a shadow version."""


class MemorySettings(BaseModel):
    """Pruning of long-term memory by workers and ``bosun memory prune`` (``[memory]``,
    ``BOSUN_MEMORY__*``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    prune_every_s: float = Field(default=3600.0, ge=0)
    """How often a worker prunes (expired, near-duplicate, never recalled); 0: never."""
    unused_days: float = Field(default=90.0, gt=0)
    """A memory never recalled this many days after it was written is dropped."""
    similarity: float = Field(default=0.9, gt=0, le=1)
    """Word-set (Jaccard) similarity at which two memories of one scope are merged."""


class TemporalSettings(BaseModel):
    """The Temporal engine, for ``bosun worker --engine temporal`` (``[temporal]``,
    ``BOSUN_TEMPORAL__*``). Leases, heartbeats and attempts come from `ServiceSettings`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    address: str = "127.0.0.1:7233"
    """The Temporal frontend, ``HOST:PORT``."""
    namespace: str = "default"
    """The Temporal namespace bosun's workflows live in."""
    task_queue: str = "bosun"
    """The task queue of bosun's workflows and activities. Every worker on one task queue
    must serve the same agents."""
    step_timeout_s: float = Field(default=3600.0, gt=0)
    """The longest one step (a model call, one response's tool calls) may run before Temporal
    gives it to another worker; a backstop behind bosun's own model and tool timeouts."""
    recheck_parked_s: float = Field(default=3600.0, gt=0)
    """How often a workflow whose run waits for a person looks at the run without being
    woken: it notices a run cancelled or closed while it waited."""


class Settings(BaseSettings):
    """bosun's configuration. Construct with `load_settings()` to get readable errors."""

    model_config = SettingsConfigDict(
        env_prefix="BOSUN_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    home: Path = Field(default_factory=_default_home)
    """Data directory: the SQLite database and anything else bosun writes."""
    database_url: str | None = None
    """SQLAlchemy URL; default ``sqlite:///<home>/bosun.db``. PostgreSQL: ``postgresql://``
    (``postgres://`` too; either runs on psycopg 3)."""
    model: str | None = None
    """Default model for agents that do not name one, e.g. ``openai:gpt-4.1-mini``."""
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "WARNING"
    """Level of bosun's structured logs."""
    agents: tuple[str, ...] = ()
    """Agents the service runs, as ``module:attribute`` import paths."""
    pipelines: tuple[str, ...] = ()
    """Pipelines the service runs (`bosun.orchestration.Pipeline`), as ``module:attribute``
    import paths: a pipeline, or a function of no arguments that builds one. Their agents
    are served too."""
    service: ServiceSettings = Field(default_factory=ServiceSettings)
    """The REST service and its workers."""
    cost: CostSettings = Field(default_factory=CostSettings)
    """Spend caps and their alerts."""
    online: OnlineSettings = Field(default_factory=OnlineSettings)
    """Online evaluation and shadow runs."""
    memory: MemorySettings = Field(default_factory=MemorySettings)
    """Pruning of long-term memory."""
    knowledge: KnowledgeSettings = Field(default_factory=KnowledgeSettings)
    """The knowledge base's embedder and chunking."""
    economy: EconomySettings = Field(default_factory=EconomySettings)
    """Model tiers, routing and the semantic cache of served agents."""
    temporal: TemporalSettings = Field(default_factory=TemporalSettings)
    """The Temporal engine (``bosun worker --engine temporal``)."""
    otlp_endpoint: str | None = None
    """Export each run's trace over OTLP/HTTP here (e.g. ``http://collector:4318/v1/traces``)
    when workers stop driving it; None exports nothing."""
    otlp_headers: dict[str, str] = Field(default_factory=dict)
    """Headers for the OTLP endpoint (an API key, say)."""
    log_json: bool = True
    """Structured logs as JSON lines (False: readable lines)."""
    data_dir: Path | None = None
    """Third-party datasets (labelled traffic for ``bosun router train``); bosun's runs
    never read it."""

    @field_validator("database_url")
    @classmethod
    def _driver(cls, url: str | None) -> str | None:
        return None if url is None else normalise_database_url(url)

    @property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to SQLite in the data directory."""
        return self.database_url or f"sqlite:///{self.home / 'bosun.db'}"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Earlier sources win: the working directory's bosun.toml over BOSUN_HOME's.
        tomls = [
            TomlConfigSettingsSource(settings_cls, toml_file=path)
            for path in (Path("bosun.toml"), _default_home() / "bosun.toml")
            if path.is_file()
        ]
        return (init_settings, env_settings, *tomls)


def load_settings(**overrides: Any) -> Settings:
    """Read settings, turning validation failures into a `ConfigError` that names the field."""
    try:
        return Settings(**overrides)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"bosun.toml is not valid TOML: {exc}") from exc
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigError(f"invalid bosun settings ({problems})") from exc
