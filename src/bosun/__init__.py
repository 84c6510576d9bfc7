"""bosun runs AI agents in production.

```python
import bosun

@bosun.tool(scope="crm:read")
def lookup_customer(email: str) -> dict[str, str]:
    "Find a customer by email."
    ...

agent = bosun.Agent(name="support", instructions="...", tools=[lookup_customer],
                    model="openai:gpt-4.1-mini")
async with bosun.Runtime() as runtime:
    result = await runtime.run(agent, "Where is my order?")
```
"""

from bosun import errors
from bosun.config import Settings, load_settings
from bosun.data.store import Store
from bosun.memory import LongTermMemory, MemoryPolicy, ThreadMemory
from bosun.models.base import Model, ModelRequest, ModelResponse, ModelSettings, ToolCall, Usage
from bosun.runtime.agent import Agent, ModelPolicy
from bosun.runtime.budget import Budget
from bosun.runtime.critic import Critic, RuleCritic, Verdict
from bosun.runtime.planner import ModelPlanner, Planner
from bosun.runtime.runtime import RunResult, Runtime
from bosun.runtime.state import Handoff, RunState, RunStatus
from bosun.runtime.taint import TaintPolicy
from bosun.tools.base import (
    ApprovalDecision,
    BreakerPolicy,
    ErrorKind,
    Reconciliation,
    RetryPolicy,
    Risk,
    ToolContext,
    ToolOutput,
    ToolPolicy,
    ToolResult,
)
from bosun.tools.decorator import Tool, tool
from bosun.tools.secrets import EnvSecrets, MappingSecrets, Secret, SecretsProvider
from bosun.trust import Content, Trust

__version__ = "0.1.0"

__all__ = [
    "Agent",
    "ApprovalDecision",
    "BreakerPolicy",
    "Budget",
    "Content",
    "Critic",
    "EnvSecrets",
    "ErrorKind",
    "Handoff",
    "LongTermMemory",
    "MappingSecrets",
    "MemoryPolicy",
    "Model",
    "ModelPlanner",
    "ModelPolicy",
    "ModelRequest",
    "ModelResponse",
    "ModelSettings",
    "Planner",
    "Reconciliation",
    "RetryPolicy",
    "Risk",
    "RuleCritic",
    "RunResult",
    "RunState",
    "RunStatus",
    "Runtime",
    "Secret",
    "SecretsProvider",
    "Settings",
    "Store",
    "TaintPolicy",
    "ThreadMemory",
    "Tool",
    "ToolCall",
    "ToolContext",
    "ToolOutput",
    "ToolPolicy",
    "ToolResult",
    "Trust",
    "Usage",
    "Verdict",
    "__version__",
    "errors",
    "load_settings",
    "tool",
]
