"""Signing and checking webhook bodies in the Standard Webhooks scheme (standardwebhooks.com).

Run webhooks (`bosun.service.webhooks`) and cost alerts (`bosun.observe.alerts`) both sign
what they post; a receiver checks it with `verify`. Written by hand: the scheme is one
HMAC-SHA256 over ``id.timestamp.body``, and its reference package is not in the registry this
project installs from.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Mapping

__all__ = ["secret_key", "sign", "verify"]


def secret_key(secret: str) -> bytes:
    """The HMAC key a secret names: a ``whsec_`` secret is the base64 of the key (a bad one
    raises `binascii.Error`); any other is the key as UTF-8."""
    if secret.startswith("whsec_"):
        return base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    return secret.encode()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value: ``v1,`` + base64 HMAC-SHA256 of ``id.timestamp.body``.
    A secret starting ``whsec_`` is the base64 of the key; any other is the key as UTF-8."""
    mac = hmac.new(secret_key(secret), f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256)
    return "v1," + base64.b64encode(mac.digest()).decode("ascii")


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    tolerance_s: float = 300,
    now: float | None = None,
) -> bool:
    """Whether a received webhook is authentic and fresh: one of the space-separated
    signatures matches, and the timestamp is within `tolerance_s` of `now` (replays).
    A ``whsec_`` secret whose rest is not base64 raises `ValueError`."""
    lower = {name.lower(): value for name, value in headers.items()}
    msg_id = lower.get("webhook-id")
    signatures = lower.get("webhook-signature")
    try:
        timestamp = int(lower.get("webhook-timestamp", ""))
    except ValueError:
        return False
    if not msg_id or not signatures:
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance_s:
        return False
    expected = sign(secret, msg_id, timestamp, body).encode()
    return any(hmac.compare_digest(expected, given.encode()) for given in signatures.split())
