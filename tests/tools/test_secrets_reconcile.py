"""Secrets that do not show themselves, secret providers, and the reconcile hook."""

from __future__ import annotations

import copy
import logging
import pickle
from typing import Any

import pytest

from bosun.errors import ToolDefinitionError
from bosun.tools import (
    EnvSecrets,
    MappingSecrets,
    Reconciliation,
    Secret,
    SecretsProvider,
    ToolContext,
    tool,
)

CTX = ToolContext(run_id="run-1", step=2, call_id="call-9")


def test_secret_never_shows_its_value() -> None:
    secret = Secret("hunter2")

    assert secret.reveal() == "hunter2"
    for text in (repr(secret), str(secret), f"{secret}", f"{secret!r}", repr([secret])):
        assert "hunter2" not in text
    assert "**" in str(secret)


def test_secret_is_immutable_and_not_picklable() -> None:
    secret = Secret("hunter2")

    with pytest.raises(AttributeError):
        secret._value = "other"  # type: ignore[misc]
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(secret)
    assert copy.deepcopy(secret) is secret  # immutable: copies are the same object


def test_secret_equality_compares_values() -> None:
    assert Secret("a") == Secret("a")
    assert Secret("a") != Secret("b")
    assert Secret("a") != "a"
    assert len({Secret("a"), Secret("a")}) == 1


def test_env_secrets_read_at_call_time(monkeypatch: pytest.MonkeyPatch) -> None:
    provider = EnvSecrets(prefix="TOOLTEST_")
    monkeypatch.delenv("TOOLTEST_CRM_TOKEN", raising=False)
    assert provider.get("CRM_TOKEN") is None

    monkeypatch.setenv("TOOLTEST_CRM_TOKEN", "s3cr3t")
    assert provider.get("CRM_TOKEN") == "s3cr3t"

    monkeypatch.setenv("TOOLTEST_CRM_TOKEN", "")
    assert provider.get("CRM_TOKEN") is None


def test_mapping_secrets_copy_and_hide_values() -> None:
    source = {"CRM_TOKEN": "s3cr3t", "EMPTY": ""}
    provider = MappingSecrets(source)
    source["CRM_TOKEN"] = "changed"

    assert provider.get("CRM_TOKEN") == "s3cr3t"
    assert provider.get("EMPTY") is None
    assert provider.get("MISSING") is None
    assert "s3cr3t" not in repr(provider)
    assert "CRM_TOKEN" in repr(provider)
    assert isinstance(provider, SecretsProvider)
    assert isinstance(EnvSecrets(), SecretsProvider)


# --- reconcile --------------------------------------------------------------------------------


async def test_reconcile_without_a_reconciler_cannot_tell() -> None:
    @tool(side_effect=True)
    def send(to: str) -> None:
        """Send."""

    assert await send.reconcile({"to": "a@b.c"}, CTX) == Reconciliation(done=None)


async def test_sync_reconciler_gets_the_arguments_and_context() -> None:
    seen: list[tuple[dict[str, Any], str]] = []

    @tool(side_effect=True)
    def send(to: str) -> None:
        """Send."""

    @send.reconciler
    def check(args: dict[str, Any], ctx: ToolContext) -> Reconciliation:
        seen.append((args, ctx.idempotency_key))
        return Reconciliation(done=True, data={"message_id": "m-1"})

    outcome = await send.reconcile({"to": "a@b.c"}, CTX)

    assert outcome == Reconciliation(done=True, data={"message_id": "m-1"})
    assert seen == [({"to": "a@b.c"}, CTX.idempotency_key)]
    assert check({"to": "x"}, CTX).done is True  # the decorator returns the function unchanged


async def test_async_reconciler() -> None:
    @tool(side_effect=True)
    async def charge(amount: int) -> None:
        """Charge."""

    @charge.reconciler
    async def check(args: dict[str, Any], ctx: ToolContext) -> Reconciliation:
        return Reconciliation(done=args["amount"] > 100)

    assert await charge.reconcile({"amount": 5}, CTX) == Reconciliation(done=False)


async def test_failing_reconciler_cannot_tell(caplog: pytest.LogCaptureFixture) -> None:
    @tool(side_effect=True)
    def send(to: str) -> None:
        """Send."""

    @send.reconciler
    def check(args: dict[str, Any], ctx: ToolContext) -> Reconciliation:
        raise ConnectionError("mail server down")

    with caplog.at_level(logging.ERROR, logger="bosun.tools"):
        assert await send.reconcile({"to": "a@b.c"}, CTX) == Reconciliation(done=None)
    assert any(r.exc_info for r in caplog.records)


async def test_reconciler_mistakes_are_developer_errors() -> None:
    @tool(side_effect=True)
    def send(to: str) -> None:
        """Send."""

    @send.reconciler
    def check(args: dict[str, Any], ctx: ToolContext) -> Reconciliation:
        return True  # type: ignore[return-value]

    with pytest.raises(ToolDefinitionError, match="must return a bosun.tools.Reconciliation"):
        await send.reconcile({"to": "a@b.c"}, CTX)
    with pytest.raises(ToolDefinitionError, match="already has a reconciler"):
        send.reconciler(check)
