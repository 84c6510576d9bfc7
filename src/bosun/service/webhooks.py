"""Signed, retried webhooks on run events, in the Standard Webhooks scheme (standardwebhooks.com).

```
enqueue_due:  runs whose status is worth telling and changed since webhooks last looked
              (notified_at is null or differs from updated_at), in one transaction
              (PostgreSQL: FOR UPDATE SKIP LOCKED): one outbox row per matching subscription,
              its id derived from (run, status, updated_at, url), inserted only if absent;
              then notified_at = updated_at
deliver_due:  pending rows that are due, at most a few per receiver -> leased (next_attempt_at
              pushed past the send) -> POST, receivers in parallel, one receiver's in turn
              2xx -> delivered    410 -> failed    otherwise attempts + 1 and retried after
              exponential backoff with full jitter (Retry-After honoured on 429/503);
              failed after max_attempts
```

Delivery is at least once: a dispatcher that dies after a POST but before recording it sends
again when the lease runs out. Receivers deduplicate on ``webhook-id``, which stays the same
across retries, and check ``webhook-signature`` with `bosun.signing.verify`. The body is the
outbox row's payload byte for byte; run outputs are stored with PII masked, and stay so here.
"""

from __future__ import annotations

import asyncio
import binascii
import hashlib
import json
import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from bosun.config import WebhookSubscription
from bosun.data.store import Store
from bosun.data.webhooks import (
    ChangedRun,
    DeliveryUpdate,
    DueDelivery,
    NewDelivery,
    WebhookOutbox,
)
from bosun.errors import ConfigError
from bosun.signing import secret_key, sign

__all__ = ["EVENTS", "WebhookDispatcher"]

logger = logging.getLogger(__name__)

EVENTS: Mapping[str, str] = {
    "completed": "run.completed",
    "failed": "run.failed",
    "cancelled": "run.cancelled",
    "escalated": "run.escalated",
    "waiting_human": "run.escalated",
    "waiting_approval": "run.waiting",
}
"""The event a run's status is announced as; other statuses are not announced."""

_SCAN_BATCH = 500  # runs enqueued per transaction
_PER_URL = 5  # deliveries to one receiver per round: a dead one must not hold up the rest
_LEASE_MARGIN_S = 30.0
_MAX_RETRY_AFTER_S = 3600.0
_ERROR_CHARS = 300


@dataclass(frozen=True, slots=True)
class _Outcome:
    ok: bool = False
    error: str | None = None
    final: bool = False  # retrying cannot help (410 Gone, the subscription is gone)
    retry_after: float | None = None
    unreachable: bool = False  # no response at all: connection refused, timeout, TLS


class WebhookDispatcher:
    """Turns run status changes into signed POSTs to `subscriptions`, retried until
    delivered. A worker calls `enqueue_due` then `deliver_due` on every sweep."""

    def __init__(
        self,
        store: Store,
        subscriptions: Sequence[WebhookSubscription],
        *,
        client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.time,
        max_attempts: int = 8,
        base_delay_s: float = 1.0,
        max_delay_s: float = 300.0,
        timeout_s: float = 10.0,
    ) -> None:
        if max_attempts < 1:
            raise ConfigError("webhook max_attempts must be at least 1")
        self.store = store
        self.subscriptions = tuple(subscriptions)
        self._by_url: dict[str, WebhookSubscription] = {}
        for sub in self.subscriptions:
            secret = sub.secret.get_secret_value()
            try:
                secret_key(secret)
            except binascii.Error as exc:
                raise ConfigError(
                    f"the webhook secret for {sub.url} starts with whsec_ but the rest is not "
                    "base64: give the secret exactly as issued"
                ) from exc
            known = self._by_url.setdefault(sub.url, sub)
            if known.secret.get_secret_value() != secret:
                raise ConfigError(
                    f"webhook subscriptions for {sub.url} have different secrets: a receiver "
                    "checks one secret, so give the URL one"
                )
        self.max_attempts = max_attempts
        self.base_delay_s = base_delay_s
        self.max_delay_s = max_delay_s
        self.timeout_s = timeout_s
        self._clock = clock
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient(follow_redirects=False)
        self._outbox = WebhookOutbox(store)

    async def aclose(self) -> None:
        """Close the HTTP client if this dispatcher made it."""
        if self._owns_client:
            await self._client.aclose()

    # --- the outbox -------------------------------------------------------------------------

    async def enqueue_due(self) -> int:
        """Record a delivery for every subscription told of no run's current status yet;
        returns how many were created."""
        if not self.subscriptions:
            return 0
        total = 0
        while True:
            created, scanned = await asyncio.to_thread(self._enqueue_batch)
            total += created
            if scanned < _SCAN_BATCH:
                return total

    def _enqueue_batch(self) -> tuple[int, int]:
        now = self._clock()
        return self._outbox.enqueue(
            statuses=list(EVENTS),
            limit=_SCAN_BATCH,
            deliveries=lambda run: self._deliveries(run, now),
        )

    def _deliveries(self, run: ChangedRun, now: float) -> list[NewDelivery]:
        event = EVENTS[run.status]
        urls = {
            sub.url: None
            for sub in self.subscriptions
            if event in sub.events and (sub.tenant is None or sub.tenant == run.tenant)
        }
        if not urls:
            return []
        payload = _payload(run, event)
        return [
            NewDelivery(
                id=_event_id(run, url),
                run_id=run.id,
                url=url,
                event=event,
                payload=payload,
                next_attempt_at=now,
                created_at=now,
            )
            for url in urls
        ]

    # --- delivery ---------------------------------------------------------------------------

    async def deliver_due(self, limit: int = 50) -> int:
        """Send up to `limit` deliveries that are due; returns the POSTs attempted."""
        batch = await asyncio.to_thread(self._lease, limit)
        by_url: dict[str, list[DueDelivery]] = {}
        for due in batch:
            by_url.setdefault(due.url, []).append(due)
        results = await asyncio.gather(
            *(self._deliver_to(dues) for dues in by_url.values()), return_exceptions=True
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return sum(r for r in results if isinstance(r, int))

    def _lease(self, limit: int) -> list[DueDelivery]:
        now = self._clock()
        # The lease: one receiver's deliveries go out in turn, each within timeout_s.
        return self._outbox.lease(
            now=now,
            limit=limit,
            per_url=_PER_URL,
            until=lambda place: now + place * self.timeout_s + _LEASE_MARGIN_S,
        )

    async def _deliver_to(self, dues: list[DueDelivery]) -> int:
        for sent, due in enumerate(dues, start=1):
            outcome = await self._send(due)
            rest = dues[sent:] if outcome.unreachable else []
            if rest:  # not worth a timeout each: they share this attempt's fate
                note = f"not sent, receiver unreachable: {outcome.error}"
                outcome_rest = _Outcome(error=note[:_ERROR_CHARS])
                await asyncio.to_thread(
                    self._record, [(due, outcome), *((d, outcome_rest) for d in rest)]
                )
                return sent
            await asyncio.to_thread(self._record, [(due, outcome)])
        return len(dues)

    async def _send(self, due: DueDelivery) -> _Outcome:
        sub = self._by_url.get(due.url)
        if sub is None:
            return _Outcome(error="no subscription for this URL any more", final=True)
        body = due.payload.encode()
        timestamp = int(self._clock())
        headers = {
            "content-type": "application/json",
            "user-agent": "bosun-webhooks",
            "webhook-id": due.id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(sub.secret.get_secret_value(), due.id, timestamp, body),
        }
        try:
            async with (
                asyncio.timeout(self.timeout_s),
                self._client.stream(
                    "POST", due.url, content=body, headers=headers, follow_redirects=False
                ) as response,
            ):
                if response.is_success:
                    return _Outcome(ok=True)
                text = await _start_of(response)
        except (httpx.HTTPError, httpx.InvalidURL, TimeoutError, OSError) as exc:
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            return _Outcome(error=error[:_ERROR_CHARS], unreachable=True)
        code = response.status_code
        retry_after = None
        if code in (429, 503):
            retry_after = _retry_after(response.headers.get("retry-after"), self._clock())
        error = f"HTTP {code}: {text}" if text else f"HTTP {code}"
        return _Outcome(error=error[:_ERROR_CHARS], final=code == 410, retry_after=retry_after)

    def _record(self, outcomes: list[tuple[DueDelivery, _Outcome]]) -> None:
        now = self._clock()
        updates = []
        for due, outcome in outcomes:
            attempts = due.attempts + 1
            status, retry_at = None, None
            if outcome.ok:
                status = "delivered"
            elif outcome.final or attempts >= self.max_attempts:
                status = "failed"
                logger.warning(
                    "webhook %s gave up after %d attempts: %s", due.id, attempts, outcome.error
                )
            else:
                retry_at = now + self._delay(attempts, outcome.retry_after)
            update = DeliveryUpdate(
                id=due.id,
                attempts=attempts,
                last_error=outcome.error,
                status=status,
                delivered_at=now if outcome.ok else None,
                next_attempt_at=retry_at,
            )
            updates.append(update)
        self._outbox.record(updates)

    def _delay(self, attempts: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, max(self.max_delay_s, _MAX_RETRY_AFTER_S))
        cap = min(self.max_delay_s, self.base_delay_s * 2.0 ** min(attempts - 1, 60))
        return random.uniform(0.0, cap)  # full jitter: retries of many events spread out


def _event_id(run: ChangedRun, url: str) -> str:
    # The same (run, status, moment, receiver) always gives the same id: a rescan after a
    # crash finds the row already there, and receivers deduplicate on it.
    key = f"{run.id}\n{run.status}\n{run.updated_at!r}\n{url}"
    return "evt_" + hashlib.sha256(key.encode()).hexdigest()[:32]


def _payload(run: ChangedRun, event: str) -> str:
    handoff: Any = None
    if run.handoff is not None:
        try:
            handoff = json.loads(run.handoff)
        except ValueError:  # not ours to fix here; a poisoned row must not stop the outbox
            handoff = run.handoff
    moment = datetime.fromtimestamp(run.updated_at, UTC)
    document = {
        "type": event,
        "timestamp": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "data": {
            "run_id": run.id,
            "agent": run.agent,
            "tenant": run.tenant,
            "status": run.status,
            "output": run.output,
            "error": run.error,
            "handoff": handoff,
        },
    }
    # ASCII: a lone surrogate in a model's output must not make the body unencodable.
    return json.dumps(document, separators=(",", ":"))


async def _start_of(response: httpx.Response) -> str:
    # A receiver's error page can be large: keep the first bytes for last_error.
    head = b""
    async for chunk in response.aiter_bytes():
        head += chunk
        if len(head) >= 200:
            break
    return head[:200].decode(errors="replace").strip()


def _retry_after(value: str | None, now: float) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now)
