"""request digest: what an idempotency key was first sent with, to refuse it with another request

Revision ID: 0005_request_digest
Revises: 0004_spine
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_request_digest"
down_revision = "0004_spine"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable: runs stored before this migration have no digest, and runs without an
    # idempotency key need none.
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("request_digest", sa.String(64)))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("request_digest")
