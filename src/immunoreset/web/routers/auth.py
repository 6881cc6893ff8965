"""Login (argon2 password, throttled by client address and account) and logout."""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from immunoreset.web import security
from immunoreset.web.deps import SESSION_COOKIE, CsrfChecked, RegistryDep, SettingsDep
from immunoreset.web.rendering import render

__all__ = ["router"]

router = APIRouter(tags=["auth"])
PRELOGIN_COOKIE = "immunoreset_prelogin"


def _safe_next(value: str | None) -> str:
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/"


def _login_page(
    request: Request,
    settings: SettingsDep,
    *,
    message: str = "",
    username: str = "",
    next_url: str = "/",
    status_code: int = 200,
) -> HTMLResponse:
    nonce = secrets.token_urlsafe(24)
    response = render(
        request,
        "login.html",
        {
            "login_csrf": security.csrf_token(settings.key, nonce, purpose="login"),
            "message": message,
            "username": username,
            "next": _safe_next(next_url),
        },
        status_code=status_code,
    )
    response.set_cookie(
        PRELOGIN_COOKIE,
        nonce,
        httponly=True,
        samesite="lax",
        secure=bool(settings.secure_cookies),
        max_age=3600,
        path="/login",
    )
    return response


@router.get("/login", response_class=HTMLResponse, include_in_schema=False)
def login_form(request: Request, settings: SettingsDep, next: str = "/") -> HTMLResponse:
    return _login_page(request, settings, next_url=next)


@router.post("/login", include_in_schema=False)
async def login(
    request: Request,
    registry: RegistryDep,
    settings: SettingsDep,
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    nonce = request.cookies.get(PRELOGIN_COOKIE, "")
    expected = security.csrf_token(settings.key, nonce, purpose="login") if nonce else ""
    if not nonce or not hmac.compare_digest(csrf_token, expected):
        return _login_page(
            request,
            settings,
            message="The form expired; please log in again.",
            username=username,
            next_url=next,
            status_code=403,
        )
    result = await run_in_threadpool(
        security.authenticate,
        registry,
        username.strip(),
        password,
        client=request.client.host if request.client else "unknown",
        throttle=security.Throttle(settings.login_free_failures, settings.login_max_delay_s),
    )
    if not result.ok or result.username is None:
        page = _login_page(
            request,
            settings,
            message=result.message,
            username=username,
            next_url=next,
            status_code=429 if result.retry_after_s else 401,
        )
        if result.retry_after_s:
            page.headers["Retry-After"] = str(result.retry_after_s)
        return page
    token = await run_in_threadpool(security.start_session, registry, result.username)
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        security.sign(settings.key, token),
        max_age=settings.session_max_age,
        httponly=True,
        samesite="lax",
        secure=bool(settings.secure_cookies),
        path="/",
    )
    response.delete_cookie(PRELOGIN_COOKIE, path="/login")
    return response


@router.post("/logout", include_in_schema=False)
def logout(principal: CsrfChecked, registry: RegistryDep, settings: SettingsDep) -> Response:
    security.revoke_token(registry, principal.token)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(
        SESSION_COOKIE,
        path="/",
        httponly=True,
        samesite="lax",
        secure=bool(settings.secure_cookies),
    )
    return response
