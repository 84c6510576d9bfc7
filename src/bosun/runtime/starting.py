"""What starting a run writes: its id, its first journal entry, and the idempotency check.

`Runtime.start` (runtime.py) resolves instructions and writes the run row with the
``run_started`` entry built here, in one commit; a second submission under the same
idempotency key gets the first run back only if it is the same request.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from bosun.data.store import RunRow
from bosun.errors import IdempotencyConflict, UserError
from bosun.runtime.agent import ResolvedInstructions
from bosun.runtime.taint import mask
from bosun.tools.privacy import Privacy, VaultEntry
from bosun.trust import Content, Trust

if TYPE_CHECKING:
    from bosun.runtime.agent import Agent

__all__ = [
    "Input",
    "check_same_request",
    "new_run_id",
    "request_digest",
    "started_payload",
    "who_and_where",
]

Input = str | Sequence[Content]
"""A run's input: plain text (the submitter's, labelled ``user``) or labelled parts."""


def new_run_id() -> str:
    """Time-sortable run id: 12 hex digits of milliseconds, then 16 random hex digits."""
    return f"{int(time.time() * 1000):012x}{secrets.token_hex(8)}"


def request_digest(agent: str, input: str | Sequence[Content], *, thread: str | None = None) -> str:
    """What an idempotency key stands for: SHA-256 over the agent, the input parts (text,
    trust, source) and the thread when there is one (so digests of runs without a thread are
    what they were). A plain string is one part of user content, as the run reads it."""
    parts = [Content(text=input)] if isinstance(input, str) else list(input)
    request: dict[str, Any] = {"agent": agent, "input": [p.to_json() for p in parts]}
    if thread is not None:
        request["thread"] = thread
    canonical = json.dumps(request, sort_keys=True)  # ASCII escapes: lone surrogates encode
    return hashlib.sha256(canonical.encode()).hexdigest()


def check_same_request(row: RunRow, agent: str, key: str, digest: str | None) -> None:
    """`IdempotencyConflict` unless `row`, the run stored under `key`, is this request."""
    # A run stored before digests (migration 0005) has only its agent to compare.
    legacy = row.request_digest is None
    if (row.agent != agent) if legacy else (row.request_digest != digest):
        raise IdempotencyConflict(
            f"Idempotency-Key {key!r} was used for a different request (run {row.id}): "
            "send a new key with a new request",
            run_id=row.id,
        )


def started_payload(
    privacy: Privacy | None,
    agent: Agent,
    run_id: str,
    input: Input,
    conversation: str | None,
    resolved: ResolvedInstructions | None,
) -> dict[str, Any]:
    """The run_started entry: labelled parts (PII masked by `privacy`), instructions, the
    spotlight boundary."""
    parts = [Content(text=input)] if isinstance(input, str) else list(input)
    if not parts:
        raise UserError("a run needs some input")
    vault: list[VaultEntry] = []
    if privacy is not None:
        parts = [
            Content(
                text=mask(privacy, run_id, p.text, {}, vault),
                trust=p.trust,
                source=p.source,
            )
            for p in parts
        ]
    untrusted = any(p.trust is Trust.UNTRUSTED for p in parts)
    instructions = agent.instructions
    prompt = None
    if resolved is not None:
        instructions, prompt = resolved.text, dict(resolved.source)
    payload: dict[str, Any] = {
        "input": "\n\n".join(p.text for p in parts),
        "instructions": instructions,
        "boundary": secrets.token_hex(4),
        "spotlight": untrusted or any(t.policy.untrusted_output for t in agent.tools),
    }
    if prompt is not None:
        payload["prompt"] = prompt
    if resolved is not None and resolved.model_settings:
        payload["model_settings"] = dict(resolved.model_settings)
    if conversation is not None:
        payload["conversation"] = conversation
    if not isinstance(input, str):
        payload["parts"] = [p.to_json() for p in parts]
    if vault:
        payload["vault"] = [e.to_json() for e in vault]
    return payload


def who_and_where(
    *,
    tenant: str | None,
    gateway: Mapping[str, Any] | None,
    thread: str | None,
    parent: str | None,
    parent_call: str | None,
) -> dict[str, Any]:
    """The run_started fields that say where a run belongs: its tenant, what the gateway
    noted, its thread, and the run or pipeline that started it (read by tracing's lineage)."""
    fields: dict[str, Any] = {}
    if tenant is not None:
        fields["tenant"] = tenant
    if gateway:
        fields["gateway"] = dict(gateway)
    if thread is not None:
        fields["thread"] = thread
    if parent is not None:
        fields["parent_run_id"] = parent
        if parent_call is not None:
            fields["parent_call_id"] = parent_call
    return fields
