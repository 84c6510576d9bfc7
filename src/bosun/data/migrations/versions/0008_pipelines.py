"""pipelines: stage pipelines with their own journal and leases; runs know their parent

Revision ID: 0008_pipelines
Revises: 0007_dashboard
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_pipelines"
down_revision = "0007_dashboard"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable: top-level runs have no parent.
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("parent_id", sa.String(40)))
    op.create_index("ix_runs_parent", "runs", ["parent_id"])
    op.create_table(
        "pipelines",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("input", sa.Text, nullable=False),
        sa.Column("output", sa.Text),
        sa.Column("handoff", sa.Text),
        sa.Column("error", sa.Text),
        sa.Column("principal", sa.String(200)),
        sa.Column("tenant", sa.String(200)),
        sa.Column("grants", sa.Text, nullable=False),
        sa.Column("idempotency_key", sa.String(200)),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.Column("lease_owner", sa.String(100)),
        sa.Column("lease_expires_at", sa.Float),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    )
    op.create_index(
        "uq_pipelines_idempotency",
        "pipelines",
        [sa.text("coalesce(tenant, '')"), "idempotency_key"],
        unique=True,
    )
    op.create_index("ix_pipelines_status_created", "pipelines", ["status", "created_at"])
    op.create_table(
        "pipeline_steps",
        sa.Column("pipeline_id", sa.String(40), sa.ForeignKey("pipelines.id"), primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("stage", sa.String(64)),
        sa.Column("item", sa.Integer),
        sa.Column("run_id", sa.String(40)),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("pipeline_steps")
    op.drop_table("pipelines")
    op.drop_index("ix_runs_parent", "runs")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("parent_id")
