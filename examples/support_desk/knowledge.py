"""The support desk's knowledge base: 30 help articles (``kb/``, English and Spanish) in
bosun's knowledge base, searched with `search_knowledge`, answers checked for confidence.

```python
from examples.support_desk.knowledge import load_knowledge

kb, results = load_knowledge(store)              # ingest kb/*.md (a no-op when unchanged)
agent = build_agent("helpdesk.db", knowledge=kb)  # + search_knowledge, + CONFIDENCE
```

The articles go into the global corpus (every tenant reads it) with bosun's default label,
``untrusted``: an answer drawn from them is data the taint policy treats like the email
itself. ``questions/`` holds sample emails answered from the articles, among them a reply
that continues an earlier thread and questions the articles do not cover, which escalate as
low confidence.
"""

from __future__ import annotations

from pathlib import Path

from bosun.data.store import Store
from bosun.errors import UserError
from bosun.knowledge import Embedder, IngestResult, KnowledgeBase
from bosun.knowledge.grounding import ConfidencePolicy

__all__ = ["CONFIDENCE", "KB_DIR", "QUESTIONS", "load_knowledge"]

KB_DIR = Path(__file__).with_name("kb")
"""The help articles, one Markdown file each (``en-*`` English, ``es-*`` Spanish)."""
QUESTIONS = Path(__file__).with_name("questions")
"""Sample emails answered from the knowledge base."""
CONFIDENCE = ConfidencePolicy(threshold=0.6)
"""An answer scoring below 0.6 goes to a person with the passages it was drawn from."""


def load_knowledge(
    store: Store, *, embedder: Embedder | None = None
) -> tuple[KnowledgeBase, list[IngestResult]]:
    """The knowledge base over `store` with every article of ``kb/`` ingested (unchanged
    articles are not embedded again). Raises `UserError` if an article cannot be read."""
    kb = KnowledgeBase(store, embedder=embedder)
    results = kb.add_files(sorted(KB_DIR.glob("*.md")))
    failed = [f"{r.source}: {r.error}" for r in results if not r.ok]
    if failed:
        raise UserError("help articles could not be ingested: " + "; ".join(failed))
    return kb, results
