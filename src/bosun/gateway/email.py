"""Inbound email (RFC 5322) as labelled run input: the message is untrusted content.

```
raw bytes -> email.parser (policy.default) -> headers (From, To, Cc, Subject, Date,
             Message-ID) + the text body (text/plain preferred; HTML rendered to text with
             hidden elements dropped) + attachments listed (name, type, size; text
             attachments' first KB as untrusted text)
          -> [Content(instruction, USER), Content(message, UNTRUSTED, source="email")]
```

Everything from the message is untrusted: a sender writes the body and every header. The
HTML renderer (`bosun.knowledge.html`, shared with the knowledge base) keeps the text a person
would see and drops what they would not (scripts, styles, elements hidden with
``display:none``/``hidden``, zero-size text) — and reports that it dropped something, since
hiding text from the reader is an injection technique.
"""

from __future__ import annotations

import email
import email.message
import email.policy
import email.utils
import hashlib
import re
from dataclasses import dataclass, field
from email.message import EmailMessage

from bosun.config import INBOX_INSTRUCTION
from bosun.errors import InvalidInput
from bosun.knowledge.html import html_to_text
from bosun.trust import Content, Trust

__all__ = [
    "DEFAULT_INSTRUCTION",
    "MAX_BODY_CHARS",
    "REPLY_TO_SENDER",
    "ParsedEmail",
    "instruction_for",
    "message_key",
    "parts_for",
    "html_to_text",
    "parse_email",
    "sender_address",
    "thread_key",
]

DEFAULT_INSTRUCTION = "Process this email. It has no readable sender address: no reply."
REPLY_TO_SENDER = INBOX_INSTRUCTION
MAX_BODY_CHARS = 30_000
"""Body characters kept by default; a longer body keeps its head and tail."""
_ADDRESS = re.compile(r"[A-Za-z0-9._%+'-]{1,64}@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_NEWLINES = re.compile(r"\r\n?")
_HEADER_END = re.compile(rb"\r?\n\r?\n")
_MESSAGE_ID = re.compile(r"<[^<>\s]{1,500}>")
_MAX_RAW = 5_000_000
_TEXT_ATTACHMENT_CHARS = 2_000
_HEADERS = ("From", "To", "Cc", "Reply-To", "Subject", "Date", "Message-ID")


@dataclass(frozen=True, slots=True)
class Attachment:
    """An attachment as the agent is told about it."""

    filename: str
    content_type: str
    size: int
    text: str | None = None
    """The first characters of a text attachment."""


@dataclass(frozen=True, slots=True)
class ParsedEmail:
    """A message reduced to what an agent may read."""

    headers: dict[str, str]
    body: str
    attachments: tuple[Attachment, ...] = ()
    hidden_html: bool = False
    """The HTML hid text from the reader (dropped here)."""
    notes: tuple[str, ...] = field(default=())
    """What parsing noticed: no text body, undecodable parts, ..."""
    references: tuple[str, ...] = field(default=())
    """Message-IDs of the conversation this message answers: References (root first), then
    In-Reply-To. Not shown to the agent; `thread_key` reads them."""

    @property
    def sender(self) -> str:
        """The From header."""
        return self.headers.get("From", "")

    def render(self) -> str:
        """The message as the agent reads it."""
        lines = [f"{name}: {value}" for name, value in self.headers.items()]
        lines += ["", self.body.strip() or "(empty body)"]
        for a in self.attachments:
            lines.append(f"\n[attachment: {a.filename} ({a.content_type}, {a.size} bytes)]")
            if a.text:
                lines.append(a.text)
        if self.hidden_html:
            lines.append("\n[note: the HTML contained text hidden from the reader; it was removed]")
        return "\n".join(lines)


def parse_email(raw: bytes, *, max_body_chars: int = MAX_BODY_CHARS) -> ParsedEmail:
    """Parse an RFC 5322 message; `InvalidInput` (400) when it is not one. A body over
    `max_body_chars` keeps its head and tail (a pasted log's error is usually at the end)."""
    if not raw.strip():
        raise InvalidInput("the message is empty", status=400)
    if len(raw) > _MAX_RAW:
        raise InvalidInput(f"the message is over {_MAX_RAW} bytes", status=413)
    message = email.message_from_bytes(raw, policy=email.policy.default)
    notes: list[str] = []
    headers = _headers(message, notes)
    if not isinstance(message, EmailMessage) or not any(
        headers.get(h) for h in ("From", "Subject")
    ):
        raise InvalidInput("not an RFC 5322 message: no From or Subject header", status=400)
    try:
        body, hidden = _body(message, notes)
        attachments = tuple(_attachments(message, notes))
    except Exception as exc:  # the stdlib's MIME walk fails on some hostile structures
        notes.append(f"MIME structure unreadable: {type(exc).__name__}")
        body, hidden, attachments = "", False, ()
    if not body.strip() and not attachments and message.get_content_maintype() == "multipart":
        body = _raw_body(raw)  # a broken boundary: the text is there, the structure is not
        notes.append("read the raw body: the MIME structure is broken")
    body = _CONTROL.sub("", _NEWLINES.sub("\n", body))
    omitted = max(len(body) - max_body_chars, 0)
    if omitted:
        head = max_body_chars * 3 // 4
        body = (
            f"{body[:head]}\n\n[... {omitted:,} characters of the body left out ...]\n\n"
            f"{body[-(max_body_chars - head) :]}"
        )
        notes.append(f"{omitted} body characters left out")
    return ParsedEmail(
        headers=headers,
        body=body,
        attachments=attachments,
        hidden_html=hidden,
        notes=tuple(notes),
        references=_references(message),
    )


def sender_address(parsed: ParsedEmail) -> str | None:
    """The From header's address if it is a well-formed one, else None. The sender writes
    this header: it says whom to answer, not who they are."""
    try:
        pairs = email.utils.getaddresses([parsed.sender])
    except (ValueError, IndexError):  # the header parser's failures on hostile input
        return None
    for _, address in pairs:
        if _ADDRESS.fullmatch(address):
            return address
    return None


def _headers(message: email.message.Message, notes: list[str]) -> dict[str, str]:
    headers = {}
    raw = {name.lower(): value for name, value in message.raw_items()}
    for name in _HEADERS:
        if name.lower() not in raw:
            continue
        try:
            value = str(message.get(name))
        except Exception:  # a header the stdlib cannot parse (IndexError on "<<<>>>@@@")
            notes.append(f"{name} header unreadable")
            value = str(raw[name.lower()])
        headers[name] = _one_line(value)[:1000]
    return headers


def _raw_body(raw: bytes) -> str:
    parts = _HEADER_END.split(raw, maxsplit=1)
    return parts[1].decode("utf-8", "replace") if len(parts) == 2 else ""


def instruction_for(parsed: ParsedEmail, *, template: str = REPLY_TO_SENDER) -> str:
    """The operator's (trusted) instruction for a message. Naming the sender's address here
    is what lets a reply to the sender pass outbound grounding, while an address that only
    the body mentions does not; without a readable address, `DEFAULT_INSTRUCTION`."""
    sender = sender_address(parsed)
    return DEFAULT_INSTRUCTION if sender is None else template.format(sender=sender)


def parts_for(parsed: ParsedEmail, *, template: str = REPLY_TO_SENDER) -> list[Content]:
    """The run input for a message, on every path a message takes (``POST /v1/inbox``, IMAP,
    a directory, the demo): the operator's instruction (`instruction_for` with `template`),
    then the message as untrusted content."""
    return [
        Content(text=instruction_for(parsed, template=template)),
        Content(text=parsed.render(), trust=Trust.UNTRUSTED, source="email"),
    ]


def message_key(parsed: ParsedEmail) -> str | None:
    """The idempotency key of a message, from its Message-ID: however a message arrives
    (HTTP, a directory, IMAP) and however often, it is one run."""
    message_id = parsed.headers.get("Message-ID")
    if not message_id:
        return None
    return "email:" + hashlib.sha256(message_id.encode()).hexdigest()[:40]


def thread_key(parsed: ParsedEmail) -> str | None:
    """The thread a message is a turn of: the conversation's root (the first Message-ID in
    References, else In-Reply-To, else the message's own Message-ID), bound to the sender's
    address. The sender writes both headers, so the binding is what keeps a stranger from
    joining another customer's conversation by quoting its Message-ID (they would have to
    forge that customer's From as well, and replies go to that customer). None without any
    Message-ID."""
    root = parsed.references[0] if parsed.references else parsed.headers.get("Message-ID")
    if not root:
        return None
    sender = (sender_address(parsed) or "").casefold()
    return "email:" + hashlib.sha256(f"{sender}\x1f{root}".encode()).hexdigest()[:40]


def _references(message: email.message.Message) -> tuple[str, ...]:
    ids: list[str] = []
    for name in ("References", "In-Reply-To"):
        try:
            value = message.get(name)
        except Exception:  # a header the stdlib cannot parse: no thread from it
            continue
        if value:
            ids += _MESSAGE_ID.findall(str(value))
    return tuple(dict.fromkeys(i[:500] for i in ids))[:50]


def _one_line(value: str) -> str:
    return " ".join(value.split())


def _body(message: EmailMessage, notes: list[str]) -> tuple[str, bool]:
    part = message.get_body(preferencelist=("plain", "html"))
    if part is None:
        notes.append("no text body")
        return "", False
    try:
        content = part.get_content()
    except (LookupError, UnicodeError, ValueError) as exc:
        notes.append(f"body not decodable: {type(exc).__name__}")
        payload = part.get_payload(decode=True)
        content = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
    if not isinstance(content, str):
        return "", False
    if part.get_content_subtype() == "html":
        return html_to_text(content)
    return content, False


def _attachments(message: EmailMessage, notes: list[str]) -> list[Attachment]:
    found = []
    for part in message.iter_attachments():
        if not isinstance(part, EmailMessage):
            continue
        payload = part.get_payload(decode=True)
        size = len(payload) if isinstance(payload, bytes) else 0
        text = None
        if part.get_content_maintype() == "text" and isinstance(payload, bytes):
            charset = part.get_content_charset() or "utf-8"
            try:
                decoded = payload.decode(charset, "replace")
            except LookupError:
                notes.append(f"unknown charset {charset!r}")
                decoded = payload.decode("utf-8", "replace")
            text = _CONTROL.sub("", _NEWLINES.sub("\n", decoded))[:_TEXT_ATTACHMENT_CHARS]
        name = _one_line(part.get_filename() or "unnamed")[:200]
        found.append(Attachment(name, part.get_content_type(), size, text))
    return found
