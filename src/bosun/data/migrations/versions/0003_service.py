"""service: run leases' bookkeeping, feedback, and the webhook outbox

Revision ID: 0003_service
Revises: 0002_principals
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_service"
down_revision = "0002_principals"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("attempts", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("cancel_requested_by", sa.String(200)))
        batch.add_column(sa.Column("assignee", sa.String(200)))
        batch.add_column(sa.Column("notified_at", sa.Float))
    op.create_index("ix_runs_tenant_created", "runs", ["tenant", "created_at"])
    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(40), sa.ForeignKey("runs.id"), nullable=False),
        sa.Column("principal", sa.String(200)),
        sa.Column("rating", sa.Integer),
        sa.Column("correction", sa.Text),
        sa.Column("comment", sa.Text),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("ix_feedback_run", "feedback", ["run_id"])
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.String(80), primary_key=True),
        sa.Column("run_id", sa.String(40), nullable=False),
        sa.Column("url", sa.String(2000), nullable=False),
        sa.Column("event", sa.String(64), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", sa.Float, nullable=False),
        sa.Column("last_error", sa.Text),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("delivered_at", sa.Float),
    )
    op.create_index(
        "ix_webhook_deliveries_due", "webhook_deliveries", ["status", "next_attempt_at"]
    )


def downgrade() -> None:
    op.drop_table("webhook_deliveries")
    op.drop_table("feedback")
    op.drop_index("ix_runs_tenant_created", "runs")
    with op.batch_alter_table("runs") as batch:
        for name in ("notified_at", "assignee", "cancel_requested_by", "attempts"):
            batch.drop_column(name)
