"""kb_changes: a row for each change to a knowledge-base corpus, in order

`kb_corpus` only counts changes, and a replaced or removed document leaves no trace in
`kb_documents`, so "what changed since corpus version V" could not be answered. Changes made
before this migration are not recorded: `DocumentRows.changes` reports how many.

Revision ID: 0012_kb_changes
Revises: 0011_journal_notify
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012_kb_changes"
down_revision = "0011_journal_notify"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "kb_changes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("tenant", sa.String(200), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("change", sa.String(16), nullable=False),
        sa.Column("document_id", sa.String(40), nullable=False),
        sa.Column("source", sa.String(1000), nullable=False),
        sa.Column("title", sa.String(500), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("at", sa.Float, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_kb_changes_tenant_id", "kb_changes", ["tenant", "id"])


def downgrade() -> None:
    op.drop_table("kb_changes")
