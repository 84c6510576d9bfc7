"""Sessions, CSRF tokens and the headers every dashboard page carries.

```
login    API key -> ApiKeys.authenticate -> cookie bosun_session = sign({key id, csrf}, now)
request  cookie -> signature and age checked -> ApiKeys.resume(key id) -> Principal
         (revoked or expired key, disabled principal: the session ends at that request)
POST     form field csrf == the session's csrf, and an Origin, when sent, is this site
```

Decisions a reader would otherwise have to reverse-engineer:

* **Signed, not stored.** The cookie holds the key id and a CSRF token, signed with
  HMAC-SHA256 (itsdangerous) under the deployment's session key, with the time it was issued:
  no session table, so any API process can serve any request. The key's secret is never in
  the cookie. The age is checked on every request (`session_ttl_s`); the key itself is
  re-checked on every request exactly as the REST API checks it, so revoking a key ends its
  sessions at once. A stolen cookie is good until it expires or its key is revoked; it is
  HttpOnly (no script reads it), SameSite=Strict (no other site sends it), and Secure when the
  dashboard is reached over https.
* **CSRF twice over.** SameSite=Strict already keeps other sites' forms from carrying the
  cookie; each form also carries the session's token, compared in constant time, and a
  browser's Origin header must name this site. The login form, before any session exists,
  gets its token from a short-lived signed cookie of its own.
* **No inline script or style.** The Content-Security-Policy allows scripts, styles and
  images from this origin only, so markup that slipped through escaping could not run; the
  pages' JavaScript is a static file.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

__all__ = [
    "CSP",
    "LOGIN_COOKIE",
    "SESSION_COOKIE",
    "CsrfRejected",
    "LoginRequired",
    "Session",
    "Sessions",
    "check_origin",
    "same",
    "secure",
    "set_cookie",
]

SESSION_COOKIE = "bosun_session"
LOGIN_COOKIE = "bosun_login"
_LOGIN_TTL_S = 3600

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
"""The dashboard's Content-Security-Policy: nothing inline, nothing from elsewhere."""

_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


class LoginRequired(Exception):
    """No valid session: the person logs in (again). `reason` says why, for the login page."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        """``missing``, ``expired``, ``invalid`` or ``revoked``."""


class CsrfRejected(Exception):
    """A form without this session's CSRF token, or posted from another site (403)."""


@dataclass(frozen=True, slots=True)
class Session:
    """What the session cookie carries."""

    key_id: str
    """The API key the person logged in with (re-checked on every request)."""
    csrf: str
    """The token every form of this session must send back."""


class Sessions:
    """Issues and checks session cookies and the login form's token under one key."""

    def __init__(self, key: bytes, *, ttl_s: float) -> None:
        signer = {"digest_method": hashlib.sha256}
        self._session = URLSafeTimedSerializer(
            key, salt="bosun.dashboard.session", signer_kwargs=signer
        )
        self._login = URLSafeTimedSerializer(
            key, salt="bosun.dashboard.login", signer_kwargs=signer
        )
        self.ttl_s = ttl_s
        """How long a session lasts after login."""

    def issue(self, key_id: str) -> tuple[str, Session]:
        """A new session (a fresh CSRF token every login) and its cookie value."""
        session = Session(key_id=key_id, csrf=secrets.token_urlsafe(32))
        return self._session.dumps({"k": session.key_id, "c": session.csrf}), session

    def read(self, cookie: str | None) -> Session:
        """The session a cookie carries; `LoginRequired` when there is none, it is forged or
        tampered with, or it is older than the TTL."""
        if not cookie:
            raise LoginRequired("missing")
        try:
            data: Any = self._session.loads(cookie, max_age=int(self.ttl_s))
        except SignatureExpired:
            raise LoginRequired("expired") from None
        except BadSignature:
            raise LoginRequired("invalid") from None
        if not (isinstance(data, dict) and isinstance(data.get("k"), str)):
            raise LoginRequired("invalid")
        return Session(key_id=data["k"], csrf=str(data.get("c", "")))

    def login_token(self) -> tuple[str, str]:
        """A token for the login form and the cookie that vouches for it."""
        token = secrets.token_urlsafe(32)
        return self._login.dumps(token), token

    def check_login_token(self, cookie: str | None, token: str | None) -> None:
        """`CsrfRejected` unless `token` is the one the login cookie vouches for."""
        try:
            expected = self._login.loads(cookie or "", max_age=_LOGIN_TTL_S)
        except BadSignature:
            raise CsrfRejected("the login form expired: load it again") from None
        if not (isinstance(expected, str) and token and same(expected, token)):
            raise CsrfRejected("the login form's token does not match: load it again")


def same(a: str, b: str) -> bool:
    """Constant-time equality of two tokens."""
    return hmac.compare_digest(a.encode(), b.encode())


def check_origin(request: Request) -> None:
    """`CsrfRejected` when a browser says the form was posted from another site. (Browsers
    send Origin on every POST; a client that sends none still needs the token.)"""
    origin = request.headers.get("origin")
    if origin is None:
        return
    host = request.headers.get("host", "")
    parts = urlsplit(origin)
    if origin == "null" or parts.netloc != host:
        raise CsrfRejected("the form was posted from another site")


def set_cookie(response: Response, request: Request, name: str, value: str, max_age: int) -> None:
    """Set a cookie scripts cannot read and other sites cannot send."""
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def secure(response: Response) -> Response:
    """Add the dashboard's security headers to `response`."""
    for name, value in _HEADERS.items():
        response.headers.setdefault(name, value)
    return response
