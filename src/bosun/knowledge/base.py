"""The knowledge base: ingest files into a tenant's corpus, search it with citations.

```
add_files / add_bytes / add_text
  load (bosun.knowledge.loaders)  -> text, title        a bad file: one failed IngestResult
  same text, embedder, chunking?  -> unchanged           nothing embedded, nothing written
  chunk (bosun.knowledge.chunking) -> spans + headings
  embed "context\n\ntext"          -> vectors
  DocumentRows.put                 -> document, chunks, keyword + vector index, corpus
                                      version: one transaction
search
  keyword (FTS5 / tsvector) + vector (sqlite-vec / pgvector / scan) -> RRF -> re-ranker
```

Tenants: ``tenant=None`` is the global corpus, which every tenant reads; a tenant reads its
own documents and the global ones, never another tenant's.

Trust: every document keeps a trust label, shown with each hit. The default is
``untrusted`` whatever the format, because retrieved text is shown to the model as data and
an operator rarely knows what every file contains (a vendor PDF, a saved web page, a
forwarded e-mail can all carry instructions). Content the operator wrote and vouches for can
be ingested with ``trust=Trust.TRUSTED``; through the API only an admin may do that.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from bosun.config import KnowledgeSettings
from bosun.data.documents import (
    DocumentRow,
    DocumentRows,
    NewChunk,
    NewDocument,
    visible,
)
from bosun.data.store import Store
from bosun.errors import BosunError, InvalidInput, UserError
from bosun.knowledge.chunking import Chunker, ChunkingConfig
from bosun.knowledge.embeddings import Embedder, MiniLmEmbedder, embedder_for
from bosun.knowledge.loaders import Loaded, LoadLimits, load, markdown_title, too_big
from bosun.knowledge.search import (
    Hit,
    Mode,
    Reranker,
    SearchResult,
    hit_of,
    reciprocal_rank_fusion,
)
from bosun.trust import Trust

__all__ = ["Document", "IngestResult", "KnowledgeBase", "KnowledgeConfig"]

_MARKDOWN = frozenset({"text/markdown", "text/html", "message/rfc822"})


@dataclass(frozen=True, kw_only=True)
class KnowledgeConfig:
    """How documents are read, cut and searched."""

    chunking: ChunkingConfig = field(default_factory=ChunkingConfig)
    """Chunk size and overlap, in tokens."""
    limits: LoadLimits = field(default_factory=LoadLimits)
    """What one file may cost to read."""
    candidates: int = 50
    """Chunks each index contributes before fusion (at least the number of hits asked)."""
    rrf_k: int = 60
    """The reciprocal rank fusion constant."""
    rerank_depth: int = 20
    """How many of the best fused hits a re-ranker re-orders."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Document:
    """A stored document."""

    id: str
    """Stable across its versions."""
    tenant: str | None
    """Its tenant; None: the global corpus."""
    source: str
    """What it was read from."""
    title: str
    """Shown in citations."""
    media_type: str
    """What it was read as."""
    trust: Trust
    """The label its text keeps when retrieved."""
    version: int
    """1, then + 1 for each new text."""
    chunks: int
    """How many chunks."""
    chars: int
    """Length of its text."""
    sha256: str
    """Of its text."""
    updated_at: float
    """When last written (Unix time)."""

    @classmethod
    def of(cls, row: DocumentRow) -> Document:
        """From the stored row."""
        return cls(
            id=row.id,
            tenant=row.tenant or None,
            source=row.source,
            title=row.title,
            media_type=row.media_type,
            trust=Trust(row.trust),
            version=row.version,
            chunks=row.chunks,
            chars=row.chars,
            sha256=row.sha256,
            updated_at=row.updated_at,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class IngestResult:
    """What happened to one file."""

    source: str
    """The file (or name) ingested."""
    status: Literal["added", "updated", "reindexed", "unchanged", "failed"]
    """``failed``: see `error`; nothing of it was stored."""
    document: Document | None = None
    """The stored document (None when failed)."""
    error: str | None = None
    """Why it failed, in words for the person who gave the file."""
    notes: tuple[str, ...] = ()
    """What reading noticed (hidden HTML dropped, attachments skipped, ...)."""

    @property
    def ok(self) -> bool:
        """Whether the file is indexed now."""
        return self.status != "failed"


class KnowledgeBase:
    """Documents and hybrid search over one store."""

    def __init__(
        self,
        store: Store,
        *,
        embedder: Embedder | None = None,
        config: KnowledgeConfig | None = None,
        reranker: Reranker | None = None,
        chunker: Chunker | None = None,
    ) -> None:
        self.config = config or KnowledgeConfig()
        """The settings."""
        self.embedder: Embedder = embedder or MiniLmEmbedder()
        """Turns chunks and queries into vectors."""
        self.reranker = reranker
        """Re-orders the best fused hits, when set."""
        self.rows = DocumentRows(store)
        """The documents' repository."""
        self._chunker = chunker
        self._signature = self.config.chunking.signature

    @classmethod
    def from_settings(cls, store: Store, settings: KnowledgeSettings) -> KnowledgeBase:
        """The knowledge base `settings` configure (``[knowledge]`` in bosun.toml)."""
        chunking = ChunkingConfig(tokens=settings.chunk_tokens, overlap=settings.chunk_overlap)
        return cls(
            store, embedder=embedder_for(settings), config=KnowledgeConfig(chunking=chunking)
        )

    @property
    def chunker(self) -> Chunker:
        """Cuts documents (built on first use: it loads the tokenizer)."""
        if self._chunker is None:
            self._chunker = Chunker(self.config.chunking)
        return self._chunker

    # --- ingest ---------------------------------------------------------------------------

    def add_files(
        self,
        paths: Iterable[Path],
        *,
        tenant: str | None = None,
        trust: Trust = Trust.UNTRUSTED,
        title: str | None = None,
    ) -> list[IngestResult]:
        """Ingest each file on its own: a file that fails is reported and leaves nothing
        behind, and the others go in."""
        results = []
        for path in paths:
            source = str(path.resolve())
            try:
                size = path.stat().st_size
                # A file over the limit is refused by its size, before it is read.
                data = b"" if size > self.config.limits.max_bytes else path.read_bytes()
            except OSError as exc:
                error = f"{path}: {exc.strerror or exc}"
                results.append(IngestResult(source=source, status="failed", error=error))
                continue
            if size > self.config.limits.max_bytes:
                error = too_big(path.name, size, self.config.limits.max_bytes)
                results.append(IngestResult(source=source, status="failed", error=error))
                continue
            try:
                result = self.add_bytes(
                    data, name=path.name, source=source, tenant=tenant, trust=trust, title=title
                )
            except BosunError as exc:  # a bad file, the embedder's endpoint: this file only
                result = IngestResult(source=source, status="failed", error=str(exc))
            results.append(result)
        return results

    def add_bytes(
        self,
        data: bytes,
        *,
        name: str,
        source: str | None = None,
        tenant: str | None = None,
        trust: Trust = Trust.UNTRUSTED,
        title: str | None = None,
    ) -> IngestResult:
        """Ingest one file's bytes: `name` (its file name) says its format, `source` (default:
        `name`) identifies it within the tenant. Raises `InvalidInput` for a file that cannot
        be indexed (its status: 400, 413, 415), another `BosunError` when the embedder or the
        store fails; either way nothing of it is stored."""
        loaded = load(data, name=name, limits=self.config.limits)
        return self._ingest(loaded, source=source or name, tenant=tenant, trust=trust, title=title)

    def add_text(
        self,
        text: str,
        *,
        source: str,
        title: str | None = None,
        tenant: str | None = None,
        trust: Trust = Trust.UNTRUSTED,
        media_type: str = "text/plain",
    ) -> IngestResult:
        """Ingest text that is already extracted (``text/plain`` or ``text/markdown``); raises
        as `add_bytes` does."""
        if not text.strip():
            raise InvalidInput(f"{source} has no text to index", status=400)
        heading = markdown_title(text) if media_type == "text/markdown" else None
        loaded = Loaded(text=text, title=heading or source, media_type=media_type)
        return self._ingest(loaded, source=source, tenant=tenant, trust=trust, title=title)

    def _ingest(
        self, loaded: Loaded, *, source: str, tenant: str | None, trust: Trust, title: str | None
    ) -> IngestResult:
        owner = _tenant(tenant)
        doc = NewDocument(
            tenant=owner,
            source=source,
            title=(title or loaded.title)[:500],
            media_type=loaded.media_type,
            trust=Trust(trust).value,
            sha256=hashlib.sha256(loaded.text.encode()).hexdigest(),
            chars=len(loaded.text),
            embedder=self.embedder.name,
            chunking=self._signature,
        )
        try:
            stored = self.rows.find(tenant=owner, source=source)
            if stored is not None and _same(stored, doc):
                return IngestResult(source=source, status="unchanged", document=Document.of(stored))
            chunks = self._chunks(loaded.text, doc.title, loaded.media_type)
            vectors = self.embedder.embed([f"{c.context}\n\n{c.text}" for c in chunks])
            index = self.rows.vector_index(
                embedder=self.embedder.name, dimensions=int(vectors.shape[1])
            )
            rows = [
                NewChunk(
                    seq=i,
                    start_char=c.start_char,
                    end_char=c.end_char,
                    context=c.context,
                    text=c.text,
                    embedding=vectors[i].tobytes(),
                )
                for i, c in enumerate(chunks)
            ]
            outcome = self.rows.put(doc, rows, index=index)
        except BosunError as exc:  # the embedder's endpoint, the store: this file only
            return IngestResult(source=source, status="failed", error=str(exc))
        return IngestResult(
            source=source,
            status=outcome.status,
            document=Document.of(outcome.document),
            notes=loaded.notes,
        )

    def _chunks(self, text: str, title: str, media_type: str) -> list[_Piece]:
        pieces = []
        for chunk in self.chunker.split(text, markdown=media_type in _MARKDOWN):
            path = [h for h in chunk.headings if h != title]
            context = " > ".join([title, *path])
            pieces.append(_Piece(chunk.start, chunk.end, context, chunk.text))
        return pieces

    # --- manage ---------------------------------------------------------------------------

    def documents(self, *, tenant: str | None = None, limit: int = 1000) -> list[Document]:
        """The documents `tenant` reads (its own and the global ones), newest first."""
        return [Document.of(r) for r in self.rows.documents(tenant=_tenant(tenant), limit=limit)]

    def remove(self, document_id: str, *, tenant: str | None = None) -> bool:
        """Delete one of `tenant`'s documents (None: a global one) with its chunks."""
        return self.rows.remove(document_id, tenant=_tenant(tenant))

    def corpus_version(self, *, tenant: str | None = None) -> int:
        """Grows with every change to the documents `tenant` reads: journal it with an
        answer to say which corpus the answer was drawn from."""
        return self.rows.corpus_version(tenant=_tenant(tenant))

    # --- search ---------------------------------------------------------------------------

    def search(
        self, query: str, *, tenant: str | None = None, limit: int = 10, mode: Mode = "hybrid"
    ) -> SearchResult:
        """The `limit` best chunks for `query` among the documents `tenant` reads."""
        if not query.strip():
            raise UserError("the search query is empty")
        owner = _tenant(tenant)
        began = time.perf_counter()
        query_vector = None if mode == "keyword" else self.embedder.embed([query])[0]
        embedded = time.perf_counter()
        depth = max(limit, self.config.candidates)
        keyword: list[tuple[int, float]] = []
        vector: list[tuple[int, float]] = []
        index_kind = None
        if mode != "vector":
            keyword = self.rows.keyword(query, tenant=owner, k=depth)
        if query_vector is not None:
            index = self.rows.vector_index(
                embedder=self.embedder.name, dimensions=len(query_vector)
            )
            index_kind = index.kind
            vector = index.search(query_vector, tenants=visible(owner), k=depth)
        hits = self._hits(query, owner, keyword, vector, limit)
        version = self.rows.corpus_version(tenant=owner)
        done = time.perf_counter()
        return SearchResult(
            query=query,
            hits=hits,
            corpus_version=version,
            mode=mode,
            vector_index=index_kind,
            embed_ms=(embedded - began) * 1000,
            search_ms=(done - embedded) * 1000,
        )

    def _hits(
        self,
        query: str,
        tenant: str,
        keyword: list[tuple[int, float]],
        vector: list[tuple[int, float]],
        limit: int,
    ) -> list[Hit]:
        rankings = [[i for i, _ in ranking] for ranking in (keyword, vector) if ranking]
        fused = reciprocal_rank_fusion(rankings, k=self.config.rrf_k)
        if len(rankings) == 1:  # one index: its own scores order the hits
            fused = list(keyword or vector)
        keep = max(limit, self.config.rerank_depth if self.reranker else 0)
        fused = fused[:keep]
        # Read back through the tenant filter again: an index entry never leaks a chunk.
        rows = self.rows.chunks([i for i, _ in fused], tenant=tenant)
        kw = {i: (rank, s) for rank, (i, s) in enumerate(keyword, start=1)}
        vec = {i: (rank, s) for rank, (i, s) in enumerate(vector, start=1)}
        hits = [hit_of(rows[i], score, kw.get(i), vec.get(i)) for i, score in fused if i in rows]
        if self.reranker is not None and hits:
            head = hits[: self.config.rerank_depth]
            scored = zip(head, self.reranker.rerank(query, head), strict=True)
            reranked = sorted(scored, key=lambda pair: -pair[1])
            head = [replace(h, scores=replace(h.scores, rerank=float(s))) for h, s in reranked]
            hits = head + hits[self.config.rerank_depth :]
        return hits[:limit]


@dataclass(frozen=True, slots=True)
class _Piece:
    start_char: int
    end_char: int
    context: str
    text: str


def _tenant(tenant: str | None) -> str:
    if tenant is None:
        return ""
    if not tenant.strip():
        raise UserError("a tenant is a non-empty name; None is the global corpus")
    return tenant


def _same(stored: DocumentRow, doc: NewDocument) -> bool:
    return (stored.sha256, stored.embedder, stored.chunking) == (
        doc.sha256,
        doc.embedder,
        doc.chunking,
    )
