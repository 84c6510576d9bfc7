"""The knowledge base: documents in, hybrid search with citations and trust labels out.

```
loaders     txt, md, html, pdf, eml -> text (clear errors for bad files)
chunking    text -> chunks with character spans and heading paths
embeddings  MiniLM int8 ONNX on the CPU (default) or any OpenAI-compatible endpoint
base        KnowledgeBase: ingest (atomic per document), search, tenants, corpus versions
search      hits, citations, scores, reciprocal rank fusion, the re-ranker protocol
```

The SQL (documents, chunks, FTS5 / tsvector, sqlite-vec / pgvector) is in
`bosun.data.documents` and `bosun.data.vectors`.
"""

from bosun.knowledge.base import Document, IngestResult, KnowledgeBase, KnowledgeConfig
from bosun.knowledge.chunking import ChunkingConfig
from bosun.knowledge.embeddings import Embedder, MiniLmEmbedder, OpenAIEmbedder
from bosun.knowledge.loaders import LoadLimits
from bosun.knowledge.search import Citation, Hit, Reranker, Scores, SearchResult

__all__ = [
    "ChunkingConfig",
    "Citation",
    "Document",
    "Embedder",
    "Hit",
    "IngestResult",
    "KnowledgeBase",
    "KnowledgeConfig",
    "LoadLimits",
    "MiniLmEmbedder",
    "OpenAIEmbedder",
    "Reranker",
    "Scores",
    "SearchResult",
]
