"""The tool plane: every action an agent can take, typed, permissioned and protected.

Write a tool with `tool`, run calls through a `ToolExecutor`:

```python
@tool(scope="crm:write", side_effect=True, credential="CRM_TOKEN", rate_limit="5/second")
async def create_ticket(subject: str, ctx: ToolContext, token: Secret) -> Ticket:
    ...

executor = ToolExecutor([create_ticket], secrets=EnvSecrets())
result = await executor.execute(Invocation(call=call, ctx=ctx, grants=frozenset({"crm:write"})))
```
"""

from bosun.tools.base import (
    ApprovalDecision,
    ApprovalRequired,
    BreakerPolicy,
    ErrorKind,
    Reconciliation,
    RetryPolicy,
    Risk,
    ToolContext,
    ToolOutput,
    ToolPolicy,
    ToolResult,
    idempotency_key,
)
from bosun.tools.decorator import Tool, tool
from bosun.tools.pipeline import Invocation, ToolExecutor
from bosun.tools.secrets import EnvSecrets, MappingSecrets, Secret, SecretsProvider

__all__ = [
    "ApprovalDecision",
    "ApprovalRequired",
    "BreakerPolicy",
    "EnvSecrets",
    "ErrorKind",
    "Invocation",
    "MappingSecrets",
    "Reconciliation",
    "RetryPolicy",
    "Risk",
    "Secret",
    "SecretsProvider",
    "Tool",
    "ToolContext",
    "ToolExecutor",
    "ToolOutput",
    "ToolPolicy",
    "ToolResult",
    "idempotency_key",
    "tool",
]
