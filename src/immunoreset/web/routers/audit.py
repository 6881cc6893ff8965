"""The audit trail: who changed what, when, from which value to which, and why."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from immunoreset.web.deps import RegistryDep, SiteScope
from immunoreset.web.rendering import render

__all__ = ["router"]

router = APIRouter(prefix="/audit", tags=["pages"])


@router.get("", response_class=HTMLResponse, include_in_schema=False)
def audit_page(
    request: Request,
    actor: SiteScope,
    registry: RegistryDep,
    study_id: str | None = None,
    limit: int = 200,
) -> HTMLResponse:
    limit = min(max(limit, 1), 2000)
    entries = registry.audit_trail(actor, study_id=study_id or None, limit=limit)
    return render(
        request, "audit.html", {"entries": entries, "study_id": study_id or "", "limit": limit}
    )
