"""dashboard: an index that covers the operations counts over a window of runs

Revision ID: 0005_dashboard
Revises: 0004_spine
"""

from __future__ import annotations

from alembic import op

revision = "0005_dashboard"
down_revision = "0004_spine"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Runs by creation time across tenants (the operations page), with the columns the
    # hourly counts read: the counts come off the index without reading run rows, which
    # carry their whole input.
    op.create_index(
        "ix_runs_created_ops",
        "runs",
        ["created_at", "status", "tenant", "updated_at", "cost_usd"],
    )


def downgrade() -> None:
    op.drop_index("ix_runs_created_ops", table_name="runs")
