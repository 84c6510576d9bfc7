"""What a search returns, and how two rankings become one.

```
query --keyword index--> ranked chunk ids ─┐
      --vector index---> ranked chunk ids ─┴─ reciprocal rank fusion ─ (re-ranker) ─> hits
```

Reciprocal rank fusion (Cormack, Clarke & Büttcher, SIGIR 2009) scores a chunk by
``sum(1 / (k + rank))`` over the rankings it appears in, with k = 60. It needs no score
calibration between BM25 and cosine similarity, which live on unrelated scales; each hit
still reports both raw scores and ranks, so a later confidence estimate can use them.

Every hit carries its citation (document, title, source, version, character span) and the
trust label of its document: retrieved text is data, and `Hit.content` hands it to a run
with that label.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from bosun.data.documents import ChunkRow
from bosun.trust import Content, Trust

__all__ = [
    "Citation",
    "Hit",
    "Mode",
    "Reranker",
    "Scores",
    "SearchResult",
    "hit_of",
    "reciprocal_rank_fusion",
]

Mode = Literal["hybrid", "keyword", "vector"]
"""Which indexes a search uses."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Citation:
    """Where a hit's text is: enough to show it, link it and check it later."""

    document_id: str
    """The document (stable across its versions)."""
    title: str
    """Its title."""
    source: str
    """What it was read from: a path, a file name."""
    version: int
    """The document version the span refers to."""
    start: int
    """Offset of the chunk's first character in that version's text."""
    end: int
    """Offset just past its last character."""

    def label(self) -> str:
        """A short human-readable reference."""
        return f"{self.title} (v{self.version}, chars {self.start}-{self.end})"


@dataclass(frozen=True, slots=True, kw_only=True)
class Scores:
    """How a hit ranked in each index, and the fused score that ordered it."""

    fused: float
    """Reciprocal rank fusion score (hybrid), else the one index's score."""
    keyword: float | None = None
    """BM25 (SQLite) or ts_rank (PostgreSQL); None: not among the keyword candidates."""
    keyword_rank: int | None = None
    """1-based rank among the keyword candidates."""
    vector: float | None = None
    """Cosine similarity to the query; None: not among the vector candidates."""
    vector_rank: int | None = None
    """1-based rank among the vector candidates."""
    rerank: float | None = None
    """The re-ranker's score, when one ran."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Hit:
    """One retrieved chunk."""

    chunk_id: int
    """The chunk (its id changes when its document gets a new version)."""
    text: str
    """The chunk's text."""
    context: str
    """The document title and the headings above the chunk."""
    trust: Trust
    """The document's trust label: how a run must treat this text."""
    tenant: str | None
    """The document's tenant; None: the global corpus."""
    citation: Citation
    """Where the text is."""
    scores: Scores
    """Why it ranked here."""

    def content(self) -> Content:
        """The hit as labelled run input: its text under its citation, with its trust."""
        return Content(
            text=f"[{self.citation.label()}]\n{self.text}", trust=self.trust, source="kb"
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class SearchResult:
    """Hits for a query, the corpus they came from, and what the search cost."""

    query: str
    """The query as given."""
    hits: list[Hit]
    """Best first."""
    corpus_version: int
    """The tenant's corpus version (`KnowledgeBase.corpus_version`) when searched."""
    mode: Mode
    """The indexes used."""
    vector_index: str | None
    """``sqlite-vec``, ``pgvector`` or ``scan``; None when no vector search ran."""
    embed_ms: float
    """Time to embed the query."""
    search_ms: float
    """Time to search, fuse and read the hits (embedding excluded)."""


class Reranker(Protocol):
    """Re-orders the best fused hits (a cross-encoder, an LLM judge, a rule)."""

    def rerank(self, query: str, hits: Sequence[Hit]) -> Sequence[float]:
        """One score per hit, in the same order; higher is better."""
        ...


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[int]], *, k: int = 60
) -> list[tuple[int, float]]:
    """(id, score) best first, from rankings of ids (each best first). Ties keep the order
    in which ids were first seen, so the result is deterministic."""
    scores: dict[int, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
    order = {item: i for i, item in enumerate(scores)}
    return sorted(scores.items(), key=lambda pair: (-pair[1], order[pair[0]]))


def hit_of(
    row: ChunkRow,
    fused: float,
    keyword: tuple[int, float] | None,
    vector: tuple[int, float] | None,
) -> Hit:
    """A hit from its chunk row, its fused score and its (rank, score) in each index."""
    return Hit(
        chunk_id=row.id,
        text=row.text,
        context=row.context,
        trust=Trust(row.trust),
        tenant=row.tenant or None,
        citation=Citation(
            document_id=row.document_id,
            title=row.title,
            source=row.source,
            version=row.version,
            start=row.start_char,
            end=row.end_char,
        ),
        scores=Scores(
            fused=fused,
            keyword=keyword[1] if keyword else None,
            keyword_rank=keyword[0] if keyword else None,
            vector=vector[1] if vector else None,
            vector_rank=vector[0] if vector else None,
        ),
    )
