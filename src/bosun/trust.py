"""The trust vocabulary every plane shares: labels on content, and the screen that scores it.

```
Trust        trusted (operator, system, bosun's own data) > user (the submitter) > untrusted
Content      one labelled piece of a run's input: text + trust + source
ContentScreen  scores untrusted text for prompt injection -> ScreenResult
```

Models carry labels on messages, tools label their results, the gateway labels what enters,
the runtime gates on labels, and the data plane keeps them with stored text. This module sits
below all of them and imports nothing of bosun but `errors`, so none of them reaches into
another for the words.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from bosun.errors import UserError

__all__ = ["Content", "ContentScreen", "ScreenResult", "Trust"]

_SOURCE = re.compile(r"^[A-Za-z0-9_.:@/-]{1,64}$")


class Trust(StrEnum):
    """Where a piece of content came from, which decides what it may cause."""

    TRUSTED = "trusted"
    """Operator instructions, system prompts, bosun's own tools' data, a reviewer's note."""
    USER = "user"
    """The authenticated submitter's own text."""
    UNTRUSTED = "untrusted"
    """From outside: email bodies, fetched pages, retrieved documents, outward-reading tools.
    Shown to the model as data, never as instructions; its presence taints the run."""

    @staticmethod
    def lowest(labels: Iterable[Trust | str], *, default: Trust | None = None) -> Trust:
        """The least trusted of `labels` (`default`, else trusted, when there are none): what
        text derived from all of them (a summary, a merged memory) is labelled."""
        order = (Trust.UNTRUSTED, Trust.USER, Trust.TRUSTED)
        found = {Trust(label) for label in labels}
        return next((t for t in order if t in found), default or Trust.TRUSTED)


@dataclass(frozen=True, slots=True, kw_only=True)
class Content:
    """One labelled piece of a run's input."""

    text: str
    """The text."""
    trust: Trust = Trust.USER
    """Where it came from."""
    source: str = "user"
    """A short name shown in the markers and in taint reasons, e.g. ``email``, ``web``."""

    def __post_init__(self) -> None:
        if not _SOURCE.match(self.source):
            raise UserError(f"content source {self.source!r} must match {_SOURCE.pattern}")

    def to_json(self) -> dict[str, str]:
        """The journaled form."""
        return {"text": self.text, "trust": self.trust.value, "source": self.source}


class ScreenResult(Protocol):
    """What an injection screen says about a text."""

    @property
    def verdict(self) -> str:
        """``clean``, ``suspicious`` or ``injection``."""
        ...

    @property
    def score(self) -> float:
        """0 to 1."""
        ...

    @property
    def signals(self) -> tuple[str, ...]:
        """Human-readable reasons."""
        ...


class ContentScreen(Protocol):
    """Scores untrusted content for prompt injection (the gateway's `InjectionScreen`)."""

    def screen(self, text: str) -> ScreenResult:
        """Score one text."""
        ...
