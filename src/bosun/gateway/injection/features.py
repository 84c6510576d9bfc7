"""What the screen reads: normalised text, cut into segments, and the word features of each.

``scripts/train_injection.py`` computes its training features with these same functions, so the
shipped weights and the screen see a text the same way.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["normalize", "segments", "token_features"]

_MAX_SEGMENT_WORDS = 32
_PIECE_WORDS = 24

_INVISIBLE = re.compile("[\u00ad\u180e\u200b-\u200f\u2060-\u2064\ufeff]")
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069]")
_TAG_CHARS = re.compile("[\U000e0000-\U000e007f]+")
_SPACES = re.compile(r"[^\S\n]+")
_ODD_SPACES = ("  ", "\t", "\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x1f", "\x85", "\u2028")
_NEWLINES = re.compile(r" ?\n[\s]*")
# Chinese, Japanese and Hindi full stops end a sentence with no space after them.
_SPLIT = re.compile(r"(?<=[.!?])\s+|\n|\||[。！？।]")
# Indic scripts and Thai write vowels as combining marks, which `\w` does not match: without
# them a Hindi word would fall apart into consonant clusters.
_TOKEN = re.compile(r"[\w\u0900-\u0dff\u0e00-\u0e7f]+")
_ASCII_TOKEN = re.compile(r"\w+")  # the same tokens for ASCII text, at half the cost
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af\uf900-\ufaff]{2,}")


def normalize(text: str) -> tuple[str, list[str], list[str]]:
    """The text the model reads, the hidden-text signals, and any smuggled ASCII."""
    signals: list[str] = []
    smuggled: list[str] = []
    if _TAG_CHARS.search(text):
        signals.append("hidden text: Unicode tag characters")
        smuggled = [
            "".join(chr(ord(c) - 0xE0000) for c in m.group(0)) for m in _TAG_CHARS.finditer(text)
        ]
        text = _TAG_CHARS.sub("", text)
    if _INVISIBLE.search(text):
        signals.append("hidden text: zero-width characters")
        text = _INVISIBLE.sub("", text)
    if _BIDI.search(text):
        signals.append("hidden text: bidirectional control characters")
        text = _BIDI.sub("", text)
    text = unicodedata.normalize("NFKC", text).casefold()
    # The substitutions scan every character; most texts need neither.
    if any(ws in text for ws in _ODD_SPACES):
        text = _SPACES.sub(" ", text)
    if "\n" in text:
        text = _NEWLINES.sub("\n", text)
    text = text.strip()
    return text, signals, smuggled


def segments(norm: str) -> list[tuple[int, int, list[str]]]:
    """Cut normalised text into (start, end, tokens); long segments into pieces."""
    out: list[tuple[int, int, list[str]]] = []
    token = _ASCII_TOKEN if norm.isascii() else _TOKEN
    start = 0
    bounds = [m.start() for m in _SPLIT.finditer(norm)]
    bounds.append(len(norm))
    for end in bounds:
        if end > start:
            tokens = token.findall(norm, start, end)
            if len(tokens) <= _MAX_SEGMENT_WORDS:
                if tokens:
                    out.append((start, end, tokens))
            else:
                found = list(token.finditer(norm, start, end))
                for i in range(0, len(found), _PIECE_WORDS):
                    piece = found[i : i + _PIECE_WORDS]
                    stop = found[i + _PIECE_WORDS].start() if i + _PIECE_WORDS < len(found) else end
                    out.append((piece[0].start(), stop, [m.group(0) for m in piece]))
        start = end + 1
    return out


def token_features(tokens: list[str]) -> list[str]:
    """Unigrams, bigrams (``"a b"``) and five-letter prefixes of long words (``"anwei*"``);
    for Chinese, Japanese and Korean, which write no spaces, character bigrams (``"指令"``)."""
    feats = list(tokens)
    feats.extend([t[:5] + "*" for t in tokens if len(t) > 6])
    feats.extend([a + " " + b for a, b in zip(tokens, tokens[1:], strict=False)])
    if not all(map(str.isascii, tokens)):
        for t in tokens:
            for run in _CJK.findall(t):
                feats.extend([run[i : i + 2] for i in range(len(run) - 1)])
    return feats
