"""journal_notify: on PostgreSQL, each journal entry NOTIFYs bosun_journal with its run id

A trigger rather than a NOTIFY sent by the writer: it costs no extra round trip on the hot
path (the writer's batches are already several statements), and it covers every write of a
journal entry, whoever makes it. The notification is delivered at commit, and PostgreSQL
folds identical ones within a transaction, so a batch wakes each run's followers once.
SQLite has no notifications; followers in the writer's process are woken in process
(`bosun.data.feed`).

Revision ID: 0011_journal_notify
Revises: 0010_cache
"""

from __future__ import annotations

from alembic import op

revision = "0011_journal_notify"
down_revision = "0010_cache"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        """
        CREATE FUNCTION bosun_journal_notify() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('bosun_journal', NEW.run_id);
            RETURN NULL;
        END
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER steps_notify AFTER INSERT ON steps "
        "FOR EACH ROW EXECUTE FUNCTION bosun_journal_notify()"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER steps_notify ON steps")
    op.execute("DROP FUNCTION bosun_journal_notify()")
