"""The cohort dashboard: the patients the user may see, a page at a time, with alerts."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from immunoreset.web.deps import RegistryDep, SettingsDep, SiteScope
from immunoreset.web.rendering import render
from immunoreset.web.views import dashboard_row

__all__ = ["router"]

router = APIRouter(tags=["pages"])


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def dashboard(
    request: Request,
    actor: SiteScope,
    registry: RegistryDep,
    settings: SettingsDep,
    page: int = 1,
    site: str | None = None,
    alerts_only: bool = False,
) -> HTMLResponse:
    patients = registry.list_patients(actor, site=site or None)
    size = settings.page_size
    pages = max(1, -(-len(patients) // size))
    page = min(max(page, 1), pages)
    chosen = [p.study_id for p in patients[(page - 1) * size : page * size]]
    today = settings.current_date()
    rows = [
        dashboard_row(co, today=today, bag_warning_days=settings.bag_expiry_warning_days)
        for co in (registry.iter_courses(actor, study_ids=chosen) if chosen else ())
    ]
    if alerts_only:
        rows = [r for r in rows if r.alerts]
    sites = sorted({code for code, _ in registry.list_sites() if actor.can_see_site(code)})
    return render(
        request,
        "dashboard.html",
        {
            "rows": rows,
            "today": today,
            "page": page,
            "pages": pages,
            "total": len(patients),
            "site": site or "",
            "sites": sites,
            "alerts_only": alerts_only,
        },
    )
