"""The FastAPI application: pages, JSON API, login, security headers and error pages.

``create_app(registry, settings)`` wires the routers (one per resource) to one registry. Every
route except the login form and the static files needs a session or a bearer token; site
scoping and read-only monitors are the repository's rules, mapped to HTTP here:
``NotFound`` → 404, ``PermissionDenied`` → 403, ``InvalidInput`` → 422 with the field,
``ChainOfIdentityError`` → 409. Pages are never cached, and the Content-Security-Policy allows
scripts from this server only.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from immunoreset.errors import ChainOfIdentityError, InvalidInput, NotFound, PermissionDenied
from immunoreset.registry import Registry
from immunoreset.web.deps import LoginRequired
from immunoreset.web.rendering import render
from immunoreset.web.routers import api, audit, auth, batches, dashboard, docs, patients, reports
from immunoreset.web.settings import WebSettings

__all__ = ["PLOTLY_JS", "create_app", "create_app_from_env"]

STATIC = Path(__file__).with_name("static")


def _plotly_js() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("plotly")
    if spec is None or spec.origin is None:  # pragma: no cover - plotly is a dependency
        raise RuntimeError("plotly is not installed")
    return Path(spec.origin).parent / "package_data" / "plotly.min.js"


PLOTLY_JS = _plotly_js()

CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'self'"
)


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/") and request.url.path != "/api/docs"


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

    @app.middleware("http")
    async def _headers(request: Request, call_next):  # type: ignore[no-untyped-def]
        response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if not request.url.path.startswith("/static/"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response

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

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> Response:
        return _error(request, exc.status_code, "Error", str(exc.detail))

    @app.get("/static/plotly.min.js", include_in_schema=False)
    def _plotly() -> FileResponse:
        return FileResponse(
            PLOTLY_JS,
            media_type="text/javascript",
            headers={"Cache-Control": "public, max-age=86400"},
        )

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    for module in (auth, dashboard, patients, batches, audit, reports, docs, api):
        app.include_router(module.router)
    return app


def create_app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory``: the registry at ``IMMUNORESET_DB_URL``, settings from
    the environment (each worker process calls it)."""
    settings = WebSettings()
    return create_app(Registry(settings.db_url), settings)
