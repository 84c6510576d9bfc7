"""IMAP polling into queued runs, against a real (small) IMAP server over a socket."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from api_harness import agents
from imap_server import ImapServer

from bosun.data.store import Store
from bosun.gateway.auth import ApiKeys, Principal, Roles
from bosun.gateway.gateway import Gateway
from bosun.runtime import Runtime
from bosun.service.imap import REFUSED_FLAG, ImapMailbox, ImapPoller


def mail(n: int, *, message_id: str | None = None) -> bytes:
    mid = message_id or f"<m{n}@example.com>"
    return (
        f"From: Ann <ann{n}@example.com>\r\nTo: desk@example.com\r\nSubject: question {n}\r\n"
        f"Message-ID: {mid}\r\n\r\nwhat is x{n}?\r\n"
    ).encode()


@asynccontextmanager
async def mailer(db_url: str) -> AsyncIterator[tuple[Store, Gateway, Principal]]:
    """A gateway over a fresh store serving the "helper" agent, and a submitter of tenant
    acme to poll as."""
    store = Store.open(db_url)
    helper = agents()[0]
    keys = ApiKeys(store, roles=Roles.builtin(tool_scopes=["tools:*"]))
    async with Runtime(store=store, agents=[helper]) as runtime:
        gateway = Gateway(runtime=runtime, keys=keys)
        who = await gateway.authenticate(
            keys.create("mailer", tenant="acme", roles=["submitter"]).key
        )
        yield store, gateway, who
    store.close()


def mailbox(server: ImapServer, password: str = "s3cret") -> ImapMailbox:
    return ImapMailbox(
        host="127.0.0.1", port=server.port, ssl=False, user="desk", password=password
    )


async def test_unseen_mail_becomes_queued_runs_once_and_is_marked_seen(db_url: str) -> None:
    async with mailer(db_url) as (store, gateway, who):
        with ImapServer() as server:
            first, second = server.deliver(mail(1)), server.deliver(mail(2))
            junk = server.deliver(b"this is not an email at all")
            poller = ImapPoller(gateway, who, mailbox(server), agent="helper")
            result = await poller.poll()
            assert set(result.submitted) == {str(first), str(second)}
            assert set(result.refused) == {str(junk)}
            assert "\\Seen" in server.messages[first].flags
            assert {"\\Seen", REFUSED_FLAG} <= server.messages[junk].flags  # kept, flagged
            # Nothing unseen: the next poll submits nothing.
            assert (await poller.poll()).submitted == {}
            # The same message delivered again (a crash before it was marked seen) is the
            # same run: the idempotency key comes from its Message-ID.
            again = server.deliver(mail(1))
            repeat = await poller.poll()
            assert repeat.submitted[str(again)] == result.submitted[str(first)]
        run = store.get_run(result.submitted[str(first)])
        assert run.status == "queued" and run.tenant == "acme"
        started = json.loads(store.journal(run.id)[0].payload)
        assert [p["trust"] for p in started["parts"]] == ["user", "untrusted"]
        assert "ann1@example.com" in started["parts"][0]["text"]  # the reply address


async def test_a_wrong_password_or_a_busy_server_is_an_error_not_a_loss(db_url: str) -> None:
    async with mailer(db_url) as (_, gateway, who):
        with ImapServer() as server:
            uid = server.deliver(mail(7))
            with pytest.raises(Exception, match="AUTHENTICATIONFAILED"):
                await ImapPoller(gateway, who, mailbox(server, "nope"), agent="helper").poll()
            right = mailbox(server)
            server.fail_next = True  # the greeting's CAPABILITY ... the next command fails
            with pytest.raises(Exception):  # noqa: B017 - imaplib's error types vary by step
                await ImapPoller(gateway, who, right, agent="helper").poll()
            assert server.messages[uid].flags == set()  # still unseen: read next time
            result = await ImapPoller(gateway, who, right, agent="helper").poll()
            assert list(result.submitted) == [str(uid)]


def test_the_inbox_commands(tmp_path: object, monkeypatch: pytest.MonkeyPatch, db_url: str) -> None:
    from pathlib import Path

    from typer.testing import CliRunner

    from bosun.cli.main import app

    here = Path(__file__).parent
    monkeypatch.chdir(here)  # served_agents is importable from here
    runner = CliRunner()
    created = runner.invoke(
        app, ["keys", "create", "mailer", "--tenant", "acme", "--role", "admin", "--db", db_url]
    )
    monkeypatch.setenv("BOSUN_API_KEY", created.output.strip().splitlines()[-1])
    inbox = Path(str(tmp_path)) / "inbox"
    inbox.mkdir()
    (inbox / "a.eml").write_bytes(mail(1))
    (inbox / "b.eml").write_bytes(mail(2))
    done = runner.invoke(
        app, ["inbox", "dir", str(inbox), "--agent", "served_agents:helper", "--db", db_url]
    )
    assert done.exit_code == 0, done.output
    assert "a.eml: " in done.output and "b.eml: " in done.output
    (inbox / "c.eml").write_bytes(b"not mail")
    again = runner.invoke(
        app, ["inbox", "dir", str(inbox), "--agent", "served_agents:helper", "--db", db_url]
    )
    assert again.exit_code == 1 and "c.eml: refused" in again.output
    store = Store.open(db_url)
    assert len(store.list_runs()) == 2  # a.eml and b.eml again are the same two runs
    store.close()
    with ImapServer() as server:
        server.deliver(mail(3))
        monkeypatch.setenv("BOSUN_IMAP_PASSWORD", "s3cret")
        polled = runner.invoke(
            app,
            ["inbox", "imap", "--host", "127.0.0.1", "--port", str(server.port), "--user",
             "desk", "--agent", "served_agents:helper", "--once", "--no-ssl", "--db", db_url],
        )  # fmt: skip
        assert polled.exit_code == 0, polled.output
        assert "1 submitted, 0 refused" in polled.output
