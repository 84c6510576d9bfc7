"""`SemanticCache`: a `Model` that answers again what it answered before.

```
request -> cacheable?  no context, untrusted content, a side effect done, a plan or a
           | yes        summary -> the wrapped model, nothing stored
           v
  scope = (tenant, agent, prompt version, tier, corpus version, embedder name)
  exact: digest of (messages, tools, settings) -> stored answer?          -> served
  similar: only a question (no tool turns yet): embed it -> nearest entry
           of the scope with cosine >= threshold -> stored answer?         -> served
  miss -> the wrapped model -> a final answer (no tool calls) is stored with the embedding
```

What is never cached, and why:
- anything from a run with untrusted content in context (an email, a web page, a tool that
  reads the outside world, a thread summary of such): its answer may be the attacker's
  words, and a cache would serve them to the next user who asks something alike;
- anything after a side-effecting tool ran: the answer reports an action of that run;
- tool-call proposals: their arguments belong to the request that made them.

A served answer costs nothing (usage zero, `route.source == "cache"`). The scope changes
with the prompt version and the corpus version, so a new prompt or knowledge base starts
empty; old entries expire (`CachePolicy.ttl_s`) or are deleted by `CacheRows.invalidate`.
The embedder or the backend failing never fails a call: the cache steps aside (counted in
`CacheStats`) and the wrapped model answers.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np

from bosun.data.cache import CacheRow
from bosun.economy.cache.backends import CacheBackend
from bosun.economy.cache.embedder import Embedder
from bosun.economy.cache.index import VectorIndex
from bosun.models.base import (
    Model,
    ModelRequest,
    ModelResponse,
    SystemMessage,
    Usage,
    UserMessage,
)
from bosun.models.context import CallContext, Purpose, Route
from bosun.trust import Trust

__all__ = ["CachePolicy", "CacheStats", "SemanticCache", "uncacheable"]

logger = logging.getLogger("bosun.economy")

_CACHED_PURPOSES = (Purpose.ANSWER, Purpose.TOOL_FOLLOWUP, Purpose.CLASSIFY)


@dataclass(frozen=True, kw_only=True)
class CachePolicy:
    """How close is close enough, and for how long."""

    threshold: float = 0.95
    """Cosine similarity at or above which a stored answer is served to a new question."""
    ttl_s: float = 86_400.0
    """Seconds an answer is served after it was stored."""
    semantic: bool = True
    """Match similar questions; False keeps the exact-match path only."""
    refresh_s: float = 30.0
    """Seconds between reads of a scope's new embeddings written by other processes."""


@dataclass
class CacheStats:
    """What the cache did, in this process."""

    exact_hits: int = 0
    semantic_hits: int = 0
    misses: int = 0
    stored: int = 0
    bypassed: dict[str, int] = field(default_factory=dict)
    """Calls the cache stepped aside for, by reason."""

    def bypass(self, reason: str) -> None:
        self.bypassed[reason] = self.bypassed.get(reason, 0) + 1


def uncacheable(request: ModelRequest) -> str | None:
    """Why this request may neither be served from nor stored in the cache, or None."""
    context = request.context
    if context is None or context.agent is None:
        return "no call context"
    if context.purpose not in _CACHED_PURPOSES:
        return f"purpose {context.purpose}"
    if context.tainted or any(
        getattr(m, "trust", Trust.TRUSTED) is Trust.UNTRUSTED for m in request.messages
    ):
        return "untrusted content in context"
    if context.acted:
        return "a side effect ran in this run"
    return None


class SemanticCache(Model):
    """Serves stored answers to the same or a similar request (see the module doc)."""

    def __init__(
        self,
        model: Model,
        *,
        backend: CacheBackend,
        embedder: Embedder | None = None,
        policy: CachePolicy | None = None,
        corpus_version: Callable[[str | None], str | None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`embedder` enables similarity (without it only exact requests match);
        `corpus_version(tenant)` is the version of the knowledge base the agent reads for
        that tenant (part of every key: a new corpus starts an empty scope)."""
        self.model = model
        self.name = model.name
        self.backend = backend
        self.embedder = embedder
        self.policy = policy or CachePolicy()
        self.stats = CacheStats()
        self._corpus_version = corpus_version
        self._clock = clock
        self._indexes: dict[str, tuple[VectorIndex, float]] = {}

    async def request(self, request: ModelRequest) -> ModelResponse:
        reason = uncacheable(request)
        if reason is not None:
            self.stats.bypass(reason)
            return await self.model.request(request)
        assert request.context is not None
        context = request.context
        now = self._clock()
        try:
            scope = self._scope(context)
        except Exception:
            logger.warning("cache bypassed: corpus version unavailable", exc_info=True)
            self.stats.bypass("corpus version unavailable")
            return await self.model.request(request)
        digest = _digest(request)
        row = await self._get(scope, digest, now)
        if row is not None:
            self.stats.exact_hits += 1
            return _served(row, context, "exact match")
        question = _question(request) if self.policy.semantic and self.embedder else None
        vector = None if question is None else await self._embed(question)
        if vector is not None:
            found = (await self._index(scope, now)).search(vector)
            if found is not None and found[1] >= self.policy.threshold:
                row = await self._get(scope, found[0], now)
                if row is not None:
                    self.stats.semantic_hits += 1
                    return _served(row, context, f"similar request ({found[1]:.3f})")
        self.stats.misses += 1
        response = await self.model.request(request)
        if _storable(response):
            await self._put(scope, digest, context, vector, response, now)
        return response

    # --- keys -----------------------------------------------------------------------------

    def _scope(self, context: CallContext) -> tuple[str, tuple[str, ...]]:
        corpus = context.corpus_version
        if corpus is None and self._corpus_version is not None:
            corpus = self._corpus_version(context.tenant)
        parts = (
            context.tenant or "",
            context.agent or "",
            context.prompt_version or "",
            context.tier or "",
            corpus or "",
        )
        # The embedder's name is in the key (not in the row's columns): vectors of another
        # model (or length) mean nothing to this one, so switching embedders starts empty.
        embedder = None if self.embedder is None else self.embedder.name
        key = hashlib.sha256(json.dumps([*parts, embedder]).encode()).hexdigest()
        return key, parts

    # --- the backend and the embedder, either of which may fail ---------------------------

    async def _get(
        self, scope: tuple[str, tuple[str, ...]], digest: str, now: float
    ) -> CacheRow | None:
        try:
            return await self.backend.get(scope[0], digest, now=now)
        except Exception:
            logger.warning("cache read failed; answering without it", exc_info=True)
            self.stats.bypass("backend unavailable")
            return None

    async def _embed(self, text: str) -> np.ndarray | None:
        assert self.embedder is not None
        try:
            (vector,) = await asyncio.to_thread(self.embedder.embed, [text])
        except Exception:
            logger.warning("embedder unavailable: similar requests are not matched", exc_info=True)
            self.stats.bypass("embedder unavailable")
            return None
        return np.asarray(vector, dtype=np.float32)

    async def _index(self, scope: tuple[str, tuple[str, ...]], now: float) -> VectorIndex:
        key = scope[0]
        index, loaded = self._indexes.get(key, (VectorIndex(), 0.0))
        if now - loaded >= self.policy.refresh_s:
            # What other processes stored since the last read (a little overlap: add
            # replaces by key).
            since = max(loaded - self.policy.refresh_s, 0.0)
            try:
                rows = await self.backend.vectors(key, now=now, since=since)
            except Exception:
                logger.warning("cache index not refreshed", exc_info=True)
                rows = []
            if rows:
                keys = [digest for digest, _ in rows]
                matrix = np.stack([np.frombuffer(v, dtype=np.float32) for _, v in rows])
                index.add_many(keys, matrix)
            self._indexes[key] = (index, now)
        return index

    async def _put(
        self,
        scope: tuple[str, tuple[str, ...]],
        digest: str,
        context: CallContext,
        vector: np.ndarray | None,
        response: ModelResponse,
        now: float,
    ) -> None:
        tenant, agent, prompt_version, tier, corpus = scope[1]
        row = CacheRow(
            scope=scope[0],
            digest=digest,
            tenant=tenant,
            agent=agent,
            prompt_version=prompt_version,
            tier=tier,
            corpus_version=corpus,
            vector=None if vector is None else vector.astype(np.float32).tobytes(),
            response=response.model_copy(update={"attempts": ()}).model_dump_json(),
            created_at=now,
            expires_at=now + self.policy.ttl_s,
        )
        try:
            await self.backend.put(row)
        except Exception:
            logger.warning("cache write failed; the answer is not cached", exc_info=True)
            self.stats.bypass("backend unavailable")
            return
        self.stats.stored += 1
        if vector is not None and scope[0] in self._indexes:
            self._indexes[scope[0]][0].add(digest, vector)


def _digest(request: ModelRequest) -> str:
    body = request.model_dump(mode="json", include={"messages", "tools", "settings"})
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _question(request: ModelRequest) -> str | None:
    """The text to match by similarity: the user's messages, when nothing else happened yet
    (after tool turns only exact requests match: their results differ per request)."""
    asked = []
    for message in request.messages:
        if isinstance(message, UserMessage):
            asked.append(message.content)
        elif not isinstance(message, SystemMessage):
            return None
    return "\n".join(asked) or None


def _storable(response: ModelResponse) -> bool:
    return (
        not response.tool_calls
        and response.finish_reason == "stop"
        and bool((response.text or "").strip())
        and (response.route is None or response.route.source != "cache")
    )


def _served(row: CacheRow, context: CallContext, why: str) -> ModelResponse:
    stored = ModelResponse.model_validate_json(row.response)
    return stored.model_copy(
        update={
            "usage": Usage(),
            "cost_usd": Decimal(0),
            "provider": "cache",
            "attempts": (),
            "route": Route(
                tier=context.tier or row.tier or "-", reason=f"cache: {why}", source="cache"
            ),
        }
    )
