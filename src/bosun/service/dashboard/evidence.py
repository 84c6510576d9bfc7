"""What a person needs to judge a run, read from its journal: the input parts and the tool
results with their trust labels and screening findings, the handoff package, and the form
fields of a tool's arguments.

Only presentation happens here: the journal is bosun's record, read as the runtime wrote it.
PII stays as the placeholders the runtime journaled unless the caller resolves them for a
person allowed to see it (`reveal`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from bosun.data.store import StepRow
from bosun.gateway.people import approval_id
from bosun.runtime.state import Entry, RunState

__all__ = [
    "ArgField",
    "Evidence",
    "HeldCall",
    "arg_fields",
    "edited_arguments",
    "evidence_of",
    "fold",
    "held_calls",
    "parse_arguments",
]

Reveal = Callable[[str], str]
_MAX_SHOWN = 20_000


@dataclass(frozen=True, slots=True)
class Evidence:
    """One piece of content the run saw."""

    origin: str
    """``input`` or ``tool``."""
    source: str
    """Where it came from: ``email``, ``user``, a tool's name."""
    trust: str
    """``trusted``, ``user`` or ``untrusted``."""
    text: str
    """The content (cut at 20,000 characters)."""
    detail: str | None = None
    """For a tool: its arguments and outcome."""
    flagged: str | None = None
    """What the injection screen said, when it flagged it."""
    seq: int = 0
    """Its journal entry."""


def _cut(text: str) -> str:
    return text if len(text) <= _MAX_SHOWN else text[:_MAX_SHOWN] + " [...]"


def _flag(screening: Any) -> str | None:
    if not isinstance(screening, Mapping):
        return None
    signals = ", ".join(str(s) for s in screening.get("signals", ())[:5])
    said = f"{screening.get('verdict')} (score {screening.get('score')})"
    return f"{said}: {signals}" if signals else said


def fold(run_id: str, agent: str, steps: Iterable[StepRow]) -> RunState:
    """The run's state after `steps`, folded as the runtime folds a journal to resume it."""
    state = RunState(run_id=run_id, agent=agent)
    for step in steps:
        state.apply(Entry(step.seq, step.kind, json.loads(step.payload)))
    return state


def evidence_of(steps: Iterable[StepRow], reveal: Reveal) -> list[Evidence]:
    """The inputs and tool results of a journal, in order, with their labels."""
    found: list[Evidence] = []
    for step in steps:
        if step.kind == "run_started":
            found += _inputs(step, reveal)
        elif step.kind == "tool_result":
            payload = json.loads(step.payload)
            result = payload.get("result") or {}
            ok = bool(result.get("ok"))
            body = result.get("data") if ok else result.get("guidance")
            text = body if isinstance(body, str) else json.dumps(body, ensure_ascii=False, indent=2)
            outcome = "ok" if ok else f"error: {result.get('error_kind')}"
            found.append(
                Evidence(
                    origin="tool",
                    source=str(payload.get("tool")),
                    trust=str(payload.get("trust", "trusted")),
                    text=_cut(reveal(text or "")),
                    detail=f"{reveal(str(payload.get('arguments', '{}')))} -> {outcome}",
                    flagged=_flag(payload.get("screening")),
                    seq=step.seq,
                )
            )
    return found


def _inputs(step: StepRow, reveal: Reveal) -> list[Evidence]:
    payload = json.loads(step.payload)
    flags: dict[int, str | None] = {}
    for finding in (payload.get("gateway") or {}).get("screening", ()):
        if isinstance(finding, Mapping) and isinstance(finding.get("part"), int):
            flags[finding["part"]] = _flag(finding)
    parts = payload.get("parts") or [{"text": payload.get("input", ""), "trust": "user"}]
    return [
        Evidence(
            origin="input",
            source=str(part.get("source") or "input"),
            trust=str(part.get("trust", "user")),
            text=_cut(reveal(str(part.get("text", "")))),
            flagged=flags.get(index),
            seq=step.seq,
        )
        for index, part in enumerate(parts)
    ]


@dataclass(frozen=True, slots=True)
class ArgField:
    """One argument of a held call as a form field."""

    name: str
    """The argument."""
    kind: str
    """``text``, ``textarea``, ``number``, ``checkbox``, ``select`` or ``json``."""
    value: str
    """Its current value, as the field shows it."""
    required: bool
    """The schema requires it."""
    description: str | None
    """The schema's description."""
    options: tuple[str, ...] = ()
    """For ``select``: the allowed values."""


def parse_arguments(text: str) -> dict[str, Any]:
    """A call's arguments as a dict ({} when they are not a JSON object)."""
    try:
        value = json.loads(text) if text.strip() else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def arg_fields(schema: Mapping[str, Any], arguments: Mapping[str, Any]) -> list[ArgField]:
    """Form fields for the properties of a tool's JSON schema, filled with `arguments`."""
    required = set(schema.get("required", ()))
    fields = []
    for name, prop in (schema.get("properties") or {}).items():
        value = arguments.get(name)
        kind, shown, options = _field_kind(prop, value)
        fields.append(
            ArgField(
                name=name,
                kind=kind,
                value=shown,
                required=name in required,
                description=prop.get("description"),
                options=options,
            )
        )
    return fields


def _field_kind(prop: Mapping[str, Any], value: Any) -> tuple[str, str, tuple[str, ...]]:
    prop = _simple(prop)
    kind = prop.get("type")
    if "enum" in prop:
        return "select", "" if value is None else str(value), tuple(str(v) for v in prop["enum"])
    if kind == "boolean":
        return "checkbox", "on" if value else "", ()
    if kind in ("integer", "number"):
        return "number", "" if value is None else json.dumps(value), ()
    if kind == "string":
        text = "" if value is None else str(value)
        return ("textarea" if len(text) > 80 or "\n" in text else "text"), text, ()
    return "json", "" if value is None else json.dumps(value, ensure_ascii=False, indent=2), ()


def edited_arguments(
    schema: Mapping[str, Any], original: Mapping[str, Any], posted: Mapping[str, str | None]
) -> dict[str, Any]:
    """The arguments a reviewer's form gives, typed by the schema: a field left as it was
    keeps the model's value exactly. `posted` maps each property to its field (None: an
    unchecked box or an absent field). Raises ValueError naming a field that does not parse."""
    edited: dict[str, Any] = {}
    for name, prop in (schema.get("properties") or {}).items():
        raw = posted.get(name)
        kind, shown, _ = _field_kind(prop, original.get(name))
        if kind == "checkbox":
            edited[name] = raw is not None
            continue
        if raw is None or (raw == shown and name in original):
            if name in original:
                edited[name] = original[name]
            continue
        if raw == "" and name not in original:
            continue
        edited[name] = _typed(name, kind, prop, raw)
    return edited


def _simple(prop: Mapping[str, Any]) -> Mapping[str, Any]:
    """An optional value (``anyOf: [X, null]``) as X: a blank field leaves it out."""
    options = [p for p in prop.get("anyOf", ()) if p.get("type") != "null"]
    return {**prop, **options[0]} if len(options) == 1 else prop


def _typed(name: str, kind: str, prop: Mapping[str, Any], raw: str) -> Any:
    prop = _simple(prop)
    try:
        if kind == "number":
            return int(raw) if prop.get("type") == "integer" else float(raw)
        if kind == "json":
            return json.loads(raw)
    except ValueError as exc:
        raise ValueError(f"argument {name!r}: {raw[:50]!r} is not a {prop.get('type')}") from exc
    return raw


@dataclass(frozen=True, slots=True)
class HeldCall:
    """A call a run held for approval, and the decision on it if there is one."""

    approval_id: str
    """``<run id>.<digest>``, as the approvals list names it."""
    call_id: str
    """The model's call id."""
    tool: str
    """The tool."""
    arguments: str
    """As the model wrote them (JSON text)."""
    reasons: Any
    """Why it was held."""
    decision: Mapping[str, Any] | None = None
    """The ``approval_decided`` payload (approved, decided_by, reason, arguments), once
    decided."""


def held_calls(run_id: str, steps: Iterable[StepRow]) -> dict[str, HeldCall]:
    """Every call the journal shows held for approval, by approval id, with its decision."""
    held: dict[str, HeldCall] = {}
    by_call: dict[str, str] = {}
    for step in steps:
        if step.kind == "approval_requested":
            payload = json.loads(step.payload)
            reasons = payload.get("reasons") or {}
            for call in payload.get("calls", ()):
                key = approval_id(run_id, call["id"])
                by_call[call["id"]] = key
                held[key] = HeldCall(
                    approval_id=key,
                    call_id=call["id"],
                    tool=call["name"],
                    arguments=call.get("arguments", "{}"),
                    reasons=reasons.get(call["id"]),
                )
        elif step.kind == "approval_decided":
            payload = json.loads(step.payload)
            found = by_call.get(payload.get("call_id", ""))
            if found is not None:
                key = found
                old = held[key]
                held[key] = HeldCall(
                    old.approval_id, old.call_id, old.tool, old.arguments, old.reasons, payload
                )
    return held
