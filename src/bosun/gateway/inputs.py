"""What the gateway accepts as input, checked before anything is stored.

Each check raises `InvalidInput` with the status the service answers (400 malformed, 413 too
large, 415 not text) and a message that says which limit was hit. Nothing here writes: a
refused request leaves no trace but its audit-free refusal.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bosun.errors import InvalidInput
from bosun.trust import Content, Trust

__all__ = ["InputLimits", "check_parts", "decode_text", "parse_json"]

_CONTROL_OK = frozenset("\t\n\r\f")


@dataclass(frozen=True, kw_only=True)
class InputLimits:
    """Bounds on one request's input."""

    max_bytes: int = 256_000
    """UTF-8 bytes over all parts (a long email with quoted history fits)."""
    max_parts: int = 32
    """Labelled parts per run."""
    max_json_depth: int = 32
    """Nesting of a JSON body; deeper is refused before parsing."""
    max_control_ratio: float = 0.1
    """Share of control characters above which text is treated as binary."""


def decode_text(raw: bytes | str, *, limits: InputLimits, what: str = "input") -> str:
    """Bytes or text as clean text: UTF-8 (a BOM is dropped), not empty, not binary, within
    the size limit, with no lone surrogates."""
    if isinstance(raw, bytes):
        if len(raw) > limits.max_bytes:
            raise _too_large(what, len(raw), limits)
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise InvalidInput(
                f"{what} is not UTF-8 text (bad byte at offset {exc.start}); send UTF-8",
                status=415,
            ) from None
    else:
        text = raw
        try:
            size = len(text.encode("utf-8"))
        except UnicodeEncodeError:
            raise InvalidInput(f"{what} contains unpaired surrogates: not valid Unicode") from None
        if size > limits.max_bytes:
            raise _too_large(what, size, limits)
    if not text.strip():
        raise InvalidInput(f"{what} is empty")
    if "\x00" in text or _control_ratio(text) > limits.max_control_ratio:
        raise InvalidInput(f"{what} looks like binary data, not text", status=415)
    return text


def check_parts(parts: str | Sequence[Content], *, limits: InputLimits) -> list[Content]:
    """Validate a run's input as labelled parts: each part text as `decode_text`, the total
    within `max_bytes`, at least one part the submitter wrote or the operator gave."""
    if isinstance(parts, str):
        parts = [Content(text=parts)]
    if not parts:
        raise InvalidInput("input has no parts")
    if len(parts) > limits.max_parts:
        raise InvalidInput(f"input has {len(parts)} parts; the limit is {limits.max_parts}")
    checked = []
    total = 0
    for i, part in enumerate(parts):
        text = decode_text(part.text, limits=limits, what=f"input part {i} ({part.source})")
        total += len(text.encode("utf-8"))
        checked.append(Content(text=text, trust=part.trust, source=part.source))
    if total > limits.max_bytes:
        raise _too_large("input", total, limits)
    if all(p.trust is Trust.UNTRUSTED for p in checked):
        # The model needs a task from someone accountable; outside text alone is not one.
        raise InvalidInput("input has only untrusted parts: add the task as a user part")
    return checked


def parse_json(raw: bytes | str, *, limits: InputLimits) -> Any:
    """A JSON body, refusing nesting deeper than the limit *before* the parser recurses."""
    text = decode_text(raw, limits=limits, what="request body")
    depth = _max_depth(text)
    if depth > limits.max_json_depth:
        raise InvalidInput(
            f"request body is nested {depth} levels deep; the limit is {limits.max_json_depth}"
        )
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"request body is not JSON: {exc.msg} at line {exc.lineno}") from None


def _max_depth(text: str) -> int:
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def _control_ratio(text: str) -> float:
    sample = text[:4096]
    controls = sum(
        1 for c in sample if c not in _CONTROL_OK and unicodedata.category(c) in ("Cc", "Cs")
    )
    return controls / len(sample)


def _too_large(what: str, size: int, limits: InputLimits) -> InvalidInput:
    return InvalidInput(f"{what} is {size} bytes; the limit is {limits.max_bytes}", status=413)
