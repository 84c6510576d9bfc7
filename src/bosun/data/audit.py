"""The audit log's hash chain: each row carries the hash of the row before it.

A row's hash is sha256 over its previous hash and its content fields, separated by a unit
separator, so editing, deleting or reordering any row breaks every link after it.
Verification needs only the rows, so it can run offline on an export. Truncating the newest
rows cannot be seen from inside the chain: compare `Verification.head` with a copy kept
elsewhere for that.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["GENESIS", "Verification", "row_hash", "verify"]

GENESIS = "0" * 64
"""The `prev_hash` of the first row."""

_FIELDS = ("created_at", "run_id", "seq", "actor", "approver", "action", "payload")


def row_hash(row: Mapping[str, Any]) -> str:
    """The hash a row must carry, given its `prev_hash` and content."""
    # created_at is hashed as a float whatever type it was given in: an int timestamp written
    # as 1700000000 reads back as 1700000000.0 and must hash the same.
    values = {**row, "created_at": float(row["created_at"])}
    parts = [row["prev_hash"], *("" if values[f] is None else repr(values[f]) for f in _FIELDS)]
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Verification:
    """Result of checking the chain."""

    ok: bool
    """Whether every link holds."""
    rows: int
    """Rows checked (up to and including the first broken one)."""
    head: str
    """Hash of the last row checked: keep it elsewhere to detect truncation."""
    broken_row: int | None = None
    """Id of the first row that does not verify."""
    reason: str | None = None
    """What is wrong with it."""


def verify(rows: Iterable[Mapping[str, Any]]) -> Verification:
    """Walk `rows` in id order and report the first broken link."""
    prev = GENESIS
    count = 0
    for row in rows:
        count += 1
        if row["prev_hash"] != prev:
            return Verification(
                False, count, prev, row["id"], "prev_hash does not match the previous row's hash"
            )
        if row_hash(row) != row["hash"]:
            return Verification(
                False, count, prev, row["id"], "content does not match the row's hash"
            )
        prev = row["hash"]
    return Verification(True, count, prev)
