"""Text to overlapping chunks that keep their character span and the headings above them.

Splitting is langchain-text-splitters' ``RecursiveCharacterTextSplitter``, measuring length
in the embedder's WordPiece tokens: Markdown (and HTML, rendered with ``#`` headings) is cut
at headings first, then paragraphs, lines, sentences, words; plain text from paragraphs down.

Two things are done here rather than by the library:

- Spans: the splitter's ``add_start_index`` moves its search cursor back by the overlap
  counted in tokens but applied as characters, and misses when the length function is not
  ``len``; each chunk is found here from the previous chunk's start instead, and
  ``text[start:end] == chunk`` always holds.
- Headings: ``MarkdownHeaderTextSplitter`` knows the headings but rewrites the text, which
  loses the spans; here the heading lines are read once and each chunk gets the path of
  headings in force where it starts. The path is indexed and embedded with the chunk
  (``context``), so a section's chunks stay findable by their heading.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["Chunk", "Chunker", "ChunkingConfig"]

_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t#]*$", re.M)
_FENCE = re.compile(r"^(```|~~~)", re.M)
_TEXT_SEPARATORS = ["\n\n", "\n", ". ", " ", ""]
_STUB_TOKENS = 16  # shorter pieces join the chunk after them


@dataclass(frozen=True, kw_only=True)
class ChunkingConfig:
    """How documents are cut."""

    tokens: int = 512
    """Largest chunk, in the tokenizer's tokens."""
    overlap: int = 64
    """Tokens shared by neighbouring chunks."""

    def __post_init__(self) -> None:
        if not 0 <= self.overlap < self.tokens:
            raise ValueError("ChunkingConfig: overlap must be at least 0 and below tokens")

    @property
    def signature(self) -> str:
        """Stored with each document: different settings re-chunk it on the next ingest."""
        return f"tokens={self.tokens},overlap={self.overlap}"


@dataclass(frozen=True, slots=True)
class Chunk:
    """One chunk of a document's text."""

    start: int
    """Offset of its first character in the document's text."""
    end: int
    """Offset just past its last character."""
    text: str
    """``document_text[start:end]``."""
    headings: tuple[str, ...]
    """The Markdown headings in force where it starts, outermost first."""


class Chunker:
    """Cuts text by `ChunkingConfig`, counting tokens with `tokenizer` (a
    `tokenizers.Tokenizer`; default: the MiniLM embedder's)."""

    def __init__(self, config: ChunkingConfig | None = None, *, tokenizer: Any = None) -> None:
        self.config = config or ChunkingConfig()
        """The settings."""
        if tokenizer is None:
            from bosun.knowledge.embeddings import default_tokenizer

            tokenizer = default_tokenizer()
        self._tokenizer = tokenizer
        self._splitters: dict[bool, Any] = {}

    def count(self, text: str) -> int:
        """Tokens in `text`, without the model's special tokens."""
        return len(self._tokenizer.encode(text, add_special_tokens=False).ids)

    def split(self, text: str, *, markdown: bool) -> list[Chunk]:
        """The chunks of `text`, in order, with spans and heading paths."""
        headings = _headings(text) if markdown else []
        if self.count(text) <= self.config.tokens:
            pieces = [text.strip()]
        else:
            pieces = self._splitter(markdown).split_text(text)
        chunks: list[Chunk] = []
        for piece in pieces:
            if not piece:
                continue
            start = _locate(text, piece, chunks[-1] if chunks else None)
            chunks.append(Chunk(start, start + len(piece), piece, _path(headings, start)))
        return self._merge_stubs(text, chunks)

    def _merge_stubs(self, text: str, chunks: list[Chunk]) -> list[Chunk]:
        """The splitter leaves a short piece alone when a long one follows it (a heading
        before a long section, a code fence): such a stub opens the next chunk instead."""
        merged: list[Chunk] = []
        stub: Chunk | None = None
        for chunk in chunks:
            if stub is not None:
                start = min(stub.start, chunk.start)
                chunk = Chunk(start, chunk.end, text[start : chunk.end], stub.headings)
                stub = None
            if chunk is not chunks[-1] and self.count(chunk.text) < _STUB_TOKENS:
                stub = chunk
                continue
            merged.append(chunk)
        return merged

    def _splitter(self, markdown: bool) -> Any:
        splitter = self._splitters.get(markdown)
        if splitter is None:
            # Imported here: langchain-core takes most of a second to import.
            from langchain_text_splitters import Language, RecursiveCharacterTextSplitter

            length: Callable[[str], int] = self.count
            if markdown:
                splitter = RecursiveCharacterTextSplitter(
                    separators=RecursiveCharacterTextSplitter.get_separators_for_language(
                        Language.MARKDOWN
                    ),
                    is_separator_regex=True,
                    keep_separator="start",  # a heading opens the chunk that follows it
                    chunk_size=self.config.tokens,
                    chunk_overlap=self.config.overlap,
                    length_function=length,
                )
            else:
                splitter = RecursiveCharacterTextSplitter(
                    separators=_TEXT_SEPARATORS,
                    keep_separator="end",  # a sentence keeps its full stop
                    chunk_size=self.config.tokens,
                    chunk_overlap=self.config.overlap,
                    length_function=length,
                )
            self._splitters[markdown] = splitter
        return splitter


def _locate(text: str, piece: str, previous: Chunk | None) -> int:
    """Where `piece` starts. After the first chunk: the last copy starting inside the previous
    chunk (chunks overlap) and reaching past its end, else the first copy after it, so
    repeated text cannot send a chunk back to an earlier copy of itself. (A copy wholly
    inside the previous chunk is never the one: the splitter's overlap is shorter than a
    chunk, so each chunk reaches further than the one before.)"""
    if previous is None:
        start = text.find(piece)
    else:
        start = -1
        found = text.find(piece, previous.start + 1)
        while 0 <= found <= previous.end:
            if found + len(piece) > previous.end:
                start = found
            found = text.find(piece, found + 1)
        if start < 0:
            start = found
    if start < 0:  # the splitter only strips and cuts: this cannot happen
        raise AssertionError("a chunk was not found in its text")
    return start


def _headings(text: str) -> list[tuple[int, int, str]]:
    """(offset, level, title) of each Markdown heading line outside code fences."""
    fenced: list[tuple[int, int]] = []
    opened = None
    for fence in _FENCE.finditer(text):
        if opened is None:
            opened = fence.start()
        else:
            fenced.append((opened, fence.end()))
            opened = None
    found = []
    for match in _HEADING.finditer(text):
        pos = match.start()
        if any(a <= pos < b for a, b in fenced) or (opened is not None and pos >= opened):
            continue
        found.append((pos, len(match.group(1)), match.group(2).strip()))
    return found


def _path(headings: list[tuple[int, int, str]], start: int) -> tuple[str, ...]:
    """The headings in force at `start` (a heading at `start` opens the chunk itself)."""
    stack: list[tuple[int, str]] = []
    for pos, level, title in headings:
        if pos > start:
            break
        while stack and stack[-1][0] >= level:
            stack.pop()
        stack.append((level, title))
    return tuple(title for _, title in stack)
