"""Test documents built in code: PDFs (plain, encrypted, corrupt), e-mails with attachments,
a zip bomb."""

from __future__ import annotations

import io
import zipfile
from email.message import EmailMessage

from pypdf import PdfReader, PdfWriter

__all__ = ["eml", "encrypted_pdf", "pdf", "zip_of"]


def _escape(line: str) -> str:
    return line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def pdf(*lines: str, title: str | None = None) -> bytes:
    """A one-page PDF whose text is `lines` (Helvetica, one per line)."""
    text = "\n".join(f"({_escape(line)}) Tj T*" for line in lines)
    stream = f"BT /F1 12 Tf 14 TL 72 720 Td\n{text}\nET".encode()
    info = f"/Title ({_escape(title)})" if title else ""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        f"<< {info} >>".encode(),
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for n, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % n + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R /Info 6 0 R >>\n" % (len(objects) + 1)
    out += b"startxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)


def encrypted_pdf(*lines: str, password: str = "s3cret") -> bytes:
    """`pdf(*lines)` encrypted so that opening it needs `password`."""
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf(*lines))))
    writer.encrypt(user_password=password, owner_password=password + "-owner", algorithm="AES-128")
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def zip_of(members: dict[str, bytes]) -> bytes:
    """A deflated zip archive of `members`."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def eml(
    subject: str, body: str, *, attachments: dict[str, tuple[str, bytes]] | None = None
) -> bytes:
    """An RFC 5322 message; `attachments` maps file names to (MIME type, bytes)."""
    message = EmailMessage()
    message["From"] = "Ann Customer <ann@example.com>"
    message["To"] = "support@example.com"
    message["Subject"] = subject
    message.set_content(body)
    for name, (mime, data) in (attachments or {}).items():
        maintype, subtype = mime.split("/")
        message.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return message.as_bytes()
