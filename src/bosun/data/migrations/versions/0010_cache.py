"""cache: the semantic cache of answers (bosun.economy.cache)

Revision ID: 0010_cache
Revises: 0009_knowledge
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_cache"
down_revision = "0009_knowledge"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cache_entries",
        sa.Column("scope", sa.String(64), primary_key=True),
        sa.Column("digest", sa.String(64), primary_key=True),
        sa.Column("tenant", sa.String(200), nullable=False),
        sa.Column("agent", sa.String(200), nullable=False),
        sa.Column("prompt_version", sa.String(200), nullable=False),
        sa.Column("tier", sa.String(64), nullable=False),
        sa.Column("corpus_version", sa.String(200), nullable=False),
        sa.Column("vector", sa.LargeBinary),
        sa.Column("response", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
    )
    op.create_index("ix_cache_entries_tenant_agent", "cache_entries", ["tenant", "agent"])
    op.create_index("ix_cache_entries_expires", "cache_entries", ["expires_at"])


def downgrade() -> None:
    op.drop_table("cache_entries")
