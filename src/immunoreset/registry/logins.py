"""Password logins with throttling, API tokens with expiry, account operations.

Shared by the web app and the command line (``--user`` authenticates through here).

Throttling, not lockout
-----------------------
Failed logins are counted per **client address and account together** (key
``pair:<address>|<user>``) and, with a ten times higher allowance and a short ceiling, per
account from all addresses (``account:<user>``, against a slow distributed guess). After
``free_failures`` failures the next attempt must wait 1 s, then 2, 4, … up to ``max_delay_s``;
an attempt made too early is refused without looking at the password. A correct password from
the same address clears that address's count. So an attacker elsewhere can slow a ward's
logins by at most ``ACCOUNT_MAX_DELAY_S`` and can never lock it out, and an administrator can
clear every count with ``immunoreset user unlock``. Unknown users, deactivated users and
wrong passwords get the same answer after the same argon2 work; a throttled attempt is decided
by the address/account pair, whether or not the account exists, so it discloses nothing either.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, insert, select, update

from immunoreset.errors import InvalidInput, NotFound, PermissionDenied
from immunoreset.registry import schema as s
from immunoreset.registry.access import Actor, check_reason
from immunoreset.registry.users import hash_password, verify_password

if TYPE_CHECKING:
    from immunoreset.registry.repository import Registry

__all__ = [
    "ACCOUNT_MAX_DELAY_S",
    "SESSION_LABEL",
    "LoginResult",
    "Throttle",
    "authenticate",
    "deactivate_user",
    "issue_api_token",
    "list_tokens",
    "login_delay",
    "lookup_token",
    "revoke_token",
    "revoke_token_id",
    "set_password",
    "unlock_user",
]

SESSION_LABEL = "web-session"
#: Ceiling of the per-account delay (all addresses together), s.
ACCOUNT_MAX_DELAY_S = 60
#: Failures older than this no longer count (s).
FORGET_AFTER_S = 24 * 3600
_DUMMY_HASH = (  # hash of a random string: makes unknown users cost a real verification
    "$argon2id$v=19$m=65536,t=3,p=4$gYqs781huwc2qMyZ/Es4hw$XT0icwwkfIZBgC9ew0/xAemZDR846uRNUWIP/Fq7FCg"
)
BAD_LOGIN = "Unknown username or wrong password."


@dataclass(frozen=True, slots=True)
class Throttle:
    """Login throttling: free failures per address+account, then doubling delays (s)."""

    free_failures: int = 5
    max_delay_s: float = 900.0


@dataclass(frozen=True, slots=True)
class LoginResult:
    """Outcome of a login attempt: the username on success, else a message for the form."""

    ok: bool
    username: str | None = None
    message: str = ""
    retry_after_s: int = 0


def login_delay(failures: int, free: int, ceiling: float) -> float:
    """Seconds to wait after ``failures`` failures: 0 up to ``free``, then 1, 2, 4, … ≤ ceiling."""
    if failures < free:
        return 0.0
    return float(min(ceiling, 2.0 ** min(failures - free, 40)))


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=dt.UTC)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _keys(client: str, username: str) -> tuple[str, str]:
    return f"pair:{client[:150]}|{username[:200]}", f"account:{username[:200]}"


def authenticate(
    registry: Registry,
    username: str,
    password: str,
    *,
    client: str,
    throttle: Throttle = Throttle(),
    now: dt.datetime | None = None,
) -> LoginResult:
    """Check a username and password from ``client`` (an address), with throttling."""
    now = now or _now()
    username = username[:200]
    pair, account = _keys(client or "unknown", username)
    t = s.login_throttle
    with registry.engine.connect() as conn:
        rows = {
            r.key: r
            for r in conn.execute(select(t).where(t.c.key.in_([pair, account])))
            if _aware(r.last_failure_at) > now - dt.timedelta(seconds=FORGET_AFTER_S)
        }
        user = (
            conn.execute(select(s.users).where(s.users.c.username == username)).mappings().first()
        )
    waits = [_aware(r.wait_until) for r in rows.values() if r.wait_until is not None]
    wait_until = max((w for w in waits if w is not None), default=None)
    if wait_until is not None and wait_until > now:
        seconds = max(1, math.ceil((wait_until - now).total_seconds()))
        return LoginResult(
            False,
            message=f"Too many failed attempts: wait {seconds} s before trying again.",
            retry_after_s=seconds,
        )
    known = user is not None and user["active"] and user["password_hash"]
    ok = verify_password(user["password_hash"] if known else _DUMMY_HASH, password) and known
    with registry.engine.begin() as conn:
        if ok:
            conn.execute(delete(t).where(t.c.key == pair))
            return LoginResult(True, username=username)
        for key, free, ceiling in (
            (pair, throttle.free_failures, throttle.max_delay_s),
            (account, 10 * throttle.free_failures, min(ACCOUNT_MAX_DELAY_S, throttle.max_delay_s)),
        ):
            failures = (rows[key].failures if key in rows else 0) + 1
            delay = login_delay(failures, free, ceiling)
            values = {
                "failures": failures,
                "last_failure_at": now,
                "wait_until": now + dt.timedelta(seconds=delay) if delay else None,
            }
            exists = conn.execute(select(t.c.key).where(t.c.key == key)).first()
            if exists:
                conn.execute(update(t).where(t.c.key == key).values(**values))
            else:
                conn.execute(insert(t).values(key=key, username=username, **values))
            if failures == free and key == pair:
                _audit(
                    conn,
                    username,
                    "refused",
                    "users",
                    username,
                    reason=f"login throttled after {failures} failed attempts from {client}",
                    now=now,
                )
    return LoginResult(False, message=BAD_LOGIN)


def _audit(
    conn: Any,
    username: str,
    action: str,
    table: str,
    key: str,
    *,
    reason: str,
    now: dt.datetime,
    field: str | None = None,
    new: str | None = None,
) -> None:
    conn.execute(
        insert(s.audit_log).values(
            ts=now,
            username=username,
            action=action,
            table_name=table,
            record_key=key,
            study_id=None,
            field=field,
            old_value=None,
            new_value=new,
            reason=reason,
        )
    )


# --------------------------------------------------------------------------- tokens
def _insert_token(
    registry: Registry, username: str, label: str, expires_at: dt.datetime | None
) -> str:
    token = secrets.token_urlsafe(32)
    with registry.engine.begin() as conn:
        uid = conn.execute(select(s.users.c.id).where(s.users.c.username == username)).scalar_one()
        conn.execute(
            insert(s.api_tokens).values(
                user_id=uid,
                token_hash=_digest(token),
                label=label,
                created_at=_now(),
                expires_at=expires_at,
            )
        )
    return token


def start_session(registry: Registry, username: str) -> str:
    """Create a server-side session for a logged-in user; returns its (unsigned) token."""
    return _insert_token(registry, username, SESSION_LABEL, None)


def issue_api_token(
    registry: Registry, username: str, label: str = "api", *, days: int = 90
) -> str:
    """Create an API token for ``username`` valid ``days`` days (shown once; hash stored)."""
    if not isinstance(label, str) or not label.strip() or label == SESSION_LABEL:
        raise InvalidInput("label", label, f"a non-empty label other than {SESSION_LABEL!r}")
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 3650:
        raise InvalidInput("days", days, "a whole number of days within 1–3650")
    registry.actor_for(username)  # NotFound for an unknown or inactive user
    return _insert_token(registry, username, label, _now() + dt.timedelta(days=days))


def lookup_token(
    registry: Registry, token: str, *, session: bool, max_age_s: int | None = None
) -> Actor | None:
    """The actor of a live session token (``session=True``) or API token, else None.

    Revoked, expired (``expires_at``, or older than ``max_age_s``) and deactivated users'
    tokens are refused. One query: token, user and site memberships.
    """
    t, u, us = s.api_tokens, s.users, s.user_sites
    with registry.engine.connect() as conn:
        rows = conn.execute(
            select(
                t.c.label,
                t.c.created_at,
                t.c.revoked_at,
                t.c.expires_at,
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
    now = _now()
    if row.revoked_at is not None or not row.active:
        return None
    if (row.label == SESSION_LABEL) != session:
        return None
    expires = _aware(row.expires_at)
    if expires is not None and expires <= now:
        return None
    if max_age_s is not None:
        created = _aware(row.created_at)
        if created is None or created < now - dt.timedelta(seconds=max_age_s):
            return None
    sites = frozenset(r.site_code for r in rows if r.site_code is not None)
    return Actor(username=row.username, role=row.role, sites=None if row.role == "admin" else sites)


def revoke_token(registry: Registry, token: str) -> None:
    """Revoke a session or API token by its value (logout)."""
    with registry.engine.begin() as conn:
        conn.execute(
            update(s.api_tokens)
            .where(s.api_tokens.c.token_hash == _digest(token))
            .values(revoked_at=_now())
        )


def list_tokens(
    registry: Registry, actor: Actor, *, username: str | None = None
) -> list[dict[str, Any]]:
    """API tokens (not web sessions) of ``username`` — one's own, or anyone's for an admin."""
    if username is not None and username != actor.username:
        actor.require_admin("list another user's tokens")
    elif username is None and not actor.all_sites:
        username = actor.username
    t, u = s.api_tokens, s.users
    q = (
        select(t.c.id, u.c.username, t.c.label, t.c.created_at, t.c.expires_at, t.c.revoked_at)
        .select_from(t.join(u, u.c.id == t.c.user_id))
        .where(t.c.label != SESSION_LABEL)
        .order_by(t.c.id)
    )
    if username is not None:
        q = q.where(u.c.username == username)
    with registry.engine.connect() as conn:
        return [dict(r) for r in conn.execute(q).mappings()]


def revoke_token_id(registry: Registry, actor: Actor, token_id: int, *, reason: str) -> None:
    """Revoke one API token by its id (its owner or an admin; audited)."""
    check_reason(reason)
    t, u = s.api_tokens, s.users
    now = _now()
    with registry.engine.begin() as conn:
        row = conn.execute(
            select(t.c.id, t.c.revoked_at, t.c.label, u.c.username)
            .select_from(t.join(u, u.c.id == t.c.user_id))
            .where(t.c.id == token_id, t.c.label != SESSION_LABEL)
        ).first()
        if row is None or (row.username != actor.username and not actor.all_sites):
            raise NotFound("token", str(token_id))
        if row.revoked_at is not None:
            raise InvalidInput("token", token_id, "a token not yet revoked")
        conn.execute(update(t).where(t.c.id == token_id).values(revoked_at=now))
        _audit(
            conn,
            actor.username,
            "update",
            "api_tokens",
            f"{row.username}/{token_id}",
            field="revoked_at",
            new=now.isoformat(),
            reason=reason,
            now=now,
        )


# --------------------------------------------------------------------------- accounts
def _user_row(conn: Any, username: str) -> Any:
    row = conn.execute(select(s.users).where(s.users.c.username == username)).mappings().first()
    if row is None:
        raise NotFound("user", username)
    return row


def unlock_user(registry: Registry, actor: Actor, username: str, *, reason: str) -> int:
    """Clear every login delay of ``username`` (admin only; audited). Returns counts cleared."""
    actor.require_admin("unlock a user")
    check_reason(reason)
    now = _now()
    with registry.engine.begin() as conn:
        _user_row(conn, username)
        n = conn.execute(
            delete(s.login_throttle).where(s.login_throttle.c.username == username)
        ).rowcount
        _audit(
            conn,
            actor.username,
            "update",
            "users",
            username,
            reason=reason,
            now=now,
            field="login_throttle",
            new="cleared",
        )
    return int(n or 0)


def set_password(
    registry: Registry,
    actor: Actor,
    username: str,
    new_password: str,
    *,
    old_password: str | None = None,
    reason: str = "password changed",
) -> None:
    """Set a user's password: their own (with the old one) or anyone's as an admin.

    Every session and API token of the user is revoked (a stolen one dies with the old
    password). Audited; the audit row never holds the password or its hash.
    """
    check_reason(reason)
    own = actor.username == username
    if not own:
        actor.require_admin("set another user's password")
    new_hash = hash_password(new_password)
    now = _now()
    with registry.engine.begin() as conn:
        row = _user_row(conn, username)
        if (
            own
            and not actor.all_sites
            and not verify_password(row["password_hash"], old_password or "")
        ):
            raise PermissionDenied(
                actor.username, "change the password", "the old password is wrong"
            )
        conn.execute(
            update(s.users).where(s.users.c.id == row["id"]).values(password_hash=new_hash)
        )
        _revoke_all_tokens(conn, row["id"], now)
        _audit(
            conn,
            actor.username,
            "update",
            "users",
            username,
            reason=reason,
            now=now,
            field="password_hash",
            new="(changed; sessions and tokens revoked)",
        )


def _revoke_all_tokens(conn: Any, user_id: int, now: dt.datetime) -> None:
    """Revoke every live API token of a user (a changed password or a deactivated account)."""
    conn.execute(
        update(s.api_tokens)
        .where(s.api_tokens.c.user_id == user_id, s.api_tokens.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )


def deactivate_user(registry: Registry, actor: Actor, username: str, *, reason: str) -> None:
    """Deactivate a user (admin only; audited): no login, every token revoked, history kept."""
    actor.require_admin("deactivate a user")
    check_reason(reason)
    if username == actor.username:
        raise InvalidInput("username", username, "another user (not yourself)")
    now = _now()
    with registry.engine.begin() as conn:
        row = _user_row(conn, username)
        if not row["active"]:
            raise InvalidInput("username", username, "an active user")
        conn.execute(update(s.users).where(s.users.c.id == row["id"]).values(active=False))
        _revoke_all_tokens(conn, row["id"], now)
        _audit(
            conn,
            actor.username,
            "update",
            "users",
            username,
            reason=reason,
            now=now,
            field="active",
            new="false",
        )
