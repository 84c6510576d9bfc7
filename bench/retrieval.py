"""Retrieval quality and cost on SciFact, on SQLite and on PostgreSQL: one table.

Data: ``retrieval/scifact`` of the third-party data (``BOSUN_DATA_DIR``, default
``../shared/data``): 5,183 abstracts, the 809 train queries and their relevance judgements.
Each abstract is one document (title + text; the title is the chunks' context, indexed and
embedded with them). A document's rank is its best chunk's.

Quality: nDCG@10 and recall@100 (binary relevance, as BEIR scores SciFact) for keyword only,
vector only and hybrid (reciprocal rank fusion). Published on SciFact (BEIR test queries):
BM25 0.665, all-MiniLM-L6-v2 0.645.

Cost: per query, the time to embed it and the time to search (keyword + vector + fusion +
reading the hits back), p50 and p95; ingestion throughput without the embedding time, the
embedding throughput of the first run, and the size on disk of the knowledge base.

Backends: SQLite (FTS5 + sqlite-vec); PostgreSQL at BOSUN_TEST_PG_URL (full text; without
pgvector there, vectors are scanned in Python); PostgreSQL with pgvector (HNSW) from the PyPI
package pgserver. A backend that cannot start is reported and skipped.

Embeddings of chunks are cached between runs in an SQLite file keyed by the embedder's name
(which carries its model file's hash) and the text's sha256 (``BOSUN_BENCH_CACHE``, default
``~/.cache/bosun/bench-embeddings.sqlite``); query embeddings are always computed, so their
times are real.

    python bench/retrieval.py [--queries 809] [--backends sqlite,postgresql,pgvector]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import math
import os
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import sqlalchemy as sa

from bosun.data.store import Store
from bosun.knowledge.base import KnowledgeBase, KnowledgeConfig
from bosun.knowledge.embeddings import Embedder, MiniLmEmbedder, Vectors
from bosun.knowledge.search import Mode

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from pgvector_server import pgvector_server, schema_url
from third_party import require

MODES: tuple[Mode, ...] = ("keyword", "vector", "hybrid")


class CachedEmbedder:
    """Chunk vectors from an on-disk cache, the rest from `inner`; counts the time `inner`
    spends, so ingestion can be timed without it."""

    def __init__(self, inner: Embedder, path: Path) -> None:
        self.inner = inner
        self.name = inner.name
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path)
        self._db.execute("CREATE TABLE IF NOT EXISTS vectors (key TEXT PRIMARY KEY, v BLOB)")
        self._db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
        self.embed_s = 0.0
        self.embedded = 0

    def _key(self, text: str) -> str:
        return hashlib.sha256(f"{self.name}\0{text}".encode()).hexdigest()

    def embed(self, texts: Sequence[str]) -> Vectors:
        keys = [self._key(t) for t in texts]
        found = dict(
            self._db.execute(
                f"SELECT key, v FROM vectors WHERE key IN ({','.join('?' * len(keys))})", keys
            ).fetchall()
        )
        missing = [i for i, k in enumerate(keys) if k not in found]
        if missing:
            began = time.perf_counter()
            vectors = self.inner.embed([texts[i] for i in missing])
            self.embed_s += time.perf_counter() - began
            self.embedded += len(missing)
            rows = [(keys[i], vectors[j].tobytes()) for j, i in enumerate(missing)]
            self._db.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?)", rows)
            self._db.commit()
            found.update(rows)
        return np.stack([np.frombuffer(found[k], dtype=np.float32) for k in keys])

    def remember(self, key: str, value: dict[str, float]) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))
        self._db.commit()

    def recall(self, key: str) -> dict[str, float] | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else dict(json.loads(row[0]))


def _read(data: Path) -> tuple[list[dict[str, str]], dict[str, str], dict[str, set[str]]]:
    root = data / "retrieval" / "scifact"
    corpus = [json.loads(line) for line in (root / "corpus.jsonl").open()]
    queries = {q["_id"]: q["text"] for q in map(json.loads, (root / "queries-train.jsonl").open())}
    qrels: dict[str, set[str]] = {}
    for line in list((root / "qrels-train.tsv").open())[1:]:
        qid, did, score = line.split()
        if int(score) > 0:
            qrels.setdefault(qid, set()).add(did)
    return corpus, {q: t for q, t in queries.items() if q in qrels}, qrels


def _ndcg10(ranked: list[str], relevant: set[str]) -> float:
    dcg = sum(1 / math.log2(i + 2) for i, d in enumerate(ranked[:10]) if d in relevant)
    ideal = sum(1 / math.log2(i + 2) for i in range(min(len(relevant), 10)))
    return dcg / ideal


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


@contextlib.contextmanager
def _backend(name: str, workdir: Path) -> Iterator[str]:
    if name == "sqlite":
        yield f"sqlite:///{workdir / 'kb.db'}"
        return
    if name == "pgvector":
        with pgvector_server(workdir / "pgdata") as url:
            yield schema_url(url, "bench", public=True)
        return
    base = os.environ.get("BOSUN_TEST_PG_URL")
    if not base:
        raise RuntimeError("BOSUN_TEST_PG_URL is not set")
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(base)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    try:
        yield schema_url(base, schema)
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()


def _size_mb(store: Store, url: str) -> float:
    """Bytes on disk of the knowledge base's tables and indexes."""
    if store.dialect == "sqlite":
        with store.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        path = Path(sa.engine.make_url(url).database or "")
        return path.stat().st_size / 1e6
    query = (
        "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = current_schema() AND c.relkind = 'r' AND c.relname LIKE 'kb\\_%%'"
    )
    with store.engine.connect() as conn:
        return int(conn.exec_driver_sql(query).scalar_one()) / 1e6


def _run(
    name: str,
    url: str,
    corpus: list[dict[str, str]],
    queries: dict[str, str],
    qrels: dict[str, set[str]],
    cached: CachedEmbedder,
    live: Embedder,
) -> list[dict[str, object]]:
    store = Store.open(url)
    empty_mb = _size_mb(store, url)
    config = KnowledgeConfig(candidates=100)
    ingest = KnowledgeBase(store, embedder=cached, config=config)
    embed_before = cached.embed_s
    began = time.perf_counter()
    chunks = 0
    for doc in corpus:
        result = ingest.add_text(doc["text"], source=doc["_id"], title=doc["title"] or doc["_id"])
        assert result.document is not None, result.error
        chunks += result.document.chunks
    wall = time.perf_counter() - began
    ingest_s = wall - (cached.embed_s - embed_before)
    size = _size_mb(store, url) - empty_mb
    search = KnowledgeBase(store, embedder=live, config=config)
    search.search("warm up", limit=10)
    rows = []
    for mode in MODES:
        ndcg, recall, embed_ms, search_ms = [], [], [], []
        for qid, text in queries.items():
            result = search.search(text, limit=120, mode=mode)
            ranked = list(dict.fromkeys(h.citation.source for h in result.hits))[:100]
            ndcg.append(_ndcg10(ranked, qrels[qid]))
            recall.append(len(set(ranked) & qrels[qid]) / len(qrels[qid]))
            search_ms.append(result.search_ms)
            if mode != "keyword":
                embed_ms.append(result.embed_ms)
        index = result.vector_index or "-"
        rows.append(
            {
                "backend": name,
                "mode": mode,
                "index": index if mode != "keyword" else "-",
                "ndcg10": statistics.fmean(ndcg),
                "recall100": statistics.fmean(recall),
                "p50": _pct(search_ms, 50),
                "p95": _pct(search_ms, 95),
                "embed50": _pct(embed_ms, 50),
                "embed95": _pct(embed_ms, 95),
                "chunks_s": chunks / ingest_s,
                "chunks": chunks,
                "size_mb": size,
            }
        )
    store.close()
    return rows


def _print(rows: list[dict[str, object]]) -> None:
    header = (
        f"{'backend':<11}{'mode':<8}{'vectors':<11}{'nDCG@10':>8}{'R@100':>7}"
        f"{'search p50':>11}{'p95 ms':>8}{'embed p50':>10}{'p95 ms':>8}"
        f"{'ingest':>10}{'size MB':>9}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        embed = (
            f"{r['embed50']:>10.2f}{r['embed95']:>8.2f}"
            if r["mode"] != "keyword"
            else f"{'-':>10}{'-':>8}"
        )
        print(
            f"{r['backend']:<11}{r['mode']:<8}{r['index']:<11}{r['ndcg10']:>8.3f}"
            f"{r['recall100']:>7.3f}{r['p50']:>11.2f}{r['p95']:>8.2f}{embed}"
            f"{r['chunks_s']:>8.0f}/s{r['size_mb']:>9.1f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--queries", type=int, default=0, help="only the first N queries")
    parser.add_argument("--docs", type=int, default=0, help="only the first N abstracts")
    parser.add_argument("--backends", default="sqlite,postgresql,pgvector")
    args = parser.parse_args()
    data = require("retrieval/scifact")
    corpus, queries, qrels = _read(data)
    if args.queries:
        queries = dict(list(queries.items())[: args.queries])
    if args.docs:  # a smoke run: the scores mean little
        corpus = corpus[: args.docs]
    default_cache = Path.home() / ".cache" / "bosun" / "bench-embeddings.sqlite"
    cache_path = Path(os.environ.get("BOSUN_BENCH_CACHE") or default_cache)
    live = MiniLmEmbedder()
    cached = CachedEmbedder(live, cache_path)
    print(
        f"SciFact: {len(corpus)} abstracts, {len(queries)} train queries with judgements; "
        f"embedder {live.name}"
    )
    rows: list[dict[str, object]] = []
    for name in args.backends.split(","):
        with tempfile.TemporaryDirectory(prefix="bosun-bench-") as tmp:
            try:
                with _backend(name, Path(tmp)) as url:
                    rows += _run(name, url, corpus, queries, qrels, cached, live)
            except Exception as exc:  # a backend that cannot start: say so, go on
                print(f"{name}: skipped ({type(exc).__name__}: {exc})")
    if cached.embedded:
        cached.remember("first_run", {"texts": cached.embedded, "seconds": cached.embed_s})
    first = cached.recall("first_run")
    print()
    _print(rows)
    print()
    print(
        "search: keyword + vector + fusion + reading the hits back (query embedding excluded; "
        "its time is 'embed'); ingest: chunks/s with the embedding time taken out"
    )
    if first:
        print(
            f"embedding the corpus (first run, {os.cpu_count()} CPU cores): "
            f"{first['texts']:.0f} chunks in {first['seconds']:.0f} s "
            f"({first['texts'] / first['seconds']:.1f} chunks/s); later runs read {cache_path}"
        )


if __name__ == "__main__":
    main()
