"""Vector indexes over the knowledge base's chunks: sqlite-vec, pgvector, or a scan in Python.

```
                 SQLite                               PostgreSQL
index            vec0 virtual table (exact kNN)      table with vector(dim) + HNSW (cosine)
                 partitioned by tenant                (approximate; ef_search >= k)
without it       ScanIndex: the chunks' float32 copies read once per corpus version and
                 scored with numpy (exact)
```

Each embedder gets its own index, named after a hash of its id (``kb_vec_<12 hex>``), because
the vectors of two models are not comparable and a model fixes the dimension; the tables are
made on first use, not by a migration, for that reason. Every chunk also keeps its vector as
float32 bytes in ``kb_chunks.embedding``: the portable copy the scan reads and an index could
be rebuilt from.

An index is written inside the caller's transaction (`add`, `remove`), so a document's chunks,
keyword index and vectors commit together or not at all.

Without pgvector on the server (``CREATE EXTENSION vector`` unavailable or not permitted),
PostgreSQL uses the scan, and a warning says so once per process. The scan holds the visible
chunks' vectors in memory (1.5 KB a chunk at 384 dimensions), so it suits corpora up to
about a hundred thousand chunks; past that, install pgvector.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

import numpy as np
import sqlalchemy as sa
from numpy.typing import NDArray
from sqlalchemy.engine import Connection

from bosun.data.schema import kb_chunks, kb_corpus, kb_documents

if TYPE_CHECKING:
    from bosun.data.store import Store

__all__ = ["PgVectorIndex", "ScanIndex", "Vec0Index", "VectorIndex", "index_name", "open_index"]

logger = logging.getLogger(__name__)

Matrix = NDArray[np.float32]
_CACHE_ENTRIES = 8  # tenant scopes whose vectors the scan keeps in memory


def index_name(embedder: str) -> str:
    """The index table of `embedder`'s vectors."""
    return "kb_vec_" + hashlib.sha256(embedder.encode()).hexdigest()[:12]


class VectorIndex(Protocol):
    """Nearest chunks to a query vector, within the tenants a caller may read."""

    kind: str
    """``sqlite-vec``, ``pgvector`` or ``scan``: what answers `search`."""

    def add(self, conn: Connection, rows: Sequence[tuple[int, str, bytes]]) -> None:
        """Index (chunk id, tenant, float32 vector) inside `conn`'s transaction."""
        ...

    def remove(self, conn: Connection, chunk_ids: Sequence[int]) -> None:
        """Drop these chunks from the index inside `conn`'s transaction."""
        ...

    def search(self, query: Matrix, *, tenants: Sequence[str], k: int) -> list[tuple[int, float]]:
        """Up to `k` (chunk id, cosine similarity), most similar first."""
        ...


def open_index(store: Store, *, embedder: str, dimensions: int) -> VectorIndex:
    """The best index the store's database offers for `embedder`, made if missing."""
    table = index_name(embedder)
    if store.dialect == "sqlite" and _sqlite_has_vec(store):
        return Vec0Index(store, embedder, table, dimensions)
    if store.dialect == "postgresql" and _pgvector(store):
        return PgVectorIndex(store, embedder, table, dimensions)
    if store.dialect == "postgresql":
        _warn_no_pgvector()
    return ScanIndex(store, embedder)


def _sqlite_has_vec(store: Store) -> bool:
    with store.engine.connect() as conn:
        try:
            conn.exec_driver_sql("SELECT vec_version()")
        except sa.exc.OperationalError:
            return False
    return True


def _pgvector(store: Store) -> bool:
    """Whether the vector extension is installed, installing it when the server has it and
    the role may."""
    check = "SELECT 1 FROM pg_extension WHERE extname = 'vector'"
    with store.engine.connect() as conn:
        if conn.exec_driver_sql(check).first() is not None:
            return True
        available = conn.exec_driver_sql(
            "SELECT 1 FROM pg_available_extensions WHERE name = 'vector'"
        ).first()
    if available is None:
        return False
    try:
        with store.transaction() as conn:
            conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS vector")
    except sa.exc.DBAPIError as exc:
        logger.warning("pgvector is available but could not be installed: %s", exc.orig)
        return False
    return True


@functools.cache
def _warn_no_pgvector() -> None:
    logger.warning(
        "PostgreSQL has no pgvector extension: knowledge-base vectors are scanned in Python "
        "(fine for small corpora; install pgvector for large ones)"
    )


class Vec0Index:
    """sqlite-vec's ``vec0``: exact cosine kNN, one partition per tenant."""

    kind = "sqlite-vec"

    def __init__(self, store: Store, embedder: str, table: str, dimensions: int) -> None:
        self._store = store
        self._table = table
        with store.transaction() as conn:
            exists = conn.exec_driver_sql(
                "SELECT 1 FROM sqlite_master WHERE name = ?", (table,)
            ).first()
            if exists is None:
                conn.exec_driver_sql(
                    f"CREATE VIRTUAL TABLE {table} USING vec0("
                    f"tenant text partition key, embedding float[{dimensions}] "
                    "distance_metric=cosine)"
                )
                self.add(conn, _indexed_elsewhere(conn, embedder))

    def add(self, conn: Connection, rows: Sequence[tuple[int, str, bytes]]) -> None:
        if rows:
            conn.exec_driver_sql(
                f"INSERT INTO {self._table}(rowid, tenant, embedding) VALUES (?, ?, ?)",
                list(rows),
            )

    def remove(self, conn: Connection, chunk_ids: Sequence[int]) -> None:
        if chunk_ids:
            conn.exec_driver_sql(
                f"DELETE FROM {self._table} WHERE rowid = ?", [(i,) for i in chunk_ids]
            )

    def search(self, query: Matrix, *, tenants: Sequence[str], k: int) -> list[tuple[int, float]]:
        found: list[tuple[int, float]] = []
        sql = (
            f"SELECT rowid, distance FROM {self._table} "
            "WHERE embedding MATCH ? AND k = ? AND tenant = ?"
        )
        blob = np.ascontiguousarray(query, dtype=np.float32).tobytes()
        with self._store.engine.connect() as conn:
            for tenant in tenants:  # one partition each: the tenant's own and the global one
                rows = conn.exec_driver_sql(sql, (blob, k, tenant)).all()
                found += [(int(r[0]), 1.0 - float(r[1])) for r in rows]
        found.sort(key=lambda hit: -hit[1])
        return found[:k]


class PgVectorIndex:
    """pgvector: a ``vector(dim)`` table with an HNSW index on cosine distance."""

    kind = "pgvector"

    def __init__(self, store: Store, embedder: str, table: str, dimensions: int) -> None:
        self._store = store
        self._table = table
        with store.transaction() as conn:
            # Two processes making the same index must not both backfill it.
            conn.exec_driver_sql("SELECT pg_advisory_xact_lock(hashtext(%s))", (table,))
            exists = conn.exec_driver_sql("SELECT to_regclass(%s)", (table,)).scalar()
            if exists is None:
                conn.exec_driver_sql(
                    f"CREATE TABLE {table} ("
                    "chunk_id integer PRIMARY KEY REFERENCES kb_chunks(id) ON DELETE CASCADE, "
                    f"tenant varchar(200) NOT NULL, embedding vector({dimensions}) NOT NULL)"
                )
                conn.exec_driver_sql(
                    f"CREATE INDEX {table}_hnsw ON {table} USING hnsw (embedding vector_cosine_ops)"
                )
                self.add(conn, _indexed_elsewhere(conn, embedder))

    def add(self, conn: Connection, rows: Sequence[tuple[int, str, bytes]]) -> None:
        if rows:
            conn.exec_driver_sql(
                f"INSERT INTO {self._table} (chunk_id, tenant, embedding) "
                "VALUES (%s, %s, %s::vector)",
                [(i, tenant, _literal(blob)) for i, tenant, blob in rows],
            )

    def remove(self, conn: Connection, chunk_ids: Sequence[int]) -> None:
        if chunk_ids:  # the foreign key's cascade would too; this keeps it explicit
            conn.exec_driver_sql(
                f"DELETE FROM {self._table} WHERE chunk_id = ANY(%s)", (list(chunk_ids),)
            )

    def search(self, query: Matrix, *, tenants: Sequence[str], k: int) -> list[tuple[int, float]]:
        vector = _literal(np.ascontiguousarray(query, dtype=np.float32).tobytes())
        with self._store.engine.connect() as conn, conn.begin():
            # HNSW returns at most ef_search rows (default 40): a top-100 needs more.
            conn.exec_driver_sql(f"SET LOCAL hnsw.ef_search = {max(40, min(k * 2, 1000))}")
            rows = conn.exec_driver_sql(
                f"SELECT chunk_id, embedding <=> %s::vector AS distance FROM {self._table} "
                "WHERE tenant = ANY(%s) ORDER BY embedding <=> %s::vector LIMIT %s",
                (vector, list(tenants), vector, k),
            ).all()
        return [(int(r[0]), 1.0 - float(r[1])) for r in rows]


def _indexed_elsewhere(conn: Connection, embedder: str) -> list[tuple[int, str, bytes]]:
    """Chunks with `embedder`'s vectors stored before its index existed (written while the
    extension could not be loaded): a new index starts with them."""
    rows = conn.execute(
        sa.select(kb_chunks.c.id, kb_chunks.c.tenant, kb_chunks.c.embedding)
        .join(kb_documents, kb_documents.c.id == kb_chunks.c.document_id)
        .where(kb_documents.c.embedder == embedder)
    ).all()
    return [(int(r[0]), str(r[1]), bytes(r[2])) for r in rows]


def _literal(blob: bytes) -> str:
    values = np.frombuffer(blob, dtype=np.float32)
    return "[" + ",".join(f"{v:.8g}" for v in values.tolist()) + "]"


class ScanIndex:
    """No vector index: the visible chunks' vectors, read once per corpus version and
    scored with one matrix product (exact cosine; vectors are unit length)."""

    kind = "scan"

    def __init__(self, store: Store, embedder: str) -> None:
        self._store = store
        self._embedder = embedder
        self._lock = threading.Lock()
        self._cache: OrderedDict[tuple[str, ...], tuple[int, NDArray[np.int64], Matrix]] = (
            OrderedDict()
        )

    def add(self, conn: Connection, rows: Sequence[tuple[int, str, bytes]]) -> None:
        """Nothing to do: the chunks' own vectors are what the scan reads."""

    def remove(self, conn: Connection, chunk_ids: Sequence[int]) -> None:
        """Nothing to do: see `add`."""

    def search(self, query: Matrix, *, tenants: Sequence[str], k: int) -> list[tuple[int, float]]:
        ids, matrix = self._vectors(tuple(sorted(tenants)))
        if not len(ids):
            return []
        sims = matrix @ np.asarray(query, dtype=np.float32)
        top = np.argpartition(-sims, k - 1)[:k] if k < len(sims) else np.arange(len(sims))
        order = top[np.argsort(-sims[top])]
        return [(int(ids[i]), float(sims[i])) for i in order]

    def _vectors(self, tenants: tuple[str, ...]) -> tuple[NDArray[np.int64], Matrix]:
        with self._store.engine.connect() as conn:
            # Read the version first: the vectors read after it are at least that new.
            version = int(
                conn.execute(
                    sa.select(sa.func.coalesce(sa.func.sum(kb_corpus.c.version), 0)).where(
                        kb_corpus.c.tenant.in_(tenants)
                    )
                ).scalar_one()
            )
            with self._lock:
                cached = self._cache.get(tenants)
                if cached is not None and cached[0] == version:
                    self._cache.move_to_end(tenants)
                    return cached[1], cached[2]
            rows = conn.execute(
                sa.select(kb_chunks.c.id, kb_chunks.c.embedding)
                .join(kb_documents, kb_documents.c.id == kb_chunks.c.document_id)
                .where(kb_chunks.c.tenant.in_(tenants), kb_documents.c.embedder == self._embedder)
                .order_by(kb_chunks.c.id)
            ).all()
        ids = np.array([r[0] for r in rows], dtype=np.int64)
        blob = b"".join(r[1] for r in rows)
        matrix = np.frombuffer(blob, dtype=np.float32).reshape(len(rows), -1) if rows else None
        result = (ids, matrix if matrix is not None else np.zeros((0, 0), np.float32))
        with self._lock:
            self._cache[tenants] = (version, *result)
            while len(self._cache) > _CACHE_ENTRIES:
                self._cache.popitem(last=False)
        return result
