"""Login, session cookie, lockout, logout, CSRF and bearer tokens."""

from __future__ import annotations

import pytest

from immunoreset.registry import Registry
from immunoreset.web.security import issue_api_token
from tests.web.conftest import PASSWORD, csrf_of, login


@pytest.mark.parametrize("path", ["/", "/patients/RM-001", "/batches", "/audit", "/reports"])
def test_pages_redirect_to_login(client, path: str) -> None:
    resp = client.get(path, follow_redirects=False)
    assert resp.status_code == 303
    assert resp.headers["location"].startswith("/login?next=")


@pytest.mark.parametrize(
    "path", ["/api/v1/patients", "/api/v1/patients/RM-001/course", "/api/openapi.json"]
)
def test_api_needs_authentication(client, path: str) -> None:
    resp = client.get(path)
    assert resp.status_code == 401
    assert resp.headers["www-authenticate"] == "Bearer"


def test_login_sets_a_hardened_session_cookie(client) -> None:
    resp = login(client, "rosa")
    assert resp.status_code == 303 and resp.headers["location"] == "/"
    cookie = resp.headers["set-cookie"]
    assert "immunoreset_session=" in cookie
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert "Secure" not in cookie  # secure_cookies=False in the test settings
    assert client.get("/").status_code == 200


def test_secure_flag_when_configured(registry: Registry, settings) -> None:
    from fastapi.testclient import TestClient

    from immunoreset.web import create_app

    secure = settings.model_copy(update={"secure_cookies": True})
    with TestClient(create_app(registry, secure), base_url="https://testserver") as c:
        resp = login(c, "rosa")
    assert "Secure" in resp.headers["set-cookie"]


def test_wrong_password_is_refused(client) -> None:
    resp = login(client, "rosa", "not the password")
    assert resp.status_code == 401
    assert "Unknown username or wrong password" in resp.text
    assert client.get("/", follow_redirects=False).status_code == 303


def test_unknown_user_gets_the_same_message(client) -> None:
    resp = login(client, "nobody", PASSWORD)
    assert resp.status_code == 401 and "Unknown username or wrong password" in resp.text


def test_login_without_csrf_is_refused(client) -> None:
    resp = client.post("/login", data={"username": "rosa", "password": PASSWORD})
    assert resp.status_code == 403
    assert client.get("/", follow_redirects=False).status_code == 303


def test_repeated_failures_slow_down_that_address_only(client, registry: Registry) -> None:
    """Issue 13 item 6: progressive delay by address and account, never a ward lockout."""
    for _ in range(3):  # login_free_failures=3 in the test settings
        assert login(client, "rosa", "wrong password!").status_code == 401
    for _ in range(10):  # the delays double (1, 2, 4 s …) until an attempt comes too early
        resp = login(client, "rosa", "wrong password!")
        if resp.status_code == 429 and int(resp.headers["retry-after"]) >= 2:
            break
    assert resp.status_code == 429 and "before trying again" in resp.text
    resp = login(client, "rosa")  # the right password, but too early from this address
    assert resp.status_code == 429
    assert client.get("/", follow_redirects=False).status_code == 303  # not logged in
    trail = registry.audit_trail(registry.actor_for("admin"), limit=5)
    assert any(e["action"] == "refused" and e["record_key"] == "rosa" for e in trail)
    assert login(client, "erik").status_code == 303  # other accounts unaffected


def test_success_resets_the_failure_count(client) -> None:
    for _ in range(2):
        login(client, "rosa", "wrong password!")
    assert login(client, "rosa").status_code == 303
    for _ in range(2):
        login(client, "rosa", "wrong password!")
    assert login(client, "rosa").status_code == 303


def test_logout_revokes_the_session(client, as_user) -> None:
    csrf = as_user("rosa")
    old_cookie = client.cookies.get("immunoreset_session")
    resp = client.post("/logout", data={"csrf_token": csrf}, follow_redirects=False)
    assert resp.status_code == 303 and resp.headers["location"] == "/login"
    assert client.get("/", follow_redirects=False).status_code == 303
    client.cookies.set("immunoreset_session", old_cookie)  # a stolen copy of the cookie
    assert client.get("/", follow_redirects=False).status_code == 303


def test_logout_needs_csrf(client, as_user) -> None:
    as_user("rosa")
    assert client.post("/logout", data={}).status_code == 403
    assert client.get("/").status_code == 200


def test_forged_cookie_is_ignored(client) -> None:
    client.cookies.set("immunoreset_session", "abc.def")
    assert client.get("/", follow_redirects=False).status_code == 303


def test_bearer_token(client, registry: Registry) -> None:
    token = issue_api_token(registry, "rosa", "site system")
    resp = client.get("/api/v1/patients", headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 200
    assert {p["site"] for p in resp.json()} == {"ROME"}


@pytest.mark.parametrize("header", ["Bearer nonsense", "Basic cm9zYTpwdw==", "Bearer "])
def test_bad_authorization_header(client, header: str) -> None:
    resp = client.get("/api/v1/patients", headers={"Authorization": header})
    assert resp.status_code == 401


def test_session_token_is_not_a_bearer_token(client, as_user) -> None:
    as_user("rosa")
    raw = client.cookies.get("immunoreset_session").rsplit(".", 1)[0]
    client.cookies.clear()
    resp = client.get("/api/v1/patients", headers={"Authorization": f"Bearer {raw}"})
    assert resp.status_code == 401


def test_csrf_token_is_in_every_form(client, as_user) -> None:
    as_user("rosa")
    page = client.get("/patients/RM-001/assessments/new")
    assert csrf_of(page.text)
