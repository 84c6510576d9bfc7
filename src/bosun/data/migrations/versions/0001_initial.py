"""initial: runs, the step journal, the hash-chained audit log, and views over the journal

Revision ID: 0001_initial
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bosun.data.schema import VIEWS

revision = "0001_initial"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("agent", sa.String(200), nullable=False),
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
        sa.Column("input_tokens", sa.Integer, nullable=False, server_default="0"),
        sa.Column("output_tokens", sa.Integer, nullable=False, server_default="0"),
        sa.Column("cost_usd", sa.Numeric(18, 8)),
        sa.Column("lease_owner", sa.String(100)),
        sa.Column("lease_expires_at", sa.Float),
    )
    op.create_index("ix_runs_status_created", "runs", ["status", "created_at"])
    op.create_index(
        "uq_runs_idempotency",
        "runs",
        [sa.text("coalesce(tenant, '')"), "idempotency_key"],
        unique=True,
    )
    op.create_table(
        "steps",
        sa.Column("run_id", sa.String(40), sa.ForeignKey("runs.id"), primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("tool", sa.String(64)),
        sa.Column("call_id", sa.String(200)),
        sa.Column("model", sa.String(200)),
        sa.Column("status", sa.String(32)),
        sa.Column("input_tokens", sa.Integer),
        sa.Column("output_tokens", sa.Integer),
        sa.Column("cost_usd", sa.Numeric(18, 8)),
        sa.Column("latency_ms", sa.Float),
        sa.Column("payload", sa.Text, nullable=False),
    )
    op.create_table(
        "audit",
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
    op.create_index("ix_audit_run", "audit", ["run_id"])
    for name, select in VIEWS.items():
        op.execute(f"CREATE VIEW {name} AS {select}")


def downgrade() -> None:
    for name in VIEWS:
        op.execute(f"DROP VIEW {name}")
    op.drop_table("audit")
    op.drop_table("steps")
    op.drop_table("runs")
