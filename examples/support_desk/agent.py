"""The support desk agent: instructions, tools, budget, critic and taint policy in one place.

```python
from examples.support_desk import build_agent, seed

seed("helpdesk.db")
agent = build_agent("helpdesk.db")                        # the scripted policy model
agent = build_agent("helpdesk.db", model="openai:gpt-4.1-mini")     # or a real one
```

`support_desk` is a module-level agent (built on first access) for ``bosun serve/run/eval --agent
examples.support_desk.agent:support_desk``: its helpdesk lives in ``$BOSUN_HOME/
support_desk.db`` (seeded on first use) and its model is ``BOSUN_MODEL`` when set, else the
scripted policy.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import yaml

import bosun
from bosun.knowledge import KnowledgeBase
from bosun.memory.knowledge import KnowledgeTool
from bosun.runtime.agent import InstructionSource
from bosun.runtime.critic import Rule
from examples.support_desk.helpdesk import Helpdesk, HelpdeskError, seed
from examples.support_desk.knowledge import CONFIDENCE
from examples.support_desk.policy import scripted_policy_model
from examples.support_desk.tools import support_tools

__all__ = [
    "PROMPTS",
    "PROMPT_NAME",
    "TAINT_POLICY",
    "build_agent",
    "high_value_rule",
    "prompt_text",
]

PROMPTS = Path(__file__).with_name("prompts")
"""The agent's prompt versions, as files for bosun's prompt registry (``bosun prompts sync``)."""
PROMPT_NAME = "support_desk"


def prompt_text(version: str = "1.0.0") -> str:
    """The instructions of a prompt version, read from its file (for running the agent
    without a registry)."""
    for document in yaml.safe_load_all((PROMPTS / f"{PROMPT_NAME}.yaml").read_text("utf-8")):
        if document and document["version"] == version:
            return str(document["template"])
    raise KeyError(f"{PROMPT_NAME} has no version {version} in {PROMPTS}")


TAINT_POLICY = bosun.TaintPolicy(
    write="allow",
    irreversible="approve",
    ungrounded_outbound="refuse",
    on_injection="withhold",
)
"""Once an email is in context: the helpdesk's own writes (tickets, notes, drafts) go
through; replies and refunds (irreversible) wait for a person; a recipient or IBAN that
no trusted text gave is refused; a tool result flagged as an injection is withheld."""


def build_agent(
    db_path: str | Path,
    *,
    model: str | bosun.Model | None = None,
    instructions: str | InstructionSource | None = None,
    knowledge: KnowledgeBase | None = None,
) -> bosun.Agent:
    """The support desk agent over the helpdesk at `db_path` (created if missing, not
    seeded: see `seed`). `model` defaults to the scripted policy model; `instructions` to
    the prompt file's text (pass a `bosun.prompts.registry.PromptSource` to follow the
    registry's ``production`` label). With `knowledge` (`knowledge.load_knowledge`) the
    agent also has ``search_knowledge``, and its answers drawn from it are checked for
    confidence (`knowledge.CONFIDENCE`)."""
    desk = Helpdesk(db_path)
    extra = () if knowledge is None else (KnowledgeTool(knowledge).tool(),)
    return bosun.Agent(
        name="support_desk",
        instructions=instructions if instructions is not None else prompt_text(),
        tools=[*support_tools(desk), *extra],
        model=model if model is not None else scripted_policy_model(),
        budget=bosun.Budget(max_steps=12, max_tool_calls=14, max_wall_s=120.0),
        critic=bosun.RuleCritic([high_value_rule(desk)]),
        ask_human=True,
        taint_policy=TAINT_POLICY,
        confidence=None if knowledge is None else CONFIDENCE,
    )


def high_value_rule(desk: Helpdesk) -> Rule:
    """A reply to a high-value customer needs a person. In a run that read outside content
    the taint policy already holds every reply for approval, so the rule has nothing to add;
    in a run with no outside content (an operator's own request) it escalates the reply with
    the reason, as a critic cannot hold a call for approval."""

    async def rule(call: bosun.ToolCall, state: bosun.RunState) -> bosun.Verdict | None:
        if call.name != "send_reply" or state.taint:
            return None
        try:
            ticket = str(json.loads(call.arguments).get("ticket_id", ""))
            customer = await asyncio.to_thread(_ticket_customer, desk, ticket)
        except (ValueError, AttributeError, HelpdeskError):
            return None  # not a call the tool would run: the pipeline explains why
        if customer is not None and customer["high_value"]:
            return bosun.Verdict.escalate(
                f"{customer['account_id']} is a high-value customer: a person approves "
                "every reply to them"
            )
        return None

    return rule


def _ticket_customer(desk: Helpdesk, ticket: str) -> dict[str, object] | None:
    row = desk.ticket(ticket)
    account = None if row is None else row["account_id"]
    return None if account is None else desk.customer(account_id=account)


_default: bosun.Agent | None = None


def __getattr__(name: str) -> bosun.Agent:
    # ``support_desk`` is built on first access, not at import: importing this module must
    # not create files (the data directory is only known once settings are read).
    global _default
    if name != "support_desk":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if _default is None:
        settings = bosun.load_settings()
        path = settings.home / "support_desk.db"
        seed(path)
        _default = build_agent(path, model=settings.model)
    return _default
