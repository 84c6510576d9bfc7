"""The public API is curated: additions and removals are deliberate."""

from __future__ import annotations

import subprocess
import sys

import bosun


def test_exported_members() -> None:
    assert bosun.__all__ == sorted(bosun.__all__)
    assert bosun.__all__ == [
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
    for name in bosun.__all__:
        assert getattr(bosun, name) is not None


def test_importing_bosun_does_not_load_provider_sdks() -> None:
    code = (
        "import sys, bosun; print(sorted(m for m in ('openai', 'anthropic') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
