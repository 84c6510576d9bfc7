"""Session memory: how a new run of a thread starts from the turns before it.

```
thread turns (finished runs, oldest first) after the stored summary
  -> split_window: the newest `window_turns` (and within `window_tokens`) stay verbatim
  -> the rest fold into the running summary (bosun.memory.summary.fold)
  -> the run journals what it started from: summary version and text, the window's turns
```

`ThreadMemory` is the agent's configuration of it (``Agent(memory=ThreadMemory(...))``),
including the token ceiling over which stale tool output is pruned from a request
(`bosun.memory.pruning`). The runtime does the reading and journaling
(`bosun.runtime.threads`); this module decides.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bosun.errors import UserError
from bosun.memory.summary import ModelSummarizer, Summarizer, Turn
from bosun.models.base import Model

__all__ = ["ThreadMemory", "split_window"]


@dataclass(frozen=True, kw_only=True)
class ThreadMemory:
    """How an agent remembers a thread, and how it keeps requests under a token ceiling."""

    summarizer_model: Model | None = None
    """The (cheap) model that folds older turns into the summary; the agent's own model
    when neither this nor `summarizer` is given."""
    summarizer: Summarizer | None = None
    """A summarizer of your own, instead of `summarizer_model`."""
    window_turns: int = 4
    """Most recent turns a run sees word for word; older ones are in the summary."""
    window_tokens: int | None = None
    """Estimated tokens (4 characters each) the window may hold: older window turns fold
    into the summary until it fits. None: only `window_turns` bounds it."""
    token_budget: int | None = None
    """Estimated tokens a model request should stay under. None: requests are sent whole."""
    prune_at: float = 0.8
    """Share of `token_budget` over which stale tool output is pruned from a request."""
    max_summary_words: int = 250
    """Length the summarizer model is asked for."""

    def __post_init__(self) -> None:
        if self.window_turns < 0:
            raise UserError(f"window_turns must be 0 or more, got {self.window_turns}")
        if self.window_tokens is not None and self.window_tokens < 1:
            raise UserError(f"window_tokens must be positive, got {self.window_tokens}")
        if self.token_budget is not None and self.token_budget < 1:
            raise UserError(f"token_budget must be positive, got {self.token_budget}")
        if not 0 < self.prune_at <= 1:
            raise UserError(f"prune_at is a share of token_budget in (0, 1], got {self.prune_at}")
        if self.summarizer is not None and self.summarizer_model is not None:
            raise UserError("give ThreadMemory a summarizer or a summarizer_model, not both")

    @property
    def prune_ceiling(self) -> int | None:
        """Estimated request tokens over which stale tool output is pruned."""
        return None if self.token_budget is None else int(self.token_budget * self.prune_at)

    def summarizer_for(self, model: Model) -> Summarizer:
        """The summarizer to use, `model` being the agent's own."""
        if self.summarizer is not None:
            return self.summarizer
        return ModelSummarizer(self.summarizer_model or model, max_words=self.max_summary_words)


def split_window(
    turns: Sequence[Turn], *, window_turns: int, window_tokens: int | None = None
) -> tuple[list[Turn], list[Turn]]:
    """(turns to fold into the summary, turns kept word for word), both oldest first."""
    keep = len(turns) if window_turns >= len(turns) else window_turns
    window = list(turns[len(turns) - keep :])
    fold = list(turns[: len(turns) - keep])
    if window_tokens is not None:
        while window and sum(len(t.text) for t in window) // 4 > window_tokens:
            fold.append(window.pop(0))
    return fold, window
