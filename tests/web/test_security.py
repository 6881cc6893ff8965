"""Token lookup (one query: token, user and sites) and the headers every response carries."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import update

from immunoreset.registry import Registry
from immunoreset.registry import schema as s
from immunoreset.web import security
from tests.web.conftest import USERS


@pytest.mark.parametrize("username", sorted(USERS))
@pytest.mark.parametrize(
    ("make", "session"),
    [(security.start_session, True), (security.issue_api_token, False)],
    ids=["session", "api-token"],
)
def test_lookup_gives_the_registry_actor(registry: Registry, username, make, session) -> None:
    token = make(registry, username)
    actor = security.lookup_token(registry, token, session=session)
    assert actor == registry.actor_for(username)


@pytest.mark.parametrize(
    ("make", "session"),
    [(security.start_session, False), (security.issue_api_token, True)],
    ids=["session-as-api-token", "api-token-as-session"],
)
def test_token_of_the_other_kind_is_refused(registry: Registry, make, session) -> None:
    token = make(registry, "rosa")
    assert security.lookup_token(registry, token, session=session) is None


def test_unknown_token_is_refused(registry: Registry) -> None:
    assert security.lookup_token(registry, "no-such-token", session=False) is None


def test_revoked_token_is_refused(registry: Registry) -> None:
    token = security.issue_api_token(registry, "rosa")
    security.revoke_token(registry, token)
    assert security.lookup_token(registry, token, session=False) is None


def test_inactive_user_is_refused(registry: Registry) -> None:
    token = security.issue_api_token(registry, "rosa")
    with registry.engine.begin() as conn:
        conn.execute(update(s.users).where(s.users.c.username == "rosa").values(active=False))
    assert security.lookup_token(registry, token, session=False) is None


@pytest.mark.parametrize(
    ("age_s", "live"),
    [(3599, True), (3601, False)],
    ids=["inside-max-age", "past-max-age"],
)
def test_session_max_age(registry: Registry, age_s: int, live: bool) -> None:
    token = security.start_session(registry, "rosa")
    created = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=age_s)
    with registry.engine.begin() as conn:
        conn.execute(update(s.api_tokens).values(created_at=created))
    actor = security.lookup_token(registry, token, session=True, max_age_s=3600)
    assert (actor is not None) is live


def test_user_without_sites_sees_none(registry: Registry) -> None:
    from immunoreset.registry import system_actor

    registry.add_user(system_actor(), "nosite", "investigator", (), password="x" * 12)
    token = security.issue_api_token(registry, "nosite")
    actor = security.lookup_token(registry, token, session=False)
    assert actor is not None and actor.sites == frozenset()
    assert actor == registry.actor_for("nosite")


SERVER_TIMING = re.compile(r"^app;dur=\d+\.\d$")


@pytest.mark.parametrize(
    ("path", "status", "no_store"),
    [
        ("/login", 200, True),
        ("/", 200, True),
        ("/patients/RM-001", 200, True),
        ("/patients/NOPE-1", 404, True),
        ("/api/v1/patients", 200, True),
        ("/static/app.css", 200, False),
        ("/static/plotly.min.js", 200, False),
    ],
)
def test_every_response_has_security_headers_and_server_timing(
    client, as_user, path: str, status: int, no_store: bool
) -> None:
    as_user("rosa")
    resp = client.get(path)
    assert resp.status_code == status
    assert "script-src 'self'" in resp.headers["content-security-policy"]
    assert resp.headers["x-content-type-options"] == "nosniff"
    assert resp.headers["x-frame-options"] == "DENY"
    assert resp.headers["referrer-policy"] == "same-origin"
    assert SERVER_TIMING.match(resp.headers["server-timing"])
    assert (resp.headers.get("cache-control") == "no-store") is no_store


def test_headers_are_not_duplicated(client, as_user) -> None:
    as_user("rosa")
    resp = client.get("/static/plotly.min.js")
    assert resp.headers.get_list("cache-control") == ["public, max-age=86400"]
    assert len(resp.headers.get_list("content-security-policy")) == 1
