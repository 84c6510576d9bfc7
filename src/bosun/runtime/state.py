"""A run's explicit state, rebuilt by folding its journal entries in order.

The same `RunState.apply` runs live (after each entry is durable) and on resume (over the
entries read back), so a resumed run is in exactly the state the crashed one had reached.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict

from bosun.models.base import (
    Message,
    ModelResponse,
    SystemMessage,
    ToolCall,
    ToolMessage,
    Usage,
    UserMessage,
)
from bosun.runtime.context import thread_view
from bosun.runtime.taint import SPOTLIGHT_NOTICE, spotlight
from bosun.tools.base import ApprovalDecision, ErrorKind, ToolResult
from bosun.tools.privacy import VaultEntry
from bosun.trust import Trust

__all__ = [
    "LOOP_WINDOW",
    "ActionTaken",
    "BudgetBase",
    "Entry",
    "Handoff",
    "HandoffPassage",
    "RunState",
    "RunStatus",
]


class RunStatus(StrEnum):
    """Where a run is in its life."""

    QUEUED = "queued"
    RUNNING = "running"
    WAITING_APPROVAL = "waiting_approval"
    WAITING_HUMAN = "waiting_human"
    COMPLETED = "completed"
    FAILED = "failed"
    ESCALATED = "escalated"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        """Finished for good: nothing resumes it."""
        return self in (RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED)

    @property
    def parked(self) -> bool:
        """Waiting for a person: no worker is held, a decision or a hand-back resumes it."""
        return self in (
            RunStatus.WAITING_APPROVAL,
            RunStatus.WAITING_HUMAN,
            RunStatus.ESCALATED,
        )


class ActionTaken(BaseModel):
    """One tool call as the handoff package lists it."""

    model_config = ConfigDict(frozen=True)

    tool: str
    """Tool name."""
    arguments: str
    """Arguments as the model sent them (JSON text)."""
    ok: bool
    """Whether it succeeded."""
    error_kind: str | None = None
    """Why not, if it failed."""


class HandoffPassage(BaseModel):
    """A knowledge-base passage the run retrieved, as the handoff package shows it."""

    model_config = ConfigDict(frozen=True)

    ref: str
    """How the answer cites it (``kb:12``)."""
    document_id: str
    """The document."""
    title: str
    """Its title."""
    version: int
    """The document version."""
    span: tuple[int, int]
    """Character span in that version's text."""
    relevance: float
    """Similarity to the query, 0 to 1."""
    cited: bool = False
    """Whether the answer drew on it."""
    text: str
    """The passage (untrusted: data for the person, as it was for the model)."""


class Handoff(BaseModel):
    """What a human receives when a run is escalated."""

    model_config = ConfigDict(frozen=True)

    reason: str
    """Why the run stopped, in one sentence."""
    summary: str
    """Objective and progress so far."""
    actions_taken: tuple[ActionTaken, ...] = ()
    """Every tool call made, in order."""
    pending_question: str | None = None
    """What the human should decide or answer."""
    confidence: float | None = None
    """The answer's confidence, when a low one is why the run stopped."""
    passages: tuple[HandoffPassage, ...] = ()
    """The knowledge-base passages retrieved, when a low confidence is why the run stopped."""


LOOP_WINDOW = 10
"""Tool calls looked back over when counting repeats of the same call."""


@dataclass(frozen=True, slots=True)
class BudgetBase:
    """Usage at the last hand-back: budgets count from here, so a person's hand-back gives the
    agent a fresh allowance instead of an immediate re-escalation."""

    model_calls: int = 0
    tool_calls: int = 0
    tokens: int = 0
    cost_usd: Decimal = Decimal(0)
    elapsed_s: float = 0.0


@dataclass(frozen=True, slots=True)
class Entry:
    """A journal entry in memory: kind and decoded payload."""

    seq: int
    kind: str
    payload: dict[str, Any]
    value: Any = None
    """The live object the payload was made from (a `ModelResponse`, a `ToolResult`), so
    applying an entry live does not re-validate what was just serialised. None on replay."""


@dataclass
class RunState:
    """Everything the runtime knows about a run. Only `apply` changes it."""

    run_id: str
    agent: str
    objective: str = ""
    status: RunStatus = RunStatus.QUEUED
    messages: list[Message] = field(default_factory=list)
    plan: str | None = None
    model_calls: int = 0
    tool_calls: int = 0
    retries: int = 0
    usage: Usage = field(default_factory=Usage)
    cost_usd: Decimal = Decimal(0)
    cost_unknown: bool = False
    elapsed_s: float = 0.0
    next_seq: int = 0
    last_step: int = -1
    pending: list[ToolCall] = field(default_factory=list)
    started: dict[str, dict[str, Any]] = field(default_factory=dict)
    approvals: dict[str, ApprovalDecision] = field(default_factory=dict)
    asked: dict[str, str] = field(default_factory=dict)
    awaiting_approval: list[str] = field(default_factory=list)
    approval_reasons: dict[str, Any] = field(default_factory=dict)
    """Why each held call is held (by call id), as the runtime recorded it."""
    loop_streak: dict[str, int] = field(default_factory=dict)
    actions: list[ActionTaken] = field(default_factory=list)
    answer: str | None = None
    output: str | None = None
    handoff: Handoff | None = None
    error: str | None = None
    principal: str | None = None
    tenant: str | None = None
    model_settings: dict[str, Any] = field(default_factory=dict)
    """Model settings the run's prompt version sets (over the agent's)."""
    grants: frozenset[str] = frozenset()
    recent_calls: list[tuple[str, str]] = field(default_factory=list)
    budget_base: BudgetBase = field(default_factory=lambda: BudgetBase())
    boundary: str = ""
    """The run's spotlight marker: untrusted content cannot guess it to close its block."""
    taint: list[str] = field(default_factory=list)
    """Untrusted content in context, by source (``input:email``, ``tool:fetch_page``)."""
    grounding: list[str] = field(default_factory=list)
    """Trusted and user text, where outbound argument values must be found."""
    vault: dict[str, VaultEntry] = field(default_factory=dict)
    """PII placeholders of this run and their encrypted originals."""
    injections: list[dict[str, Any]] = field(default_factory=list)
    """Untrusted content the injection screen flagged: source, score, signals."""
    thread: str | None = None
    """The thread (conversation) this run is a turn of."""
    thread_ready: bool = False
    """The thread context the run starts from is journaled (and in `messages`)."""
    input_index: int = 0
    """Where the run's own input is in `messages` (thread context goes before it)."""
    spotlit: bool = False
    """The system message carries the spotlight notice."""
    retrieved: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    """Knowledge search results, as (tool, data with ``passages`` and ``corpus_version``)."""
    answer_check: dict[str, Any] | None = None
    """The confidence check of the current answer (`bosun.knowledge.grounding`), once made."""
    handed_back: bool = False
    """A person handed the run back: their note, not the passages, grounds what follows."""
    prompt_version: str | None = None
    """The instructions' version: the registry's, else a digest of their text (a cache
    keyed on it forgets answers when the prompt changes)."""

    def apply(self, entry: Entry) -> None:
        """Fold one journal entry into the state."""
        handler = _HANDLERS.get(entry.kind)
        if handler is not None:
            handler(self, entry)
        self.next_seq = entry.seq + 1
        self.elapsed_s = float(entry.payload.get("t", self.elapsed_s))

    # --- handlers (one per entry kind) -----------------------------------------------------

    def _started(self, entry: Entry) -> None:
        p = entry.payload
        self.objective = p["input"]
        self.principal = p.get("principal")
        self.tenant = p.get("tenant")
        self.model_settings = p.get("model_settings") or {}
        self.grants = frozenset(p.get("grants", ()))
        self.boundary = p.get("boundary") or self.run_id[-8:]
        self.thread = p.get("thread")
        self.spotlit = bool(p.get("spotlight"))
        for flagged in (p.get("gateway") or {}).get("screening", ()):
            if flagged.get("verdict") == "injection":
                self.injections.append(flagged)
        self._add_vault(p.get("vault"))
        instructions = p.get("instructions") or ""
        prompt = p.get("prompt")
        if isinstance(prompt, dict) and prompt.get("version"):
            self.prompt_version = f"{prompt.get('name', '')}@{prompt['version']}"
        elif instructions:
            self.prompt_version = hashlib.sha256(instructions.encode()).hexdigest()[:16]
        system = instructions
        if p.get("spotlight"):
            notice = SPOTLIGHT_NOTICE.format(boundary=self.boundary)
            system = f"{system}\n\n{notice}" if system else notice
        if system:
            self.messages.append(SystemMessage(content=system))
        if instructions:
            self.grounding.append(instructions)
        parts = p.get("parts")
        if parts is None:
            self.grounding.append(p["input"])
            self.messages.append(UserMessage(content=p["input"]))
        else:
            rendered = []
            lowest = Trust.USER
            for part in parts:
                if Trust(part["trust"]) is Trust.UNTRUSTED:
                    source = part["source"]
                    rendered.append(spotlight(part["text"], source=source, boundary=self.boundary))
                    self.taint.append(f"input:{source}")
                    lowest = Trust.UNTRUSTED
                else:
                    rendered.append(part["text"])
                    self.grounding.append(part["text"])
            self.messages.append(UserMessage(content="\n\n".join(rendered), trust=lowest))
        self.input_index = len(self.messages) - 1
        self.status = RunStatus.RUNNING

    def _thread_context(self, entry: Entry) -> None:
        # The earlier turns go before the run's own input, keeping their labels: untrusted
        # parts are spotlighted and taint this run as they tainted theirs.
        p = entry.payload
        self.thread_ready = True
        self._add_vault(p.get("vault"))
        self._add_usage(p)
        view = thread_view(p, boundary=self.boundary)
        self.taint += view.taint
        self.grounding += view.grounding
        if view.taint and not self.spotlit:
            self._add_spotlight_notice()
        self.messages[self.input_index : self.input_index] = view.messages
        self.input_index += len(view.messages)

    def _add_spotlight_notice(self) -> None:
        notice = SPOTLIGHT_NOTICE.format(boundary=self.boundary)
        if self.messages and isinstance(self.messages[0], SystemMessage):
            system = self.messages[0].content
            self.messages[0] = SystemMessage(content=f"{system}\n\n{notice}")
        else:
            self.messages.insert(0, SystemMessage(content=notice))
            self.input_index += 1
        self.spotlit = True

    def _add_usage(self, p: dict[str, Any]) -> None:
        usage = p.get("usage")
        if usage is None:
            return
        self.usage = self.usage + Usage.model_validate(usage)
        if p.get("cost_usd") is None:
            self.cost_unknown = True
        else:
            self.cost_usd += Decimal(str(p["cost_usd"]))

    def _add_vault(self, entries: list[dict[str, Any]] | None) -> None:
        for item in entries or ():
            entry = VaultEntry.from_json(item)
            self.vault[entry.placeholder] = entry

    def _model_response(self, entry: Entry) -> None:
        p = entry.payload
        seq = entry.seq
        response = entry.value
        if not isinstance(response, ModelResponse):
            response = ModelResponse.model_validate(p["response"])
        self.model_calls += 1
        self.usage = self.usage + response.usage
        if response.cost_usd is None:
            self.cost_unknown = True
        else:
            self.cost_usd += response.cost_usd
        self.messages.append(response.as_message())
        self.pending = list(response.tool_calls)
        # A response without tool calls is the final answer, even if the process dies before
        # run_finished is written: resuming must finish with it, not ask the model again.
        self.answer = None if response.tool_calls else (response.text or "")
        self.answer_check = None
        self.last_step = seq
        for call in response.tool_calls:
            # Arguments are canonical JSON by the time they are journaled (driver), so the
            # signature ignores spacing; counting over a window also catches A/B/A/B cycles.
            signature = (call.name, call.arguments)
            self.recent_calls = [*self.recent_calls[-(LOOP_WINDOW - 1) :], signature]
            self.loop_streak[call.id] = self.recent_calls.count(signature)
        self.status = RunStatus.RUNNING

    def _model_error(self, entry: Entry) -> None:
        self.retries += 1
        # A wrapper's attempt that spent tokens (an answer a router rejected) is budgeted.
        self._add_usage(entry.payload)

    def _tool_started(self, entry: Entry) -> None:
        p = entry.payload
        self.started[p["call_id"]] = p

    def _tool_result(self, entry: Entry) -> None:
        p = entry.payload
        result = entry.value
        if not isinstance(result, ToolResult):
            result = ToolResult.model_validate(p["result"])
        self.started.pop(p["call_id"], None)
        self._add_vault(p.get("vault"))
        screening = p.get("screening")
        if screening is not None and screening.get("verdict") == "injection":
            self.injections.append({"source": f"tool:{p['tool']}", **screening})
        trust = Trust(p.get("trust", Trust.TRUSTED))
        self._record_result(p["call_id"], p["tool"], p.get("arguments", "{}"), result, trust=trust)

    def _record_result(
        self,
        call_id: str,
        tool: str,
        arguments: str,
        result: ToolResult,
        *,
        attempts: int = 1,
        trust: Trust = Trust.TRUSTED,
    ) -> None:
        self.tool_calls += 1 if attempts else 0
        self.retries += max(result.attempts - 1, 0)
        self.pending = [c for c in self.pending if c.id != call_id]
        content = result.for_model()
        if trust is Trust.UNTRUSTED:
            content = spotlight(content, source=f"tool:{tool}", boundary=self.boundary)
            self.taint.append(f"tool:{tool}")
        elif result.ok and trust is Trust.TRUSTED:
            # Only data a trusted tool returned grounds outbound values: never a refusal or
            # an error (they quote the rejected value), never the call's own arguments
            # echoed back (that would launder any value through a lookup), and never a
            # result the tool labelled ``user`` (a recalled memory was such arguments once).
            self.grounding.append(_without_arguments(content, arguments))
        self.messages.append(ToolMessage(call_id=call_id, name=tool, content=content, trust=trust))
        if result.ok and isinstance(result.data, dict) and "passages" in result.data:
            self.retrieved.append((tool, result.data))
        self.actions.append(
            ActionTaken(tool=tool, arguments=arguments, ok=result.ok, error_kind=result.error_kind)
        )

    def _human_requested(self, entry: Entry) -> None:
        p = entry.payload
        self.asked[p["call_id"]] = p["question"]
        self.status = RunStatus.WAITING_HUMAN
        self.handoff = Handoff.model_validate(p["handoff"])

    def _human_answer(self, entry: Entry) -> None:
        p = entry.payload
        call_id = p["call_id"]
        self.asked.pop(call_id, None)
        arguments = next((c.arguments for c in self.pending if c.id == call_id), "{}")
        answer = ToolResult.success({"answer": p["text"], "answered_by": p["by"]})
        self.grounding.append(p["text"])
        self._record_result(call_id, "ask_human", arguments, answer)
        self.handoff = None
        self.status = RunStatus.RUNNING

    def _approval_requested(self, entry: Entry) -> None:
        self.awaiting_approval = [c["id"] for c in entry.payload["calls"]]
        self.approval_reasons = dict(entry.payload.get("reasons") or {})
        self.status = RunStatus.WAITING_APPROVAL

    def _approval_decided(self, entry: Entry) -> None:
        p = entry.payload
        self.awaiting_approval = [c for c in self.awaiting_approval if c != p["call_id"]]
        self.approvals[p["call_id"]] = ApprovalDecision(
            approved=p["approved"],
            decided_by=p["decided_by"],
            reason=p.get("reason"),
            arguments=p.get("arguments"),
        )
        self.status = RunStatus.RUNNING

    def _plan(self, entry: Entry) -> None:
        p = entry.payload
        self.plan = p["plan"]
        self._add_usage(p)
        # The plan is model output derived from the user's text: it travels with the objective
        # at the same trust, never in the system message.
        message = self.messages[self.input_index]
        if isinstance(message, UserMessage):
            note = f"{message.content}\n\n[Plan drafted by the planning step]\n{self.plan}"
            self.messages[self.input_index] = message.model_copy(update={"content": note})

    def _human_note(self, entry: Entry) -> None:
        p = entry.payload
        # A person took the run over: calls left pending are not run (the note says what to
        # do instead), the loop window starts afresh and budgets count from here.
        for call in list(self.pending):
            if call.id in self.started:  # interrupted mid-call: it may have taken effect
                result = ToolResult.failure(
                    ErrorKind.OUTCOME_UNKNOWN,
                    f"interrupted mid-call; it may have taken effect. {p['by']} checked: see "
                    "their note, and do not repeat it unless the note says so",
                )
            else:
                result = ToolResult.failure(
                    ErrorKind.NOT_RUN,
                    f"not run: the run was handed back by {p['by']}; see the note",
                )
            self._record_result(call.id, call.name, call.arguments, result, attempts=0)
        self.started.clear()
        self.recent_calls = []
        self.grounding.append(p["text"])
        self.messages.append(
            UserMessage(content=f"[note from {p['by']}] {p['text']}", trust=Trust.TRUSTED)
        )
        self.budget_base = BudgetBase(
            model_calls=self.model_calls,
            tool_calls=self.tool_calls,
            tokens=self.usage.total_tokens,
            cost_usd=self.cost_usd,
            elapsed_s=float(p.get("t", self.elapsed_s)),
        )
        self.handoff = None
        self.answer = None
        self.answer_check = None
        self.handed_back = True
        self.status = RunStatus.RUNNING

    def _answer_check(self, entry: Entry) -> None:
        self.answer_check = entry.payload

    def _finished(self, entry: Entry) -> None:
        p = entry.payload
        self.status = RunStatus(p["status"])
        self.output = p.get("output")
        self.error = p.get("error")
        handoff = p.get("handoff")
        self.handoff = None if handoff is None else Handoff.model_validate(handoff)


def _without_arguments(content: str, arguments: str) -> str:
    try:
        values = json.loads(arguments)
    except ValueError:
        return content
    if not isinstance(values, dict):
        return content
    for value in values.values():
        if isinstance(value, str) and len(value) >= 3:
            escaped = json.dumps(value, ensure_ascii=False)[1:-1]
            content = content.replace(escaped, " ").replace(value, " ")
    return content


_HANDLERS = {
    "run_started": RunState._started,
    "model_response": RunState._model_response,
    "model_error": RunState._model_error,
    "tool_started": RunState._tool_started,
    "tool_result": RunState._tool_result,
    "approval_requested": RunState._approval_requested,
    "human_requested": RunState._human_requested,
    "human_answer": RunState._human_answer,
    "approval_decided": RunState._approval_decided,
    "plan": RunState._plan,
    "thread_context": RunState._thread_context,
    "human_note": RunState._human_note,
    "answer_check": RunState._answer_check,
    "run_finished": RunState._finished,
}
