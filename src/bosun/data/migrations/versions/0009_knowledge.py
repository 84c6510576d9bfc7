"""knowledge: documents, chunks, keyword indexes (FTS5 / tsvector + GIN), corpus versions

The vector indexes (sqlite-vec ``vec0`` tables, pgvector tables with HNSW) are not made here:
their dimension is the configured embedder's, so `bosun.data.vectors` creates one per embedder
when it first indexes with it.

Revision ID: 0009_knowledge
Revises: 0008_pipelines
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_knowledge"
down_revision = "0008_pipelines"
branch_labels = None
depends_on = None

# SQLite: an external-content FTS5 table over the chunks (the text is stored once, in
# kb_chunks), kept in step by triggers; Porter stemming like PostgreSQL's 'english'.
_SQLITE = [
    """CREATE VIRTUAL TABLE kb_fts USING fts5(
        context, text, content='kb_chunks', content_rowid='id',
        tokenize='porter unicode61 remove_diacritics 2')""",
    """CREATE TRIGGER kb_chunks_ai AFTER INSERT ON kb_chunks BEGIN
        INSERT INTO kb_fts(rowid, context, text) VALUES (new.id, new.context, new.text);
    END""",
    """CREATE TRIGGER kb_chunks_ad AFTER DELETE ON kb_chunks BEGIN
        INSERT INTO kb_fts(kb_fts, rowid, context, text)
        VALUES ('delete', old.id, old.context, old.text);
    END""",
    """CREATE TRIGGER kb_chunks_au AFTER UPDATE ON kb_chunks BEGIN
        INSERT INTO kb_fts(kb_fts, rowid, context, text)
        VALUES ('delete', old.id, old.context, old.text);
        INSERT INTO kb_fts(rowid, context, text) VALUES (new.id, new.context, new.text);
    END""",
]
# PostgreSQL: a generated tsvector (the 'english' configuration: stemming and stop words)
# with a GIN index; the two-argument to_tsvector is immutable, as a generated column needs.
_POSTGRESQL = [
    """ALTER TABLE kb_chunks ADD COLUMN tsv tsvector GENERATED ALWAYS AS
        (to_tsvector('english'::regconfig, context || ' ' || text)) STORED""",
    "CREATE INDEX ix_kb_chunks_tsv ON kb_chunks USING gin (tsv)",
]


def upgrade() -> None:
    op.create_table(
        "kb_documents",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("tenant", sa.String(200), nullable=False),
        sa.Column("source", sa.String(1000), nullable=False),
        sa.Column("title", sa.String(500), nullable=False),
        sa.Column("media_type", sa.String(100), nullable=False),
        sa.Column("trust", sa.String(16), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("chars", sa.Integer, nullable=False),
        sa.Column("chunks", sa.Integer, nullable=False),
        sa.Column("embedder", sa.String(200), nullable=False),
        sa.Column("chunking", sa.String(100), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.UniqueConstraint("tenant", "source", name="uq_kb_documents_source"),
    )
    op.create_table(
        "kb_chunks",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "document_id",
            sa.String(40),
            sa.ForeignKey("kb_documents.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("tenant", sa.String(200), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("start_char", sa.Integer, nullable=False),
        sa.Column("end_char", sa.Integer, nullable=False),
        sa.Column("context", sa.Text, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("embedding", sa.LargeBinary, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_kb_chunks_document", "kb_chunks", ["document_id", "seq"])
    op.create_index("ix_kb_chunks_tenant", "kb_chunks", ["tenant"])
    op.create_table(
        "kb_corpus",
        sa.Column("tenant", sa.String(200), primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    dialect = op.get_bind().dialect.name
    for statement in _SQLITE if dialect == "sqlite" else _POSTGRESQL:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for trigger in ("kb_chunks_ai", "kb_chunks_ad", "kb_chunks_au"):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.execute("DROP TABLE IF EXISTS kb_fts")
    for table in ("kb_chunks", "kb_documents", "kb_corpus"):
        op.drop_table(table)
