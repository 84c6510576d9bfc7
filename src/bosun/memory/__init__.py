"""Memory: what a run knows beyond its own input.

```
session memory    a run of a thread starts from the thread's summary + recent turns
                  (threads.py decides, summary.py folds, verbatim.py keeps what matters;
                  the runtime reads and journals it: bosun.runtime.threads)
request pruning   stale tool output stubbed before a request outgrows the budget (pruning.py)
long-term memory  facts, preferences, past resolutions, scoped tenant -> customer -> agent,
                  written by `remember`, read by `recall` (tools.py, search.py; upkeep.py prunes)
```

The package sits between the runtime and the tools: it uses models (the summarizer), tools
(`remember`/`recall`) and data (the repositories), and the runtime uses it.
"""

from bosun.memory.pruning import estimate_tokens, prune_stale_tool_output
from bosun.memory.search import KeywordSearch, MemoryHit, MemoryScope, MemorySearch
from bosun.memory.summary import Draft, ModelSummarizer, Summarizer, Summary, Turn, fold
from bosun.memory.threads import ThreadMemory, split_window
from bosun.memory.tools import LongTermMemory, MemoryPolicy
from bosun.memory.upkeep import MemoryUpkeep, PruneReport, prune_memories
from bosun.memory.verbatim import Kept, extract

__all__ = [
    "Draft",
    "Kept",
    "KeywordSearch",
    "LongTermMemory",
    "MemoryHit",
    "MemoryPolicy",
    "MemoryScope",
    "MemorySearch",
    "MemoryUpkeep",
    "ModelSummarizer",
    "PruneReport",
    "Summarizer",
    "Summary",
    "ThreadMemory",
    "Turn",
    "estimate_tokens",
    "extract",
    "fold",
    "prune_memories",
    "prune_stale_tool_output",
    "split_window",
]
