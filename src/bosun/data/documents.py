"""The knowledge base's documents and chunks: writes that replace a document whole, keyword
search (SQLite FTS5 / PostgreSQL full text), vector search (`bosun.data.vectors`), and the
corpus version of each tenant.

A document is keyed by (tenant, source). `put` decides in one transaction:

```
same text, same embedder and chunking  -> unchanged: nothing is written
same text, another embedder/chunking   -> reindexed: chunks replaced, version kept
new text                               -> updated: chunks replaced, version + 1
no such document                       -> added: version 1
```

Replacing deletes the old chunks (their keyword and vector entries with them) and inserts the
new ones in the same transaction as the document row and the tenant's corpus counter, so a
reader sees the old version or the new one, never a mix, and a failed write leaves nothing.

Every write that moves a corpus counter also appends a row to `kb_changes` in the same
transaction, so `changes` can say what changed after a corpus version an answer was drawn
from: the counters of the tenant and the global corpus each move by one per change, so the
changes after version V are the last (current - V) rows of the two corpora, in order.

Tenants: ``""`` is the global corpus. A caller reads its own tenant's documents and the
global ones (`visible`), never another tenant's.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from bosun.data._repo import Repository, values_of
from bosun.data.schema import kb_changes, kb_chunks, kb_corpus, kb_documents
from bosun.data.store import Store
from bosun.data.vectors import VectorIndex, open_index
from bosun.errors import UserError

__all__ = [
    "ChangeRow",
    "ChunkRow",
    "CorpusChanges",
    "DocumentRow",
    "DocumentRows",
    "NewChunk",
    "NewDocument",
    "PutOutcome",
    "visible",
]

_WORD = re.compile(r"\w+", re.UNICODE)
_MAX_QUERY_TERMS = 64  # a pasted page as a query must not become a 10,000-term OR


def visible(tenant: str) -> tuple[str, ...]:
    """The corpora `tenant` reads: its own and the global one (``""``)."""
    return ("",) if tenant == "" else (tenant, "")


@dataclass(frozen=True, slots=True, kw_only=True)
class NewDocument:
    """A document to store (its id and version are the repository's to assign)."""

    tenant: str
    """Its tenant; ``""`` for the global corpus."""
    source: str
    """What it was read from (a path, a file name): with the tenant, its identity."""
    title: str
    """Shown in citations."""
    media_type: str
    """``text/plain``, ``text/markdown``, ``text/html``, ``application/pdf``, ``message/rfc822``."""
    trust: str
    """The trust label its text keeps wherever it is shown (`bosun.trust.Trust`)."""
    sha256: str
    """Of the extracted text: the same text again is a no-op."""
    chars: int
    """Length of the extracted text."""
    embedder: str
    """The embedder whose vectors the chunks carry."""
    chunking: str
    """The chunking settings, e.g. ``tokens=512,overlap=64``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class NewChunk:
    """One chunk of a document to store."""

    seq: int
    """Its position in the document."""
    start_char: int
    """Where it starts in the document's extracted text."""
    end_char: int
    """Where it ends (exclusive)."""
    context: str
    """The title and headings above it, indexed with it."""
    text: str
    """The chunk: ``document_text[start_char:end_char]``."""
    embedding: bytes
    """Its unit vector as float32 bytes."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DocumentRow:
    """A document as stored."""

    id: str
    """Stable across versions."""
    tenant: str
    """``""``: global."""
    source: str
    """Where it was read from."""
    title: str
    """Shown in citations."""
    media_type: str
    """Its format."""
    trust: str
    """Its trust label."""
    sha256: str
    """Of its text."""
    version: int
    """1, then + 1 for each new text."""
    chars: int
    """Length of its text."""
    chunks: int
    """How many chunks."""
    embedder: str
    """The embedder of its vectors."""
    chunking: str
    """The chunking settings."""
    created_at: float
    """When first added."""
    updated_at: float
    """When last written."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ChunkRow:
    """A chunk with what a citation needs of its document."""

    id: int
    """The chunk's id (changes when its document is replaced)."""
    document_id: str
    """Its document."""
    seq: int
    """Its position in the document."""
    start_char: int
    """Span start in the document's text."""
    end_char: int
    """Span end (exclusive)."""
    context: str
    """Title and headings above it."""
    text: str
    """The chunk."""
    title: str
    """The document's title."""
    source: str
    """The document's source."""
    version: int
    """The document's version."""
    trust: str
    """The document's trust label."""
    tenant: str
    """The document's tenant (``""``: global)."""


@dataclass(frozen=True, slots=True)
class PutOutcome:
    """What `DocumentRows.put` did."""

    document: DocumentRow
    """The document as stored now."""
    status: Literal["added", "updated", "reindexed", "unchanged"]
    """What changed."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ChangeRow:
    """One change to a corpus: what moved its version by one."""

    tenant: str
    """The corpus changed: a tenant's, or ``""`` for the global one."""
    seq: int
    """That corpus's counter after the change."""
    change: Literal["added", "updated", "reindexed", "removed"]
    """What happened to the document (``reindexed``: same text, new embedder or chunking)."""
    document_id: str
    """The document (gone when `change` is ``removed``)."""
    source: str
    """Where it was read from."""
    title: str
    """Its title at the change."""
    version: int
    """The document version the change left (the removed version, for ``removed``)."""
    at: float
    """When."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CorpusChanges:
    """What changed in the documents a tenant reads after one corpus version."""

    since: int
    """The corpus version asked about (e.g. a run's ``corpus_version``)."""
    current: int
    """The corpus version now."""
    changes: list[ChangeRow]
    """The recorded changes after `since`, oldest first."""
    unrecorded: int
    """Changes after `since` made before changes were recorded (migration 0012): counted
    by the corpus version, not listed."""


_CHUNK_FIELDS = ChunkRow.__slots__


class DocumentRows(Repository):
    """Documents, chunks and their indexes in one store."""

    def __init__(self, store: Store) -> None:
        super().__init__(store)
        self._indexes: dict[str, VectorIndex] = {}

    def vector_index(self, *, embedder: str, dimensions: int) -> VectorIndex:
        """The vector index of `embedder` (made on first use)."""
        index = self._indexes.get(embedder)
        if index is None:
            index = open_index(self.store, embedder=embedder, dimensions=dimensions)
            self._indexes[embedder] = index
        return index

    # --- writes ---------------------------------------------------------------------------

    def put(
        self, doc: NewDocument, chunks: Sequence[NewChunk], *, index: VectorIndex
    ) -> PutOutcome:
        """Add or replace the document (tenant, source) and its chunks atomically, indexing
        the new vectors in `index` (the index of ``doc.embedder``)."""
        before = self.find(tenant=doc.tenant, source=doc.source)
        # Opened before the write transaction: making an index is a write of its own.
        old_index = self._index_of(before) if before is not None else None
        now = time.time()
        with self.transaction() as conn:
            old = self._find(conn, doc.tenant, doc.source, lock=True)
            if old is not None and (old.sha256, old.embedder, old.chunking) == (
                doc.sha256,
                doc.embedder,
                doc.chunking,
            ):
                return PutOutcome(old, "unchanged")
            if old is not None:
                self._drop_chunks(conn, old, old_index)
            values = values_of(doc) | {"chunks": len(chunks), "updated_at": now}
            if old is None:
                doc_id = "doc_" + uuid.uuid4().hex[:24]
                values |= {"id": doc_id, "version": 1, "created_at": now}
                conn.execute(kb_documents.insert().values(**values))
                status: Literal["added", "updated", "reindexed"] = "added"
            else:
                doc_id = old.id
                new_text = old.sha256 != doc.sha256
                values["version"] = old.version + 1 if new_text else old.version
                conn.execute(
                    kb_documents.update().where(kb_documents.c.id == doc_id).values(**values)
                )
                status = "updated" if new_text else "reindexed"
            version = int(values["version"])
            if chunks:
                owner = {"document_id": doc_id, "tenant": doc.tenant}
                ids = conn.execute(
                    kb_chunks.insert().returning(kb_chunks.c.id, sort_by_parameter_order=True),
                    [values_of(c) | owner for c in chunks],
                ).scalars()
                vectors = [(i, doc.tenant, c.embedding) for i, c in zip(ids, chunks, strict=True)]
                index.add(conn, vectors)
            seq = self._bump(conn, doc.tenant, now)
            conn.execute(
                kb_changes.insert().values(
                    tenant=doc.tenant,
                    seq=seq,
                    change=status,
                    document_id=doc_id,
                    source=doc.source,
                    title=doc.title,
                    version=version,
                    at=now,
                )
            )
            stored = self._find(conn, doc.tenant, doc.source, lock=False)
        assert stored is not None
        return PutOutcome(stored, status)

    def remove(self, document_id: str, *, tenant: str) -> bool:
        """Delete a document of `tenant` (a global one only when `tenant` is ``""``) with its
        chunks; False when `tenant` has no such document."""
        before = self._get_own(document_id, tenant)
        if before is None:
            return False
        index = self._index_of(before)
        with self.transaction() as conn:
            row = conn.execute(
                sa.select(kb_documents).where(
                    kb_documents.c.id == document_id, kb_documents.c.tenant == tenant
                )
            ).first()
            if row is None:  # removed meanwhile
                return False
            gone = DocumentRow(**row._mapping)
            self._drop_chunks(conn, gone, index)
            conn.execute(kb_documents.delete().where(kb_documents.c.id == document_id))
            now = time.time()
            seq = self._bump(conn, tenant, now)
            conn.execute(
                kb_changes.insert().values(
                    tenant=tenant,
                    seq=seq,
                    change="removed",
                    document_id=gone.id,
                    source=gone.source,
                    title=gone.title,
                    version=gone.version,
                    at=now,
                )
            )
        return True

    def _get_own(self, document_id: str, tenant: str) -> DocumentRow | None:
        with self._read() as conn:
            row = conn.execute(
                sa.select(kb_documents).where(
                    kb_documents.c.id == document_id, kb_documents.c.tenant == tenant
                )
            ).first()
        return None if row is None else DocumentRow(**row._mapping)

    def _index_of(self, doc: DocumentRow) -> VectorIndex | None:
        """The index holding `doc`'s vectors (None when it has no chunks)."""
        index = self._indexes.get(doc.embedder)
        if index is not None:
            return index
        with self._read() as conn:
            first = conn.execute(
                sa.select(kb_chunks.c.embedding).where(kb_chunks.c.document_id == doc.id).limit(1)
            ).scalar()
        if first is None:
            return None
        return self.vector_index(embedder=doc.embedder, dimensions=len(first) // 4)

    def _drop_chunks(self, conn: Connection, doc: DocumentRow, index: VectorIndex | None) -> None:
        ids = list(
            conn.execute(
                sa.select(kb_chunks.c.id).where(kb_chunks.c.document_id == doc.id)
            ).scalars()
        )
        # Chunk ids are never reused (AUTOINCREMENT on SQLite, a sequence on PostgreSQL), so
        # an index entry missed here (a concurrent change of embedder) points at nothing.
        if index is not None:
            index.remove(conn, ids)
        conn.execute(kb_chunks.delete().where(kb_chunks.c.document_id == doc.id))

    def _bump(self, conn: Connection, tenant: str, now: float) -> int:
        """Add one to `tenant`'s corpus counter; the counter after."""
        updated = conn.execute(
            kb_corpus.update()
            .where(kb_corpus.c.tenant == tenant)
            .values(version=kb_corpus.c.version + 1, updated_at=now)
        ).rowcount
        if not updated:
            conn.execute(kb_corpus.insert().values(tenant=tenant, version=1, updated_at=now))
            return 1
        return int(
            conn.execute(
                sa.select(kb_corpus.c.version).where(kb_corpus.c.tenant == tenant)
            ).scalar_one()
        )

    # --- reads ----------------------------------------------------------------------------

    def find(self, *, tenant: str, source: str) -> DocumentRow | None:
        """The document (tenant, source), if stored."""
        with self._read() as conn:
            return self._find(conn, tenant, source, lock=False)

    def _find(
        self, conn: Connection, tenant: str, source: str, *, lock: bool
    ) -> DocumentRow | None:
        query = sa.select(kb_documents).where(
            kb_documents.c.tenant == tenant, kb_documents.c.source == source
        )
        if lock and self._postgres:
            query = query.with_for_update()
        row = conn.execute(query).first()
        return None if row is None else DocumentRow(**row._mapping)

    def get(self, document_id: str, *, tenant: str) -> DocumentRow | None:
        """A document `tenant` may read (its own or a global one)."""
        with self._read() as conn:
            row = conn.execute(
                sa.select(kb_documents).where(
                    kb_documents.c.id == document_id, kb_documents.c.tenant.in_(visible(tenant))
                )
            ).first()
        return None if row is None else DocumentRow(**row._mapping)

    def documents(self, *, tenant: str, limit: int = 1000, offset: int = 0) -> list[DocumentRow]:
        """Documents `tenant` may read, newest first."""
        query = (
            sa.select(kb_documents)
            .where(kb_documents.c.tenant.in_(visible(tenant)))
            .order_by(kb_documents.c.updated_at.desc(), kb_documents.c.id)
            .limit(limit)
            .offset(offset)
        )
        with self._read() as conn:
            return [DocumentRow(**r._mapping) for r in conn.execute(query).all()]

    # The three reads of every search are plain driver SQL: SQLAlchemy's compilation of an
    # expanding IN over a hundred ids cost more than the queries themselves.

    def chunks(self, chunk_ids: Sequence[int], *, tenant: str) -> dict[int, ChunkRow]:
        """The chunks among `chunk_ids` that `tenant` may read, by id."""
        if not chunk_ids:
            return {}
        ids: object = list(chunk_ids) if self._postgres else json.dumps(list(chunk_ids))
        with self._read() as conn:
            rows = conn.exec_driver_sql(self._sql("chunks"), (ids, *_pair(tenant))).all()
        return {r[0]: ChunkRow(**dict(zip(_CHUNK_FIELDS, r, strict=True))) for r in rows}

    def corpus_version(self, *, tenant: str) -> int:
        """A number that grows with every change to the documents `tenant` reads: the sum
        of its own corpus counter and the global one (each only grows)."""
        with self._read() as conn:
            return int(conn.exec_driver_sql(self._sql("version"), _pair(tenant)).scalar_one())

    def changes(self, *, tenant: str, since: int) -> CorpusChanges:
        """What changed in the documents `tenant` reads after corpus version `since`.

        Each change moves the version by exactly one (`corpus_version`), so they are the last
        ``current - since`` recorded changes of `tenant`'s corpus and the global one. Their
        order is the order their rows were written: on PostgreSQL a tenant's change and a
        global one committing at the same moment may be listed in either order, which only
        matters when `since` falls between the two."""
        if since < 0:
            raise UserError(f"a corpus version is 0 or more, not {since}")
        with self.transaction() as conn:
            current = int(conn.exec_driver_sql(self._sql("version"), _pair(tenant)).scalar_one())
            if since > current:
                raise UserError(
                    f"corpus version {since} is ahead of the current one ({current}): "
                    "it is not a version of this corpus"
                )
            rows = conn.execute(
                sa.select(kb_changes)
                .where(kb_changes.c.tenant.in_(visible(tenant)))
                .order_by(kb_changes.c.id.desc())
                .limit(current - since)
            ).all()
        found = [
            ChangeRow(**{k: v for k, v in r._mapping.items() if k != "id"}) for r in reversed(rows)
        ]
        return CorpusChanges(
            since=since, current=current, changes=found, unrecorded=current - since - len(found)
        )

    def keyword(self, query: str, *, tenant: str, k: int) -> list[tuple[int, float]]:
        """Up to `k` (chunk id, score) matching any word of `query`, best first: BM25 on
        SQLite (FTS5; the score is -bm25, higher is better), ``ts_rank`` on PostgreSQL."""
        terms = list(dict.fromkeys(_WORD.findall(query.lower())))[:_MAX_QUERY_TERMS]
        if not terms:
            return []
        if self._postgres:
            match = " ".join(terms)
        else:  # each word quoted: FTS5's own syntax (AND, NEAR, column:) stays inert
            match = " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)
        with self._read() as conn:
            rows = conn.exec_driver_sql(self._sql("keyword"), (match, *_pair(tenant), k)).all()
        return [(int(r[0]), float(r[1])) for r in rows]

    def _sql(self, name: str) -> str:
        return (_PG_SQL if self._postgres else _SQLITE_SQL)[name]

    def sizes(self) -> dict[str, int]:
        """Rows of each knowledge-base table: documents, chunks, corpora."""
        with self._read() as conn:
            return {
                t.name: int(conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one())
                for t in (kb_documents, kb_chunks, kb_corpus)
            }


def _pair(tenant: str) -> tuple[str, str]:
    """`visible(tenant)` as exactly two values, for SQL prepared once."""
    return (tenant, "")


_CHUNK_SELECT = (
    "SELECT c.id, c.document_id, c.seq, c.start_char, c.end_char, c.context, c.text, "
    "d.title, d.source, d.version, d.trust, d.tenant "
    "FROM kb_chunks c JOIN kb_documents d ON d.id = c.document_id "
)
_SQLITE_SQL = {
    "keyword": "SELECT c.id, -bm25(kb_fts) FROM kb_fts JOIN kb_chunks c ON c.id = kb_fts.rowid "
    "WHERE kb_fts MATCH ? AND c.tenant IN (?, ?) ORDER BY bm25(kb_fts) LIMIT ?",
    "chunks": _CHUNK_SELECT
    + "WHERE c.id IN (SELECT value FROM json_each(?)) AND c.tenant IN (?, ?)",
    "version": "SELECT coalesce(sum(version), 0) FROM kb_corpus WHERE tenant IN (?, ?)",
}
# plainto_tsquery applies the 'english' stop words and stemming and ANDs the words; any word
# should match (as BM25 does on SQLite), so the ANDs become ORs. ts_rank with length
# normalisation 1 (divide by 1 + log length): on SciFact it scored nDCG@10 0.61 where
# ts_rank_cd, whose cover density needs the query's words together, scored 0.39.
_PG_SQL = {
    "keyword": "SELECT c.id, ts_rank(c.tsv, q.query, 1) AS score FROM kb_chunks c, "
    "(SELECT replace(plainto_tsquery('english', %s)::text, '&', '|')::tsquery AS query) q "
    "WHERE c.tsv @@ q.query AND c.tenant IN (%s, %s) ORDER BY score DESC LIMIT %s",
    "chunks": _CHUNK_SELECT + "WHERE c.id = ANY(%s) AND c.tenant IN (%s, %s)",
    "version": "SELECT coalesce(sum(version), 0) FROM kb_corpus WHERE tenant IN (%s, %s)",
}
