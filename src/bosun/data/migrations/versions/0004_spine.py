"""spine: prompt registry, evaluation runs, run scores and signals, drift baselines, alerts

Revision ID: 0004_spine
Revises: 0003_service
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_spine"
down_revision = "0003_service"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "prompt_versions",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("version", sa.String(64), primary_key=True),
        sa.Column("template", sa.Text, nullable=False),
        sa.Column("variables", sa.Text, nullable=False),
        sa.Column("model_settings", sa.Text, nullable=False),
        sa.Column("changelog", sa.Text),
        sa.Column("owner", sa.String(200)),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "prompt_labels",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("label", sa.String(64), primary_key=True),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("rollout", sa.Text),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.Column("updated_by", sa.String(200)),
    )
    op.create_table(
        "eval_runs",
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
        sa.Column("report", sa.Text, nullable=False),
        sa.Column("gate", sa.Text),
        sa.Column("gate_passed", sa.Boolean),
    )
    op.create_index("ix_eval_runs_prompt", "eval_runs", ["prompt_name", "prompt_version"])
    op.create_table(
        "run_scores",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(40), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("value", sa.Float),
        sa.Column("reason", sa.Text),
        sa.Column("prompt_name", sa.String(200)),
        sa.Column("prompt_version", sa.String(64)),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("ix_run_scores_run", "run_scores", ["run_id"])
    op.create_index("ix_run_scores_prompt", "run_scores", ["prompt_name", "prompt_version"])
    op.create_table(
        "drift_baselines",
        sa.Column("agent", sa.String(200), primary_key=True),
        sa.Column("prompt_version", sa.String(64), primary_key=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("runs", sa.Integer, nullable=False),
        sa.Column("stats", sa.Text, nullable=False),
    )
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(400), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("evidence", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("dedupe_key", sa.String(200), unique=True),
    )
    op.create_index("ix_alerts_kind_created", "alerts", ["kind", "created_at"])


def downgrade() -> None:
    for table in (
        "alerts",
        "drift_baselines",
        "run_scores",
        "eval_runs",
        "prompt_labels",
        "prompt_versions",
    ):
        op.drop_table(table)
