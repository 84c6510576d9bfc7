"""Long-term memory as two tools: `remember` (a gated write) and `recall` (a labelled read).

```
remember(text, kind, customer?, ttl_days?, shared?)   scope memory:write, side_effect, risk write
    -> stored in the run's tenant (ToolContext.tenant), for its agent unless shared,
       labelled untrusted if untrusted content was in the run's context, else user;
       the same text in the same scope is one row (so a replayed call is harmless)
recall(query, customer?, limit?)                       scope memory:read
    -> MemorySearch within (tenant, customer, agent) -> results labelled with the lowest
       stored label: an untrusted memory comes back untrusted and taints the run
```

`remember` is an ordinary side-effecting tool: the run's grants, the taint policy (held for
approval in a tainted run by default) and approvals apply to it like to any other. Memories
the model wrote come back labelled ``user``: they do not taint, but they never ground an
outbound value either (they were a tool's arguments once).

PII: the model sees placeholders (``<EMAIL_1>``) that mean something else in every run, so
both tools receive the originals of the entity types in `MemoryPolicy.reveal` (by default
email addresses: customers are keyed by them) and store them as written; `recall`'s results
are masked again as they enter the next run. Other PII stays a placeholder.
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from bosun.data.memories import MemoryRows, NewMemory
from bosun.data.store import Store
from bosun.errors import ModelRetry
from bosun.memory.search import KeywordSearch, MemoryScope, MemorySearch
from bosun.tools.base import Risk, ToolContext, ToolOutput
from bosun.tools.decorator import Tool, tool
from bosun.trust import Trust

__all__ = ["LongTermMemory", "MemoryPolicy", "content_hash"]

_SPACE = re.compile(r"\s+")
_DAY = 86_400.0
MemoryKind = Literal["fact", "preference", "resolution"]


@dataclass(frozen=True, kw_only=True)
class MemoryPolicy:
    """Limits of the memory tools."""

    ttl_days: float | None = 180.0
    """How long a memory lives when the model gives no ``ttl_days`` (None: until pruned as
    unused or forgotten)."""
    max_ttl_days: float = 730.0
    """The longest ``ttl_days`` the model may ask for."""
    max_chars: int = 2_000
    """The longest text remembered."""
    max_results: int = 5
    """The most memories one `recall` returns."""
    reveal: frozenset[str] = field(default_factory=lambda: frozenset({"EMAIL_ADDRESS"}))
    """PII entity types the tools receive in clear (see the module docstring)."""


def content_hash(text: str) -> str:
    """SHA-256 of the text, case and whitespace normalised: what makes two memories one."""
    return hashlib.sha256(_SPACE.sub(" ", text.casefold()).strip().encode()).hexdigest()


class LongTermMemory:
    """The memory tools over a store: ``Agent(tools=[*LongTermMemory(store).tools()])``."""

    def __init__(
        self,
        store: Store,
        *,
        search: MemorySearch | None = None,
        policy: MemoryPolicy | None = None,
        clock: Any = time.time,
    ) -> None:
        """`search` finds memories for `recall` (keyword search in the store by default)."""
        self.rows = MemoryRows(store)
        """The memories table."""
        self.search = search or KeywordSearch(self.rows)
        """What `recall` searches with."""
        self.policy = policy or MemoryPolicy()
        """Limits."""
        self._clock = clock

    def tools(self) -> tuple[Tool[..., dict[str, Any]], Tool[..., ToolOutput]]:
        """(`remember`, `recall`), ready for an agent."""
        memory = self

        @tool(
            scope="memory:write",
            side_effect=True,
            risk=Risk.WRITE,
            idempotent=True,
            pii=memory.policy.reveal,
        )
        def remember(
            ctx: ToolContext,
            text: str,
            kind: MemoryKind = "fact",
            customer: str | None = None,
            ttl_days: float | None = None,
            shared: bool = False,
        ) -> dict[str, Any]:
            """Remember a fact, a preference or how a case was resolved, for later runs.

            Args:
                text: What to remember, self-contained (it is read without this conversation).
                kind: fact, preference or resolution.
                customer: The customer it is about (their email address), if any.
                ttl_days: How many days to keep it (default: the operator's).
                shared: Visible to every agent of the organisation, not only this one.
            """
            return memory.remember(
                ctx, text=text, kind=kind, customer=customer, ttl_days=ttl_days, shared=shared
            )

        @tool(scope="memory:read", pii=memory.policy.reveal)
        def recall(
            ctx: ToolContext, query: str, customer: str | None = None, limit: int = 5
        ) -> ToolOutput:
            """Search what was remembered in earlier conversations.

            Args:
                query: Words to look for.
                customer: The customer the conversation is about (their email address).
                limit: How many memories to return at most.
            """
            return memory.recall(ctx, query=query, customer=customer, limit=limit)

        return remember, recall

    def remember(
        self,
        ctx: ToolContext,
        *,
        text: str,
        kind: str = "fact",
        customer: str | None = None,
        ttl_days: float | None = None,
        shared: bool = False,
    ) -> dict[str, Any]:
        """Store one memory for the run `ctx` describes; what `remember` does."""
        text = text.strip()
        if not text:
            raise ModelRetry("nothing to remember: pass the text to keep")
        if len(text) > self.policy.max_chars:
            raise ModelRetry(f"keep memories under {self.policy.max_chars} characters")
        if ttl_days is not None and not 0 < ttl_days <= self.policy.max_ttl_days:
            raise ModelRetry(f"ttl_days must be between 0 and {self.policy.max_ttl_days:g}")
        days = ttl_days if ttl_days is not None else self.policy.ttl_days
        now = self._clock()
        row, created = self.rows.add(
            NewMemory(
                tenant=ctx.tenant or "",
                customer=customer or None,
                agent=None if shared else ctx.agent,
                kind=kind,
                text=text,
                # What the model writes with untrusted content in view may be that content's
                # doing: it is stored, and recalled, as untrusted.
                trust=(Trust.UNTRUSTED if ctx.taint else Trust.USER).value,
                source_run=ctx.run_id,
                created_at=now,
                expires_at=None if days is None else now + days * _DAY,
                content_hash=content_hash(text),
            )
        )
        return {"id": row.id, "stored": "new" if created else "already remembered"}

    def recall(
        self, ctx: ToolContext, *, query: str, customer: str | None = None, limit: int = 5
    ) -> ToolOutput:
        """Search the run's tenant's memories; what `recall` does."""
        scope = MemoryScope(tenant=ctx.tenant or "", customer=customer or None, agent=ctx.agent)
        now = self._clock()
        limit = max(1, min(limit, self.policy.max_results))
        hits = [h for h in self.search.search(scope, query, limit=limit, now=now)]
        hits = [h for h in hits if h.tenant == scope.tenant][:limit]
        self.rows.touch([h.id for h in hits], now=now)
        found = [{"id": h.id, "kind": h.kind, "text": h.text, "trust": h.trust.value} for h in hits]
        return ToolOutput(
            {"memories": found}, trust=Trust.lowest((h.trust for h in hits), default=Trust.USER)
        )
