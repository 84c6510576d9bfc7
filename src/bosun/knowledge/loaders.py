"""Files to text: txt, md, html, pdf (pypdf) and eml, with a clear error for anything else.

```
load(data, name, limits) -> Loaded(text, title, media_type, notes)     or InvalidInput:
  over max_bytes                                    413  "is 52.4 MB, over the 20 MB limit"
  binary (NUL bytes, not a known format)            415
  not valid in the expected encoding                400  names the byte and its offset
  corrupt or encrypted PDF, no text in it           400
  eml attachments expanding past max_expanded_bytes 413  (a zip bomb)
  no text at all                                    400
```

An e-mail is indexed as its headers and body, followed by the text of its attachments that
are themselves loadable (a zip attachment's loadable members too, one level deep); other
attachments are listed by name. Archives are read member by member, counting the bytes that
actually come out rather than trusting the sizes their headers declare.
"""

from __future__ import annotations

import email
import email.policy
import io
import re
import zipfile
from dataclasses import dataclass, field
from email.message import EmailMessage
from html import unescape
from pathlib import PurePath

from bosun.errors import InvalidInput
from bosun.knowledge.html import html_to_text

__all__ = ["MEDIA_TYPES", "LoadLimits", "Loaded", "load", "markdown_title", "too_big"]

MEDIA_TYPES = {
    ".txt": "text/plain",
    ".text": "text/plain",
    ".md": "text/markdown",
    ".markdown": "text/markdown",
    ".html": "text/html",
    ".htm": "text/html",
    ".pdf": "application/pdf",
    ".eml": "message/rfc822",
}
"""The formats bosun reads, by file extension."""

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_TITLE_TAG = re.compile(r"<title[^>]*>(.*?)</title>", re.I | re.S)
_MD_TITLE = re.compile(r"^#\s+(.+)$", re.M)
_MAX_DEPTH = 2  # an e-mail's zip attachment's members: no deeper
_MB = 1_000_000


@dataclass(frozen=True, kw_only=True)
class LoadLimits:
    """What a single file may cost to read."""

    max_bytes: int = 20 * _MB
    """Largest file accepted."""
    max_chars: int = 5 * _MB
    """Most text extracted from one file."""
    max_expanded_bytes: int = 50 * _MB
    """Most bytes an e-mail's attachments and archives may expand to."""
    max_pdf_pages: int = 2000
    """Most pages read from one PDF."""
    encoding: str = "utf-8"
    """How text files are decoded (a byte-order mark overrides it)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Loaded:
    """A file's text, ready to chunk."""

    text: str
    """The extracted text (newlines normalised, control characters removed)."""
    title: str
    """From the document (Markdown ``#``, HTML ``<title>``, PDF metadata, e-mail Subject),
    else the file name."""
    media_type: str
    """What it was read as."""
    notes: tuple[str, ...] = ()
    """What reading noticed: hidden HTML text dropped, attachments not indexed, ..."""


@dataclass
class _Budget:
    """Bytes an e-mail's attachments may still expand to."""

    limit: int
    spent: int = 0
    notes: list[str] = field(default_factory=list)

    def spend(self, n: int, what: str) -> None:
        self.spent += n
        if self.spent > self.limit:
            raise InvalidInput(
                f"{what} takes the attachments past {_size(self.limit)} "
                "(LoadLimits.max_expanded_bytes): refused as a possible zip bomb",
                status=413,
            )


def load(data: bytes, *, name: str, limits: LoadLimits | None = None) -> Loaded:
    """Read one file's bytes as its extension (else its content) says; `InvalidInput` with
    a message naming the problem when it cannot be indexed."""
    limits = limits or LoadLimits()
    if len(data) > limits.max_bytes:
        raise InvalidInput(too_big(name, len(data), limits.max_bytes), status=413)
    budget = _Budget(limits.max_expanded_bytes)
    loaded = _load(data, name, limits, budget, depth=0)
    text = _CONTROL.sub("", loaded.text.replace("\r\n", "\n").replace("\r", "\n")).strip()
    if not text:
        raise InvalidInput(f"{name} has no text to index", status=400)
    if len(text) > limits.max_chars:
        raise InvalidInput(
            f"{name} has {len(text):,} characters of text, over the {limits.max_chars:,} limit",
            status=413,
        )
    notes = (*loaded.notes, *budget.notes)
    return Loaded(text=text, title=loaded.title, media_type=loaded.media_type, notes=notes)


def _load(data: bytes, name: str, limits: LoadLimits, budget: _Budget, *, depth: int) -> Loaded:
    media_type = MEDIA_TYPES.get(PurePath(name).suffix.lower())
    if media_type is None:
        media_type = _sniff(data, name)
    stem = PurePath(name).stem or name
    if media_type == "application/pdf":
        return _pdf(data, name, stem, limits)
    if media_type == "message/rfc822":
        return _eml(data, name, limits, budget, depth=depth)
    text = _decode(data, name, limits.encoding)
    if media_type == "text/html":
        body, hidden = html_to_text(text, headings=True)
        title = _TITLE_TAG.search(text)
        notes = ("text hidden from the reader was dropped",) if hidden else ()
        return Loaded(
            text=body,
            title=_one_line(unescape(title.group(1))) if title else stem,
            media_type=media_type,
            notes=notes,
        )
    heading = markdown_title(text) if media_type == "text/markdown" else None
    return Loaded(text=text, title=heading or stem, media_type=media_type)


def markdown_title(text: str) -> str | None:
    """The first level-one heading of a Markdown text."""
    heading = _MD_TITLE.search(text)
    return _one_line(heading.group(1)) if heading else None


def _sniff(data: bytes, name: str) -> str:
    if data.startswith(b"%PDF-"):
        return "application/pdf"
    if b"\x00" in data[:8192] and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        known = ", ".join(sorted(MEDIA_TYPES))
        raise InvalidInput(f"{name} is a binary file, not one of {known}", status=415)
    return "text/plain"


def _decode(data: bytes, name: str, encoding: str) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        encoding, data = "utf-8", data[3:]
    elif data.startswith((b"\xff\xfe", b"\xfe\xff")):
        encoding = "utf-16"
    elif b"\x00" in data[:8192]:
        raise InvalidInput(f"{name} is binary (it has NUL bytes), not text", status=415)
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        bad = data[exc.start]
        raise InvalidInput(
            f"{name} is not valid {encoding}: byte 0x{bad:02x} at offset {exc.start}; "
            "convert it to UTF-8 or give its encoding",
            status=400,
        ) from exc
    except LookupError as exc:
        raise InvalidInput(f"unknown text encoding {encoding!r}", status=400) from exc


def _pdf(data: bytes, name: str, title: str, limits: LoadLimits) -> Loaded:
    from pypdf import PdfReader
    from pypdf.errors import FileNotDecryptedError, PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise InvalidInput(
                f"{name} is an encrypted PDF that needs a password: decrypt it first",
                status=400,
            )
        if len(reader.pages) > limits.max_pdf_pages:
            raise InvalidInput(
                f"{name} has {len(reader.pages)} pages, over the {limits.max_pdf_pages} limit",
                status=413,
            )
        pages = [page.extract_text() or "" for page in reader.pages]
        meta_title = reader.metadata.title if reader.metadata else None
    except InvalidInput:
        raise
    except FileNotDecryptedError as exc:
        raise InvalidInput(f"{name} is an encrypted PDF: {exc}", status=400) from exc
    except PdfReadError as exc:
        raise InvalidInput(f"{name} is not a readable PDF: {exc}", status=400) from exc
    except Exception as exc:  # pypdf's parser also fails with KeyError, ValueError, ...
        raise InvalidInput(
            f"{name} is not a readable PDF: {type(exc).__name__}: {exc}", status=400
        ) from exc
    text = "\n\n".join(p.strip() for p in pages if p.strip())
    if not text:
        raise InvalidInput(
            f"{name} has no extractable text (a scanned PDF needs OCR first)", status=400
        )
    return Loaded(
        text=text,
        title=_one_line(meta_title) if meta_title and meta_title.strip() else title,
        media_type="application/pdf",
    )


def _eml(data: bytes, name: str, limits: LoadLimits, budget: _Budget, *, depth: int) -> Loaded:
    message = email.message_from_bytes(data, policy=email.policy.default)
    if not isinstance(message, EmailMessage) or not (message["From"] or message["Subject"]):
        raise InvalidInput(f"{name} is not an RFC 5322 message: no From or Subject", status=400)
    headers = []
    for header in ("From", "To", "Cc", "Subject", "Date"):
        value = message.get(header)
        if value:
            headers.append(f"{header}: {_one_line(str(value))}")
    sections = ["\n".join(headers), _eml_body(message, budget)]
    for part in message.iter_attachments():
        if isinstance(part, EmailMessage):
            sections.append(_attachment(part, limits, budget, depth=depth))
    subject = message.get("Subject")
    return Loaded(
        text="\n\n".join(s for s in sections if s.strip()),
        title=_one_line(str(subject)) if subject else PurePath(name).stem,
        media_type="message/rfc822",
    )


def _eml_body(message: EmailMessage, budget: _Budget) -> str:
    part = message.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    try:
        content = part.get_content()
    except (LookupError, UnicodeError, ValueError):
        payload = part.get_payload(decode=True)
        content = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
    if not isinstance(content, str):
        return ""
    if part.get_content_subtype() == "html":
        content, hidden = html_to_text(content, headings=True)
        if hidden:
            budget.notes.append("text hidden from the reader was dropped")
    return content


def _attachment(part: EmailMessage, limits: LoadLimits, budget: _Budget, *, depth: int) -> str:
    filename = _one_line(part.get_filename() or "unnamed")[:200]
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return f"[attachment: {filename}, unreadable]"
    budget.spend(len(payload), f"attachment {filename}")
    label = f"[attachment: {filename} ({part.get_content_type()}, {len(payload):,} bytes)]"
    if _is_zip(filename, part.get_content_type(), payload):
        return "\n\n".join([label, *_zip_members(payload, filename, limits, budget, depth)])
    if depth + 1 >= _MAX_DEPTH or PurePath(filename).suffix.lower() not in MEDIA_TYPES:
        budget.notes.append(f"attachment {filename} not indexed")
        return label
    try:
        inner = _load(payload, filename, limits, budget, depth=depth + 1)
    except InvalidInput as exc:
        if exc.status == 413:  # over a limit: the whole message is refused
            raise
        budget.notes.append(f"attachment {filename} not indexed: {exc}")
        return label
    return f"{label}\n\n{inner.text}"


def _is_zip(filename: str, content_type: str, payload: bytes) -> bool:
    return (
        filename.lower().endswith(".zip") or content_type in ("application/zip",)
    ) and payload.startswith(b"PK")


def _zip_members(
    payload: bytes, filename: str, limits: LoadLimits, budget: _Budget, depth: int
) -> list[str]:
    texts: list[str] = []
    try:
        archive = zipfile.ZipFile(io.BytesIO(payload))
        members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        budget.notes.append(f"attachment {filename} is not a readable zip: {exc}")
        return texts
    for info in members:
        if info.is_dir():
            continue
        what = f"{filename}/{info.filename}"
        suffix = PurePath(info.filename).suffix.lower()
        try:
            # Every member is read, indexed or not: the bytes it expands to are what count.
            data = _read_member(archive, info, what, budget)
            if suffix not in MEDIA_TYPES or suffix == ".eml" or depth + 1 >= _MAX_DEPTH:
                budget.notes.append(f"{what} not indexed")
                continue
            inner = _load(data, info.filename, limits, budget, depth=depth + 1)
        except InvalidInput as exc:
            if exc.status == 413:
                raise
            budget.notes.append(f"{what} not indexed: {exc}")
            continue
        texts.append(f"[{what}]\n\n{inner.text}")
    return texts


def _read_member(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, what: str, budget: _Budget
) -> bytes:
    # Count what comes out, block by block: a header can claim any size.
    out = bytearray()
    try:
        with archive.open(info) as member:
            for block in iter(lambda: member.read(1 << 16), b""):
                budget.spend(len(block), what)
                out += block
    except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError, EOFError) as exc:
        raise InvalidInput(f"{what} cannot be read from its archive: {exc}", status=400) from exc
    return bytes(out)


def too_big(name: str, size: int, limit: int) -> str:
    """The error for a file over the size limit."""
    return f"{name} is {_size(size)}, over the {_size(limit)} limit (LoadLimits.max_bytes)"


def _one_line(value: str) -> str:
    return " ".join(value.split())[:500]


def _size(n: int) -> str:
    return f"{n / _MB:.1f} MB" if n >= _MB else f"{n:,} bytes"
