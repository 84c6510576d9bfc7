"""The verdict of a guard that finds spans (PII, secrets): merged findings, masked previews,
and the text with each span replaced by ``[REDACTED:KIND]``."""

from __future__ import annotations

from bosun.gateway.guardrails.base import Action, Finding, GuardrailVerdict, capped

__all__ = ["span_verdict"]


def span_verdict(
    name: str, action: Action, text: str, spans: list[tuple[int, int, str]]
) -> GuardrailVerdict:
    """The verdict of a span-finding guard: findings, reasons with previews, redacted text."""
    merged = _merge(spans)
    if not merged:
        return GuardrailVerdict(guardrail=name, action="allow")
    findings = tuple(
        Finding(kind=kind, preview=_preview(text[start:end]), start=start, end=end)
        for start, end, kind in merged
    )
    redacted = None
    if action == "redact":
        parts: list[str] = []
        last = 0
        for start, end, kind in merged:
            parts += (text[last:start], f"[REDACTED:{kind}]")
            last = end
        redacted = "".join([*parts, text[last:]])
    reasons = capped([f"{f.kind} in output ({f.preview})" for f in findings])
    return GuardrailVerdict(
        guardrail=name, action=action, reasons=reasons, text=redacted, findings=findings
    )


def _merge(spans: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """Overlapping spans as one, named by the span that starts first (the longest on a tie)."""
    merged: list[tuple[int, int, str]] = []
    for start, end, kind in sorted(spans, key=lambda s: (s[0], -s[1])):
        if end <= start:
            continue
        if merged and start < merged[-1][1]:
            prev = merged[-1]
            merged[-1] = (prev[0], max(prev[1], end), prev[2])
        else:
            merged.append((start, end, kind))
    return merged


def _preview(value: str) -> str:
    """Enough of a value to recognise it in a log, too little to use it."""
    if len(value) < 8:
        shown = "…"
    elif len(value) < 16:
        shown = f"{value[:2]}…"
    else:
        shown = f"{value[:3]}…{value[-4:]}"
    return "".join(c if c.isprintable() else "?" for c in shown)
