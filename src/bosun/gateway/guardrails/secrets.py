"""`SecretsGuard` and its built-in table of well-known secret formats."""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Final

from bosun.gateway.guardrails.base import Action, Detector, GuardrailVerdict, OutputContext
from bosun.gateway.guardrails.redaction import span_verdict

__all__ = ["SecretsGuard"]


class SecretsGuard:
    """API keys, tokens, private keys and passwords in the output.

    A built-in table of well-known formats runs unless ``builtin=False``; a `detector` adds its
    spans of the `entities` types (``SECRET`` for `bosun.gateway.pii.PiiDetector`).
    """

    def __init__(
        self,
        detector: Detector | None = None,
        *,
        action: Action = "block",
        entities: Collection[str] = ("SECRET",),
        builtin: bool = True,
        name: str = "secrets",
    ) -> None:
        self.name = name
        self.detector = detector
        self.action: Action = action
        """What a secret gets."""
        self.entities = frozenset(entities)
        """The detector's entity types that count as secrets."""
        self.builtin = builtin
        """Whether the built-in table of well-known formats runs."""

    def check(self, output: str, ctx: OutputContext) -> GuardrailVerdict:
        spans: list[tuple[int, int, str]] = []
        if self.builtin:
            spans.extend(_builtin_secrets(output))
        if self.detector is not None:
            spans.extend(
                (s.start, s.end, s.entity)
                for s in self.detector.detect(output)
                if s.entity in self.entities
            )
        return span_verdict(self.name, self.action, output, spans)


_SECRET_PATTERNS: Final[tuple[tuple[str, tuple[str, ...], re.Pattern[str]], ...]] = tuple(
    (kind, hints, re.compile(pattern))
    for kind, hints, pattern in (
        (
            "PRIVATE_KEY",
            ("private key-----",),
            r"-----BEGIN[A-Z ]{0,30}PRIVATE KEY-----"
            r"[\s\S]*?(?:-----END[A-Z ]{0,30}PRIVATE KEY-----|\Z)",
        ),
        (
            "AWS_ACCESS_KEY",
            ("akia", "asia", "abia", "acca"),
            r"\b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b",
        ),
        (
            "GITHUB_TOKEN",
            ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
            r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})",
        ),
        ("ANTHROPIC_API_KEY", ("sk-ant-",), r"\bsk-ant-[A-Za-z0-9_-]{20,}"),
        ("OPENAI_API_KEY", ("sk-",), r"\bsk-(?!ant-)(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}"),
        ("STRIPE_KEY", ("k_live_", "k_test_"), r"\b[rs]k_(?:live|test)_[A-Za-z0-9]{16,}"),
        ("SLACK_TOKEN", ("xox",), r"\bxox[abposr]-[A-Za-z0-9-]{10,}"),
        ("GOOGLE_API_KEY", ("aiza",), r"\bAIza[0-9A-Za-z_-]{35}"),
        ("JWT", ("eyj",), r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
        ("BEARER_TOKEN", ("bearer",), r"(?i)\bbearer\s+(?P<value>[A-Za-z0-9._~+/-]{20,}=*)"),
        (
            "URL_PASSWORD",
            ("://",),
            r"\b[a-z][a-z0-9+.-]{1,20}://[^\s:/@]{1,100}:(?P<value>[^\s@/]{3,})@",
        ),
        (
            "PASSWORD",
            ("key", "secret", "token", "passw", "pwd"),
            r"(?i)(?:api[_-]?key|secret|token|passw(?:or)?d|pwd)[\w-]{0,20}"
            r"[\"']?\s{0,5}[:=]\s{0,5}[\"']?(?P<value>[^\s\"'`,;<>]{8,})",
        ),
    )
)
"""Formats with a fixed prefix or shape (after gitleaks' rules), so false positives stay rare.
Where a pattern has a ``value`` group, only that part is a secret (``password: [REDACTED…]``).
A pattern runs only when one of its hints is in the casefolded text: a substring test costs a
microsecond, a regex that starts with ``\b`` over 10 KB a hundred."""


def _builtin_secrets(text: str) -> list[tuple[int, int, str]]:
    folded = text.casefold()
    spans = []
    for kind, hints, pattern in _SECRET_PATTERNS:
        if not any(hint in folded for hint in hints):
            continue
        for match in pattern.finditer(text):
            if "value" not in pattern.groupindex:
                spans.append((match.start(), match.end(), kind))
            elif _looks_secret(match.group("value")):
                spans.append((match.start("value"), match.end("value"), kind))
    return spans


def _looks_secret(value: str) -> bool:
    """A value after ``password:`` is taken for a secret when it has letters and digits, or is
    long and mixes cases: that rules out prose (``secret: confidential``), counts (``tokens:
    12345678``), masks (``********``) and earlier redactions (``[REDACTED:PASSWORD]``).
    Placeholders (``<PASSWORD_1>``) never match: the value may not contain ``<``."""
    letters, digits = any(c.isalpha() for c in value), any(c.isdigit() for c in value)
    mixed_case = any(c.islower() for c in value) and any(c.isupper() for c in value)
    return (letters and digits) or (len(value) >= 16 and mixed_case)
