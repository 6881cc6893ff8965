"""Logins, sessions, API tokens and CSRF tokens of the web app.

* **Passwords** are argon2id hashes (:mod:`immunoreset.registry.users`). Failed logins are
  throttled by client address and account together with doubling delays, never a lockout
  (:mod:`immunoreset.registry.logins`, shared with the command line).
* **Sessions** are server-side: the cookie holds a random token signed with the secret key
  (HMAC-SHA256); the database keeps only the token's SHA-256 in ``api_tokens`` (label
  ``web-session``), so logging out revokes the session on every worker.
* **API tokens** (``Authorization: Bearer …``) live in the same table under any other label
  and expire (``IMMUNORESET_TOKEN_DAYS``); ``immunoreset token list`` / ``token revoke``.
* **CSRF tokens** are derived from the session token (HMAC with the secret key), so every form
  and every cookie-authenticated JSON write carries a value an attacker's page cannot know.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass

from immunoreset.registry import Actor
from immunoreset.registry.logins import (
    SESSION_LABEL,
    LoginResult,
    Throttle,
    authenticate,
    issue_api_token,
    lookup_token,
    revoke_token,
    start_session,
)

__all__ = [
    "SESSION_LABEL",
    "LoginResult",
    "Principal",
    "Throttle",
    "authenticate",
    "csrf_token",
    "issue_api_token",
    "lookup_token",
    "revoke_token",
    "sign",
    "start_session",
    "unsign",
]


@dataclass(frozen=True, slots=True)
class Principal:
    """Who sent a request: the registry actor, how they authenticated, their session token."""

    actor: Actor
    via: str  # "session" | "token"
    token: str

    @property
    def username(self) -> str:
        return self.actor.username

    @property
    def can_write(self) -> bool:
        """May write clinical data (monitors read only; qa writes GMP records only)."""
        return self.actor.role not in ("monitor", "qa")

    @property
    def can_write_gmp(self) -> bool:
        """May enter GMP records such as QC results (every role but monitor)."""
        return self.actor.role != "monitor"

    @property
    def can_sign(self) -> bool:
        """May sign releases and deviation approvals (the qa role, with their password)."""
        return self.actor.role == "qa"


def _mac(key: bytes, message: str) -> str:
    raw = hmac.new(key, message.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def sign(key: bytes, token: str) -> str:
    """``token.signature`` for a cookie."""
    return f"{token}.{_mac(key, 'session:' + token)}"


def unsign(key: bytes, value: str | None) -> str | None:
    """The token of a signed cookie value, or None when the signature does not match."""
    if not value or "." not in value:
        return None
    token, _, mac = value.rpartition(".")
    if not token or not hmac.compare_digest(mac, _mac(key, "session:" + token)):
        return None
    return token


def csrf_token(key: bytes, token: str, *, purpose: str = "csrf") -> str:
    """The CSRF token bound to a session (or pre-login) token."""
    return _mac(key, f"{purpose}:{token}")
