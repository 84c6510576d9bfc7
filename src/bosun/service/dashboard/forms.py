"""HTML form posts, read within limits.

The dashboard's forms are ``application/x-www-form-urlencoded`` only (it takes no uploads), so
a body is read up to its cap and parsed with the standard library's `parse_qsl`: an oversized
post is refused before it is parsed, and no multipart parser is needed. Each field is then
taken with its own length limit; a field over it is refused with a page that names it, before
anything is changed.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import parse_qsl

from starlette.requests import Request

__all__ = ["Form", "FormRejected", "read_form"]

MAX_BODY_BYTES = 64 * 1024
"""The cap of most forms (notes, reasons, decisions)."""
_MAX_FIELDS = 200


class FormRejected(Exception):
    """A form that cannot be taken: too large, malformed, a field missing or over its limit."""

    def __init__(self, message: str, *, status: int = 422) -> None:
        super().__init__(message)
        self.status = status
        """413 for a body over its cap, 415 for another encoding, else 422."""


class Form:
    """The fields of a posted form."""

    def __init__(self, pairs: Sequence[tuple[str, str]]) -> None:
        self._fields: dict[str, list[str]] = {}
        for name, value in pairs:
            self._fields.setdefault(name, []).append(value)

    def __contains__(self, name: object) -> bool:
        return name in self._fields

    def names(self) -> list[str]:
        """Every field name posted."""
        return list(self._fields)

    def text(self, name: str, *, max_chars: int, label: str | None = None) -> str:
        """Field `name` ('' when absent), refused when over `max_chars` characters."""
        values = self._fields.get(name, [""])
        if len(values) > 1:
            raise FormRejected(f"the field {label or name!r} was sent {len(values)} times")
        value = values[0]
        if len(value) > max_chars:
            raise FormRejected(
                f"{label or name} is too long: {len(value):,} characters, at most "
                f"{max_chars:,}. Nothing was changed.",
                status=413,
            )
        return value

    def required(self, name: str, *, max_chars: int, label: str | None = None) -> str:
        """Like `text`, refused when blank."""
        value = self.text(name, max_chars=max_chars, label=label).strip()
        if not value:
            raise FormRejected(f"{label or name} is required. Nothing was changed.")
        return value

    def choice(self, name: str, options: Sequence[str], *, label: str | None = None) -> str:
        """Field `name`, which must be one of `options`."""
        value = self.text(name, max_chars=200, label=label)
        if value not in options:
            raise FormRejected(f"{label or name} must be one of: {', '.join(options)}")
        return value


async def read_form(request: Request, *, max_bytes: int = MAX_BODY_BYTES) -> Form:
    """The posted form, read up to `max_bytes`; `FormRejected` for anything else."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        raise FormRejected("the dashboard takes HTML form posts only", status=415)
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise FormRejected(_too_large(int(declared), max_bytes), status=413)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            raise FormRejected(_too_large(len(body), max_bytes), status=413)
    try:
        pairs = parse_qsl(
            body.decode("utf-8"),
            keep_blank_values=True,
            strict_parsing=False,
            max_num_fields=_MAX_FIELDS,
            errors="strict",
        )
    except (UnicodeDecodeError, ValueError) as exc:
        raise FormRejected(f"the form could not be read: {exc}") from exc
    return Form(pairs)


def _too_large(size: int, cap: int) -> str:
    return f"the form is too large: {size:,} bytes, at most {cap:,}. Nothing was changed."
