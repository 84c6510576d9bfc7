"""Deterministic doubles for tests and offline demos, shipped in the package."""

from bosun.testing.scripted import Fault, ScriptedModel, call, calls, reply

__all__ = ["Fault", "ScriptedModel", "call", "calls", "reply"]
