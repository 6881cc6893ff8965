"""OpenAPI schema and a self-contained API reference page, both behind login.

FastAPI's Swagger UI loads its JavaScript from a CDN; this page is rendered on the server from
the OpenAPI schema instead, so nothing is fetched from the internet.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse

from immunoreset.web.deps import CurrentUser
from immunoreset.web.rendering import render

__all__ = ["router"]

router = APIRouter(prefix="/api", tags=["docs"])


@router.get("/openapi.json", include_in_schema=False)
def openapi_json(request: Request, principal: CurrentUser) -> JSONResponse:
    return JSONResponse(request.app.openapi())


@router.get("/docs", response_class=HTMLResponse, include_in_schema=False)
def api_docs(request: Request, principal: CurrentUser) -> HTMLResponse:
    schema: dict[str, Any] = request.app.openapi()
    operations = []
    for path, methods in schema.get("paths", {}).items():
        for method, op in methods.items():
            body = (op.get("requestBody", {}).get("content", {}).get("application/json", {})).get(
                "schema", {}
            )
            ok = next(
                (r for code, r in op.get("responses", {}).items() if code.startswith("2")), {}
            )
            out = ok.get("content", {}).get("application/json", {}).get("schema", {})
            operations.append(
                {
                    "method": method.upper(),
                    "path": path,
                    "summary": op.get("summary", ""),
                    "description": op.get("description", ""),
                    "params": [p["name"] for p in op.get("parameters", [])],
                    "body": _ref(body),
                    "response": _ref(out),
                }
            )
    schemas = schema.get("components", {}).get("schemas", {})
    return render(request, "api_docs.html", {"operations": operations, "schemas": schemas})


def _ref(s: dict[str, Any]) -> str:
    if "$ref" in s:
        return s["$ref"].rsplit("/", 1)[-1]
    if s.get("type") == "array":
        return f"list of {_ref(s.get('items', {}))}"
    return s.get("type", "")
