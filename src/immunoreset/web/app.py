"""The FastAPI application: pages, JSON API, login, security headers and error pages.

``create_app(registry, settings)`` wires the routers (one per resource) to one registry. Every
route except the login form and the static files needs a session or a bearer token; site
scoping and read-only monitors are the repository's rules, mapped to HTTP here:
``NotFound`` → 404, ``PermissionDenied`` → 403, ``InvalidInput`` → 422 with the field,
``ChainOfIdentityError`` → 409. Pages are never cached, and the Content-Security-Policy allows
scripts from this server only (``'unsafe-eval'`` on the plotly patient page alone, see
:data:`CSP_PLOTLY`); ``IMMUNORESET_HSTS_SECONDS`` adds ``Strict-Transport-Security``.
Every response carries ``Server-Timing: app;dur=<ms>``, the time the app spent on it (what
the benchmark reports next to the client-side latency).
"""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import InterfaceError, OperationalError
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from immunoreset.errors import ChainOfIdentityError, InvalidInput, NotFound, PermissionDenied
from immunoreset.registry import Registry
from immunoreset.web.assets import PLOTLY_JS, plotly_response
from immunoreset.web.deps import LoginRequired
from immunoreset.web.rendering import render
from immunoreset.web.routers import api, audit, auth, batches, dashboard, docs, patients, reports
from immunoreset.web.settings import WebSettings

__all__ = ["PLOTLY_JS", "SecurityHeaders", "create_app", "create_app_from_env"]

STATIC = Path(__file__).with_name("static")


CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'self'"
)
#: The patient page alone draws plotly figures. The plotly.js bundle shipped with the plotly
#: Python package builds some functions with ``new Function`` (its WebGL / regl trace code and
#: number-format compilers), which a strict CSP blocks, so this one page's policy adds
#: ``'unsafe-eval'``; every other page (forms, QC, release, login) runs without it.
CSP_PLOTLY = CSP.replace("script-src 'self'", "script-src 'self' 'unsafe-eval'")
_PLOTLY_PAGE = re.compile(r"^/patients/[^/]+/?$")


_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
)


class SecurityHeaders:
    """Pure ASGI middleware: security headers, ``Cache-Control: no-store`` outside ``/static/``
    and ``Server-Timing: app;dur=<ms>`` (time until the response headers were sent).

    A plain ASGI wrapper, unlike ``@app.middleware("http")``, adds no extra task and no
    re-streaming of the body to every request.
    """

    def __init__(self, app: ASGIApp, hsts_seconds: int = 0) -> None:
        self.app = app
        self.hsts = (
            f"max-age={hsts_seconds}; includeSubDomains".encode() if hsts_seconds > 0 else None
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        static = scope["path"].startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                present = {k.lower() for k, _ in headers}
                extra = list(_HEADERS)
                csp = CSP_PLOTLY if _PLOTLY_PAGE.match(scope["path"]) else CSP
                extra.append((b"content-security-policy", csp.encode()))
                if self.hsts is not None:
                    extra.append((b"strict-transport-security", self.hsts))
                if not static:
                    extra.append((b"cache-control", b"no-store"))
                elapsed_ms = (time.perf_counter() - started) * 1000
                extra.append((b"server-timing", f"app;dur={elapsed_ms:.1f}".encode()))
                headers.extend((k, v) for k, v in extra if k not in present)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/") and request.url.path != "/api/docs"


_log = logging.getLogger("immunoreset.web")
#: Seconds a client is asked to wait when the database is unavailable (503).
RETRY_AFTER_S = 5


def _error(request: Request, status: int, title: str, message: str) -> Response:
    if _wants_json(request):
        return JSONResponse({"detail": message}, status_code=status)
    return render(
        request,
        "error.html",
        {"status": status, "title": title, "message": message},
        status_code=status,
    )


def create_app(registry: Registry, settings: WebSettings | None = None) -> FastAPI:
    """The web app over ``registry`` (settings from the environment when not given)."""
    settings = settings if settings is not None else WebSettings()
    app = FastAPI(
        title="immunoreset",
        version="0.1.0",
        summary="Registry, live toxicity grading and release pages for point-of-care CAR T",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.registry = registry
    app.state.settings = settings

    app.add_middleware(SecurityHeaders, hsts_seconds=settings.hsts_seconds)

    @app.exception_handler(LoginRequired)
    async def _login_required(request: Request, exc: LoginRequired) -> Response:
        if request.url.path.startswith("/api/") and request.url.path != "/api/docs":
            return JSONResponse(
                {"detail": "not authenticated: log in or send Authorization: Bearer <token>"},
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        from urllib.parse import quote

        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target)}", status_code=303)

    @app.exception_handler(NotFound)
    async def _not_found(request: Request, exc: NotFound) -> Response:
        return _error(request, 404, "Not found", f"{exc.kind} {exc.key} was not found.")

    @app.exception_handler(PermissionDenied)
    async def _denied(request: Request, exc: PermissionDenied) -> Response:
        return _error(request, 403, "Not allowed", f"You may not {exc.action}: {exc.why}.")

    @app.exception_handler(ChainOfIdentityError)
    async def _chain(request: Request, exc: ChainOfIdentityError) -> Response:
        return _error(request, 409, "Chain of identity", str(exc))

    @app.exception_handler(InvalidInput)
    async def _invalid(request: Request, exc: InvalidInput) -> Response:
        if _wants_json(request):
            return JSONResponse(
                {
                    "detail": [
                        {
                            "loc": ["body", exc.field],
                            "msg": exc.message,
                            "type": "invalid_input",
                            "allowed": exc.allowed,
                        }
                    ]
                },
                status_code=422,
            )
        return _error(request, 422, "Invalid value", exc.message)

    @app.exception_handler(RequestValidationError)
    async def _bad_request(request: Request, exc: RequestValidationError) -> Response:
        if _wants_json(request):
            return JSONResponse({"detail": jsonable_encoder(exc.errors())}, status_code=422)
        where = ", ".join(
            f"{'.'.join(str(x) for x in e.get('loc', ())[1:])}: {e.get('msg', '')}"
            for e in exc.errors()
        )
        return _error(request, 422, "Invalid value", where or "invalid request")

    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)
    async def _database_unavailable(request: Request, exc: Exception) -> Response:
        # the database restarts or is busy: ask the client to retry; the log names the
        # statement kind only (the engine hides SQL parameters), never clinical values
        orig = getattr(exc, "orig", None)
        reason = str(orig or exc).strip().splitlines()[0][:200] if (orig or exc) else ""
        _log.warning("database unavailable (%s): %s", type(orig or exc).__name__, reason)
        response = _error(
            request,
            503,
            "Database unavailable",
            "The registry database is unavailable (restarting or busy). Nothing was lost; "
            f"please try again in {RETRY_AFTER_S} seconds.",
        )
        response.headers["Retry-After"] = str(RETRY_AFTER_S)
        return response

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> Response:
        return _error(request, exc.status_code, "Error", str(exc.detail))

    @app.get("/static/plotly.min.js", include_in_schema=False)
    def _plotly(request: Request) -> Response:
        return plotly_response(request)  # gzip, ETag, cached a year when versioned

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    for module in (auth, dashboard, patients, batches, audit, reports, docs, api):
        app.include_router(module.router)
    return app


def create_app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory``: the registry at ``IMMUNORESET_DB_URL``, settings from
    the environment (each worker process calls it)."""
    settings = WebSettings()
    return create_app(Registry(settings.db_url), settings)
