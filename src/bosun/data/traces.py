"""Reads of the journal that tracing needs beyond `Store.journal`: a run's first entry alone.

A run's first entry (``run_started``, seq 0) names its parent run and the prompt its
instructions came from; walking a trace up to its root, or stamping a score with a prompt
version, needs only that entry, not the whole journal.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from bosun.data._repo import Repository
from bosun.data.schema import steps

__all__ = ["TraceRows", "started_payload"]


class TraceRows(Repository):
    """Journal reads for traces."""

    def started_payload(self, run_id: str) -> str | None:
        """The payload (JSON) of the run's first journal entry; None when it has none."""
        with self._read() as conn:
            return started_payload(conn, run_id)


def started_payload(conn: Connection, run_id: str) -> str | None:
    """`TraceRows.started_payload` inside another repository's open transaction."""
    query = sa.select(steps.c.payload).where(steps.c.run_id == run_id, steps.c.seq == 0)
    payload: str | None = conn.execute(query).scalar()
    return payload
