"""`SentenceGate`: streamed text leaves a sentence at a time, each after the output guardrails.

The output guardrails judge text, not tokens: a secret or an e-mail address split over two
deltas passes a check of each delta alone. So the text of an answer is held until a
sentence boundary (``.``, ``!``, ``?`` or ``…`` followed by white space, or a line break),
and everything written so far is checked, with the same sources as the final answer's
check, before the new sentence is sent. The rest of the answer (after its last boundary)
goes when the answer is complete: just before the journal entry holding it.

The trade-off: a client sees text a sentence late (a sentence's worth of tokens later than
the model wrote them) and never a token the guardrails have not passed. A redaction is sent
redacted; one that would change text already sent (a finding spanning sentences, caught
only once complete), a block or an escalation stops the answer's text: the client has the
outcome in the final ``run`` event, which is checked whole as before. Text of a later
model call (after a tool call, or a retry) starts afresh.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from bosun.gateway.guardrails import GuardrailVerdict
from bosun.runtime.streaming import TextChunk

__all__ = ["Check", "SentenceGate"]

Check = Callable[[str], GuardrailVerdict]
"""The output guardrails applied to a text (with the run's sources bound)."""

_BOUNDARY = re.compile(r"""[.!?…]["')\]]*\s+|\n""")


class SentenceGate:
    """The text events of one follower of one run."""

    def __init__(self, make_check: Callable[[], Awaitable[Check | None]]) -> None:
        self._make_check = make_check
        self._key: tuple[int, int] | None = None
        self._check: Check | None = None
        self._text = ""
        self._released = ""  # as sent: redactions applied
        self._upto = 0  # how much of `_text` the released text covers
        self._stopped = False

    async def add(self, chunk: TextChunk) -> dict[str, Any] | None:
        """The ``text`` event to send for `chunk`, if a sentence completed with it."""
        if (chunk.step, chunk.attempt) != self._key:
            self._key = (chunk.step, chunk.attempt)
            self._check = await self._make_check()  # the sources as of this model call
            self._text, self._released, self._upto, self._stopped = "", "", 0, False
        self._text += chunk.text
        end = self._upto
        for match in _BOUNDARY.finditer(self._text, self._upto):
            end = match.end()
        return self._release(end)

    def flush(self, step: int) -> dict[str, Any] | None:
        """The rest of the answer at `step`, sent just before its journal entry."""
        if self._key is None or self._key[0] != step:
            return None
        return self._release(len(self._text))

    def _release(self, end: int) -> dict[str, Any] | None:
        if self._stopped or end <= self._upto or self._key is None:
            return None
        text = self._text[:end]
        if self._check is not None:
            verdict = self._check(text)
            if verdict.action == "redact" and verdict.text is not None:
                text = verdict.text
            elif verdict.action != "allow":
                self._stopped = True
                return None
        if not text.startswith(self._released):  # a redaction reaching into sent text
            self._stopped = True
            return None
        new, self._released, self._upto = text[len(self._released) :], text, end
        step, attempt = self._key
        return {"step": step, "attempt": attempt, "text": new} if new else None
