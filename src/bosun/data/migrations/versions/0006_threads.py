"""threads and memory: a run's thread, each thread's running summary, long-term memories

Revision ID: 0006_threads
Revises: 0005_request_digest
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_threads"
down_revision = "0005_request_digest"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("thread_id", sa.String(200)))
    # A thread's turns are read in order within a tenant (`bosun.data.threads`).
    op.create_index("ix_runs_thread", "runs", ["thread_id", "id"])
    op.create_table(
        "threads",
        sa.Column("tenant", sa.String(200), primary_key=True),
        sa.Column("id", sa.String(200), primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("kept", sa.Text, nullable=False),
        sa.Column("trust", sa.String(16), nullable=False),
        sa.Column("turns", sa.Integer, nullable=False),
        sa.Column("through", sa.String(40), nullable=False),
        sa.Column("source_run", sa.String(40), nullable=False),
        sa.Column("vault", sa.Text, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_table(
        "memories",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("tenant", sa.String(200), nullable=False),
        sa.Column("customer", sa.String(200)),
        sa.Column("agent", sa.String(200)),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("trust", sa.String(16), nullable=False),
        sa.Column("source_run", sa.String(40)),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("last_used_at", sa.Float),
        sa.Column("expires_at", sa.Float),
        sa.Column("use_count", sa.Integer, nullable=False, server_default="0"),
        sa.Column("content_hash", sa.String(64), nullable=False),
    )
    # One row per text and scope: NULL customer/agent must collide too, hence coalesce.
    op.create_index(
        "uq_memories_scope_hash",
        "memories",
        [
            "tenant",
            sa.text("coalesce(customer, '')"),
            sa.text("coalesce(agent, '')"),
            "content_hash",
        ],
        unique=True,
    )
    op.create_index("ix_memories_expires", "memories", ["expires_at"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE INDEX ix_memories_text ON memories USING gin (to_tsvector('english', text))"
        )
    else:
        # External-content FTS5 index kept in step by triggers: the text is stored once.
        op.execute(
            "CREATE VIRTUAL TABLE memories_fts USING fts5("
            "text, content='memories', content_rowid='id', tokenize='porter unicode61')"
        )
        op.execute(
            "CREATE TRIGGER memories_ai AFTER INSERT ON memories BEGIN "
            "INSERT INTO memories_fts(rowid, text) VALUES (new.id, new.text); END"
        )
        op.execute(
            "CREATE TRIGGER memories_ad AFTER DELETE ON memories BEGIN "
            "INSERT INTO memories_fts(memories_fts, rowid, text) "
            "VALUES ('delete', old.id, old.text); END"
        )
        op.execute(
            "CREATE TRIGGER memories_au AFTER UPDATE OF text ON memories BEGIN "
            "INSERT INTO memories_fts(memories_fts, rowid, text) "
            "VALUES ('delete', old.id, old.text); "
            "INSERT INTO memories_fts(rowid, text) VALUES (new.id, new.text); END"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        for trigger in ("memories_ai", "memories_ad", "memories_au"):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.execute("DROP TABLE IF EXISTS memories_fts")
    op.drop_table("memories")
    op.drop_table("threads")
    op.drop_index("ix_runs_thread", "runs")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("thread_id")
