"""`Router`: one `Model` over tiers, picking a tier per call and promoting when a check fails.

```
request (context.purpose, context.promote)
  -> rule by purpose (summarise, classify -> cheap; plan, answer -> balanced; ...)
  -> classifier, if any, for the agent's loop (a learned router: `bosun.economy.learned`)
  -> one tier up when the previous step failed a critic, guardrail or argument check
  -> the tier's model (a fallback chain) answers
  -> checks (valid tool calls, output schema, confidence): a failure is a rejected attempt,
     and the next tier up is asked, until the top tier's answer is taken as it is
  -> response.route = (tier, why); response.attempts = every failed or rejected attempt
```

A rejected answer was paid for: it is reported as an `Attempt` with its usage and price, and
the runtime journals and budgets it. If a higher tier then fails outright, the rejected
answer is returned after all (with the reason in its route) rather than failing the run:
it is the best answer there is, and the failure is journaled beside it.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import jsonschema

from bosun.economy.tiers import Tiers
from bosun.errors import ModelError, ModelsExhausted, UserError
from bosun.models.base import Model, ModelRequest, ModelResponse, UserMessage
from bosun.models.context import Attempt, CallContext, Purpose, Route

__all__ = [
    "DEFAULT_RULES",
    "Check",
    "Router",
    "TierClassifier",
    "TierDecision",
    "low_confidence",
    "output_schema",
    "valid_tool_calls",
]

DEFAULT_RULES: Mapping[Purpose, str] = {
    Purpose.SUMMARISE: "cheap",
    Purpose.CLASSIFY: "cheap",
    Purpose.PLAN: "balanced",
    Purpose.ANSWER: "balanced",
    Purpose.TOOL_FOLLOWUP: "balanced",
}
"""Rules by step when none are given (for tiers named cheap / balanced / premium)."""

Check = Callable[[ModelRequest, ModelResponse], "str | None"]
"""A check of an answer: why it is not good enough (the router promotes), or None."""


@dataclass(frozen=True, slots=True)
class TierDecision:
    """A classifier's choice of tier for a request."""

    tier: str
    """The tier."""
    confidence: float
    """The classifier's probability for it."""
    label: str = ""
    """What it recognised (an intent), for the trace."""


class TierClassifier(Protocol):
    """Picks the tier a request needs from its text (a learned router)."""

    def classify(self, text: str) -> TierDecision | None:
        """The tier for `text`, or None to leave the rules' choice."""
        ...


class Router(Model):
    """Tiers behind one model interface (see the module doc)."""

    def __init__(
        self,
        tiers: Tiers,
        *,
        rules: Mapping[Purpose, str] | None = None,
        default: str | None = None,
        checks: Sequence[Check] = (),
        classifier: TierClassifier | None = None,
    ) -> None:
        """`rules` map a call's purpose to a tier (default `DEFAULT_RULES`); `default` is
        the tier of calls whose purpose is unknown (default: the rule for answers); `checks`
        run on every answer below the top tier; `classifier` picks the tier of the agent's
        loop calls from the run's input."""
        self.tiers = tiers
        self.rules = dict(DEFAULT_RULES if rules is None else rules)
        self.default = default or self.rules.get(Purpose.ANSWER) or tiers.names[-1]
        for tier in [*self.rules.values(), self.default]:
            if tier not in tiers:
                raise UserError(
                    f"routing rules name tier {tier!r}, but the tiers are {list(tiers.names)}: "
                    "name tiers cheap/balanced/premium or pass rules=..."
                )
        self.checks = tuple(checks)
        self.classifier = classifier
        self.name = "router(" + ", ".join(f"{n}={tiers[n].name}" for n in tiers) + ")"
        self._classified: dict[str, TierDecision | None] = {}

    async def request(self, request: ModelRequest) -> ModelResponse:
        context = request.context or CallContext()
        tier, reason = self.choose(request, context)
        attempts: list[Attempt] = []
        best: tuple[ModelResponse, str, str] | None = None
        while True:
            sub = request.model_copy(update={"context": context.model_copy(update={"tier": tier})})
            t0 = time.monotonic()
            try:
                response = await self.tiers[tier].request(sub)
            except ModelError as exc:
                if best is None:
                    raise
                attempts += _failed(exc, tier)
                response, tier, reason = best
                reason = f"{reason}; promotion failed ({exc.kind}), keeping this answer"
                break
            up = self.tiers.above(tier)
            problem = self._problem(request, response) if up is not None else None
            if problem is None:
                break
            attempts += [*response.attempts, _rejected(response, tier, problem, t0)]
            best = (response.model_copy(update={"attempts": ()}), tier, reason)
            assert up is not None
            tier, reason = up, f"promoted after {tier}: {problem}"
        inner = response.route  # a cache below the router says it answered, and why
        if inner is not None and inner.source != "model":
            route = Route(tier=tier, reason=f"{reason}; {inner.reason}", source=inner.source)
        else:
            route = Route(tier=tier, reason=reason)
        return response.model_copy(
            update={"attempts": (*attempts, *response.attempts), "route": route}
        )

    def choose(self, request: ModelRequest, context: CallContext) -> tuple[str, str]:
        """The tier a call starts at, and why."""
        purpose = context.purpose
        if purpose is None:
            tier, reason = self.default, "default tier"
        else:
            tier = self.rules.get(purpose, self.default)
            reason = f"rule: {purpose.value} -> {tier}"
        if self.classifier is not None and purpose in (Purpose.ANSWER, Purpose.TOOL_FOLLOWUP):
            decision = self._classify(request)
            if decision is not None and decision.tier in self.tiers:
                tier = decision.tier
                what = f" {decision.label}" if decision.label else ""
                reason = f"classifier:{what} -> {tier} (p={decision.confidence:.2f})"
        if context.promote and (up := self.tiers.above(tier)) is not None:
            tier, reason = up, f"{reason}; promoted: {context.promote}"
        return tier, reason

    def _classify(self, request: ModelRequest) -> TierDecision | None:
        assert self.classifier is not None
        # The run's own input decides the run's tier, so every call of the run agrees.
        text = next((m.content for m in request.messages if isinstance(m, UserMessage)), "")
        if text not in self._classified:
            if len(self._classified) >= 4096:
                self._classified.clear()
            self._classified[text] = self.classifier.classify(text)
        return self._classified[text]

    def _problem(self, request: ModelRequest, response: ModelResponse) -> str | None:
        for check in self.checks:
            problem = check(request, response)
            if problem is not None:
                return problem
        return None


def _rejected(response: ModelResponse, tier: str, problem: str, t0: float) -> Attempt:
    return Attempt(
        model=response.model,
        kind="rejected",
        message=problem[:500],
        tier=tier,
        latency_ms=(time.monotonic() - t0) * 1000,
        input_tokens=response.usage.input_tokens,
        output_tokens=response.usage.output_tokens,
        cost_usd=response.cost_usd,
    )


def _failed(exc: ModelError, tier: str) -> list[Attempt]:
    failures = exc.failures if isinstance(exc, ModelsExhausted) and exc.failures else (exc,)
    return [
        Attempt(model=f.model or "?", kind=f.kind, message=str(f)[:500], tier=tier)
        for f in failures
    ]


# --- checks -------------------------------------------------------------------------------------


def valid_tool_calls(request: ModelRequest, response: ModelResponse) -> str | None:
    """Every proposed call names an offered tool, with arguments its schema accepts."""
    tools = {t.name: t for t in request.tools}
    for call in response.tool_calls:
        tool = tools.get(call.name)
        if tool is None:
            return f"proposed unknown tool {call.name!r}"
        try:
            arguments = json.loads(call.arguments or "{}")
        except ValueError:
            return f"arguments of {call.name} are not JSON"
        if not isinstance(arguments, dict):
            return f"arguments of {call.name} are not an object"
        error = jsonschema.exceptions.best_match(
            jsonschema.Draft202012Validator(tool.parameters).iter_errors(arguments)
        )
        if error is not None:
            return f"arguments of {call.name} do not fit its schema: {error.message[:200]}"
    return None


_FENCE = re.compile(r"```(?:json)?\s*\n(.*?)\n?```", re.DOTALL)


def output_schema(schema: Mapping[str, object]) -> Check:
    """A final answer (no tool calls) must be JSON (bare or fenced) that fits `schema`."""
    validator = jsonschema.Draft202012Validator(dict(schema))

    def check(request: ModelRequest, response: ModelResponse) -> str | None:
        if response.tool_calls:
            return None
        text = (response.text or "").strip()
        fenced = _FENCE.search(text)
        try:
            value = json.loads(fenced.group(1) if fenced else text)
        except ValueError:
            return "the answer is not JSON"
        error = jsonschema.exceptions.best_match(validator.iter_errors(value))
        return None if error is None else f"the answer does not fit the schema: {error.message}"

    return check


_HEDGES = (
    "i'm not sure",
    "i am not sure",
    "i don't know",
    "i do not know",
    "i cannot determine",
    "unclear",
    "it depends",
    "i think",
    "possibly",
    "might be",
)


def hedging(response: ModelResponse) -> float:
    """A crude confidence from the answer's wording: 1.0, less 0.3 per hedge; 0 when empty.
    Providers that return log-probabilities allow better scorers."""
    if response.tool_calls:
        return 1.0
    text = (response.text or "").casefold()
    if not text.strip():
        return 0.0
    return max(0.0, 1.0 - 0.3 * sum(h in text for h in _HEDGES))


def low_confidence(
    threshold: float = 0.5, scorer: Callable[[ModelResponse], float] = hedging
) -> Check:
    """Promote when `scorer` rates the answer below `threshold`."""

    def check(request: ModelRequest, response: ModelResponse) -> str | None:
        score = scorer(response)
        return f"low confidence ({score:.2f} < {threshold})" if score < threshold else None

    return check
