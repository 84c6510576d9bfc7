"""`SentenceGate`: streamed text leaves whole sentences, each after the output guardrails, so
a secret split across deltas is caught as it would be in the final answer."""

from __future__ import annotations

from typing import Any

from bosun.gateway.guardrails import GuardrailVerdict, OutputContext, SecretsGuard
from bosun.runtime.streaming import TextChunk
from bosun.service.text_gate import Check, SentenceGate

KEY = "sk-" + "proj-" + "Zq3" * 10 + "f3a9"


def gate_with(guard: SecretsGuard | None) -> SentenceGate:
    async def make_check() -> Check | None:
        if guard is None:
            return None

        def check(text: str) -> GuardrailVerdict:
            return guard.check(text, OutputContext())

        return check

    return SentenceGate(make_check)


async def feed(gate: SentenceGate, *pieces: str, step: int = 1, attempt: int = 0) -> list[str]:
    sent: list[dict[str, Any] | None] = [
        await gate.add(TextChunk("r", step, attempt, piece)) for piece in pieces
    ]
    return [s["text"] for s in sent if s is not None]


async def test_text_is_held_to_a_sentence_boundary_and_the_rest_goes_with_the_entry() -> None:
    gate = gate_with(None)
    assert await feed(gate, "The ans", "wer is 4", "2. Next", " one?\nAnd") == [
        "The answer is 42. ",
        "Next one?\n",
    ]
    assert gate.flush(2) is None, "the entry of another answer"
    assert gate.flush(1) == {"step": 1, "attempt": 0, "text": "And"}
    assert gate.flush(1) is None
    # A decimal point is no boundary; a later model call starts afresh.
    assert await feed(gate, "Pi is 3.", "14 today. ", step=3) == ["Pi is 3.14 today. "]


async def test_a_secret_split_across_deltas_never_leaves() -> None:
    gate = gate_with(SecretsGuard())
    half = len(KEY) // 2
    sent = await feed(gate, "Sure. ", f"Use {KEY[:half]}", f"{KEY[half:]} now. ", "More. ")
    assert sent == ["Sure. "]
    assert gate.flush(1) is None
    # A retry of the call is judged on its own text.
    assert await feed(gate, "Sorry, ", "no key. ", attempt=1) == ["Sorry, no key. "]


async def test_a_redacting_guard_sends_the_redacted_text() -> None:
    gate = gate_with(SecretsGuard(action="redact"))
    sent = await feed(gate, "Hello. ", f"key={KEY[:10]}", f"{KEY[10:]} ok. ")
    assert sent[0] == "Hello. "
    assert len(sent) == 2 and KEY not in sent[1] and KEY[:10] not in sent[1]
    assert sent[1].endswith(" ok. ")
