"""`GroundingGuard`: identifiers in an output (order ids, tickets, amounts) that no source
holds, and the default patterns it looks for."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from decimal import Decimal
from types import MappingProxyType
from typing import Final

from bosun.errors import UserError
from bosun.gateway.guardrails.base import (
    WHITESPACE,
    Action,
    Finding,
    GuardrailVerdict,
    OutputContext,
    capped,
    to_decimal,
)

__all__ = ["DEFAULT_IDENTIFIERS", "GroundingGuard"]

_AMOUNT: Final = r"\d+(?:[.,]\d+)*"
_LABEL: Final = r"\s*(?:#|no\.?|number|id)?\s*:?\s*"

# Each pattern starts with a literal or a small character class and checks the word boundary
# with a look-behind after it: a pattern that starts with \b or (?i) cannot use re's fast scan
# for its first character and costs 2-4 times more on a long output.
DEFAULT_IDENTIFIERS: Final[Mapping[str, tuple[str, ...]]] = MappingProxyType(
    {
        "order_id": (r"#(?P<id>[A-Z]{1,3}\d{5,})\b",),
        "reference": (r"\b(?:ORD|ORDER|TKT|TICKET|INV|CASE|REF|RMA)-\d{3,}\b",),
        "order_number": (rf"[Oo](?<![^\W_][Oo])rder{_LABEL}(?P<id>\d{{5,}})\b",),
        "ticket": (rf"[Tt](?<![^\W_][Tt])icket{_LABEL}(?P<id>\d{{3,}})\b",),
        "account": (rf"[Aa](?<![^\W_][Aa])ccount{_LABEL}(?P<id>\d{{6,}})\b",),
        "iban": (r"[A-Z]{2}(?<![^\W_][A-Z]{2})\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b",),
        "amount": (
            rf"[$€£¥]\s?(?P<amount>{_AMOUNT})",
            r"(?P<amount>\d(?<![\d.,]\d)[\d.,]*)(?<=\d)\s?"
            r"(?:USD|EUR|GBP|CHF|JPY|CAD|AUD|dollars?|euros?|pounds?)\b",
            rf"(?:USD|EUR|GBP|CHF)(?<![^\W_]...)\s?(?P<amount>{_AMOUNT})",
        ),
    }
)
"""The identifiers `GroundingGuard` looks for unless given others."""


class GroundingGuard:
    """Identifiers in the output (order ids, tickets, amounts) that appear in no source.

    `patterns` maps a kind to one regex or several. The first named group that matched is the
    identifier: a group named ``amount…`` is compared as a number (``$1,234.50`` equals
    ``1234.5``), any other as a case-insensitive token (``w1234567`` equals ``#W1234567`` in a
    source). A pattern without named groups compares its whole match.
    """

    def __init__(
        self,
        patterns: Mapping[str, str | Sequence[str]] | None = None,
        *,
        action: Action = "escalate",
        name: str = "grounding",
    ) -> None:
        if action == "redact":
            raise UserError("GroundingGuard cannot redact; use allow, escalate or block")
        self.name = name
        self.action: Action = action
        """What an output with an ungrounded identifier gets."""
        chosen = DEFAULT_IDENTIFIERS if patterns is None else patterns
        self.patterns = [
            (kind, re.compile(pattern))
            for kind, some in chosen.items()
            for pattern in ((some,) if isinstance(some, str) else some)
        ]
        """(kind, compiled pattern) pairs, in the order they run."""

    def check(self, output: str, ctx: OutputContext) -> GuardrailVerdict:
        seen: set[tuple[str, str | Decimal]] = set()
        findings: list[Finding] = []
        for kind, pattern in self.patterns:
            for match in pattern.finditer(output):
                group = next((g for g, v in match.groupdict().items() if v is not None), None)
                value = match.group(group or 0)
                key: str | Decimal | None = (
                    to_decimal(value) if group and group.startswith("amount") else value
                )
                if key is None or (kind, key) in seen:
                    continue
                seen.add((kind, key))
                if not _grounded(key, ctx):
                    start, end = match.span(group or 0)
                    findings.append(Finding(kind=kind, preview=value[:64], start=start, end=end))
        if not findings:
            return GuardrailVerdict(guardrail=self.name, action="allow")
        findings.sort(key=lambda f: f.start)
        reasons = capped(
            [f"{f.kind} {f.preview!r} appears in no tool result or input" for f in findings]
        )
        return GuardrailVerdict(
            guardrail=self.name, action=self.action, reasons=reasons, findings=tuple(findings)
        )


def _grounded(key: str | Decimal, ctx: OutputContext) -> bool:
    if isinstance(key, Decimal):
        return abs(key) in ctx._numbers
    needle = WHITESPACE.sub(" ", key).casefold()
    if _has_token(ctx._haystack, needle):
        return True
    # IBANs and long account numbers are written with and without spaces
    compact = WHITESPACE.sub("", needle)
    return (" " in needle or len(compact) >= 12) and compact in ctx._compact_haystack


def _has_token(haystack: str, needle: str) -> bool:
    """`needle` occurs in `haystack` with no letter or digit glued to either side."""
    at = haystack.find(needle)
    while at != -1:
        end = at + len(needle)
        before = haystack[at - 1] if at else " "
        after = haystack[end] if end < len(haystack) else " "
        if not before.isalnum() and not after.isalnum():
            return True
        at = haystack.find(needle, at + 1)
    return False
