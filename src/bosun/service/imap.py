"""Polling an IMAP mailbox into runs: each unseen message becomes a queued run of the inbox
agent, through the gateway, exactly like ``POST /v1/inbox``.

```
every N s:  UID SEARCH UNSEEN -> UID FETCH (BODY.PEEK[]) each (the message stays unseen)
            -> parse (bosun.gateway.email) -> Gateway.submit (idempotency key from the
               Message-ID) -> UID STORE +FLAGS (\\Seen)
```

A message is marked seen only after its run is stored, so a crash in between re-reads it
and the Message-ID's idempotency key makes the second submission the same run. A message
bosun refuses (not an email, too big, blocked by screening) is flagged ``$BosunRefused``
and marked seen, never deleted: it stays in the mailbox for a person. The protocol work
is stdlib `imaplib` in a thread; submissions are the gateway's.
"""

from __future__ import annotations

import asyncio
import contextlib
import imaplib
import logging
from dataclasses import dataclass, field

from bosun.errors import GatewayRefusal
from bosun.gateway.auth import Principal
from bosun.gateway.email import (
    REPLY_TO_SENDER,
    message_key,
    parse_email,
    parts_for,
    thread_key,
)
from bosun.gateway.gateway import Gateway

__all__ = ["ImapMailbox", "ImapPoller", "PollResult"]

logger = logging.getLogger(__name__)

REFUSED_FLAG = "$BosunRefused"


@dataclass(frozen=True, kw_only=True)
class ImapMailbox:
    """Where to read mail."""

    host: str
    user: str
    password: str = field(repr=False)
    port: int = 993
    ssl: bool = True
    """IMAPS (993). Plain IMAP only for a local test server."""
    mailbox: str = "INBOX"
    timeout_s: float = 30.0


@dataclass(kw_only=True)
class PollResult:
    """What one poll did."""

    submitted: dict[str, str] = field(default_factory=dict)
    """Run id by message UID."""
    refused: dict[str, str] = field(default_factory=dict)
    """Why, by message UID."""


class ImapPoller:
    """Submits a mailbox's unseen messages as runs of `agent` for `principal`."""

    def __init__(
        self,
        gateway: Gateway,
        principal: Principal,
        mailbox: ImapMailbox,
        *,
        agent: str,
        instruction: str | None = None,
    ) -> None:
        self.gateway = gateway
        self.principal = principal
        self.mailbox = mailbox
        self.agent = agent
        self.instruction = instruction

    async def poll(self) -> PollResult:
        """Read the unseen messages once and submit them."""
        fetched = await asyncio.to_thread(self._fetch)
        result = PollResult()
        for uid, raw in fetched:
            try:
                result.submitted[uid] = await self._submit(raw)
            except GatewayRefusal as exc:
                logger.warning("message %s refused: %s", uid, exc)
                result.refused[uid] = str(exc)
        if fetched:
            await asyncio.to_thread(self._mark, result)
        return result

    async def run(self, stop: asyncio.Event, *, every_s: float = 30.0) -> None:
        """Poll every `every_s` seconds until `stop` is set; a failed poll is logged and
        retried at the next."""
        while not stop.is_set():
            try:
                result = await self.poll()
                if result.submitted or result.refused:
                    logger.info(
                        "imap: %d submitted, %d refused", len(result.submitted), len(result.refused)
                    )
            except (OSError, imaplib.IMAP4.error) as exc:
                logger.warning("imap poll failed: %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=every_s)

    async def _submit(self, raw: bytes) -> str:
        parsed = await asyncio.to_thread(parse_email, raw)
        parts = parts_for(parsed, template=self.instruction or REPLY_TO_SENDER)
        return await self.gateway.submit(
            self.principal,
            self.agent,
            parts,
            idempotency_key=message_key(parsed),
            thread=thread_key(parsed),
        )

    # --- the protocol (in a thread) -----------------------------------------------------------

    def _connect(self) -> imaplib.IMAP4:
        m = self.mailbox
        cls = imaplib.IMAP4_SSL if m.ssl else imaplib.IMAP4
        client = cls(m.host, m.port, timeout=m.timeout_s)
        try:
            client.login(m.user, m.password)
            status, _ = client.select(m.mailbox)
            if status != "OK":
                raise imaplib.IMAP4.error(f"cannot select mailbox {m.mailbox!r}")
        except BaseException:
            client.shutdown()  # the socket, whatever state the session is in
            raise
        return client

    def _fetch(self) -> list[tuple[str, bytes]]:
        client = self._connect()
        try:
            status, data = client.uid("SEARCH", "UNSEEN")
            if status != "OK" or not data or not data[0]:
                return []
            found = []
            for uid in data[0].split():
                status, parts = client.uid("FETCH", uid, "(BODY.PEEK[])")
                raw = next((p[1] for p in parts if isinstance(p, tuple) and len(p) == 2), None)
                if status == "OK" and isinstance(raw, bytes):
                    found.append((uid.decode(), raw))
            return found
        finally:
            client.logout()

    def _mark(self, result: PollResult) -> None:
        client = self._connect()
        try:
            for uid in result.submitted:
                client.uid("STORE", uid, "+FLAGS", "(\\Seen)")
            for uid in result.refused:
                client.uid("STORE", uid, "+FLAGS", f"(\\Seen {REFUSED_FLAG})")
        finally:
            client.logout()
