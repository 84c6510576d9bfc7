"""The prompt registry: versioned prompts, labels that point at them, canary and shadow rollouts.

A prompt version is an immutable artifact: a Jinja2 template with typed variables, model
settings, a changelog and an owner, named by a semantic version. Labels (``production``,
``staging``, any name) point at one version each; an agent refers to a prompt by name and
label (`PromptRef`, `PromptSource`), so moving a label changes what runs without a deploy.

Decisions a reader would otherwise have to reverse-engineer:

* **Templates are sandboxed** (`bosun.prompts.template`): prompt editors are not code
  authors, so templates can neither reach Python internals nor use undeclared variables.
* **Canary assignment is sticky and monotone.** A key (a conversation, or a run) lands in
  bucket ``sha256(name, key) mod 10000``; buckets below ``percent * 100`` get the canary. The
  same key always gets the same version, and raising the percentage only adds keys.
* **Label history lives in the label row.** ``prompt_labels.rollout`` holds
  ``{"canary": ..., "shadow": ..., "history": [...]}``; `promote` pushes the version it
  replaces onto ``history`` and `rollback` pops it, in the same transaction as the move. The
  audit log records every move too (who, from, to), but it is the tamper-evident record, not
  the working state: reading it back would mean scanning every audit row.
* **Production needs a passing gate.** `promote` (and `set_canary`) to ``production`` are
  refused unless the latest gated evaluation of the version passed on every dataset it was
  gated on (`bosun.evals.runner`, ``bosun eval --gate``); a newer failing gate on any dataset
  blocks until that dataset passes again.
* **Moves are serialised per prompt.** On PostgreSQL a transaction-scoped advisory lock keyed
  by the prompt name orders concurrent creates and label moves; SQLite's single writer
  already does.
"""

from __future__ import annotations

import difflib
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import semver

from bosun.data.evals import EvalRunRow, EvalRuns
from bosun.data.prompts import PromptRows
from bosun.data.store import Store
from bosun.prompts.labels import (
    PRODUCTION,
    Canary,
    GateStatus,
    LabelMove,
    PromptLabel,
    SyncReport,
    audit,
    check_label,
    existing_label,
    label_of,
    label_row,
    rollout_of,
    version_of,
    version_row,
)
from bosun.prompts.source import PromptRef, PromptSource, RenderedPrompt, canary_bucket, render
from bosun.prompts.template import (
    PromotionRefused,
    PromptError,
    PromptNotFound,
    PromptVersion,
    VarType,
    build_version,
    diffable,
    load_prompt_files,
)

__all__ = [
    "PRODUCTION",
    "Canary",
    "GateStatus",
    "LabelMove",
    "PromotionRefused",
    "PromptError",
    "PromptLabel",
    "PromptNotFound",
    "PromptRef",
    "PromptRegistry",
    "PromptSource",
    "PromptVersion",
    "RenderedPrompt",
    "SyncReport",
    "VarType",
    "canary_bucket",
    "render",
]

_HISTORY_LIMIT = 50


# --- the registry ---------------------------------------------------------------------------


class PromptRegistry:
    """Prompt versions and labels in a bosun store."""

    def __init__(self, store: Store) -> None:
        self.store = store
        # Versions are immutable, so a version read once never needs reading again: resolving
        # a prompt for a run costs one query (the label), not two.
        self._cache: dict[tuple[str, str], PromptVersion] = {}
        self._evals = EvalRuns(store)
        self._rows = PromptRows(store)

    # --- versions ---------------------------------------------------------------------------

    def create(
        self,
        name: str,
        version: str,
        template: str,
        *,
        variables: Mapping[str, str] | None = None,
        model_settings: Mapping[str, Any] | None = None,
        changelog: str | None = None,
        owner: str | None = None,
        by: str | None = None,
    ) -> PromptVersion:
        """Add a version. Refused: a name or version that is not valid, a version that
        exists or is not greater than the latest, a template that does not parse or uses
        variables it does not declare, model settings `ModelSettings` does not know."""
        item = build_version(
            name,
            version,
            template,
            variables=variables or {},
            model_settings=model_settings or {},
            changelog=changelog,
            owner=owner,
        )
        with self._rows.editing(name) as edit:
            existing = edit.versions()
            if version in existing:
                raise PromptError(
                    f"prompt {item.label_text} exists; versions are immutable: create a new "
                    "version instead"
                )
            latest = _latest(existing)
            if latest is not None and semver.Version.parse(version) <= latest:
                raise PromptError(
                    f"version {version} of {name!r} is not greater than the latest ({latest}); "
                    "bump the version"
                )
            edit.add_version(version_row(item))
            audit(edit, "prompt_created", by, name=name, version=version, digest=item.digest)
        return item

    def add(self, item: PromptVersion, *, by: str | None = None) -> PromptVersion:
        """`create` the version a prompt file defines (`read_prompt_file`)."""
        return self.create(
            item.name,
            item.version,
            item.template,
            variables=item.variables,
            model_settings=item.model_settings,
            changelog=item.changelog,
            owner=item.owner,
            by=by,
        )

    def get(self, name: str, version: str) -> PromptVersion:
        """One version; raises `PromptNotFound`."""
        cached = self._cache.get((name, version))
        if cached is not None:
            return cached
        row = self._rows.version(name, version)
        if row is None:
            raise PromptNotFound(f"prompt {name}@{version} does not exist")
        item = self._cache[(name, version)] = version_of(row)
        return item

    def versions(self, name: str) -> list[PromptVersion]:
        """Every version of `name`, oldest (lowest) first."""
        items = [version_of(r) for r in self._rows.versions(name)]
        return sorted(items, key=lambda v: semver.Version.parse(v.version))

    def latest(self, name: str) -> PromptVersion:
        """The highest version of `name`; raises `PromptNotFound`."""
        items = self.versions(name)
        if not items:
            raise PromptNotFound(f"there is no prompt named {name!r}")
        return items[-1]

    def diff(self, name: str, a: str, b: str) -> str:
        """Unified diff from version `a` to `b`: template, variables, model settings."""
        old, new = self.get(name, a), self.get(name, b)
        return "".join(
            difflib.unified_diff(
                diffable(old).splitlines(keepends=True),
                diffable(new).splitlines(keepends=True),
                fromfile=old.label_text,
                tofile=new.label_text,
            )
        )

    # --- labels -----------------------------------------------------------------------------

    def labels(self, name: str) -> list[PromptLabel]:
        """Every label of `name`, sorted by label."""
        return [label_of(r) for r in self._rows.labels(name)]

    def label(self, name: str, label: str = PRODUCTION) -> PromptLabel | None:
        """One label of `name`, if set."""
        row = self._rows.label(name, label)
        return None if row is None else label_of(row)

    def resolve(
        self, name: str, label: str = PRODUCTION, *, key: str | None = None
    ) -> PromptVersion:
        """The version `label` gives `key`: the canary's for keys in the canary share, else
        the label's. Without a key there is no sticky assignment: the label's version."""
        found = self.label(name, label)
        if found is None:
            raise PromptNotFound(f"prompt {name!r} has no label {label!r}")
        version = found.version
        canary = found.canary
        if (
            canary is not None
            and key is not None
            and canary_bucket(name, key) < canary.percent * 100
        ):
            version = canary.version
        return self.get(name, version)

    def promote(
        self, name: str, version: str, label: str, *, by: str, require_gate: bool = True
    ) -> PromptLabel:
        """Point `label` at `version`. To ``production`` only with a passing gate (unless
        ``require_gate=False``). A canary or shadow of that version ends: it is the label's."""
        check_label(label)
        self.get(name, version)
        if label == PRODUCTION and require_gate:
            self._require_gate(name, version)
        now = time.time()
        with self._rows.editing(name) as edit:
            row = edit.label(label)
            if row is None:
                rollout: dict[str, Any] = {"history": []}
                previous = None
            else:
                rollout = rollout_of(row)
                previous = row.version
                if previous != version:
                    history = [*rollout["history"], {"version": previous, "by": by, "at": now}]
                    rollout["history"] = history[-_HISTORY_LIMIT:]
            for kind in ("canary", "shadow"):
                if (rollout.get(kind) or {}).get("version") == version:
                    rollout.pop(kind)
            edit.put_label(label_row(name, label, version, rollout, by, now), insert=row is None)
            audit(
                edit,
                "prompt_promoted",
                by,
                name=name,
                label=label,
                version=version,
                previous=previous,
            )
        return self._label_or_raise(name, label)

    def rollback(self, name: str, label: str, *, by: str) -> PromptLabel:
        """Return `label` to the version it pointed at before its last promotion, and end
        any canary on it."""
        now = time.time()
        with self._rows.editing(name) as edit:
            row = existing_label(edit, label)
            rollout = rollout_of(row)
            if not rollout["history"]:
                raise PromptError(
                    f"label {label!r} of {name!r} has no earlier version to roll back to"
                )
            target = rollout["history"].pop()["version"]
            rollout.pop("canary", None)
            edit.put_label(label_row(name, label, target, rollout, by, now), insert=False)
            audit(
                edit,
                "prompt_rolled_back",
                by,
                name=name,
                label=label,
                version=target,
                previous=row.version,
            )
        return self._label_or_raise(name, label)

    def set_canary(
        self,
        name: str,
        label: str,
        version: str,
        percent: float,
        *,
        by: str,
        require_gate: bool = True,
    ) -> PromptLabel:
        """Give `percent` of keys `version` instead of the label's. A canary on
        ``production`` serves real traffic, so it needs a passing gate like a promotion."""
        if not 0 < percent < 100:
            raise PromptError(
                f"a canary percentage is between 0 and 100 exclusive, got {percent}; promote "
                "the version to give it every key"
            )
        self.get(name, version)
        if label == PRODUCTION and require_gate:
            self._require_gate(name, version)
        canary = {"version": version, "percent": float(percent)}
        self._updaterollout(name, label, by, "prompt_canary", {"canary": canary}, other=version)
        return self._label_or_raise(name, label)

    def clear_canary(self, name: str, label: str, *, by: str) -> PromptLabel:
        """End the canary on `label`: every key gets the label's version."""
        self._updaterollout(name, label, by, "prompt_canary_cleared", {"canary": None})
        return self._label_or_raise(name, label)

    def set_shadow(self, name: str, label: str, version: str, *, by: str) -> PromptLabel:
        """Send copies of `label`'s live inputs to `version` (side effects intercepted)."""
        self.get(name, version)
        shadow = {"version": version}
        self._updaterollout(name, label, by, "prompt_shadow", {"shadow": shadow}, other=version)
        return self._label_or_raise(name, label)

    def clear_shadow(self, name: str, label: str, *, by: str) -> PromptLabel:
        """Stop shadowing `label`."""
        self._updaterollout(name, label, by, "prompt_shadow_cleared", {"shadow": None})
        return self._label_or_raise(name, label)

    # --- evaluations ------------------------------------------------------------------------

    def gate_status(self, name: str, version: str) -> GateStatus:
        """Whether `version` passed its evaluation gate: the latest gated run on every
        dataset it was gated on passed."""
        latest: dict[str, EvalRunRow] = {}
        for row in reversed(self._evals.for_prompt(name, version)):
            if row.gate_passed is not None:  # oldest first: the last per dataset wins
                latest[row.dataset] = row
        if not latest:
            return GateStatus(
                False,
                f"{name}@{version} has no evaluation gate: run `bosun eval DATASET --agent ... "
                f"--prompt {name} --prompt-version {version} --gate` first",
            )
        failed = [r for r in latest.values() if not r.gate_passed]
        if failed:
            which = ", ".join(f"{r.dataset} (eval run {r.id})" for r in failed)
            return GateStatus(False, f"{name}@{version} failed its latest gate on {which}")
        passed = ", ".join(f"{r.dataset} (eval run {r.id})" for r in latest.values())
        return GateStatus(True, f"gate passed on {passed}")

    def eval_runs(self, name: str, version: str | None = None) -> list[dict[str, Any]]:
        """Evaluation runs linked to the prompt (one version's, when given), newest first;
        without the per-case report."""
        return [asdict(r) for r in self._evals.for_prompt(name, version)]

    # --- files ------------------------------------------------------------------------------

    def sync_from_dir(self, path: str | Path, *, by: str | None = None) -> SyncReport:
        """Create the prompt versions found in YAML files under `path` that the registry
        lacks. A version that exists with other content is an error (versions are
        immutable); so is a new version lower than one already registered. Everything is
        checked before anything is created."""
        found = load_prompt_files(path)
        plan: list[PromptVersion] = []
        unchanged: list[str] = []
        for item in sorted(found, key=lambda v: (v.name, semver.Version.parse(v.version))):
            try:
                stored = self.get(item.name, item.version)
            except PromptNotFound:
                plan.append(item)
                continue
            if stored.digest != item.digest:
                raise PromptError(
                    f"{item.label_text} in {path} differs from the registered version; "
                    "versions are immutable: give the change a new version"
                )
            unchanged.append(item.label_text)
        for item in plan:  # new versions must come after every registered one
            existing = {v.version for v in self.versions(item.name)}
            latest = _latest(existing)
            if latest is not None and semver.Version.parse(item.version) < latest:
                raise PromptError(
                    f"{item.label_text} in {path} is new but lower than the registered "
                    f"{item.name}@{latest}; give it a higher version"
                )
        for item in plan:
            self.add(item, by=by)
        return SyncReport(tuple(i.label_text for i in plan), tuple(unchanged))

    # --- plumbing ---------------------------------------------------------------------------

    def _require_gate(self, name: str, version: str) -> None:
        status = self.gate_status(name, version)
        if not status.passed:
            raise PromotionRefused(f"{name}@{version} cannot go to {PRODUCTION}: {status.reason}")

    def _updaterollout(
        self,
        name: str,
        label: str,
        by: str,
        action: str,
        changes: Mapping[str, Any],
        *,
        other: str | None = None,
    ) -> None:
        """Set (or, for None, remove) rollout entries of `label`; `other` is a version
        that must differ from the label's own."""
        now = time.time()
        with self._rows.editing(name) as edit:
            row = existing_label(edit, label)
            if other is not None and other == row.version:
                raise PromptError(f"{label!r} of {name!r} already points at {other}")
            rollout = rollout_of(row)
            for key, value in changes.items():
                if value is None:
                    rollout.pop(key, None)
                else:
                    rollout[key] = value
            edit.put_label(label_row(name, label, row.version, rollout, by, now), insert=False)
            audit(edit, action, by, name=name, label=label, version=row.version, **changes)

    def _label_or_raise(self, name: str, label: str) -> PromptLabel:
        found = self.label(name, label)
        if found is None:  # pragma: no cover - just written
            raise PromptNotFound(f"prompt {name!r} has no label {label!r}")
        return found

    # Last in the class: below it, `list` in an annotation would name this method.
    def list(self) -> list[str]:
        """Names of every prompt, sorted."""
        return self._rows.names()


def _latest(versions: Iterable[str]) -> semver.Version | None:
    parsed = [semver.Version.parse(v) for v in versions]
    return max(parsed) if parsed else None
