"""API keys on SQLite and PostgreSQL: lifecycle, hashing at rest, no oracle, roles, tenancy,
and the upgrade of a database created before principals existed."""

from __future__ import annotations

import dataclasses
import hashlib
from contextlib import closing
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from bosun.data import migrations
from bosun.data.store import ApiKeyRow, PrincipalRow, Store
from bosun.errors import Forbidden, StoreError, Unauthenticated, UserError
from bosun.gateway.auth import (
    ADMIN,
    APPROVALS_DECIDE,
    KB_READ,
    RUNS_READ,
    RUNS_SUBMIT,
    ApiKeys,
    Principal,
    Role,
    Roles,
)

ROLES = Roles.builtin(tool_scopes=["tools:lookup_customer"])
T0 = 1_700_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def keys(store: Store, clock: Clock) -> ApiKeys:
    return ApiKeys(store, roles=ROLES, clock=clock)


def secret_of(full_key: str) -> str:
    return full_key.split("_", 2)[2]


# --- lifecycle -----------------------------------------------------------------------------------


def test_create_authenticate_revoke(keys: ApiKeys) -> None:
    key_id, key = keys.create("alice", tenant="acme", roles=["submitter"], name="laptop")

    principal = keys.authenticate(key)

    assert principal == Principal(
        id="alice",
        tenant="acme",
        roles=("submitter",),
        scopes=frozenset({RUNS_SUBMIT, RUNS_READ, KB_READ, "tools:lookup_customer"}),
        key_id=key_id,
    )
    assert key.startswith(f"bsn_{key_id}_") and len(secret_of(key)) >= 43  # 32 random bytes

    keys.revoke(key_id)
    with pytest.raises(Unauthenticated, match="revoked"):
        keys.authenticate(key)
    keys.revoke(key_id)  # twice is fine
    with pytest.raises(UserError, match="no API key"):
        keys.revoke("0123456789abcdef")


def test_revocation_reaches_another_process_at_once(store: Store, keys: ApiKeys) -> None:
    # Another API process: its own store connection and its own ApiKeys, no shared memory.
    with closing(Store.open(store.engine.url.render_as_string(hide_password=False))) as other:
        theirs = ApiKeys(other, roles=ROLES)
        key_id, key = keys.create("alice", tenant="acme", roles=["viewer"])
        assert theirs.authenticate(key).id == "alice"
        keys.revoke(key_id)
        with pytest.raises(Unauthenticated):
            theirs.authenticate(key)


def test_expired_key_is_refused(keys: ApiKeys, clock: Clock) -> None:
    _, key = keys.create("alice", tenant="acme", roles=["viewer"], expires_at=T0 + 60)
    assert keys.authenticate(key).id == "alice"

    clock.now = T0 + 60
    with pytest.raises(Unauthenticated, match="expired"):
        keys.authenticate(key)
    with pytest.raises(UserError, match="past"):
        keys.create("bob", tenant="acme", roles=["viewer"], expires_at=T0)


def test_disabled_principal_is_refused_until_enabled(keys: ApiKeys) -> None:
    _, key = keys.create("alice", tenant="acme", roles=["viewer"])
    keys.disable("alice")
    with pytest.raises(Unauthenticated, match="disabled"):
        keys.authenticate(key)
    keys.enable("alice")
    assert keys.authenticate(key).id == "alice"


def test_a_session_resumed_by_key_id_is_checked_like_the_key(keys: ApiKeys, clock: Clock) -> None:
    # A dashboard session carries only the key id; each request resumes it and must be
    # refused exactly when the key itself would be.
    key_id, _ = keys.create("alice", tenant="acme", roles=["reviewer"], expires_at=T0 + 60)
    resumed = keys.resume(key_id)
    assert (resumed.id, resumed.tenant, resumed.key_id) == ("alice", "acme", key_id)
    assert resumed.has(APPROVALS_DECIDE)
    keys.set_roles("alice", ["viewer"])
    assert not keys.resume(key_id).has(APPROVALS_DECIDE)  # roles resolved at every request
    keys.disable("alice")
    with pytest.raises(Unauthenticated, match="disabled"):
        keys.resume(key_id)
    keys.enable("alice")
    clock.now = T0 + 60
    with pytest.raises(Unauthenticated, match="expired"):
        keys.resume(key_id)
    other, _ = keys.create("bob", tenant="acme", roles=["viewer"])
    keys.revoke(other)
    with pytest.raises(Unauthenticated, match="revoked"):
        keys.resume(other)
    with pytest.raises(Unauthenticated, match="no longer exists"):
        keys.resume("0123456789abcdef")


def test_role_changes_apply_to_existing_keys(keys: ApiKeys) -> None:
    _, key = keys.create("alice", tenant="acme", roles=["viewer"])
    assert not keys.authenticate(key).has(APPROVALS_DECIDE)

    keys.set_roles("alice", ["reviewer"])

    principal = keys.authenticate(key)
    assert principal.roles == ("reviewer",)
    assert principal.has(APPROVALS_DECIDE)
    with pytest.raises(UserError, match="unknown role"):
        keys.set_roles("alice", ["superuser"])
    with pytest.raises(UserError, match="no principal"):
        keys.set_roles("mallory", ["viewer"])


def test_a_stored_role_no_longer_configured_grants_nothing(store: Store) -> None:
    custom = Roles(roles=[Role(name="ops", scopes=frozenset({ADMIN})), *builtin_roles()])
    _, key = ApiKeys(store, roles=custom).create("alice", tenant="acme", roles=["ops", "viewer"])

    principal = ApiKeys(store, roles=ROLES).authenticate(key)  # "ops" was dropped from config

    assert principal.roles == ("ops", "viewer")
    assert principal.scopes == frozenset({RUNS_READ, KB_READ})
    assert not principal.has("tools:anything")


def builtin_roles() -> list[Role]:
    return [ROLES.get(name) for name in ROLES.names]


def test_a_principal_keeps_its_tenant_and_roles_across_keys(keys: ApiKeys) -> None:
    first = keys.create("alice", tenant="acme", roles=["viewer"])
    second = keys.create("alice", tenant="acme", roles=["viewer"])

    assert keys.authenticate(first.key).id == keys.authenticate(second.key).id == "alice"
    with pytest.raises(UserError, match="tenant 'acme'"):
        keys.create("alice", tenant="globex", roles=["viewer"])
    with pytest.raises(UserError, match="set_roles"):
        keys.create("alice", tenant="acme", roles=["admin"])


@pytest.mark.parametrize(
    ("principal_id", "tenant", "roles", "problem"),
    [
        ("", "acme", ["viewer"], "principal id"),
        ("a" * 201, "acme", ["viewer"], "principal id"),
        ("alice", "", ["viewer"], "tenant"),
        ("alice", "acme", [], "at least one role"),
        ("alice", "acme", ["root"], "unknown role"),
    ],
)
def test_create_refuses_bad_input(
    keys: ApiKeys, principal_id: str, tenant: str, roles: list[str], problem: str
) -> None:
    with pytest.raises(UserError, match=problem):
        keys.create(principal_id, tenant=tenant, roles=roles)
    assert keys.list() == []


def test_last_used_is_written_at_most_once_per_interval(keys: ApiKeys, clock: Clock) -> None:
    _, key = keys.create("alice", tenant="acme", roles=["viewer"])
    assert keys.list()[0].last_used_at is None

    keys.authenticate(key)
    clock.now = T0 + 59
    keys.authenticate(key)
    assert keys.list()[0].last_used_at == T0

    clock.now = T0 + 60
    keys.authenticate(key)
    assert keys.list()[0].last_used_at == T0 + 60


# --- refusing anything else, the same way --------------------------------------------------------


def test_unknown_key_and_wrong_secret_are_indistinguishable(keys: ApiKeys) -> None:
    key_id, key = keys.create("alice", tenant="acme", roles=["viewer"])
    secret = secret_of(key)
    wrong_secret = f"bsn_{key_id}_{'A' * len(secret)}"
    unknown_id = f"bsn_{'0' * 16}_{secret}"

    messages = set()
    for attempt in (wrong_secret, unknown_id, "garbage"):
        with pytest.raises(Unauthenticated) as refused:
            keys.authenticate(attempt)
        messages.add(str(refused.value))
    assert messages == {"invalid API key"}


def test_no_key_at_all_says_so_and_how_to_send_one(keys: ApiKeys) -> None:
    # Not "invalid API key": the caller sent none, and telling them reveals nothing.
    for missing in ("", None):
        with pytest.raises(Unauthenticated) as refused:
            keys.authenticate(missing)
        assert str(refused.value) == "no API key: send Authorization: Bearer bsn_..."


MALFORMED = [
    " ",
    "bsn_",
    "bsn__",
    "bsn_0123456789abcdef_",
    "Bearer bsn_0123456789abcdef_" + "a" * 43,
    "bsn_0123456789ABCDEF_" + "a" * 43,  # key ids are lower-case hex
    "bsn_0123456789abcdef_" + "a" * 42,
    "bsn_0123456789abcdef_" + "a" * 44,
    "bsn_0123456789abcdef_" + "a" * 42 + "=",
    "bsn_0123456789abcdef_" + "a" * 42 + "\n",
    "bsn_0123456789abcdef_" + "a" * 42 + "\x00",
    "bsn_０１２３４５６７８９abcdef_" + "a" * 43,  # full-width digits
    "bsn_0123456789abcdef_" + "é" * 43,
    "bsn_0123456789abcdef_" + "\ud800" * 43,  # lone surrogates
    "bsn_' OR '1'='1_" + "a" * 43,
    "x" * 10_000_000,
    "bsn_0123456789abcdef_" + "a" * 43 + "a" * 1_000_000,
]


@pytest.mark.parametrize("key", MALFORMED, ids=range(len(MALFORMED)))
def test_malformed_keys_are_unauthenticated_never_a_crash(keys: ApiKeys, key: str) -> None:
    keys.create("alice", tenant="acme", roles=["admin"])
    with pytest.raises(Unauthenticated, match="^invalid API key$"):
        keys.authenticate(key)


@pytest.mark.parametrize("key", [None, b"bsn_0123456789abcdef_" + b"a" * 43, 42])
def test_keys_of_the_wrong_type_are_unauthenticated(keys: ApiKeys, key: object) -> None:
    with pytest.raises(Unauthenticated):
        keys.authenticate(key)  # type: ignore[arg-type]


# --- at rest -------------------------------------------------------------------------------------


def everything_stored(store: Store) -> str:
    inspector = sa.inspect(store.engine)
    with store.engine.connect() as conn:
        rows = [
            repr(row)
            for table in inspector.get_table_names()
            for row in conn.execute(sa.text(f"SELECT * FROM {table}")).all()
        ]
    return "\n".join(rows)


def test_only_a_digest_of_the_secret_is_stored(store: Store, keys: ApiKeys) -> None:
    key_id, key = keys.create("alice", tenant="acme", roles=["viewer"], name="ci")
    secret = secret_of(key)
    keys.authenticate(key)

    stored = everything_stored(store)
    assert key_id in stored  # the dump does see the key's row
    assert secret not in stored
    assert secret[:16] not in stored
    if store.dialect == "sqlite":
        database = Path(store.engine.url.database or "")
        raw = b"".join(p.read_bytes() for p in database.parent.glob(database.name + "*"))
        assert key_id.encode() in raw
        assert secret.encode() not in raw


def test_a_pepper_makes_the_digest_useless_without_it(store: Store) -> None:
    peppered = ApiKeys(store, roles=ROLES, pepper=b"server-side pepper")
    key_id, key = peppered.create("alice", tenant="acme", roles=["viewer"])
    plain = hashlib.sha256(f"{key_id}:{secret_of(key)}".encode()).hexdigest()

    assert plain not in everything_stored(store)
    assert peppered.authenticate(key).id == "alice"
    with pytest.raises(Unauthenticated, match="^invalid API key$"):
        ApiKeys(store, roles=ROLES).authenticate(key)
    with pytest.raises(Unauthenticated, match="^invalid API key$"):
        ApiKeys(store, roles=ROLES, pepper=b"another pepper").authenticate(key)


def test_a_digest_copied_to_another_key_does_not_verify(store: Store, keys: ApiKeys) -> None:
    # An attacker who can write one row cannot reuse a known key's digest for another key id.
    mine_id, mine = keys.create("mallory", tenant="acme", roles=["viewer"])
    admin_id, _ = keys.create("root", tenant="acme", roles=["admin"])
    with store.engine.begin() as conn:
        digest = conn.execute(
            sa.text("SELECT hash FROM api_keys WHERE key_id = :k"), {"k": mine_id}
        ).scalar_one()
        conn.execute(
            sa.text("UPDATE api_keys SET hash = :h WHERE key_id = :k"), {"h": digest, "k": admin_id}
        )

    with pytest.raises(Unauthenticated):
        keys.authenticate(f"bsn_{admin_id}_{secret_of(mine)}")


def test_listing_never_shows_secrets_or_digests(store: Store, keys: ApiKeys, clock: Clock) -> None:
    _, alice_key = keys.create("alice", tenant="acme", roles=["viewer"], name="laptop")
    clock.now += 1
    keys.create("bob", tenant="globex", roles=["reviewer"])
    with store.engine.connect() as conn:
        digests = list(conn.execute(sa.text("SELECT hash FROM api_keys")).scalars())

    listed = keys.list()
    acme = keys.list(tenant="acme")

    assert [(k.principal_id, k.tenant, k.roles) for k in listed] == [
        ("alice", "acme", ("viewer",)),
        ("bob", "globex", ("reviewer",)),
    ]
    assert [(k.principal_id, k.name, k.created_at) for k in acme] == [("alice", "laptop", T0)]
    shown = repr(listed) + repr([dataclasses.asdict(k) for k in listed])
    assert secret_of(alice_key) not in shown
    assert all(d not in shown for d in digests)
    assert {f.name for f in dataclasses.fields(listed[0])}.isdisjoint({"hash", "secret", "key"})


# --- tenancy -------------------------------------------------------------------------------------


def test_a_principal_sees_only_its_tenants_runs(keys: ApiKeys) -> None:
    _, key = keys.create("alice", tenant="acme", roles=["admin"])
    alice = keys.authenticate(key)

    assert alice.can_see("acme")
    assert not alice.can_see("globex")
    assert not alice.can_see("ACME")
    assert not alice.can_see(None)  # local runs belong to no tenant
    assert not alice.can_see("")


def test_require_names_the_missing_scope(keys: ApiKeys) -> None:
    _, key = keys.create("alice", tenant="acme", roles=["viewer"])
    alice = keys.authenticate(key)

    alice.require(RUNS_READ)
    with pytest.raises(Forbidden, match="'alice' lacks scope 'runs:submit' \\(roles: viewer\\)"):
        alice.require(RUNS_SUBMIT)
    assert Forbidden.status == 403


# --- roles ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "scopes", "problem"),
    [
        ("", {"runs:read"}, "role name"),
        ("Admin", {"runs:read"}, "role name"),
        ("ops", {"tools:*:x"}, "invalid scopes"),
        ("ops", {"*"}, "invalid scopes"),
        ("ops", {"tools*"}, "invalid scopes"),
        ("ops", {"runs read"}, "invalid scopes"),
        ("ops", {""}, "invalid scopes"),
    ],
)
def test_roles_are_validated(name: str, scopes: set[str], problem: str) -> None:
    with pytest.raises(UserError, match=problem):
        Role(name=name, scopes=frozenset(scopes))


def test_roles_are_defined_once() -> None:
    with pytest.raises(UserError, match="twice"):
        Roles.builtin(extra=[Role(name="viewer", scopes=frozenset({ADMIN}))])
    with pytest.raises(UserError, match="unknown role 'nobody'"):
        ROLES.principal(id="a", tenant="t", roles=["nobody"])


# --- migrations ----------------------------------------------------------------------------------


def test_a_database_at_the_first_migration_upgrades(db_url: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(Path(migrations.__file__).parent))
    with closing(Store.open(db_url, migrate=False)) as old:
        with old.engine.begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "0001_initial")
        assert "principals" not in sa.inspect(old.engine).get_table_names()
        # The columns of 0001 only: today's NewRun carries columns later migrations add.
        with old.engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO runs (id, agent, status, input, grants, created_at, updated_at)"
                    " VALUES ('r1', 'a', 'queued', 'hi', '[]', :at, :at)"
                ),
                {"at": T0},
            )

    with closing(Store.open(db_url)) as upgraded:
        assert {"principals", "api_keys"} <= set(sa.inspect(upgraded.engine).get_table_names())
        assert upgraded.get_run("r1").input == "hi"
        keys = ApiKeys(upgraded, roles=ROLES)
        _, key = keys.create("alice", tenant="acme", roles=["viewer"])
        assert keys.authenticate(key).tenant == "acme"


def test_a_principal_created_concurrently_is_a_store_error(store: Store, keys: ApiKeys) -> None:
    # Two processes creating the first key of the same principal: the second insert loses.
    keys.create("alice", tenant="acme", roles=["viewer"])
    principal = PrincipalRow(id="alice", tenant="acme", roles='["viewer"]', created_at=T0)
    key = ApiKeyRow(key_id="0" * 16, principal_id="alice", hash="0" * 64, name=None, created_at=T0)

    with pytest.raises(StoreError, match="conflicts"):
        store.keys.add(key, principal=principal)
    assert [k.principal_id for k in keys.list()] == ["alice"]  # nothing half-written
