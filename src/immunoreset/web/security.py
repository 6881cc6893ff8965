"""Logins, sessions, API tokens and CSRF tokens of the web app.

* **Passwords** are argon2id hashes (:mod:`immunoreset.registry.users`). After
  ``login_max_failures`` failed attempts in a row an account is locked for
  ``lockout_minutes``; the lockout is written to the audit trail as a refused action.
* **Sessions** are server-side: the cookie holds a random token signed with the secret key
  (HMAC-SHA256); the database keeps only the token's SHA-256 in ``api_tokens`` (label
  ``web-session``), so logging out revokes the session on every worker.
* **API tokens** (``Authorization: Bearer …``) live in the same table under any other label.
* **CSRF tokens** are derived from the session token (HMAC with the secret key), so every form
  and every cookie-authenticated JSON write carries a value an attacker's page cannot know.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy import insert, select, update

from immunoreset.registry import Actor, Registry
from immunoreset.registry import schema as s
from immunoreset.registry.users import verify_password

__all__ = [
    "SESSION_LABEL",
    "LoginResult",
    "Principal",
    "authenticate",
    "csrf_token",
    "issue_api_token",
    "lookup_token",
    "revoke_token",
    "sign",
    "start_session",
    "unsign",
]

SESSION_LABEL = "web-session"
_DUMMY_HASH = (  # hash of a random string: makes unknown users cost a real verification
    "$argon2id$v=19$m=65536,t=3,p=4$gYqs781huwc2qMyZ/Es4hw$XT0icwwkfIZBgC9ew0/xAemZDR846uRNUWIP/Fq7FCg"
)


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
        return self.actor.role != "monitor"


@dataclass(frozen=True, slots=True)
class LoginResult:
    """Outcome of a login attempt: the username on success, else a message for the form."""

    ok: bool
    username: str | None = None
    message: str = ""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=dt.UTC)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


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


def authenticate(
    registry: Registry,
    username: str,
    password: str,
    *,
    max_failures: int,
    lockout_minutes: int,
) -> LoginResult:
    """Check a username and password, counting failures and locking the account when due."""
    users = s.users
    now = _now()
    bad = LoginResult(False, message="Unknown username or wrong password.")
    with registry.engine.connect() as conn:
        row = conn.execute(select(users).where(users.c.username == username)).mappings().first()
    if row is None or not row["active"]:
        verify_password(_DUMMY_HASH, password)  # same work as a real check: no timing oracle
        return bad
    locked = _aware(row["locked_until"])
    if locked is not None and locked > now:
        return LoginResult(
            False,
            message="Too many failed logins: this account is locked for a while. "
            "Try again later or ask an administrator.",
        )
    if verify_password(row["password_hash"], password):
        with registry.engine.begin() as conn:
            conn.execute(
                update(users)
                .where(users.c.id == row["id"])
                .values(failed_logins=0, locked_until=None)
            )
        return LoginResult(True, username=username)
    with registry.engine.begin() as conn:
        conn.execute(
            update(users)
            .where(users.c.id == row["id"])
            .values(failed_logins=users.c.failed_logins + 1)
        )
        failures = conn.execute(
            select(users.c.failed_logins).where(users.c.id == row["id"])
        ).scalar_one()
        lock = failures >= max_failures
        if lock:
            conn.execute(
                update(users)
                .where(users.c.id == row["id"])
                .values(failed_logins=0, locked_until=now + dt.timedelta(minutes=lockout_minutes))
            )
    if lock:
        registry.record_refusal(
            Actor(username=username, role=row["role"]),
            "users",
            username,
            f"login locked for {lockout_minutes} min after {max_failures} failed attempts",
        )
    return bad


def _insert_token(registry: Registry, username: str, label: str) -> str:
    token = secrets.token_urlsafe(32)
    with registry.engine.begin() as conn:
        uid = conn.execute(select(s.users.c.id).where(s.users.c.username == username)).scalar_one()
        conn.execute(
            insert(s.api_tokens).values(
                user_id=uid, token_hash=_digest(token), label=label, created_at=_now()
            )
        )
    return token


def start_session(registry: Registry, username: str) -> str:
    """Create a server-side session for a logged-in user; returns its (unsigned) token."""
    return _insert_token(registry, username, SESSION_LABEL)


def issue_api_token(registry: Registry, username: str, label: str = "api") -> str:
    """Create an API token for ``username`` (shown once; only its hash is stored)."""
    from immunoreset.errors import InvalidInput

    if not isinstance(label, str) or not label.strip() or label == SESSION_LABEL:
        raise InvalidInput("label", label, f"a non-empty label other than {SESSION_LABEL!r}")
    registry.actor_for(username)  # NotFound for an unknown or inactive user
    return _insert_token(registry, username, label)


def lookup_token(
    registry: Registry, token: str, *, session: bool, max_age_s: int | None = None
) -> Actor | None:
    """The actor of a live session token (``session=True``) or API token, else None.

    One query on one pooled connection: the token (by its unique, indexed SHA-256), its user
    and the user's site memberships, so authenticating a request costs a single round trip.
    """
    t, u, us = s.api_tokens, s.users, s.user_sites
    with registry.engine.connect() as conn:
        rows = conn.execute(
            select(
                t.c.label,
                t.c.created_at,
                t.c.revoked_at,
                u.c.username,
                u.c.role,
                u.c.active,
                us.c.site_code,
            )
            .select_from(t.join(u, u.c.id == t.c.user_id).outerjoin(us, us.c.user_id == u.c.id))
            .where(t.c.token_hash == _digest(token))
        ).all()
    if not rows:
        return None
    row = rows[0]
    if row.revoked_at is not None or not row.active:
        return None
    if (row.label == SESSION_LABEL) != session:
        return None
    if max_age_s is not None:
        created = _aware(row.created_at)
        if created is None or created < _now() - dt.timedelta(seconds=max_age_s):
            return None
    sites = frozenset(r.site_code for r in rows if r.site_code is not None)
    return Actor(username=row.username, role=row.role, sites=None if row.role == "admin" else sites)


def revoke_token(registry: Registry, token: str) -> None:
    """Revoke a session or API token (logout)."""
    with registry.engine.begin() as conn:
        conn.execute(
            update(s.api_tokens)
            .where(s.api_tokens.c.token_hash == _digest(token))
            .values(revoked_at=_now())
        )
