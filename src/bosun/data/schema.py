"""Tables of bosun's store (SQLAlchemy Core). Alembic migrations create them; this is the map.

The journal (`steps`) is the single record of what a run did: the runtime resumes from it, the
CLI and tracing read it, and the typed columns beside the JSON payload make it queryable.
`tool_calls`, `usage` and `messages` are SQL views over `steps`, so nothing is stored twice.
"""

from __future__ import annotations

import sqlalchemy as sa

__all__ = [
    "alerts",
    "api_keys",
    "audit",
    "cache_entries",
    "drift_baselines",
    "eval_runs",
    "feedback",
    "memories",
    "kb_changes",
    "kb_chunks",
    "kb_corpus",
    "kb_documents",
    "metadata",
    "pipeline_steps",
    "pipelines",
    "principals",
    "prompt_labels",
    "prompt_versions",
    "run_scores",
    "runs",
    "steps",
    "threads",
    "webhook_deliveries",
]

metadata = sa.MetaData()

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("agent", sa.String(200), nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("input", sa.Text, nullable=False),
    sa.Column("output", sa.Text),
    sa.Column("handoff", sa.Text),  # JSON: the escalation package
    sa.Column("error", sa.Text),
    sa.Column("principal", sa.String(200)),
    sa.Column("tenant", sa.String(200)),
    sa.Column("grants", sa.Text, nullable=False),  # JSON list of scopes
    sa.Column("idempotency_key", sa.String(200)),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Column("input_tokens", sa.Integer, nullable=False, server_default="0"),
    sa.Column("output_tokens", sa.Integer, nullable=False, server_default="0"),
    sa.Column("cost_usd", sa.Numeric(18, 8)),
    sa.Column("lease_owner", sa.String(100)),
    sa.Column("lease_expires_at", sa.Float),
    # The service (migration 0003): claims so far, a pending cancel for the lease holder,
    # the person who claimed an escalation, and when webhooks last saw the run's status.
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("cancel_requested_by", sa.String(200)),
    sa.Column("assignee", sa.String(200)),
    sa.Column("notified_at", sa.Float),
    # Migration 0005: a digest of (agent, input parts) of a run submitted with an
    # idempotency key, so the key sent again with another request can be refused.
    sa.Column("request_digest", sa.String(64)),
    # Migration 0006: the conversation the run is a turn of (`Runtime.start(thread=...)`).
    sa.Column("thread_id", sa.String(200)),
    # Migration 0008: the run or pipeline that started this run (a pipeline's stage, an agent
    # called as a tool, a reviewer), so a trace and an audit trail can gather the whole tree.
    sa.Column("parent_id", sa.String(40)),
)
# An expression index, not a UNIQUE constraint: NULLs are distinct in a constraint, so a run
# without a tenant could be submitted twice under one key.
sa.Index(
    "uq_runs_idempotency",
    sa.func.coalesce(runs.c.tenant, ""),
    runs.c.idempotency_key,
    unique=True,
)
sa.Index("ix_runs_status_created", runs.c.status, runs.c.created_at)
sa.Index("ix_runs_tenant_created", runs.c.tenant, runs.c.created_at)
sa.Index("ix_runs_thread", runs.c.thread_id, runs.c.id)
# The dashboard's operations counts over a window of runs (migration 0007); immutable
# columns only, so journal writes (which update their run row) never touch it.
sa.Index("ix_runs_created", runs.c.created_at, runs.c.tenant)
sa.Index("ix_runs_parent", runs.c.parent_id)

steps = sa.Table(
    "steps",
    metadata,
    sa.Column("run_id", sa.String(40), sa.ForeignKey("runs.id"), primary_key=True),
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("tool", sa.String(64)),
    sa.Column("call_id", sa.String(200)),
    sa.Column("model", sa.String(200)),
    sa.Column("status", sa.String(32)),  # "ok" or an error kind
    sa.Column("input_tokens", sa.Integer),
    sa.Column("output_tokens", sa.Integer),
    sa.Column("cost_usd", sa.Numeric(18, 8)),
    sa.Column("latency_ms", sa.Float),
    sa.Column("payload", sa.Text, nullable=False),  # JSON
)

audit = sa.Table(
    "audit",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("run_id", sa.String(40)),
    sa.Column("seq", sa.Integer),
    sa.Column("actor", sa.String(200)),
    sa.Column("approver", sa.String(200)),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False, unique=True),
)
sa.Index("ix_audit_run", audit.c.run_id)

# Principals and their API keys (`bosun.gateway.auth`). A key stores only a digest of its
# secret; roles are names resolved to scopes by the gateway's configuration at each login.
principals = sa.Table(
    "principals",
    metadata,
    sa.Column("id", sa.String(200), primary_key=True),
    sa.Column("tenant", sa.String(200), nullable=False),
    sa.Column("roles", sa.Text, nullable=False),  # JSON list of role names
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("disabled", sa.Boolean, nullable=False, server_default=sa.false()),
)
sa.Index("ix_principals_tenant", principals.c.tenant)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("key_id", sa.String(40), primary_key=True),
    sa.Column("principal_id", sa.String(200), sa.ForeignKey("principals.id"), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),  # hex digest of the secret, never the secret
    sa.Column("name", sa.String(200)),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("expires_at", sa.Float),
    sa.Column("revoked_at", sa.Float),
    sa.Column("last_used_at", sa.Float),
)
sa.Index("ix_api_keys_principal", api_keys.c.principal_id)

# Explicit feedback on a run (thumbs, a corrected answer), from `POST /v1/runs/{id}/feedback`.
feedback = sa.Table(
    "feedback",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(40), sa.ForeignKey("runs.id"), nullable=False),
    sa.Column("principal", sa.String(200)),
    sa.Column("rating", sa.Integer),  # +1 / -1
    sa.Column("correction", sa.Text),
    sa.Column("comment", sa.Text),
    sa.Column("created_at", sa.Float, nullable=False),
)
sa.Index("ix_feedback_run", feedback.c.run_id)

# The webhook outbox: one row per (event, subscriber), retried with backoff until delivered.
webhook_deliveries = sa.Table(
    "webhook_deliveries",
    metadata,
    sa.Column("id", sa.String(80), primary_key=True),  # the event id, sent as webhook-id
    sa.Column("run_id", sa.String(40), nullable=False),
    sa.Column("url", sa.String(2000), nullable=False),
    sa.Column("event", sa.String(64), nullable=False),
    sa.Column("payload", sa.Text, nullable=False),  # JSON body, exactly as signed
    sa.Column("status", sa.String(16), nullable=False),  # pending | delivered | failed
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", sa.Float, nullable=False),
    sa.Column("last_error", sa.Text),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("delivered_at", sa.Float),
)
sa.Index(
    "ix_webhook_deliveries_due",
    webhook_deliveries.c.status,
    webhook_deliveries.c.next_attempt_at,
)

VIEWS = {
    "tool_calls": (
        "SELECT run_id, seq, call_id, tool, status, latency_ms, created_at, payload "
        "FROM steps WHERE kind = 'tool_result'"
    ),
    "usage": (
        "SELECT run_id, seq, model, input_tokens, output_tokens, cost_usd, latency_ms, created_at "
        "FROM steps WHERE kind = 'model_response'"
    ),
    "messages": (
        "SELECT run_id, seq, kind, payload, created_at FROM steps "
        "WHERE kind IN ('run_started', 'model_response', 'tool_result', 'human_note')"
    ),
}
"""Read-only views over the journal, created by the initial migration."""

# --- the spine (migration 0004) ------------------------------------------------------------

# Prompt versions are immutable once created; labels (production, staging, ...) point at one
# version each, with an optional rollout (canary percentage, shadow version) as JSON.
prompt_versions = sa.Table(
    "prompt_versions",
    metadata,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("version", sa.String(64), primary_key=True),  # semantic version
    sa.Column("template", sa.Text, nullable=False),
    sa.Column("variables", sa.Text, nullable=False),  # JSON {name: type}
    sa.Column("model_settings", sa.Text, nullable=False),  # JSON
    sa.Column("changelog", sa.Text),
    sa.Column("owner", sa.String(200)),
    sa.Column("digest", sa.String(64), nullable=False),  # sha256 of the content
    sa.Column("created_at", sa.Float, nullable=False),
)

prompt_labels = sa.Table(
    "prompt_labels",
    metadata,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("label", sa.String(64), primary_key=True),
    sa.Column("version", sa.String(64), nullable=False),
    sa.Column("rollout", sa.Text),  # JSON: {"canary": {"version", "percent"}, "shadow": ...}
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Column("updated_by", sa.String(200)),
)

# An offline evaluation of one agent (+ prompt version) on one dataset; `gate` holds the
# comparison with the production version when run with --gate.
eval_runs = sa.Table(
    "eval_runs",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("dataset", sa.String(500), nullable=False),
    sa.Column("dataset_digest", sa.String(64), nullable=False),
    sa.Column("agent", sa.String(200), nullable=False),
    sa.Column("prompt_name", sa.String(200)),
    sa.Column("prompt_version", sa.String(64)),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("cases", sa.Integer, nullable=False),
    sa.Column("passed", sa.Integer, nullable=False),
    sa.Column("cost_usd", sa.Numeric(18, 8)),
    sa.Column("report", sa.Text, nullable=False),  # JSON: per case and aggregate
    sa.Column("gate", sa.Text),  # JSON: baseline, test, p-value, verdict
    sa.Column("gate_passed", sa.Boolean),
)
sa.Index("ix_eval_runs_prompt", eval_runs.c.prompt_name, eval_runs.c.prompt_version)

# Scores and signals on live runs: judge scores (online evaluation) and implicit signals
# (draft edited, approval rejected, write rejected, escalated).
run_scores = sa.Table(
    "run_scores",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(40), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),  # judge | signal
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("value", sa.Float),
    sa.Column("reason", sa.Text),
    sa.Column("prompt_name", sa.String(200)),
    sa.Column("prompt_version", sa.String(64)),
    sa.Column("created_at", sa.Float, nullable=False),
)
sa.Index("ix_run_scores_run", run_scores.c.run_id)
sa.Index("ix_run_scores_prompt", run_scores.c.prompt_name, run_scores.c.prompt_version)

# Behaviour baselines per agent and prompt version, for drift detection.
drift_baselines = sa.Table(
    "drift_baselines",
    metadata,
    sa.Column("agent", sa.String(200), primary_key=True),
    sa.Column("prompt_version", sa.String(64), primary_key=True),  # "" when unversioned
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("runs", sa.Integer, nullable=False),
    sa.Column("stats", sa.Text, nullable=False),  # JSON
)

# Alerts raised by the spine (drift, cost caps), with their evidence.
alerts = sa.Table(
    "alerts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(64), nullable=False),  # drift | cost_cap | ...
    sa.Column("subject", sa.String(400), nullable=False),  # what it is about
    sa.Column("severity", sa.String(16), nullable=False),  # info | warning | critical
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("evidence", sa.Text, nullable=False),  # JSON
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("dedupe_key", sa.String(200), unique=True),
)
sa.Index("ix_alerts_kind_created", alerts.c.kind, alerts.c.created_at)

# --- threads and memory (migration 0006) ------------------------------------------------------

# A thread's running summary: the turns folded so far (through run `through`), rewritten under
# a new `version` (compare-and-set) each time older turns fold in. The text keeps the PII
# placeholders of `source_run`; `vault` holds their encrypted originals under that run's key.
threads = sa.Table(
    "threads",
    metadata,
    sa.Column("tenant", sa.String(200), primary_key=True),  # "" for runs without a tenant
    sa.Column("id", sa.String(200), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("summary", sa.Text, nullable=False),
    sa.Column("kept", sa.Text, nullable=False),  # JSON: items kept word for word
    sa.Column("trust", sa.String(16), nullable=False),
    sa.Column("turns", sa.Integer, nullable=False),
    sa.Column("through", sa.String(40), nullable=False),
    sa.Column("source_run", sa.String(40), nullable=False),
    sa.Column("vault", sa.Text, nullable=False),  # JSON list of vault entries
    sa.Column("updated_at", sa.Float, nullable=False),
)

# Long-term memory: facts, preferences, past resolutions, scoped tenant -> customer -> agent
# (NULL customer or agent: shared across them). Keyword search: FTS5 on SQLite (the
# ``memories_fts`` table, kept by triggers), a GIN tsvector index on PostgreSQL.
memories = sa.Table(
    "memories",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("tenant", sa.String(200), nullable=False),  # "" for runs without a tenant
    sa.Column("customer", sa.String(200)),
    sa.Column("agent", sa.String(200)),
    sa.Column("kind", sa.String(32), nullable=False),  # fact | preference | resolution
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("trust", sa.String(16), nullable=False),
    sa.Column("source_run", sa.String(40)),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("last_used_at", sa.Float),
    sa.Column("expires_at", sa.Float),
    sa.Column("use_count", sa.Integer, nullable=False, server_default="0"),
    sa.Column("content_hash", sa.String(64), nullable=False),
)
sa.Index(
    "uq_memories_scope_hash",
    memories.c.tenant,
    sa.func.coalesce(memories.c.customer, ""),
    sa.func.coalesce(memories.c.agent, ""),
    memories.c.content_hash,
    unique=True,
)
sa.Index("ix_memories_expires", memories.c.expires_at)
# --- pipelines (migration 0008) ------------------------------------------------------------

# A pipeline of stages (`bosun.orchestration`): its row is leased by workers like a run's,
# and its journal records what the stages produced, so a resumed pipeline skips them.
pipelines = sa.Table(
    "pipelines",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("input", sa.Text, nullable=False),  # JSON
    sa.Column("output", sa.Text),  # JSON
    sa.Column("handoff", sa.Text),  # JSON: the escalation package
    sa.Column("error", sa.Text),
    sa.Column("principal", sa.String(200)),
    sa.Column("tenant", sa.String(200)),
    sa.Column("grants", sa.Text, nullable=False),  # JSON list of scopes
    sa.Column("idempotency_key", sa.String(200)),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Column("lease_owner", sa.String(100)),
    sa.Column("lease_expires_at", sa.Float),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
)
sa.Index(
    "uq_pipelines_idempotency",
    sa.func.coalesce(pipelines.c.tenant, ""),
    pipelines.c.idempotency_key,
    unique=True,
)
sa.Index("ix_pipelines_status_created", pipelines.c.status, pipelines.c.created_at)

# The pipeline's journal: (pipeline, seq) is the key, so a driver that lost its lease cannot
# fork the journal of the one that holds it now.
pipeline_steps = sa.Table(
    "pipeline_steps",
    metadata,
    sa.Column("pipeline_id", sa.String(40), sa.ForeignKey("pipelines.id"), primary_key=True),
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("stage", sa.String(64)),
    sa.Column("item", sa.Integer),
    sa.Column("run_id", sa.String(40)),  # the stage's run, for agent stages
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("payload", sa.Text, nullable=False),  # JSON
)

# --- the knowledge base (migration 0009) ---------------------------------------------------

# The knowledge base (bosun.data.documents). A document is one source (a file, a page, a
# message) in a tenant's corpus ("" = global, read by every tenant); its chunks carry the
# spans cited in search results and the vectors (float32 bytes: the portable copy from which
# the sqlite-vec / pgvector indexes are built). Keyword indexes are dialect-specific and made
# by the migration: an FTS5 table kept in step by triggers on SQLite, a generated tsvector
# with a GIN index on PostgreSQL.
kb_documents = sa.Table(
    "kb_documents",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("tenant", sa.String(200), nullable=False),  # "" = global
    sa.Column("source", sa.String(1000), nullable=False),  # path, file name or caller's key
    sa.Column("title", sa.String(500), nullable=False),
    sa.Column("media_type", sa.String(100), nullable=False),
    sa.Column("trust", sa.String(16), nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),  # of the extracted text
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("chars", sa.Integer, nullable=False),
    sa.Column("chunks", sa.Integer, nullable=False),
    sa.Column("embedder", sa.String(200), nullable=False),
    sa.Column("chunking", sa.String(100), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.UniqueConstraint("tenant", "source", name="uq_kb_documents_source"),
)

kb_chunks = sa.Table(
    "kb_chunks",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "document_id",
        sa.String(40),
        sa.ForeignKey("kb_documents.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("tenant", sa.String(200), nullable=False),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("start_char", sa.Integer, nullable=False),
    sa.Column("end_char", sa.Integer, nullable=False),
    sa.Column("context", sa.Text, nullable=False),  # title and headings above the chunk
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("embedding", sa.LargeBinary, nullable=False),  # float32, little-endian
    # Ids are never reused: an index entry left behind points at nothing, never at another
    # chunk (see bosun.data.documents).
    sqlite_autoincrement=True,
)
sa.Index("ix_kb_chunks_document", kb_chunks.c.document_id, kb_chunks.c.seq)
sa.Index("ix_kb_chunks_tenant", kb_chunks.c.tenant)

# One counter per tenant, raised by every change to its documents: a search reports the sum
# of its tenant's and the global counter (both only grow), so an answer can name the corpus
# it was drawn from.
kb_corpus = sa.Table(
    "kb_corpus",
    metadata,
    sa.Column("tenant", sa.String(200), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)

# One row per change that moved a corpus version (migration 0012): what `kb_corpus` counts,
# kept so "what changed since version V" has an answer once a document is replaced or gone.
kb_changes = sa.Table(
    "kb_changes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),  # the order of changes
    sa.Column("tenant", sa.String(200), nullable=False),  # "" = global
    sa.Column("seq", sa.Integer, nullable=False),  # that corpus's counter after the change
    sa.Column("change", sa.String(16), nullable=False),  # added|updated|reindexed|removed
    sa.Column("document_id", sa.String(40), nullable=False),  # no FK: outlives its document
    sa.Column("source", sa.String(1000), nullable=False),
    sa.Column("title", sa.String(500), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),  # the document version it left
    sa.Column("at", sa.Float, nullable=False),
    sa.Index("ix_kb_changes_tenant_id", "tenant", "id"),
    sqlite_autoincrement=True,
)

# --- the semantic cache (migration 0010) ------------------------------------------------

# The semantic cache of answers (bosun.economy.cache): one row per (scope, exact digest).
# The scope is a digest of (tenant, agent, prompt version, tier, corpus version), which are
# kept beside it for invalidation; `vector` is the request's embedding (float32 bytes), NULL
# for entries matched only exactly.
cache_entries = sa.Table(
    "cache_entries",
    metadata,
    sa.Column("scope", sa.String(64), primary_key=True),
    sa.Column("digest", sa.String(64), primary_key=True),
    sa.Column("tenant", sa.String(200), nullable=False),  # "" for runs without a tenant
    sa.Column("agent", sa.String(200), nullable=False),
    sa.Column("prompt_version", sa.String(200), nullable=False),
    sa.Column("tier", sa.String(64), nullable=False),
    sa.Column("corpus_version", sa.String(200), nullable=False),
    sa.Column("vector", sa.LargeBinary),
    sa.Column("response", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
    sa.Index("ix_cache_entries_tenant_agent", "tenant", "agent"),
    sa.Index("ix_cache_entries_expires", "expires_at"),
)
