"""The seam between PII redaction and the places that use it.

The gateway owns detection and encryption (`bosun.gateway.pii`); the runtime masks text as it
enters a run's context, and the tool pipeline reveals placeholders only to tools whose policy
names the PII type. Both see only the `Privacy` protocol and `VaultEntry` records, which travel
in the journal (encrypted), so a resumed run has its vault back without a second store.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = ["PLACEHOLDER", "Privacy", "VaultEntry", "placeholders_in", "reveal_placeholders"]

PLACEHOLDER = re.compile(r"<([A-Z][A-Z_]*)_(\d{1,6})>")
"""What a placeholder looks like: ``<EMAIL_1>``, ``<CREDIT_CARD_2>``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class VaultEntry:
    """One original value kept out of the model's sight."""

    placeholder: str
    """What the model sees instead, e.g. ``<EMAIL_1>``."""
    entity: str
    """The detector's entity type, e.g. ``EMAIL_ADDRESS``; tool policies name these."""
    ciphertext: str
    """The original, encrypted with the run's key."""
    fingerprint: str
    """A keyed hash of the original, so a value seen again gets the same placeholder."""

    def to_json(self) -> dict[str, str]:
        """The journaled form."""
        return {
            "placeholder": self.placeholder,
            "entity": self.entity,
            "ciphertext": self.ciphertext,
            "fingerprint": self.fingerprint,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> VaultEntry:
        """Read back a journaled entry."""
        return cls(
            placeholder=str(data["placeholder"]),
            entity=str(data["entity"]),
            ciphertext=str(data["ciphertext"]),
            fingerprint=str(data["fingerprint"]),
        )


class Privacy(Protocol):
    """PII redaction for one process: detection, placeholders, encryption."""

    def mask(
        self, run_id: str, text: str, vault: Mapping[str, VaultEntry]
    ) -> tuple[str, list[VaultEntry]]:
        """Replace the PII in `text` with placeholders. A value already in `vault` keeps its
        placeholder; new values get new entries, returned for the caller to journal."""
        ...

    def reveal(self, run_id: str, entry: VaultEntry) -> str:
        """Decrypt one original."""
        ...


def placeholders_in(text: str) -> list[str]:
    """Every placeholder-shaped token in `text`, in order."""
    return [m.group(0) for m in PLACEHOLDER.finditer(text)]


def reveal_placeholders(
    value: Any,
    vault: Mapping[str, VaultEntry],
    allowed: Collection[str],
    reveal: Callable[[VaultEntry], str],
) -> Any:
    """`value` (JSON-shaped) with the placeholders of `allowed` entity types replaced by their
    originals. Other placeholders, and placeholder-shaped text not in the vault, stay as they
    are: a tool never learns more than its policy allows."""
    if isinstance(value, str):

        def swap(match: re.Match[str]) -> str:
            entry = vault.get(match.group(0))
            if entry is None or entry.entity not in allowed:
                return match.group(0)
            return reveal(entry)

        return PLACEHOLDER.sub(swap, value) if "<" in value else value
    if isinstance(value, dict):
        return {k: reveal_placeholders(v, vault, allowed, reveal) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [reveal_placeholders(v, vault, allowed, reveal) for v in value]
    return value
