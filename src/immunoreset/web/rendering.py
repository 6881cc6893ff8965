"""Jinja2 templates of the pages, with the logged-in user and their CSRF token in every page.

Templates are compiled once per process and kept (no per-request modification-time check of the
files: the templates ship with the package and do not change while the server runs).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from immunoreset.web import security
from immunoreset.web.assets import PLOTLY_URL

__all__ = ["TEMPLATES", "render"]

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).with_name("templates")))
TEMPLATES.env.auto_reload = False


def _grade(value: int | None) -> str:
    return "–" if value is None else str(value)


TEMPLATES.env.filters["grade"] = _grade
TEMPLATES.env.globals["plotly_url"] = PLOTLY_URL


def render(
    request: Request, name: str, context: dict[str, Any] | None = None, *, status_code: int = 200
) -> HTMLResponse:
    """Render ``name`` with the principal (if any), its CSRF token and the app settings."""
    ctx = dict(context or {})
    principal = getattr(request.state, "principal", None)
    ctx.setdefault("user", principal)
    if principal is not None and principal.via == "session":
        ctx.setdefault("csrf", security.csrf_token(request.app.state.settings.key, principal.token))
    ctx.setdefault("csrf", "")
    ctx.setdefault("errors", {})
    return TEMPLATES.TemplateResponse(request, name, ctx, status_code=status_code)
