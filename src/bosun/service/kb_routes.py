"""The knowledge base over HTTP: ingest documents into the caller's tenant, search them.

```
POST   /v1/kb/documents?filename=&title=&trust=   the file as the raw body     kb:write
GET    /v1/kb/documents                            the tenant's and global docs  kb:read
DELETE /v1/kb/documents/{id}                       one of the tenant's           kb:write
GET    /v1/kb/search?q=&limit=&mode=               hits with citations, scores   kb:read
```

Every call is scoped to the caller's tenant: documents go into it, searches read it and the
global corpus (which only the CLI writes), and another tenant's document is "not found".
Uploaded text is ``untrusted`` unless the caller says ``user``; ``trusted`` needs ``admin``.
The knowledge base (its embedder loads on first use) is built from the service's settings
the first time a route needs it.
"""

# No `from __future__ import annotations`: the routes are defined inside `kb_router`, and
# FastAPI reads their annotations at definition, where `Caller` and `Kb` are in scope.

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from pydantic import BaseModel, Field

from bosun.errors import InvalidInput
from bosun.gateway.auth import ADMIN, KB_READ, KB_WRITE, Principal
from bosun.knowledge.base import Document, KnowledgeBase
from bosun.knowledge.search import Hit, Mode
from bosun.service.problems import problem_responses
from bosun.trust import Trust

__all__ = ["kb_router"]

_lock = threading.Lock()


class DocumentOut(BaseModel):
    """A stored document."""

    id: str
    tenant: str | None = Field(description="None: the global corpus")
    source: str
    title: str
    media_type: str
    trust: Trust
    version: int
    chunks: int
    chars: int
    sha256: str
    updated_at: float

    @classmethod
    def of(cls, doc: Document) -> "DocumentOut":
        """From the knowledge base's document."""
        return cls(**{name: getattr(doc, name) for name in cls.model_fields})


class IngestOut(BaseModel):
    """What ingesting one file did."""

    status: Literal["added", "updated", "reindexed", "unchanged"]
    document: DocumentOut
    notes: list[str] = Field(default_factory=list)


class CitationOut(BaseModel):
    document_id: str
    title: str
    source: str
    version: int
    start: int
    end: int


class ScoresOut(BaseModel):
    fused: float
    keyword: float | None
    keyword_rank: int | None
    vector: float | None
    vector_rank: int | None
    rerank: float | None


class HitOut(BaseModel):
    """One retrieved chunk: untrusted data unless its document says otherwise."""

    text: str
    context: str
    trust: Trust
    citation: CitationOut
    scores: ScoresOut

    @classmethod
    def of(cls, hit: Hit) -> "HitOut":
        """From a search hit."""
        c, s = hit.citation, hit.scores
        return cls(
            text=hit.text,
            context=hit.context,
            trust=hit.trust,
            citation=CitationOut(
                document_id=c.document_id,
                title=c.title,
                source=c.source,
                version=c.version,
                start=c.start,
                end=c.end,
            ),
            scores=ScoresOut(
                fused=s.fused,
                keyword=s.keyword,
                keyword_rank=s.keyword_rank,
                vector=s.vector,
                vector_rank=s.vector_rank,
                rerank=s.rerank,
            ),
        )


class SearchOut(BaseModel):
    """Hits for a query and the corpus version they came from."""

    query: str
    hits: list[HitOut]
    corpus_version: int
    embed_ms: float
    search_ms: float


def _knowledge(request: Request) -> KnowledgeBase:
    state = request.app.state
    kb: KnowledgeBase | None = getattr(state, "knowledge", None)
    if kb is None:
        with _lock:
            kb = getattr(state, "knowledge", None)
            if kb is None:
                service = state.bosun
                settings = service.gateway.runtime.settings.knowledge
                kb = KnowledgeBase.from_settings(service.store, settings)
                state.knowledge = kb
    return kb


def kb_router(caller: Callable[..., Awaitable[Principal]]) -> APIRouter:
    """The routes, authenticating with `caller` (the app's rate-limited principal
    dependency)."""
    Caller = Annotated[Principal, Depends(caller)]
    Kb = Annotated[KnowledgeBase, Depends(_knowledge)]
    router = APIRouter(prefix="/v1/kb", tags=["knowledge"])

    @router.post(
        "/documents",
        status_code=201,
        response_model=IngestOut,
        responses={200: {"model": IngestOut}, **problem_responses(400, 403, 413, 415)},
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/octet-stream": {"schema": {"type": "string"}}},
            }
        },
    )
    async def add_document(
        kb: Kb,
        who: Caller,
        request: Request,
        response: Response,
        filename: Annotated[str, Query(min_length=1, max_length=500)],
        title: Annotated[str | None, Query(max_length=500)] = None,
        trust: Trust = Trust.UNTRUSTED,
    ) -> IngestOut:
        """Ingest one file (txt, md, html, pdf, eml; the raw body, its format from
        `filename`) into the caller's tenant. The same file again is a no-op (200); a file
        with new text replaces the previous version's chunks."""
        who.require(KB_WRITE)
        if trust is Trust.TRUSTED:
            who.require(ADMIN)
        limit = kb.config.limits.max_bytes
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise InvalidInput(f"{filename} is over the {limit:,}-byte limit", status=413)
        result = await asyncio.to_thread(
            kb.add_bytes, bytes(body), name=filename, tenant=who.tenant, trust=trust, title=title
        )
        assert result.document is not None and result.status != "failed"
        if result.status == "unchanged":
            response.status_code = 200
        return IngestOut(
            status=result.status,
            document=DocumentOut.of(result.document),
            notes=list(result.notes),
        )

    @router.get("/documents", response_model=list[DocumentOut])
    async def list_documents(
        kb: Kb, who: Caller, limit: Annotated[int, Query(ge=1, le=1000)] = 100
    ) -> list[DocumentOut]:
        """The caller's tenant's documents and the global ones, newest first."""
        who.require(KB_READ)
        docs = await asyncio.to_thread(kb.documents, tenant=who.tenant, limit=limit)
        return [DocumentOut.of(d) for d in docs]

    @router.delete(
        "/documents/{document_id}", status_code=204, responses=problem_responses(403, 404)
    )
    async def remove_document(kb: Kb, who: Caller, document_id: str) -> Response:
        """Delete one of the caller's tenant's documents."""
        who.require(KB_WRITE)
        if not await asyncio.to_thread(kb.remove, document_id, tenant=who.tenant):
            raise HTTPException(404, f"no document {document_id!r} in tenant {who.tenant!r}")
        return Response(status_code=204)

    @router.get("/search", response_model=SearchOut, responses=problem_responses(400, 403))
    async def search(
        kb: Kb,
        who: Caller,
        q: Annotated[str, Query(min_length=1, max_length=2000)],
        limit: Annotated[int, Query(ge=1, le=100)] = 10,
        mode: Mode = "hybrid",
    ) -> SearchOut:
        """The best chunks for `q` among the caller's tenant's documents and the global
        ones, each with its citation, scores and trust label."""
        who.require(KB_READ)
        result = await asyncio.to_thread(kb.search, q, tenant=who.tenant, limit=limit, mode=mode)
        return SearchOut(
            query=result.query,
            hits=[HitOut.of(h) for h in result.hits],
            corpus_version=result.corpus_version,
            embed_ms=result.embed_ms,
            search_ms=result.search_ms,
        )

    return router
