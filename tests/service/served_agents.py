"""Agents importable by `bosun serve --agent served_agents:helper` in the command tests."""

from __future__ import annotations

from api_harness import agents

helper = agents()[0]
