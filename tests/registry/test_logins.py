"""Logins, throttling, tokens and accounts (issue 13 item 6): each attack is refused and
leaves the stored accounts and tokens as they were."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import select, update

from immunoreset.errors import InvalidInput, NotFound, PermissionDenied
from immunoreset.registry import Registry, system_actor
from immunoreset.registry import schema as s
from immunoreset.registry.logins import (
    BAD_LOGIN,
    Throttle,
    authenticate,
    deactivate_user,
    issue_api_token,
    list_tokens,
    login_delay,
    lookup_token,
    revoke_token_id,
    set_password,
    unlock_user,
)

ADMIN = system_actor("tester")
PW = "correct horse battery"
T0 = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)
THROTTLE = Throttle(free_failures=3, max_delay_s=900)


@pytest.fixture
def registry(db_url: str) -> Iterator[Registry]:
    with Registry(db_url, upgrade=True) as reg:
        reg.add_site(ADMIN, "ROME", "Bambino Gesù")
        reg.add_user(ADMIN, "rosa", "investigator", ["ROME"], password=PW)
        reg.add_user(ADMIN, "root", "admin", [], password=PW)
        yield reg


def _login(reg: Registry, user: str, pw: str, client: str = "10.0.0.9", at: float = 0.0):  # type: ignore[no-untyped-def]
    return authenticate(
        reg, user, pw, client=client, throttle=THROTTLE, now=T0 + dt.timedelta(seconds=at)
    )


@pytest.mark.parametrize(
    ("failures", "delay"), [(0, 0), (2, 0), (3, 1), (4, 2), (5, 4), (13, 900), (99, 900)]
)
def test_delay_doubles_up_to_the_ceiling(failures: int, delay: float) -> None:
    assert login_delay(failures, 3, 900) == delay


def test_unknown_wrong_and_deactivated_answer_alike(registry: Registry) -> None:
    registry.add_user(ADMIN, "gone", "investigator", ["ROME"], password=PW)
    deactivate_user(registry, ADMIN, "gone", reason="left the unit")
    answers = {
        _login(registry, "nobody", PW, client="a").message,
        _login(registry, "rosa", "wrong password", client="b").message,
        _login(registry, "gone", PW, client="c").message,
    }
    assert answers == {BAD_LOGIN}
    # timing: each does one argon2 verification (the unknown user a dummy one)
    spent = []
    for user, pw in (("nobody", PW), ("rosa", "wrong password")):
        t = time.perf_counter()
        _login(registry, user, pw, client=f"t-{user}")
        spent.append(time.perf_counter() - t)
    assert max(spent) < 5 * min(spent)


def test_attacker_cannot_lock_out_the_ward(registry: Registry) -> None:
    for i in range(20):  # an attacker hammering rosa from elsewhere
        _login(registry, "rosa", "guess", client="203.0.113.7", at=i * 1000)
    attacker = _login(registry, "rosa", PW, client="203.0.113.7", at=19_010)
    assert not attacker.ok and attacker.retry_after_s > 0  # even the right password waits
    ward = _login(registry, "rosa", PW, client="10.1.1.20", at=19_010)
    assert ward.ok  # the ward's own address is not throttled: no lockout by proxy


def test_throttle_is_progressive_and_cleared_by_success(registry: Registry) -> None:
    for i in range(3):
        assert not _login(registry, "rosa", "guess", at=i).ok
    early = _login(registry, "rosa", PW, at=2.5)  # the 3rd failure (at 2 s) asks for 1 s
    assert not early.ok and early.retry_after_s == 1
    assert not _login(registry, "rosa", "guess", at=3.5).ok  # 4th failure: wait 2 s
    assert _login(registry, "rosa", PW, at=4.5).retry_after_s == 1
    assert _login(registry, "rosa", PW, at=5.6).ok
    assert _login(registry, "rosa", "guess", at=8).message == BAD_LOGIN  # count restarted
    assert _login(registry, "rosa", PW, at=9).ok


def test_unknown_accounts_are_throttled_like_real_ones(registry: Registry) -> None:
    for i in range(3):
        _login(registry, "nobody", "guess", at=i)
        _login(registry, "rosa", "guess", at=i)
    a, b = _login(registry, "nobody", "x", at=3.2), _login(registry, "rosa", "x", at=3.2)
    assert (a.message, a.retry_after_s) == (b.message, b.retry_after_s)


def test_unlock_is_admin_only_and_clears_the_delays(registry: Registry) -> None:
    for i in range(5):
        _login(registry, "rosa", "guess", at=i * 100)
    rosa = registry.actor_for("rosa")
    with pytest.raises(PermissionDenied):
        unlock_user(registry, rosa, "rosa", reason="let me in")
    assert _login(registry, "rosa", PW, at=401).retry_after_s == 3  # still throttled
    assert unlock_user(registry, ADMIN, "rosa", reason="called the helpdesk") == 2
    assert _login(registry, "rosa", PW, at=401).ok
    entry = registry.audit_trail(ADMIN, limit=1)[0]
    assert (entry["record_key"], entry["field"]) == ("rosa", "login_throttle")


def test_tokens_expire_and_are_revocable_by_owner_or_admin(registry: Registry) -> None:
    token = issue_api_token(registry, "rosa", "lab system", days=30)
    assert lookup_token(registry, token, session=False).username == "rosa"
    with registry.engine.begin() as conn:  # thirty-one days later
        conn.execute(
            update(s.api_tokens).values(expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(1))
        )
    assert lookup_token(registry, token, session=False) is None
    fresh = issue_api_token(registry, "root", "admin script")
    rosa = registry.actor_for("rosa")
    assert [t["label"] for t in list_tokens(registry, rosa)] == ["lab system"]
    with pytest.raises(PermissionDenied):
        list_tokens(registry, rosa, username="root")
    root_id = list_tokens(registry, ADMIN, username="root")[0]["id"]
    with pytest.raises(NotFound):  # another user's token is not even found
        revoke_token_id(registry, rosa, root_id, reason="mischief")
    assert lookup_token(registry, fresh, session=False) is not None
    revoke_token_id(registry, ADMIN, root_id, reason="rotated")
    assert lookup_token(registry, fresh, session=False) is None
    with pytest.raises(InvalidInput, match="days"):
        issue_api_token(registry, "rosa", "forever", days=100_000)


def test_passwd_own_needs_the_old_password_and_revokes_tokens(registry: Registry) -> None:
    token = issue_api_token(registry, "rosa", "lab system")
    rosa = registry.actor_for("rosa")
    with registry.engine.connect() as conn:
        before = conn.execute(select(s.users.c.password_hash)).all()
    with pytest.raises(PermissionDenied, match="old password"):
        set_password(registry, rosa, "rosa", "new password 123", old_password="guess")
    with pytest.raises(PermissionDenied):
        set_password(registry, rosa, "root", "new password 123", old_password=PW)
    with registry.engine.connect() as conn:
        assert conn.execute(select(s.users.c.password_hash)).all() == before
    set_password(registry, rosa, "rosa", "new password 123", old_password=PW)
    assert lookup_token(registry, token, session=False) is None
    assert _login(registry, "rosa", "new password 123").ok
    assert registry.audit_trail(ADMIN, limit=1)[0]["new_value"].startswith("(changed")
    assert PW not in str(registry.audit_trail(ADMIN, limit=50))


def test_deactivate_is_admin_only(registry: Registry) -> None:
    rosa = registry.actor_for("rosa")
    with pytest.raises(PermissionDenied):
        deactivate_user(registry, rosa, "root", reason="coup")
    assert registry.actor_for("root").role == "admin"
    deactivate_user(registry, ADMIN, "rosa", reason="left")
    with pytest.raises(NotFound):
        registry.actor_for("rosa")
    assert not _login(registry, "rosa", PW).ok
