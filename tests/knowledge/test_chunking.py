"""Chunks: exact spans, overlap, size in tokens, and the headings above each chunk."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bosun.knowledge.chunking import Chunker, ChunkingConfig

SMALL = ChunkingConfig(tokens=60, overlap=10)

GUIDE = (
    "# Guide\n\nIntro text here. "
    + "Alpha beta gamma delta. " * 20
    + "\n\n## Refunds\n\n"
    + "Refunds take five days. " * 15
    + "\n\n```\n# not a heading\n```\n\n### Card payments\n\nCards are refunded to the card."
)


@pytest.fixture
def small(chunker: Chunker) -> Chunker:
    return Chunker(SMALL, tokenizer=chunker._tokenizer)


def covered(text: str, spans: list[tuple[int, int]]) -> set[int]:
    return {i for start, end in spans for i in range(start, end)}


def test_a_short_text_is_one_chunk(chunker: Chunker) -> None:
    (chunk,) = chunker.split("  Refunds take five days.\n", markdown=False)

    assert (chunk.start, chunk.end, chunk.text) == (2, 25, "Refunds take five days.")


def test_chunks_are_exact_spans_that_cover_the_text_and_overlap(small: Chunker) -> None:
    chunks = small.split(GUIDE, markdown=True)

    assert len(chunks) > 3
    assert all(GUIDE[c.start : c.end] == c.text for c in chunks)
    missing = set(range(len(GUIDE))) - covered(GUIDE, [(c.start, c.end) for c in chunks])
    assert all(GUIDE[i].isspace() for i in missing)
    # Neighbours within a section share text (the overlap).
    assert any(b.start < a.end for a, b in zip(chunks, chunks[1:], strict=False))
    assert [c.start for c in chunks] == sorted(c.start for c in chunks)


def test_chunks_stay_within_the_token_budget(small: Chunker) -> None:
    chunks = small.split(GUIDE, markdown=True)

    # A heading line joins the chunk after it, so a chunk may pass the budget by that much.
    assert max(small.count(c.text) for c in chunks) <= SMALL.tokens + 16
    assert min(small.count(c.text) for c in chunks[:-1]) >= 16


def test_each_chunk_knows_the_headings_above_it(small: Chunker) -> None:
    chunks = small.split(GUIDE, markdown=True)
    by_text = {c.text.split("\n")[0]: c.headings for c in chunks}

    assert by_text["# Guide"] == ("Guide",)
    assert by_text["## Refunds"] == ("Guide", "Refunds")
    assert chunks[-1].headings[:2] == ("Guide", "Refunds")
    assert all("not a heading" not in h for c in chunks for h in c.headings)  # fenced code
    # A heading inside a chunk is in its text; the path is what is in force where it starts.
    assert "### Card payments" in chunks[-1].text
    assert chunks[-1].headings == ("Guide", "Refunds")


def test_plain_text_has_no_headings_and_cuts_at_sentences(small: Chunker) -> None:
    text = "Sentence number one is here. " * 40
    chunks = small.split(text, markdown=False)

    assert len(chunks) > 1
    assert all(c.headings == () for c in chunks)
    assert all(c.text.endswith("here.") for c in chunks)


def test_changing_the_settings_changes_the_signature() -> None:
    assert ChunkingConfig().signature == "tokens=512,overlap=64"
    assert ChunkingConfig(tokens=256, overlap=0).signature == "tokens=256,overlap=0"
    with pytest.raises(ValueError, match="overlap"):
        ChunkingConfig(tokens=100, overlap=100)


def test_a_repeated_line_after_a_long_chunk_is_found_at_its_own_place(small: Chunker) -> None:
    # Found by the property below: the last "# Title" was placed at an earlier copy inside
    # the first chunk, leaving the real last line uncovered.
    lines = ["# Title"] * 8 + ["## Part"] * 2 + ["0:0", "0:002:0", "0:0:002"]
    text = "\n".join([*lines, *["0000000000"] * 3, "00000000000000", "", "# Title"])
    chunks = small.split(text, markdown=False)

    assert chunks[-1].end == len(text)
    assert all(text[c.start : c.end] == c.text for c in chunks)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(
        st.one_of(
            st.sampled_from(["# Title", "## Part", "```", "", "- item", "Word"]),
            st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=80),
        ),
        max_size=60,
    ),
    st.booleans(),
)
def test_any_text_splits_into_exact_covering_spans(
    small: Chunker, lines: list[str], markdown: bool
) -> None:
    text = "\n".join(lines)
    chunks = small.split(text, markdown=markdown)

    assert all(text[c.start : c.end] == c.text and c.text for c in chunks)
    missing = set(range(len(text))) - covered(text, [(c.start, c.end) for c in chunks])
    assert all(text[i].isspace() for i in missing)
