"""Principals, roles, scopes and API keys: who is calling, and what they may do.

```
API key  --authenticate-->  Principal(id, tenant, roles, scopes)  --grants_for-->  run grants
bsn_<key id>_<secret>        roles resolved to scopes by `Roles`     the tool scopes it may hand
                                                                     to a run (checked per call
                                                                     by the tool pipeline)
```

Decisions a reader would otherwise have to reverse-engineer:

* **Scopes.** The built-in ones are `runs:submit`, `runs:read`, `approvals:decide`,
  `prompts:edit`, `kb:read`, `kb:write`, `metrics:read` and `admin`; every tool adds its own
  (``ToolPolicy.scope``, default ``tools:<name>``). A role may name a family with a trailing
  ``:*`` (``tools:*`` matches ``tools:send_email``, not ``toolsx:send_email``). `admin` implies
  every scope. A run carries concrete scopes only: `Principal.grants_for` expands wildcards
  against the agent's tools, so the pipeline's exact ``scope in grants`` check stays the only
  check at call time.
* **Roles are resolved at every authentication**, not stored as scopes: changing a role's
  definition in configuration changes what every key holding it may do, at once. A stored role
  the configuration no longer defines grants nothing (fail closed) and is logged.
* **Keys are hashed with SHA-256, not argon2/bcrypt.** Slow hashes protect *low-entropy*
  secrets (passwords) from offline guessing. A key's secret is 32 random bytes, so guessing a
  256-bit preimage is hopeless however fast the hash is, and a fast hash keeps authentication at
  one indexed lookup plus microseconds of CPU on every request. The digest covers the key id
  too, so a digest copied onto another row does not verify; with a server-side *pepper* it is
  an HMAC, and a stolen database alone cannot even check candidate keys. Changing the pepper
  invalidates every key.
* **No oracle.** A malformed key, an unknown key id and a wrong secret get the same message,
  and an unknown key id still pays for a digest comparison. Revoked, expired and disabled are
  told apart only to a caller who presented the right secret.
* **No cache.** Authentication reads the key row on every request (one primary-key lookup
  joined to its principal), so a revocation takes effect on every API process at once;
  `last_used_at` is written at most once per `touch_every_s` so requests do not each write.
* **Synchronous**, like `Store`: async callers use ``await asyncio.to_thread(keys.authenticate,
  key)`` (FastAPI runs plain ``def`` dependencies in its thread pool).
"""

from __future__ import annotations

import builtins
import hashlib
import hmac
import json
import logging
import re
import secrets
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from typing import Final, NamedTuple

from bosun.data.store import ApiKeyRow, PrincipalRow, Store
from bosun.errors import Forbidden, Unauthenticated, UserError

__all__ = [
    "ADMIN",
    "APPROVALS_DECIDE",
    "BUILTIN_SCOPES",
    "KB_READ",
    "KB_WRITE",
    "METRICS_READ",
    "PROMPTS_EDIT",
    "RUNS_READ",
    "RUNS_SUBMIT",
    "ApiKeyInfo",
    "ApiKeys",
    "NewApiKey",
    "Principal",
    "Role",
    "Roles",
]

logger = logging.getLogger(__name__)

RUNS_SUBMIT: Final = "runs:submit"
"""Start runs."""
RUNS_READ: Final = "runs:read"
"""Read runs, their journals and results (of the principal's own tenant)."""
APPROVALS_DECIDE: Final = "approvals:decide"
"""Approve, reject or edit a tool call held for a person; hand escalated runs back."""
PROMPTS_EDIT: Final = "prompts:edit"
"""Publish prompt versions and move their labels."""
KB_READ: Final = "kb:read"
"""Search the knowledge base (the principal's tenant's documents and the global ones)."""
KB_WRITE: Final = "kb:write"
"""Add and remove the principal's tenant's knowledge-base documents."""
METRICS_READ: Final = "metrics:read"
"""Scrape the service's Prometheus metrics (counts across every tenant)."""
ADMIN: Final = "admin"
"""Everything, every tool scope included: manage principals and keys."""
BUILTIN_SCOPES: Final = frozenset(
    {RUNS_SUBMIT, RUNS_READ, APPROVALS_DECIDE, PROMPTS_EDIT, KB_READ, KB_WRITE, METRICS_READ, ADMIN}
)
"""The scopes bosun itself checks; tools add their own."""

_KEY_PREFIX: Final = "bsn"
_KEY = re.compile(r"bsn_([0-9a-f]{16})_([A-Za-z0-9_-]{43})")
_MAX_KEY_CHARS: Final = 100  # a real key is 64; anything longer is refused unread
_INVALID: Final = "invalid API key"
# Sending no key is not an invalid key: the caller knows which it did, so saying so gives away
# nothing, and it is the mistake a person makes first.
_MISSING: Final = "no API key: send Authorization: Bearer bsn_..."
_NO_DIGEST: Final = "0" * 64
# A scope is colon-separated parts without spaces or '*'; a role may end one with ':*'.
_SCOPE = re.compile(r"[^\s*:]+(?::[^\s*:]+)*(?::\*)?")
_ROLE_NAME = re.compile(r"[a-z][a-z0-9_-]{0,63}")
_MAX_ID: Final = 200


def _matches(granted: str, wanted: str) -> bool:
    if granted == wanted:
        return True
    # 'tools:*' names the family 'tools:...'; the prefix keeps its colon, so 'toolsx:a' and
    # the bare 'tools' stay outside it.
    return (
        granted.endswith(":*") and len(wanted) >= len(granted) and wanted.startswith(granted[:-1])
    )


@dataclass(frozen=True, kw_only=True)
class Role:
    """A named set of scopes. A scope ending in ``:*`` covers its whole family."""

    name: str
    """Lower-case identifier stored with principals, e.g. ``reviewer``."""
    scopes: frozenset[str]
    """Scopes the role grants; `admin` implies all."""

    def __post_init__(self) -> None:
        if not _ROLE_NAME.fullmatch(self.name):
            raise UserError(
                f"role name {self.name!r} must be 1-64 characters: a lower-case letter, then "
                "letters, digits, '_' or '-'"
            )
        if not isinstance(self.scopes, frozenset):
            raise UserError(f"role {self.name!r}: scopes must be a frozenset of strings")
        bad = sorted(s for s in self.scopes if not (isinstance(s, str) and _SCOPE.fullmatch(s)))
        if bad:
            raise UserError(
                f"role {self.name!r} has invalid scopes {bad}: a scope is colon-separated parts "
                "without spaces or '*', optionally ending in ':*' (e.g. 'tools:*')"
            )

    def grants(self, scope: str) -> bool:
        """Whether this role alone grants `scope`."""
        return ADMIN in self.scopes or any(_matches(g, scope) for g in self.scopes)


class Roles:
    """The roles a deployment defines. Build once from configuration; immutable after."""

    def __init__(self, *, roles: Iterable[Role]) -> None:
        self._roles: dict[str, Role] = {}
        for role in roles:
            if role.name in self._roles:
                raise UserError(f"role {role.name!r} is defined twice")
            self._roles[role.name] = role

    @classmethod
    def builtin(cls, *, tool_scopes: Collection[str] = (), extra: Iterable[Role] = ()) -> Roles:
        """bosun's roles, plus `extra`. `tool_scopes` (wildcards allowed) go to ``submitter``:
        which tools a submitted run may use is a deployment's decision, so by default none.

        ==============  ===============================================
        viewer          runs:read, kb:read
        submitter       runs:submit, runs:read, kb:read, + `tool_scopes`
        reviewer        runs:read, approvals:decide, kb:read
        prompt_editor   runs:read, prompts:edit
        kb_editor       kb:read, kb:write
        monitor         metrics:read
        admin           admin (every scope, every tool)
        ==============  ===============================================
        """
        builtin = [
            Role(name="viewer", scopes=frozenset({RUNS_READ, KB_READ})),
            Role(
                name="submitter", scopes=frozenset({RUNS_SUBMIT, RUNS_READ, KB_READ, *tool_scopes})
            ),
            Role(name="reviewer", scopes=frozenset({RUNS_READ, APPROVALS_DECIDE, KB_READ})),
            Role(name="prompt_editor", scopes=frozenset({RUNS_READ, PROMPTS_EDIT})),
            Role(name="kb_editor", scopes=frozenset({KB_READ, KB_WRITE})),
            Role(name="monitor", scopes=frozenset({METRICS_READ})),
            Role(name="admin", scopes=frozenset({ADMIN})),
        ]
        return cls(roles=[*builtin, *extra])

    @property
    def names(self) -> tuple[str, ...]:
        """Every role name, sorted."""
        return tuple(sorted(self._roles))

    def __contains__(self, name: object) -> bool:
        return name in self._roles

    def get(self, name: str) -> Role:
        """The role called `name`; `UserError` when none is defined."""
        role = self._roles.get(name)
        if role is None:
            raise UserError(f"unknown role {name!r}; defined roles: {', '.join(self.names)}")
        return role

    def scopes_for(self, names: Iterable[str]) -> frozenset[str]:
        """The union of the roles' scopes; `UserError` for an undefined role."""
        return frozenset().union(*(self.get(n).scopes for n in names))

    def principal(self, *, id: str, tenant: str, roles: Iterable[str]) -> Principal:
        """A principal holding `roles`, with its scopes resolved."""
        names = tuple(roles)
        return Principal(id=id, tenant=tenant, roles=names, scopes=self.scopes_for(names))


@dataclass(frozen=True, kw_only=True)
class Principal:
    """An authenticated caller: who, in which tenant, allowed what."""

    id: str
    """Stable identifier; recorded as the principal of the runs it starts."""
    tenant: str
    """The tenant whose runs it sees; its runs are stored under it."""
    roles: tuple[str, ...] = ()
    """Role names, as stored."""
    scopes: frozenset[str] = frozenset()
    """Resolved from the roles at authentication (may hold ``family:*`` wildcards)."""
    key_id: str | None = None
    """The API key it authenticated with, for the audit log."""

    def has(self, scope: str) -> bool:
        """Whether the principal holds `scope` (exactly, by a wildcard, or as admin)."""
        if scope in self.scopes or ADMIN in self.scopes:
            return True
        return any(_matches(g, scope) for g in self.scopes)

    def require(self, scope: str) -> None:
        """Raise `Forbidden` unless the principal holds `scope`."""
        if not self.has(scope):
            roles = ", ".join(self.roles) or "none"
            raise Forbidden(
                f"principal {self.id!r} lacks scope {scope!r} (roles: {roles}); "
                "ask an admin for a role that grants it"
            )

    def grants_for(self, tool_scopes: Collection[str]) -> frozenset[str]:
        """The scopes among `tool_scopes` (typically ``agent.scopes``) this principal may give a
        run. A run carries only these, so a tool outside them answers UNAUTHORIZED."""
        return frozenset(s for s in tool_scopes if self.has(s))

    def can_see(self, tenant: str | None) -> bool:
        """Whether a run stored under `tenant` is visible to this principal. Runs without a
        tenant (started locally, not through the gateway) are visible to no principal."""
        return tenant is not None and tenant == self.tenant


class NewApiKey(NamedTuple):
    """A freshly created key. `key` is shown once: only its digest is stored."""

    key_id: str
    """Public identifier, for listing and revoking."""
    key: str
    """The full key, ``bsn_<key_id>_<secret>``, to hand to the caller."""


@dataclass(frozen=True, kw_only=True)
class ApiKeyInfo:
    """What may be shown about a key: never its secret or digest."""

    key_id: str
    """Public identifier."""
    principal_id: str
    """Whose key it is."""
    tenant: str
    """The principal's tenant."""
    roles: tuple[str, ...]
    """The principal's roles."""
    name: str | None
    """A label given at creation, e.g. ``ci-bot``."""
    created_at: float
    """Unix time."""
    expires_at: float | None
    """Unix time after which it no longer authenticates; None for never."""
    revoked_at: float | None
    """Unix time of revocation; None while active."""
    last_used_at: float | None
    """Unix time of the last authentication (updated at most once per `touch_every_s`)."""


class ApiKeys:
    """Create, authenticate, list and revoke API keys over bosun's store."""

    def __init__(
        self,
        store: Store,
        *,
        roles: Roles,
        pepper: bytes | None = None,
        clock: Callable[[], float] = time.time,
        touch_every_s: float = 60.0,
    ) -> None:
        self._store = store
        self._roles = roles
        self._pepper = pepper or None
        self._clock = clock
        self._touch_every_s = touch_every_s

    @property
    def roles(self) -> Roles:
        """The roles keys are resolved against."""
        return self._roles

    def _digest(self, key_id: str, secret: str) -> str:
        message = f"{key_id}:{secret}".encode()
        if self._pepper is None:
            return hashlib.sha256(message).hexdigest()
        return hmac.new(self._pepper, message, hashlib.sha256).hexdigest()

    def create(
        self,
        principal_id: str,
        *,
        tenant: str,
        roles: Iterable[str],
        expires_at: float | None = None,
        name: str | None = None,
    ) -> NewApiKey:
        """A new key for `principal_id`, creating the principal on its first key.

        A principal lives in one tenant and its roles are its own, not the key's: for an
        existing principal `tenant` and `roles` must match what is stored. `expires_at` is Unix
        time. Returns the full key, which cannot be recovered later.
        """
        role_names = tuple(dict.fromkeys(roles))
        self._check_new(principal_id, tenant, role_names, expires_at, name)
        now = self._clock()
        existing = self._store.keys.principal(principal_id)
        principal: PrincipalRow | None = None
        if existing is None:
            principal = PrincipalRow(
                id=principal_id, tenant=tenant, roles=json.dumps(role_names), created_at=now
            )
        elif existing.tenant != tenant or tuple(json.loads(existing.roles)) != role_names:
            raise UserError(
                f"principal {principal_id!r} exists in tenant {existing.tenant!r} with roles "
                f"{json.loads(existing.roles)}: pass those, or change its roles with set_roles"
            )
        key_id = secrets.token_hex(8)
        secret = secrets.token_urlsafe(32)
        row = ApiKeyRow(
            key_id=key_id,
            principal_id=principal_id,
            hash=self._digest(key_id, secret),
            name=name,
            created_at=now,
            expires_at=expires_at,
        )
        self._store.keys.add(row, principal=principal)
        return NewApiKey(key_id=key_id, key=f"{_KEY_PREFIX}_{key_id}_{secret}")

    def _check_new(
        self,
        principal_id: str,
        tenant: str,
        roles: tuple[str, ...],
        expires_at: float | None,
        name: str | None,
    ) -> None:
        for label, value in (("principal id", principal_id), ("tenant", tenant)):
            if not 0 < len(value) <= _MAX_ID:
                raise UserError(f"{label} must be 1 to {_MAX_ID} characters, got {len(value)}")
        if name is not None and len(name) > _MAX_ID:
            raise UserError(f"key name must be at most {_MAX_ID} characters")
        if not roles:
            raise UserError("a principal needs at least one role")
        self._roles.scopes_for(roles)  # raises for an undefined role
        if expires_at is not None and expires_at <= self._clock():
            raise UserError("expires_at is in the past: a key must expire in the future")

    def authenticate(self, key: str | None) -> Principal:
        """The principal behind `key`; `Unauthenticated` for anything but a valid, active key.

        No key (None or empty) says so; a malformed key, an unknown key id and a wrong secret
        are refused alike.
        """
        if key is None or key == "":
            raise Unauthenticated(_MISSING)
        match = _KEY.fullmatch(key) if isinstance(key, str) and len(key) <= _MAX_KEY_CHARS else None
        if match is None:
            raise Unauthenticated(_INVALID)
        key_id, secret = match.groups()
        found = self._store.keys.find(key_id)
        stored = found[0].hash if found is not None else _NO_DIGEST
        # Compared even when the key id is unknown, so timing does not tell the two apart.
        if not hmac.compare_digest(self._digest(key_id, secret), stored) or found is None:
            raise Unauthenticated(_INVALID)
        row, principal = found
        return self._active(row, principal)

    def resume(self, key_id: str) -> Principal:
        """The principal of key `key_id` for a session its full key opened earlier (a
        dashboard login), checked as `authenticate` checks it on every request: a revoked or
        expired key or a disabled principal is refused, so revoking the key ends the session
        at its next request."""
        found = self._store.keys.find(key_id) if isinstance(key_id, str) else None
        if found is None:
            raise Unauthenticated("the session's API key no longer exists")
        return self._active(*found)

    def _active(self, row: ApiKeyRow, principal: PrincipalRow) -> Principal:
        now = self._clock()
        if row.revoked_at is not None:
            raise Unauthenticated("this API key was revoked")
        if row.expires_at is not None and row.expires_at <= now:
            raise Unauthenticated("this API key has expired")
        if principal.disabled:
            raise Unauthenticated("this API key's principal is disabled")
        if row.last_used_at is None or now - row.last_used_at >= self._touch_every_s:
            self._store.keys.touch(row.key_id, at=now)
        return self._resolve(principal, row.key_id)

    def _resolve(self, row: PrincipalRow, key_id: str) -> Principal:
        names = tuple(json.loads(row.roles))
        known = tuple(n for n in names if n in self._roles)
        if len(known) != len(names):
            logger.warning(
                "principal %s holds roles %s that are not configured; they grant nothing",
                row.id,
                sorted(set(names) - set(known)),
            )
        return Principal(
            id=row.id,
            tenant=row.tenant,
            roles=names,
            scopes=self._roles.scopes_for(known),
            key_id=key_id,
        )

    def revoke(self, key_id: str) -> None:
        """Stop the key from authenticating, on every process at once. `UserError` when there
        is no such key; revoking twice keeps the first time."""
        if not self._store.keys.revoke(key_id, at=self._clock()):
            raise UserError(f"no API key with id {key_id!r}")

    def list(self, tenant: str | None = None) -> builtins.list[ApiKeyInfo]:
        """Keys (of one tenant), oldest first, without secrets or digests."""
        return [
            ApiKeyInfo(
                key_id=key.key_id,
                principal_id=key.principal_id,
                tenant=principal.tenant,
                roles=tuple(json.loads(principal.roles)),
                name=key.name,
                created_at=key.created_at,
                expires_at=key.expires_at,
                revoked_at=key.revoked_at,
                last_used_at=key.last_used_at,
            )
            for key, principal in self._store.keys.list(tenant=tenant)
        ]

    def set_roles(self, principal_id: str, roles: Iterable[str]) -> None:
        """Replace a principal's roles; its keys carry the new scopes from their next request."""
        names = tuple(dict.fromkeys(roles))
        if not names:
            raise UserError("a principal needs at least one role")
        self._roles.scopes_for(names)
        if not self._store.keys.update_principal(principal_id, roles=json.dumps(names)):
            raise UserError(f"no principal {principal_id!r}")

    def disable(self, principal_id: str) -> None:
        """Refuse every key of the principal (keys stay listed; `enable` undoes it)."""
        if not self._store.keys.update_principal(principal_id, disabled=True):
            raise UserError(f"no principal {principal_id!r}")

    def enable(self, principal_id: str) -> None:
        """Let a disabled principal's unrevoked, unexpired keys authenticate again."""
        if not self._store.keys.update_principal(principal_id, disabled=False):
            raise UserError(f"no principal {principal_id!r}")
