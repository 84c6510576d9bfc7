"""One agent calls another as a tool, with typed input; scopes never widen on the way down.

```python
lookup = agent_tool(research_agent, input=Question)       # a Tool: add it to another agent
```

A call starts a child run of the agent (an ordinary, journaled run whose parent is the
calling run and call, so it joins that trace and audit trail) and returns its final answer:

- grants: the calling run's grants intersected with the child agent's scopes, never more;
- its input is the arguments as one `Content` part, labelled untrusted when the calling run
  is tainted (the arguments may carry what untrusted content put there), else user;
- its answer comes back labelled untrusted when the child run saw untrusted content, so the
  calling run is tainted by it and cannot use it to ground outbound values;
- the child run's idempotency key is the call's (run, step, call), so a replayed call after
  a crash resumes the same child run instead of starting another.

A child that does not complete (escalated, failed) fails the call, with its reason.
"""

from __future__ import annotations

import inspect
from typing import Any

from pydantic import BaseModel

from bosun.errors import PermanentToolError, UserError
from bosun.runtime.agent import Agent
from bosun.runtime.runtime import Runtime
from bosun.runtime.state import RunStatus
from bosun.tools.base import Risk, ToolContext
from bosun.tools.decorator import Tool, tool
from bosun.trust import Content, Trust

__all__ = ["agent_tool", "bind_agent_tools"]

_RISK = {Risk.READ: 0, Risk.WRITE: 1, Risk.IRREVERSIBLE: 2}


class _Binding:
    """The runtime an agent tool runs its child in, bound when its caller is registered."""

    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self.runtime: Runtime | None = None


def agent_tool(
    agent: Agent,
    *,
    input: type[BaseModel],
    name: str | None = None,
    description: str | None = None,
    scope: str | None = None,
) -> Tool[..., Any]:
    """`agent` as a tool taking `input`'s fields. Its policy follows the agent's tools: a
    side effect if any of them has one, at their highest risk; idempotent (a replay resumes
    the same child run). `scope` defaults to ``agents:<name>``."""
    binding = _Binding(agent)

    async def call_agent(ctx: ToolContext, **arguments: Any) -> Content:
        runtime = binding.runtime
        if runtime is None:
            raise UserError(
                f"agent tool {agent.name!r} is not bound to a runtime: register the agent "
                "that uses it through Pipelines, or call bind_agent_tools(runtime, agent)"
            )
        return await _call(runtime, agent, input, ctx, arguments)

    fields = input.model_fields
    params = [inspect.Parameter("ctx", inspect.Parameter.KEYWORD_ONLY, annotation=ToolContext)]
    for field_name, info in fields.items():
        default = inspect.Parameter.empty if info.is_required() else info.get_default()
        params.append(
            inspect.Parameter(
                field_name,
                inspect.Parameter.KEYWORD_ONLY,
                annotation=info.annotation,
                default=default,
            )
        )
    call_agent.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    call_agent.__annotations__ = {
        "ctx": ToolContext,
        **{n: f.annotation for n, f in fields.items()},
    }
    call_agent.__doc__ = description or f"Ask the {agent.name} agent."
    tools = agent.tools
    risk = max((t.policy.risk for t in tools), key=_RISK.__getitem__, default=Risk.READ)
    made = tool(
        name=name or agent.name.replace(".", "_").replace(":", "_")[:64],
        description=description or f"Ask the {agent.name} agent.",
        scope=scope or f"agents:{agent.name}",
        side_effect=any(t.policy.side_effect for t in tools),
        risk=risk,
        idempotent=True,
        retry=None,
    )(call_agent)
    made.agent_binding = binding  # type: ignore[attr-defined]
    return made


async def _call(
    runtime: Runtime,
    agent: Agent,
    model: type[BaseModel],
    ctx: ToolContext,
    arguments: dict[str, Any],
) -> Content:
    parent = await runtime.state(ctx.run_id)
    value = model.model_validate(arguments)
    label = Trust.UNTRUSTED if parent.taint else Trust.USER
    child = await runtime.start(
        agent,
        [Content(text=value.model_dump_json(), trust=label, source=f"agent:{parent.agent}"[:64])],
        # Never wider on the way down: what the caller holds, among what the child declares.
        grants=sorted(parent.grants & agent.scopes),
        principal=parent.principal,
        tenant=parent.tenant,
        idempotency_key=f"tool:{ctx.idempotency_key}",
        queued=False,
        parent=ctx.run_id,
        parent_call=ctx.call_id,
    )
    result = await runtime.resume(child)
    if result.status is not RunStatus.COMPLETED:
        reason = result.handoff.reason if result.handoff is not None else result.error
        raise PermanentToolError(
            f"the {agent.name} agent did not answer ({result.status.value}): {reason}",
            tool=agent.name,
        )
    state = await runtime.state(child)
    trust = Trust.UNTRUSTED if state.taint else Trust.USER
    return Content(text=result.output or "", trust=trust, source=f"agent:{agent.name}"[:64])


def bind_agent_tools(runtime: Runtime, agent: Agent, _seen: set[str] | None = None) -> None:
    """Bind the agent tools of `agent` (and of the agents they call) to `runtime`, and
    register their agents with it."""
    seen = _seen if _seen is not None else set()
    if agent.name in seen:
        return
    seen.add(agent.name)
    for candidate in agent.tools:
        binding = getattr(candidate, "agent_binding", None)
        if isinstance(binding, _Binding):
            binding.runtime = runtime
            runtime.register(binding.agent)
            bind_agent_tools(runtime, binding.agent, seen)
