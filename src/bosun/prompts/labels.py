"""The values of prompt labels and rollouts, and how versions and labels map to stored rows.

`PromptRegistry` (registry.py) moves labels; these are the types it hands out (`PromptLabel`
with its `Canary`, shadow and `LabelMove` history, `GateStatus`, `SyncReport`) and the mapping
between them and the rows of `bosun.data.prompts`.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bosun.data.prompts import LabelRow, PromptEdit, PromptVersionRow
from bosun.data.store import AuditEvent
from bosun.prompts.template import PromptError, PromptNotFound, PromptVersion

__all__ = [
    "PRODUCTION",
    "Canary",
    "GateStatus",
    "LabelMove",
    "PromptLabel",
    "SyncReport",
    "audit",
    "check_label",
    "existing_label",
    "label_of",
    "label_row",
    "rollout_of",
    "version_of",
    "version_row",
]

PRODUCTION = "production"
"""The label live traffic follows; moving it needs a passing evaluation gate."""
_LABEL = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


@dataclass(frozen=True, slots=True)
class Canary:
    """A share of keys that gets another version than the label's."""

    version: str
    """The canary version."""
    percent: float
    """Share of keys, 0 to 100 (0.01 granularity)."""


@dataclass(frozen=True, slots=True)
class LabelMove:
    """One earlier position of a label, kept so `rollback` can return to it."""

    version: str
    """The version the label pointed at."""
    by: str | None
    """Who moved the label away from it."""
    at: float
    """When."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PromptLabel:
    """A label of a prompt and its rollout."""

    name: str
    """The prompt."""
    label: str
    """``production``, ``staging``, ..."""
    version: str
    """The version most keys get."""
    canary: Canary | None = None
    """A canary rollout, if any."""
    shadow: str | None = None
    """A version that receives copies of live inputs (side effects intercepted), if any."""
    history: tuple[LabelMove, ...] = ()
    """Earlier versions, oldest first; `rollback` returns to the last."""
    updated_at: float = 0.0
    """When the label last moved."""
    updated_by: str | None = None
    """Who moved it."""


@dataclass(frozen=True, slots=True)
class GateStatus:
    """Whether a version may go to production."""

    passed: bool
    """True when the latest gate on every gated dataset passed."""
    reason: str
    """Why not, or which runs passed."""


@dataclass(frozen=True, slots=True)
class SyncReport:
    """What `PromptRegistry.sync_from_dir` did."""

    created: tuple[str, ...] = ()
    """``name@version`` created."""
    unchanged: tuple[str, ...] = ()
    """``name@version`` already in the registry with the same content."""


def version_row(item: PromptVersion) -> PromptVersionRow:
    """The stored row of a version."""
    return PromptVersionRow(
        name=item.name,
        version=item.version,
        template=item.template,
        variables=json.dumps(dict(item.variables), sort_keys=True),
        model_settings=json.dumps(dict(item.model_settings), sort_keys=True),
        changelog=item.changelog,
        owner=item.owner,
        digest=item.digest,
        created_at=item.created_at,
    )


def version_of(row: PromptVersionRow) -> PromptVersion:
    """A version from its stored row."""
    return PromptVersion(
        name=row.name,
        version=row.version,
        template=row.template,
        variables=json.loads(row.variables),
        model_settings=json.loads(row.model_settings),
        changelog=row.changelog,
        owner=row.owner,
        digest=row.digest,
        created_at=row.created_at,
    )


def rollout_of(row: LabelRow) -> dict[str, Any]:
    """A label row's rollout (canary, shadow, history)."""
    rollout: dict[str, Any] = json.loads(row.rollout or "{}")
    rollout.setdefault("history", [])
    return rollout


def label_row(
    name: str, label: str, version: str, rollout: Mapping[str, Any], by: str, now: float
) -> LabelRow:
    """The stored row of a label."""
    return LabelRow(
        name=name,
        label=label,
        version=version,
        rollout=json.dumps(rollout, sort_keys=True),
        updated_at=now,
        updated_by=by,
    )


def existing_label(edit: PromptEdit, label: str) -> LabelRow:
    """The label's row, read in `edit`'s transaction; `PromptNotFound` if absent."""
    row = edit.label(label)
    if row is None:
        raise PromptNotFound(
            f"prompt {edit.name!r} has no label {label!r}: promote a version to it first"
        )
    return row


def audit(edit: PromptEdit, action: str, by: str | None, **payload: Any) -> None:
    """Audit a change in the transaction that makes it: both land, or neither."""
    event = AuditEvent(
        action=action,
        payload=json.dumps(payload, sort_keys=True),
        created_at=time.time(),
        actor=by,
    )
    edit.audit(event)


def label_of(row: LabelRow) -> PromptLabel:
    """A label from its stored row."""
    rollout = rollout_of(row)
    canary = rollout.get("canary")
    shadow = rollout.get("shadow")
    return PromptLabel(
        name=row.name,
        label=row.label,
        version=row.version,
        canary=None if not canary else Canary(canary["version"], float(canary["percent"])),
        shadow=None if not shadow else shadow["version"],
        history=tuple(
            LabelMove(h["version"], h.get("by"), h.get("at", 0.0)) for h in rollout["history"]
        ),
        updated_at=row.updated_at,
        updated_by=row.updated_by,
    )


def check_label(label: str) -> None:
    """`PromptError` unless `label` is a valid label name."""
    if not _LABEL.match(label):
        raise PromptError(f"label {label!r} must match {_LABEL.pattern}")
