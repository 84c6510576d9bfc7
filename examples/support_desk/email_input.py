"""A ``.eml`` file (RFC 5322) as run input: a trusted instruction and the untrusted message.

```
raw bytes -> bosun.gateway.email.parse_email (stdlib email, policy.default; HTML-only mail
             rendered with html.parser, text hidden from the reader dropped and reported;
             attachments listed by name, type and size, text attachments' first 2 KB)
          -> InboundEmail -> [Content(instruction, USER),
                              Content(headers + body + attachments, UNTRUSTED, "email")]
```

The parsing is bosun's own (`bosun.gateway.email`, the same code behind ``POST /v1/inbox``:
body cap keeping head and tail, CRLF and control characters normalised, a broken MIME
structure read as raw text, the sender's address checked), so a message gives the agent the
same text whether it came from a directory or over HTTP, and the run input is built by the
one function every path uses (`bosun.gateway.email.parts_for`), so the demo and a served
desk see the same words. This module adds the inbox bookkeeping:

* **The reply address in the instruction.** The sender's address (the From header's
  addr-spec, checked) is named in the operator's instruction, so a reply to the sender is
  grounded for ``send_reply``'s ``outbound=["to"]``, while an address that only the body
  mentions is not. The display name and everything else stay in the untrusted part. The From
  header is the sender's to write, so this is a decision, not a proof: the desk answers
  whoever wrote (the reply still waits for approval), and never anyone the body names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import bosun
from bosun.config import INBOX_INSTRUCTION
from bosun.gateway.email import (
    MAX_BODY_CHARS,
    ParsedEmail,
    message_key,
    parse_email,
    parts_for,
    sender_address,
)

__all__ = [
    "MAX_BODY_CHARS",
    "InboundEmail",
    "MalformedEmail",
    "load_inbox",
    "read_email",
]


_ADDRESS = re.compile(r"^[A-Za-z0-9._%+'-]{1,64}@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_HEADER_END = re.compile(rb"\r?\n\r?\n")
_NEWLINE = re.compile(r"\r\n?")


class MalformedEmail(Exception):
    """A message that cannot be turned into run input. Nothing is lost: `raw` holds it."""

    def __init__(self, reason: str, *, path: Path | None, raw: bytes) -> None:
        where = f"{path}: " if path is not None else ""
        super().__init__(f"{where}{reason}")
        self.reason = reason
        """What is wrong with it."""
        self.path = path
        """The file it came from, if any."""
        self.raw = raw
        """The message as received."""


@dataclass(frozen=True, kw_only=True)
class InboundEmail:
    """One message, parsed and ready to run."""

    parsed: ParsedEmail
    """Headers, body text, attachments, parser notes."""
    sender: str | None
    """The From address if it is a well-formed address, else None (no reply possible)."""
    path: Path | None = None
    """The ``.eml`` file, when read from a directory."""
    omitted_chars: int = 0
    """Body characters left out by the size cap."""

    @property
    def message_id(self) -> str | None:
        """The Message-ID header."""
        return self.parsed.headers.get("Message-ID")

    @property
    def name(self) -> str:
        """The file's name without ``.eml``, or the Message-ID."""
        return self.path.stem if self.path is not None else (self.message_id or "message")

    @property
    def idempotency_key(self) -> str | None:
        """Derived from the Message-ID as ``POST /v1/inbox`` derives it: a message delivered
        twice is one run."""
        return message_key(self.parsed)

    def parts(self, template: str = INBOX_INSTRUCTION) -> list[bosun.Content]:
        """The run's input as bosun builds it for every path a message takes (the API, IMAP,
        a directory): the operator's instruction naming the sender, then the message
        (untrusted). `template` is the service's ``inbox_instruction``."""
        return parts_for(self.parsed, template=template)


def read_email(
    raw: bytes, *, path: Path | None = None, max_body_chars: int = MAX_BODY_CHARS
) -> InboundEmail:
    """Parse one message; `MalformedEmail` says why when it cannot be."""
    try:
        parsed = parse_email(raw, max_body_chars=max_body_chars)
    except bosun.errors.InvalidInput as exc:
        raise MalformedEmail(str(exc), path=path, raw=raw) from exc
    omitted = next(
        (int(n.split()[0]) for n in parsed.notes if n.endswith("body characters left out")), 0
    )
    return InboundEmail(
        parsed=parsed, sender=sender_address(parsed), path=path, omitted_chars=omitted
    )


def load_inbox(directory: str | Path) -> tuple[list[InboundEmail], list[MalformedEmail]]:
    """Every ``*.eml`` in `directory`, sorted by name: the messages read, and those that
    could not be (each with its file and raw bytes)."""
    read: list[InboundEmail] = []
    failed: list[MalformedEmail] = []
    for path in sorted(Path(directory).glob("*.eml")):
        try:
            read.append(read_email(path.read_bytes(), path=path))
        except MalformedEmail as exc:
            failed.append(exc)
    return read, failed
