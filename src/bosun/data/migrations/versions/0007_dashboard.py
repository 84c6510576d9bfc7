"""dashboard: runs by creation time, for the operations counts over a window of runs

Revision ID: 0007_dashboard
Revises: 0006_threads
"""

from __future__ import annotations

from alembic import op

revision = "0007_dashboard"
down_revision = "0006_threads"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Runs by creation time across tenants (the operations page). Only columns a run never
    # changes: every journal write updates its run row (status, tokens, cost, updated_at),
    # and an index on those would cost each write an index update (and, on PostgreSQL, its
    # heap-only update).
    op.create_index("ix_runs_created", "runs", ["created_at", "tenant"])


def downgrade() -> None:
    op.drop_index("ix_runs_created", table_name="runs")
