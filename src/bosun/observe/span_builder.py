"""Folding a run's journal entries, in order, into spans (see `bosun.observe.tracing`): one
handler per entry kind, on the bookkeeping of `bosun.observe.span_book`."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from bosun.data.store import StepRow
from bosun.observe.span_book import OpenWait, SpanBook, named
from bosun.observe.spans import AttributeValue, SpanEvent

__all__ = ["SpanBuilder", "payload_of"]


def payload_of(text: str | None) -> dict[str, Any]:
    """A journal entry's payload as a dict (empty when it is not one)."""
    try:
        value = json.loads(text) if text is not None else None
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


class SpanBuilder(SpanBook):
    """Folds journal entries, in order, into spans."""

    def add(self, step: StepRow, p: dict[str, Any]) -> None:
        handler = _HANDLERS.get(step.kind)
        if handler is not None:
            handler(self, step, p)
        else:  # a kind this version does not know: kept as an instant on the run
            self.root_events.append(SpanEvent(step.kind, step.created_at, {"bosun.seq": step.seq}))
        self.last = max(self.last, step.created_at)

    def _run_started(self, step: StepRow, p: dict[str, Any]) -> None:
        self.start = self.last = step.created_at
        prompt = p.get("prompt")
        if isinstance(prompt, Mapping):
            for key in ("name", "version", "label"):
                if isinstance(prompt.get(key), str):
                    self.prompt[f"bosun.prompt.{key}"] = prompt[key]
        if isinstance(p.get("conversation"), str):
            self.root_attributes["gen_ai.conversation.id"] = p["conversation"]
        gateway = p.get("gateway")
        findings = gateway.get("screening", ()) if isinstance(gateway, Mapping) else ()
        for i, finding in enumerate(findings):
            if not isinstance(finding, Mapping):
                continue
            attrs = _screening(finding)
            attrs["bosun.guardrail.source"] = str(finding.get("source", "input"))
            attrs["bosun.guardrail.action"] = "untrust" if finding.get("relabelled") else "flag"
            self._instant(f"guardrail:{step.seq}:{i}", "guardrail injection_screen", step, attrs)

    def _plan(self, step: StepRow, p: dict[str, Any]) -> None:
        attrs: dict[str, AttributeValue] = {
            "gen_ai.operation.name": "plan",
            "gen_ai.agent.name": self.agent,
            **self._usage(step),
            **self._attempt(),
        }
        self._span(f"seq:{step.seq}", f"plan {self.agent}", self.last, step.created_at, attrs)

    def _thread_context(self, step: StepRow, p: dict[str, Any]) -> None:
        summary = _dict(p.get("summary"))
        attrs: dict[str, AttributeValue] = {
            "bosun.thread.id": str(p.get("thread", "")),
            "bosun.thread.window_turns": len(p.get("window") or ()),
            "bosun.thread.summary_version": int(summary.get("version") or 0),
        }
        if step.model is None:  # no fold: the context was read, no model was asked
            self.root_attributes.update(attrs)
            return
        attrs.update({"gen_ai.operation.name": "chat", "gen_ai.request.model": step.model})
        attrs.update(self._usage(step))
        self._span(f"seq:{step.seq}", "summarize thread", self.last, step.created_at, attrs)

    def _model_response(self, step: StepRow, p: dict[str, Any]) -> None:
        response = _dict(p.get("response"))
        model = step.model or str(response.get("model") or "")
        attrs: dict[str, AttributeValue] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": model,
            "gen_ai.response.model": model,
            **self._usage(step),
            **self._attempt(),
            **self.prompt,
        }
        route = _dict(response.get("route"))
        if route:  # a router or cache chose: which tier answered, and why
            attrs["bosun.route.tier"] = str(route.get("tier") or "")
            attrs["bosun.route.reason"] = str(route.get("reason") or "")
            attrs["bosun.route.source"] = str(route.get("source") or "model")
        if response.get("provider"):
            attrs["gen_ai.provider.name"] = str(response["provider"])
        if response.get("finish_reason"):
            attrs["gen_ai.response.finish_reasons"] = (str(response["finish_reason"]),)
        for call in response.get("tool_calls") or ():
            if isinstance(call, Mapping):
                self.tool_names[str(call.get("id"))] = str(call.get("name"))
        self.totals["model_calls"] += 1
        start = step.created_at - (step.latency_ms or 0.0) / 1000
        self._span(f"seq:{step.seq}", named("chat", model), start, step.created_at, attrs, "client")

    def _model_error(self, step: StepRow, p: dict[str, Any]) -> None:
        self.failures += 1
        self.totals["retries"] += 1
        kind = str(p.get("kind") or step.status or "error")
        attrs: dict[str, AttributeValue] = {
            "gen_ai.operation.name": "chat",
            "error.type": kind,
            "bosun.attempt": int(p.get("attempt") or self.failures),
            **self.prompt,
        }
        if step.model:
            attrs["gen_ai.request.model"] = step.model
        if p.get("tier"):  # an attempt a router or fallback chain made in this tier
            attrs["bosun.route.tier"] = str(p["tier"])
        if step.input_tokens or step.output_tokens:  # a rejected answer was paid for
            attrs.update(self._usage(step))
        start = step.created_at - (step.latency_ms or 0.0) / 1000
        span = self._span(
            f"seq:{step.seq}", named("chat", step.model), start, step.created_at, attrs, "client"
        )
        self._fail(span, str(p.get("message") or kind))

    def _tool_started(self, step: StepRow, p: dict[str, Any]) -> None:
        self.started[str(p.get("call_id"))] = step.created_at

    def _tool_result(self, step: StepRow, p: dict[str, Any]) -> None:
        call_id = str(p.get("call_id"))
        tool = str(p.get("tool") or step.tool or "")
        result = _dict(p.get("result"))
        attempts = int(result.get("attempts", 1) or 0)
        status = step.status or ("ok" if result.get("ok") else "failed")
        attrs: dict[str, AttributeValue] = {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": tool,
            "gen_ai.tool.call.id": call_id,
            "gen_ai.tool.type": "function",
            "bosun.tool.status": status,
            "bosun.tool.attempts": attempts,
            "bosun.retries": max(attempts - 1, 0),
        }
        if p.get("edited"):
            attrs["bosun.tool.edited"] = True
        if p.get("trust"):
            attrs["bosun.tool.trust"] = str(p["trust"])
        data = result.get("data")
        if isinstance(data, Mapping) and isinstance(data.get("corpus_version"), int):
            attrs["bosun.kb.corpus_version"] = data["corpus_version"]
        self.totals["tool_calls"] += 1 if attempts else 0
        self.totals["retries"] += max(attempts - 1, 0)
        start = self.started.pop(call_id, None)
        if start is None:
            start = step.created_at - (step.latency_ms or 0.0) / 1000
        span = self._span(
            f"tool:{call_id}", named("execute_tool", tool), start, step.created_at, attrs
        )
        if status != "ok":
            span.attributes["error.type"] = status
            self._fail(span, str(result.get("guidance") or status))
        guard = _GUARDS.get(status)
        if guard is not None:
            name, action = guard
            self._instant(
                f"guardrail:{step.seq}",
                f"guardrail {name}",
                step,
                {"bosun.guardrail.action": action, "bosun.guardrail.reason": span.message or ""},
                parent=span.span_id,
            )
        screening = p.get("screening")
        if isinstance(screening, Mapping):
            attrs = _screening(screening)
            attrs["bosun.guardrail.source"] = f"tool:{tool}"
            self._instant(
                f"screen:{step.seq}",
                "guardrail injection_screen",
                step,
                attrs,
                parent=span.span_id,
            )

    def _answer_check(self, step: StepRow, p: dict[str, Any]) -> None:
        attrs: dict[str, AttributeValue] = {
            "bosun.operation": "answer_check",
            "bosun.answer.confidence": float(p.get("confidence") or 0.0),
            "bosun.answer.threshold": float(p.get("threshold") or 0.0),
            "bosun.answer.escalated": bool(p.get("escalated")),
            "bosun.answer.citations": tuple(
                str(c.get("ref")) for c in p.get("citations") or () if isinstance(c, Mapping)
            ),
        }
        if isinstance(p.get("corpus_version"), int):
            attrs["bosun.kb.corpus_version"] = p["corpus_version"]
            # On the run itself too: "which corpus was this answer drawn from" is one lookup.
            self.root_attributes["bosun.kb.corpus_version"] = p["corpus_version"]
        self._instant(f"answer_check:{step.seq}", "answer_check", step, attrs)

    def _approval_requested(self, step: StepRow, p: dict[str, Any]) -> None:
        reasons = _dict(p.get("reasons"))
        for call in p.get("calls") or ():
            if not isinstance(call, Mapping):
                continue
            call_id = str(call.get("id"))
            tool = str(call.get("name") or self.tool_names.get(call_id, ""))
            self.approvals[call_id] = OpenWait(
                key=f"approval:{call_id}",
                name=named("await_approval", tool),
                start=step.created_at,
                attributes={
                    "bosun.operation": "await_approval",
                    "gen_ai.tool.name": tool,
                    "gen_ai.tool.call.id": call_id,
                    "bosun.approval.reason": str(reasons.get(call_id, "")),
                },
            )

    def _approval_decided(self, step: StepRow, p: dict[str, Any]) -> None:
        wait = self.approvals.pop(str(p.get("call_id")), None)
        if wait is None:
            return
        wait.attributes["bosun.approval.approved"] = bool(p.get("approved"))
        wait.attributes["bosun.approval.decided_by"] = str(p.get("decided_by"))
        if p.get("reason"):
            wait.attributes["bosun.approval.decision_reason"] = str(p["reason"])
        if p.get("arguments") is not None:
            wait.attributes["bosun.approval.edited"] = True
        self._close(wait, step.created_at)

    def _approval_timeout(self, step: StepRow, p: dict[str, Any]) -> None:
        event = SpanEvent("approval_timeout", step.created_at, _deadline(p))
        for wait in self.approvals.values():
            wait.events.append(event)

    def _human_requested(self, step: StepRow, p: dict[str, Any]) -> None:
        self.human = OpenWait(
            key=f"human:{step.seq}",
            name="await_human",
            start=step.created_at,
            attributes={
                "bosun.operation": "await_human",
                "bosun.human.reason": "the agent asked a person",
                "bosun.human.question": str(p.get("question", "")),
                "gen_ai.tool.name": "ask_human",
                "gen_ai.tool.call.id": str(p.get("call_id")),
            },
        )

    def _human_answer(self, step: StepRow, p: dict[str, Any]) -> None:
        self._handed_back(step, p, "answer")

    def _human_note(self, step: StepRow, p: dict[str, Any]) -> None:
        self._handed_back(step, p, "note")

    def _handed_back(self, step: StepRow, p: dict[str, Any], how: str) -> None:
        if self.human is None:
            return
        self.human.attributes["bosun.human.answered_by"] = str(p.get("by"))
        self.human.attributes["bosun.human.handed_back_with"] = how
        self._close(self.human, step.created_at)
        self.human = None

    def _escalation_timeout(self, step: StepRow, p: dict[str, Any]) -> None:
        if self.human is not None:
            self.human.events.append(SpanEvent("escalation_timeout", step.created_at, _deadline(p)))

    def _run_finished(self, step: StepRow, p: dict[str, Any]) -> None:
        status = str(p.get("status") or step.status)
        if status == "escalated":
            handoff = _dict(p.get("handoff"))
            self.human = OpenWait(
                key=f"human:{step.seq}",
                name="await_human",
                start=step.created_at,
                attributes={
                    "bosun.operation": "await_human",
                    "bosun.human.reason": str(handoff.get("reason", "")),
                    "bosun.human.question": str(handoff.get("pending_question") or ""),
                },
            )
            self.root_events.append(
                SpanEvent(
                    "escalated", step.created_at, {"bosun.reason": str(handoff.get("reason"))}
                )
            )
            return
        # Terminal: a person closing a parked run ends its waits without an answer.
        for wait in [*self.approvals.values(), *([self.human] if self.human else [])]:
            wait.attributes["bosun.wait.outcome"] = status
            self._close(wait, step.created_at)
        self.approvals, self.human = {}, None
        self.end = step.created_at
        self.error = str(p.get("error") or "") if status == "failed" else None

    def output_guardrail(self, row: Mapping[str, Any]) -> None:
        try:
            payload = json.loads(row["payload"])
        except (TypeError, ValueError):
            payload = {}
        reasons = payload.get("reasons") if isinstance(payload, dict) else None
        attrs: dict[str, AttributeValue] = {
            "bosun.operation": "guardrail",
            "bosun.guardrail.name": "output",
            "bosun.guardrail.action": str(payload.get("action", "")),
            "bosun.guardrail.reasons": tuple(str(r) for r in reasons or ()),
        }
        if row.get("actor"):
            attrs["bosun.guardrail.reader"] = str(row["actor"])
        t = float(row["created_at"])
        self._span(f"audit:{row['id']}", "guardrail output", t, t, attrs)


_HANDLERS: dict[str, Callable[[SpanBuilder, StepRow, dict[str, Any]], None]] = {
    "run_started": SpanBuilder._run_started,
    "plan": SpanBuilder._plan,
    "thread_context": SpanBuilder._thread_context,
    "model_response": SpanBuilder._model_response,
    "model_error": SpanBuilder._model_error,
    "tool_started": SpanBuilder._tool_started,
    "tool_result": SpanBuilder._tool_result,
    "approval_requested": SpanBuilder._approval_requested,
    "approval_decided": SpanBuilder._approval_decided,
    "approval_timeout": SpanBuilder._approval_timeout,
    "human_requested": SpanBuilder._human_requested,
    "human_answer": SpanBuilder._human_answer,
    "human_note": SpanBuilder._human_note,
    "answer_check": SpanBuilder._answer_check,
    "escalation_timeout": SpanBuilder._escalation_timeout,
    "run_finished": SpanBuilder._run_finished,
}
"""One handler per journal entry kind."""

_GUARDS = {
    "blocked_by_policy": ("taint_policy", "refuse"),
    "denied_by_critic": ("critic", "deny"),
}
"""Tool results that are a guardrail's refusal: the guardrail and what it did."""


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _screening(finding: Mapping[str, Any]) -> dict[str, AttributeValue]:
    attrs: dict[str, AttributeValue] = {"bosun.guardrail.verdict": str(finding.get("verdict"))}
    if isinstance(finding.get("score"), int | float):
        attrs["bosun.guardrail.score"] = float(finding["score"])
    signals = finding.get("signals")
    if isinstance(signals, list):
        attrs["bosun.guardrail.signals"] = tuple(str(s) for s in signals)
    return attrs


def _deadline(p: Mapping[str, Any]) -> dict[str, AttributeValue]:
    return {"bosun.policy": str(p.get("policy", "")), "bosun.level": int(p.get("level") or 0)}
