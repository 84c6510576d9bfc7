"""The thread summary keeps what people act on word for word, whatever the model writes.

Golden turns (tests/memory/data/summary_golden.yaml) are folded with a lossy scripted
summarizer, a failing one, and one that already kept everything; every listed item must be in
the summary verbatim, and a summary of untrusted text must be labelled untrusted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from bosun.memory.summary import ModelSummarizer, Turn, fold
from bosun.memory.threads import ThreadMemory, split_window
from bosun.memory.verbatim import Kept, extract
from bosun.testing import Fault, ScriptedModel, reply
from bosun.trust import Content, Trust

GOLDEN = yaml.safe_load((Path(__file__).parent / "data" / "summary_golden.yaml").read_text())


def turns_of(case: dict[str, Any], *, trust: Trust = Trust.USER) -> list[Turn]:
    return [
        Turn(
            run_id=f"run{i}",
            parts=(
                Content(
                    text=t["input"],
                    trust=trust,
                    source="email" if trust is Trust.UNTRUSTED else "user",
                ),
            ),
            answer=t["answer"],
            status="completed",
        )
        for i, t in enumerate(case["turns"])
    ]


def flat(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize("case", GOLDEN["cases"], ids=lambda c: c["name"])
async def test_a_lossy_summary_is_repaired_with_every_item_word_for_word(
    case: dict[str, Any],
) -> None:
    model = ScriptedModel([reply(case["lossy"])])
    summary, draft = await fold(ModelSummarizer(model), None, turns_of(case))
    model.assert_consumed()
    assert summary.text.startswith(case["lossy"])
    for item in case["keep"]:
        assert item in flat(summary.text), item
    assert summary.turns == len(case["turns"]) and summary.version == 1
    assert draft.usage.total_tokens > 0  # the scripted model estimates what it was sent


@pytest.mark.parametrize("case", GOLDEN["cases"], ids=lambda c: c["name"])
async def test_a_failing_summarizer_still_keeps_every_item(case: dict[str, Any]) -> None:
    model = ScriptedModel([Fault.server_error()])
    summary, _ = await fold(ModelSummarizer(model), None, turns_of(case))
    for item in case["keep"]:
        assert item in flat(summary.text), item


async def test_items_already_in_the_summary_are_not_repeated() -> None:
    case = GOLDEN["cases"][2]
    complete = flat(" ".join(f"{t['input']} {t['answer']}" for t in case["turns"]))
    summary, _ = await fold(ModelSummarizer(ScriptedModel([complete])), None, turns_of(case))
    assert summary.text == complete
    assert "Kept verbatim" not in summary.text


async def test_items_survive_a_second_fold_that_forgets_them() -> None:
    case = GOLDEN["cases"][0]
    turns = turns_of(case)
    model = ScriptedModel([reply("first"), reply("second: nothing kept")])
    first, _ = await fold(ModelSummarizer(model), None, turns[:1])
    second, _ = await fold(ModelSummarizer(model), first, turns[1:])
    assert second.version == 2 and second.turns == 2 and second.through == "run1"
    for item in case["keep"]:
        assert item in flat(second.text), item
    # the previous summary (with its kept items) was what the model was shown
    shown = model.requests[1].messages[-1].content
    assert "We will refund €42.50" in flat(shown or "")


async def test_a_summary_of_untrusted_text_is_untrusted_and_the_summarizer_sees_it_marked() -> None:
    case = GOLDEN["cases"][0]
    model = ScriptedModel([reply("ok")])
    summary, _ = await fold(ModelSummarizer(model), None, turns_of(case, trust=Trust.UNTRUSTED))
    assert summary.trust is Trust.UNTRUSTED
    shown = model.requests[0].messages[-1]
    assert "<<untrusted email>>" in shown.content and shown.trust is Trust.UNTRUSTED
    # ... and an earlier untrusted summary keeps the next one untrusted
    clean, _ = await fold(ModelSummarizer(ScriptedModel(["ok"])), summary, turns_of(case))
    assert clean.trust is Trust.UNTRUSTED


async def test_a_tainted_turn_makes_the_summary_untrusted() -> None:
    turn = Turn(
        run_id="r", parts=(Content(text="hi"),), answer="ok", status="completed", tainted=True
    )
    summary, _ = await fold(ModelSummarizer(ScriptedModel(["ok"])), None, [turn])
    assert summary.trust is Trust.UNTRUSTED
    user_only = Turn(run_id="r", parts=(Content(text="hi"),), answer="ok", status="completed")
    summary, _ = await fold(ModelSummarizer(ScriptedModel(["ok"])), None, [user_only])
    assert summary.trust is Trust.USER


def test_the_extractor_finds_each_kind() -> None:
    text = (
        "From: Jane <jane@example.com>\nSubject: Refund for A-1001?\n\n"
        "I paid €1,200.00 and 30 USD on 2024-01-05. We will call you back. "
        "The manager approved the exception. Is <EMAIL_2> right?"
    )
    kinds = {(k.kind, k.text) for k in extract(text)}
    assert {
        ("question", "Subject: Refund for A-1001?"),
        ("commitment", "We will call you back."),
        ("decision", "The manager approved the exception."),
        ("question", "Is <EMAIL_2> right?"),
        ("amount", "€1,200.00"),
        ("amount", "30 USD"),
        ("id", "A-1001"),
        ("date", "2024-01-05"),
        ("contact", "jane@example.com"),
        ("contact", "<EMAIL_2>"),
    } <= kinds
    assert not any(k.kind == "id" for k in extract("COVID is over; version two"))


def test_kept_items_round_trip() -> None:
    item = Kept("amount", "€3.00")
    assert Kept.from_json(item.to_json()) == item


def test_the_window_keeps_the_newest_turns_and_folds_the_rest() -> None:
    turns = [
        Turn(run_id=f"r{i}", parts=(Content(text="x" * 400),), answer=None, status="completed")
        for i in range(5)
    ]
    fold_, window = split_window(turns, window_turns=2)
    assert [t.run_id for t in fold_] == ["r0", "r1", "r2"]
    assert [t.run_id for t in window] == ["r3", "r4"]
    fold_, window = split_window(turns, window_turns=10)
    assert fold_ == [] and len(window) == 5
    fold_, window = split_window(turns, window_turns=4, window_tokens=150)  # 100 tokens a turn
    assert [t.run_id for t in window] == ["r4"]
    assert split_window(turns, window_turns=0) == (turns, [])


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"window_turns": -1}, "window_turns"),
        ({"token_budget": 0}, "token_budget"),
        ({"prune_at": 0}, "prune_at"),
        ({"summarizer_model": ScriptedModel([]), "summarizer": object()}, "not both"),
    ],
)
def test_thread_memory_refuses_nonsense(options: dict[str, Any], message: str) -> None:
    with pytest.raises(Exception, match=message):
        ThreadMemory(**options)
