"""Alerts the spine raises (cost caps, drift): stored once, then handed to a notifier.

An alert is a row in ``alerts`` with a dedupe key: the same condition seen by several
processes, or again a minute later, is stored and notified once. Notifiers are callables;
`AlertWebhook` posts an alert signed like bosun's run webhooks (Standard Webhooks).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from bosun.data.alerts import AlertRows, NewAlert
from bosun.data.store import Store
from bosun.signing import sign

__all__ = ["Alert", "AlertWebhook", "Notifier", "list_alerts", "raise_alert"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class Alert:
    """Something a person should look at, with the evidence."""

    kind: str
    """``cost_cap``, ``drift``, ..."""
    subject: str
    """What it is about, e.g. ``agent:support`` or ``support/1.2.0``."""
    severity: str
    """``info``, ``warning`` or ``critical``."""
    message: str
    evidence: Mapping[str, Any] = field(default_factory=dict)
    dedupe_key: str
    """Alerts with the same key are one alert."""

    def to_json(self) -> dict[str, Any]:
        """The alert as JSON (the webhook body's ``data``)."""
        return {
            "kind": self.kind,
            "subject": self.subject,
            "severity": self.severity,
            "message": self.message,
            "evidence": dict(self.evidence),
        }


Notifier = Callable[[Alert], Awaitable[None]]
"""Told about each new alert (after it is stored)."""


def raise_alert(store: Store, alert: Alert, *, now: float | None = None) -> bool:
    """Store `alert` unless one with its dedupe key exists. True when it is new."""
    row = NewAlert(
        kind=alert.kind,
        subject=alert.subject,
        severity=alert.severity,
        message=alert.message,
        evidence=json.dumps(alert.evidence, default=str, sort_keys=True),
        created_at=time.time() if now is None else now,
        dedupe_key=alert.dedupe_key,
    )
    return AlertRows(store).add(row)


def list_alerts(store: Store, *, kind: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    """Alerts, newest first."""
    rows = AlertRows(store).newest(kind=kind, limit=limit)
    return [{**r.to_dict(), "evidence": json.loads(r.evidence)} for r in rows]


class AlertWebhook:
    """A `Notifier` that POSTs each alert, signed (``webhook-id``, ``webhook-timestamp``,
    ``webhook-signature``). Delivery is best effort with a few quick retries; the alert
    itself is already stored and listed by the CLI."""

    def __init__(
        self,
        url: str,
        secret: str,
        *,
        client: httpx.AsyncClient | None = None,
        attempts: int = 3,
        timeout_s: float = 5.0,
    ) -> None:
        self.url = url
        self._secret = secret
        self._client = client or httpx.AsyncClient(timeout=timeout_s, follow_redirects=False)
        self._attempts = attempts

    async def __call__(self, alert: Alert) -> None:
        body = json.dumps(
            {"type": f"alert.{alert.kind}", "data": alert.to_json()}, default=str
        ).encode()
        msg_id = "alrt_" + hashlib.sha256(alert.dedupe_key.encode()).hexdigest()[:32]
        for attempt in range(1, self._attempts + 1):
            ts = int(time.time())
            headers = {
                "content-type": "application/json",
                "webhook-id": msg_id,
                "webhook-timestamp": str(ts),
                "webhook-signature": sign(self._secret, msg_id, ts, body),
            }
            try:
                response = await self._client.post(self.url, content=body, headers=headers)
                if response.is_success:
                    return
                problem = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                problem = type(exc).__name__
            logger.warning("alert webhook attempt %d failed: %s", attempt, problem)

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self._client.aclose()
