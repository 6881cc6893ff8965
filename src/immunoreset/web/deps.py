"""Request dependencies as named ``Annotated`` types: who is asking, what they may see, CSRF.

* :data:`RegistryDep` — the app's :class:`~immunoreset.registry.Registry`.
* :data:`CurrentUser` — the :class:`~.security.Principal` of a session cookie or a bearer token;
  without either, pages redirect to ``/login`` and the API answers 401.
* :data:`SiteScope` — the principal's :class:`~immunoreset.registry.Actor`: every registry call
  takes it, so site scoping and read-only monitors are the repository's rules.
* :data:`CsrfChecked` — :data:`CurrentUser` after the CSRF check of an unsafe request: the
  form field ``csrf_token`` or the ``X-CSRF-Token`` header must match the session's token.
  Bearer-token clients are exempt (a browser never sends their token on its own).

The trivial dependencies are ``async`` so that FastAPI runs them on the event loop instead of
sending each through the thread pool; only :func:`get_principal` (one database query) runs in a
worker thread.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Query, Request

from immunoreset.registry import Actor, Registry
from immunoreset.web import security
from immunoreset.web.settings import WebSettings

__all__ = [
    "MAX_PAGE",
    "SESSION_COOKIE",
    "CsrfChecked",
    "CurrentUser",
    "LoginRequired",
    "PageNumber",
    "RegistryDep",
    "SettingsDep",
    "SiteScope",
]

SESSION_COOKIE = "immunoreset_session"

#: Highest page number a list accepts: far beyond any registry, far below an offset that
#: overflows a database integer (``?page=10**20`` answered 500 before).
MAX_PAGE = 1_000_000
PageNumber = Annotated[
    int, Query(le=MAX_PAGE, description="Page number (below 1 shows the first), ≤ 1,000,000")
]


class LoginRequired(Exception):
    """No valid session or token: pages redirect to the login form, the API answers 401."""


async def get_registry(request: Request) -> Registry:
    return request.app.state.registry


async def get_settings(request: Request) -> WebSettings:
    return request.app.state.settings


RegistryDep = Annotated[Registry, Depends(get_registry)]
SettingsDep = Annotated[WebSettings, Depends(get_settings)]


def get_principal(
    request: Request, registry: RegistryDep, settings: SettingsDep
) -> security.Principal:
    cached = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    auth = request.headers.get("authorization", "")
    principal = None
    if auth:
        scheme, _, value = auth.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise LoginRequired()
        actor = security.lookup_token(registry, value.strip(), session=False)
        if actor is not None:
            principal = security.Principal(actor, "token", value.strip())
    else:
        token = security.unsign(settings.key, request.cookies.get(SESSION_COOKIE))
        if token is not None:
            actor = security.lookup_token(
                registry, token, session=True, max_age_s=settings.session_max_age
            )
            if actor is not None:
                principal = security.Principal(actor, "session", token)
    if principal is None:
        raise LoginRequired()
    request.state.principal = principal
    return principal


CurrentUser = Annotated[security.Principal, Depends(get_principal)]


async def get_actor(principal: CurrentUser) -> Actor:
    return principal.actor


SiteScope = Annotated[Actor, Depends(get_actor)]


async def check_csrf(
    request: Request, principal: CurrentUser, settings: SettingsDep
) -> security.Principal:
    if principal.via != "session":
        return principal
    sent = request.headers.get("x-csrf-token")
    if sent is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()
        value = form.get("csrf_token")
        sent = value if isinstance(value, str) else None
    expected = security.csrf_token(settings.key, principal.token)
    if not sent or not hmac.compare_digest(sent, expected):
        raise HTTPException(403, "missing or wrong CSRF token: reload the page and try again")
    return principal


CsrfChecked = Annotated[security.Principal, Depends(check_csrf)]
