"""The runtime plane: agents, explicit run state, the journaled loop, budgets, critic."""

from bosun.runtime.agent import Agent, ModelPolicy
from bosun.runtime.budget import Budget
from bosun.runtime.critic import Critic, RuleCritic, Verdict
from bosun.runtime.planner import ModelPlanner, Plan, Planner
from bosun.runtime.runtime import RunResult, Runtime
from bosun.runtime.state import ActionTaken, Handoff, RunState, RunStatus
from bosun.runtime.taint import TaintPolicy
from bosun.trust import Content

__all__ = [
    "ActionTaken",
    "Agent",
    "Budget",
    "Content",
    "Critic",
    "Handoff",
    "ModelPlanner",
    "ModelPolicy",
    "Plan",
    "Planner",
    "RuleCritic",
    "RunResult",
    "RunState",
    "RunStatus",
    "Runtime",
    "TaintPolicy",
    "Verdict",
]
