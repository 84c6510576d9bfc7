"""Encoded payloads: text written so that a reader, or a screen, does not see what it says.

`decoded_views` finds the ways a text may hide words and returns what they decode to, for the
screen to score like any other text:

- **base64, base32 and hex blobs** that decode to words (not to hashes, ids or binary),
  decoded again while the result is itself a blob, up to `MAX_DEPTH` layers;
- **rot13** text that reads as an override once rotated;
- **reversed** text (``snoitcurtsni suoiverp erongi``), per line and whole;
- **leetspeak** (``1gn0r3 4ll pr3v10u5``): digits and signs standing for letters;
- **homoglyphs**: Cyrillic and Greek letters that look Latin, inside Latin words;
- **spaced letters** (``i g n o r e``, ``i.g.n.o.r.e``);

zero-width characters, bidi controls and Unicode tag characters are removed earlier, by
`features.normalize`. Each view is gated by a cheap test, so a benign e-mail pays for none of
them, and every loop is bounded (`MAX_BLOBS`, `MAX_DEPTH`, `MAX_VIEW_CHARS`) so a hostile input
cannot buy unbounded work.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re
from collections.abc import Iterator

__all__ = ["MAX_BLOBS", "MAX_DEPTH", "MAX_VIEW_CHARS", "decoded_views"]

MAX_BLOBS = 16
"""At most this many encoded blobs are decoded per text."""
MAX_DEPTH = 3
"""Layers of encoding undone (base64 of hex of base64 ...)."""
MAX_VIEW_CHARS = 20_000
"""A view is cut to this many characters: an attack needs a sentence, not a megabyte."""

_BASE64 = re.compile(r"[A-Za-z0-9+/_-]{20,}={0,2}")
_BASE32 = re.compile(r"[A-Z2-7]{24,}={0,6}")
_HEX = re.compile(r"(?:[0-9A-Fa-f]{2}){12,}")
_BLOB_CHARS = 20
# Words an override or a leak request is made of; their reversals and rot13 forms are cheap
# to look for, and a benign text almost never holds them.
_CUES = (
    "ignore",
    "instruction",
    "disregard",
    "forget",
    "prompt",
    "system",
    "previous",
    "password",
    "reveal",
    "assistant",
    "jailbreak",
    "override",
    "secret",
    "rules",
)
_REVERSED_CUES = tuple(c[::-1] for c in _CUES)
_ROT13_CUES = tuple(codecs.encode(c, "rot13") for c in _CUES)
_LEET = str.maketrans(
    {
        "0": "o",
        "1": "i",
        "3": "e",
        "4": "a",
        "5": "s",
        "7": "t",
        "8": "b",
        "9": "g",
        "@": "a",
        "$": "s",
        "!": "i",
        "|": "l",
        "+": "t",
        "€": "e",
    }
)
# A word with a leet character between letters, or at a word's edge next to two letters.
_LEET_WORD = re.compile(r"\b[a-z]*[0134578@$!|+€][a-z0-9@$!|+€]*[a-z][a-z0-9@$!|+€]*\b")
# A leet sign followed by a letter ("1gn0r3": "0r", "3" at the end is not counted). The class
# comes first so the regex engine skips ahead through ordinary text.
_LEET_INNER = re.compile(r"[0134578@$!|+€][a-z]")
_HOMOGLYPHS = str.maketrans(
    {
        # Cyrillic
        "а": "a",
        "в": "b",
        "е": "e",
        "ё": "e",
        "к": "k",
        "м": "m",
        "н": "h",
        "о": "o",
        "р": "p",
        "с": "c",
        "т": "t",
        "у": "y",
        "х": "x",
        "і": "i",
        "ј": "j",
        "ѕ": "s",
        "ԁ": "d",
        "ɡ": "g",
        "һ": "h",
        "ԛ": "q",
        "ԝ": "w",
        "ӏ": "l",
        # Greek
        "α": "a",
        "β": "b",
        "ε": "e",
        "η": "n",
        "ι": "i",
        "κ": "k",
        "ν": "v",
        "ο": "o",
        "ρ": "p",
        "τ": "t",
        "υ": "u",
        "χ": "x",
        "γ": "y",
    }
)
_MIXED_SCRIPT = re.compile(
    r"[a-z][\u0370-\u03ff\u0400-\u04ff\u0500-\u052f]|"
    r"[\u0370-\u03ff\u0400-\u04ff\u0500-\u052f][a-z]"
)
_SPACED = re.compile(r"(?:\b[a-z][ .\-_*]{1,2}){5,}[a-z]\b")
_SPACED_SEP = re.compile(r"(?<=\b[a-z])[ .\-_*]{1,2}(?=[a-z]\b)")


def decoded_views(text: str, norm: str) -> list[tuple[str, str]]:
    """``(kind, decoded text)`` for every hidden payload in `text` (raw) / `norm` (the
    normalised text the screen reads)."""
    views: list[tuple[str, str]] = list(_blobs(text, 0))
    lowered = norm[:MAX_VIEW_CHARS]
    if any(cue in lowered for cue in _ROT13_CUES):
        rot = codecs.encode(lowered, "rot13")
        if _cue_count(rot) > _cue_count(lowered):
            views.append(("rot13", rot))
    if any(cue in lowered for cue in _REVERSED_CUES):
        flipped = "\n".join(line[::-1] for line in lowered.split("\n"))
        if _cue_count(flipped) > _cue_count(lowered):
            views.append(("reversed", flipped))
    if not lowered.isascii() and _MIXED_SCRIPT.search(lowered):
        folded = lowered.translate(_HOMOGLYPHS)
        if _cue_count(folded) > _cue_count(lowered):
            views.append(("homoglyphs", folded))
    leet = _unleet(lowered)
    if leet is not None:
        views.append(("leetspeak", leet))
    # A line whose letters stand apart has about as many gaps as letters; counting is cheaper
    # than running `_SPACED` over a whole e-mail.
    spaced = [
        line
        for line in text[:MAX_VIEW_CHARS].split("\n")
        if len(line) >= 12 and 2 * (line.count(" ") + line.count(".")) >= len(line) - 2
    ]
    if spaced and _SPACED.search(lowered):
        joined = _despace("\n".join(spaced).casefold())
        if _cue_count(joined) > _cue_count(lowered):
            views.append(("spaced letters", joined))
    return views


def _despace(raw: str) -> str:
    """Letters written one by one (``i g n o r e   a l l``) joined into words: a run of two or
    more spaces separates words, a single space (or dot, dash) separates letters."""
    words = re.split(r" {2,}|\t|\n", raw)
    return " ".join(_SPACED_SEP.sub("", w) for w in words)


def _cue_count(text: str) -> int:
    return sum(cue in text for cue in _CUES)


def _unleet(norm: str) -> str | None:
    """`norm` with leet words spelled out, when that reveals cue words; else None."""
    # A digit or sign between two letters is rare in prose; the full word scan is not cheap.
    if len(_LEET_INNER.findall(norm)) < 2:
        return None
    words = _LEET_WORD.findall(norm)
    # Order numbers and ids mix digits and letters too; an attack needs several such words.
    if len(words) < 3:
        return None
    plain = _LEET_WORD.sub(lambda m: m.group(0).translate(_LEET), norm)
    return plain if _cue_count(plain) > _cue_count(norm) else None


def _blobs(text: str, depth: int) -> Iterator[tuple[str, str]]:
    """Decoded base64, base32 and hex blobs among the long words of `text`, recursively."""
    found = 0
    # Splitting on spaces and keeping long words costs less than regex-scanning all the text.
    for word in [w for w in text.split() if len(w) >= _BLOB_CHARS][: 4 * MAX_BLOBS]:
        for kind, plain in _decode_word(word):
            if " " in plain.strip():  # words; a bare blob is only another layer
                yield kind, plain
            if depth + 1 < MAX_DEPTH:
                for inner_kind, inner in _blobs(plain, depth + 1):
                    yield f"{inner_kind} in {kind}", inner
            found += 1
            break
        if found >= MAX_BLOBS:
            return


def _decode_word(word: str) -> Iterator[tuple[str, str]]:
    if (m := _HEX.search(word)) and (plain := _printable(binascii.unhexlify(m.group(0)))):
        yield "hex", plain
    elif (m := _BASE32.search(word)) and (plain := _b32_text(m.group(0))):
        yield "base32", plain
    elif (m := _BASE64.search(word)) and (plain := _b64_text(m.group(0))):
        yield "base64", plain


def _b64_text(blob: str) -> str | None:
    try:
        raw = base64.b64decode(
            blob + "=" * (-len(blob) % 4), altchars=b"-_" if "-" in blob or "_" in blob else None
        )
    except (binascii.Error, ValueError):
        return None
    return _printable(raw)


def _b32_text(blob: str) -> str | None:
    try:
        raw = base64.b32decode(blob + "=" * (-len(blob) % 8))
    except (binascii.Error, ValueError):
        return None
    return _printable(raw)


def _printable(raw: bytes) -> str | None:
    """Decoded bytes as text if they read like words (or like another blob), else None."""
    try:
        plain = raw.decode("utf-8")[:MAX_VIEW_CHARS]
    except UnicodeDecodeError:
        return None
    if _BASE64.fullmatch(plain.strip()) and len(plain) >= _BLOB_CHARS:
        return plain  # another layer
    letters = sum(c.isalpha() or c == " " for c in plain)
    if plain.count(" ") < 2 or letters < 0.8 * len(plain):
        return None
    return plain
