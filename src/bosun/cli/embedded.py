"""``bosun serve`` with nothing configured: the reference agent on SQLite, its prompt in the
registry with its golden gate, and a login key for the dashboard.

The reference agent (``examples/support_desk``) lives in a clone of bosun's repository, not
in the installed package: it is found from the working directory or next to the ``src/``
that bosun was installed from (``pip install -e .``).
"""

from __future__ import annotations

import importlib
import json
import sys
import time
from pathlib import Path
from types import ModuleType

import typer

from bosun.config import PromptGate, Settings
from bosun.gateway.auth import NewApiKey
from bosun.prompts.registry import PromptRegistry
from bosun.service.compose import System

__all__ = [
    "ADMIN",
    "LOGIN_KEY_NAME",
    "REFERENCE",
    "login_key",
    "reference_settings",
    "sync_prompts",
]

REFERENCE = "examples.support_desk.agent:support_desk"
"""The agent `bosun serve` runs when none is configured."""
ADMIN = "admin"
"""The principal the printed login key belongs to (tenant ``default`` when created here)."""
LOGIN_KEY_NAME = "bosun serve login"
_LOGIN_KEY_DAYS = 1


def _reference_module() -> ModuleType:
    module_name = REFERENCE.partition(":")[0]
    clone = Path(__file__).resolve().parents[3]  # <clone>/src/bosun/cli/embedded.py
    for root in (Path.cwd(), clone):
        if (root / "examples" / "support_desk").is_dir() and str(root) not in sys.path:
            sys.path.insert(0, str(root))
    try:
        return importlib.import_module(module_name)
    except ImportError as exc:
        raise typer.BadParameter(
            "no agents to serve: pass --agent MODULE:AGENT or set agents in bosun.toml (the "
            "reference agent, examples/support_desk, comes with a clone of bosun's "
            f"repository: {exc})"
        ) from exc


def reference_settings(settings: Settings) -> tuple[Settings, Path]:
    """`settings` serving the reference agent, its golden dataset gating its prompt unless
    prompt gates are configured; and the folder of its prompt files."""
    module = _reference_module()
    prompts: Path = module.PROMPTS
    gates = dict(settings.service.prompt_gates)
    gates.setdefault(
        module.PROMPT_NAME,
        PromptGate(agent="support_desk", dataset=prompts.parent / "golden.yaml"),
    )
    service = settings.service.model_copy(update={"prompt_gates": gates})
    return settings.model_copy(update={"agents": (REFERENCE,), "service": service}), prompts


def sync_prompts(system: System, folder: Path) -> tuple[str, ...]:
    """Add the reference agent's prompt versions the registry lacks (for the console)."""
    return PromptRegistry(system.store).sync_from_dir(folder, by="bosun serve").created


def login_key(system: System) -> NewApiKey:
    """A fresh key of the ``admin`` principal (created on first use in tenant ``default``),
    valid for a day; the keys earlier starts printed are revoked, so only the newest logs in.
    Only its digest is stored: it is printed once."""
    keys = system.gateway.keys
    stored = system.store.keys.principal(ADMIN)
    tenant, roles = (
        ("default", ["admin"]) if stored is None else (stored.tenant, json.loads(stored.roles))
    )
    if "admin" not in roles:
        raise typer.BadParameter(
            f"principal {ADMIN!r} exists without the admin role ({roles}); log in with a key of "
            "your own, or pass --agent to serve without a login key"
        )
    for info in keys.list(tenant=tenant):
        if info.principal_id == ADMIN and info.name == LOGIN_KEY_NAME and info.revoked_at is None:
            keys.revoke(info.key_id)
    expires = time.time() + _LOGIN_KEY_DAYS * 86400
    return keys.create(ADMIN, tenant=tenant, roles=roles, name=LOGIN_KEY_NAME, expires_at=expires)
