"""The cohort dashboard: the patients the user may see, a page at a time, with alerts.

The page of patients comes from the database (:meth:`Registry.page_patients`, site rule
applied there), and only the courses of that page are loaded, so a page costs the same at 8
or 10,000 patients. Alerts are computed for the patients shown: "alerts only" narrows the page
being shown, not the whole cohort (the page says so).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from immunoreset.registry.gmp import Gmp
from immunoreset.web.deps import PageNumber, RegistryDep, SettingsDep, SiteScope
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
    page: PageNumber = 1,
    site: str | None = None,
    alerts_only: bool = False,
    q: str | None = None,
) -> HTMLResponse:
    size = settings.page_size
    site = site or None
    q = (q or "").strip()[:40] or None  # study-ID search (contains, case-insensitive)
    page = max(page, 1)
    patients, total = registry.page_patients(
        actor, offset=(page - 1) * size, limit=size, site=site, search=q
    )
    pages = max(1, -(-total // size))
    if page > pages:  # past the end (e.g. after a filter): show the last page
        page = pages
        patients, total = registry.page_patients(
            actor, offset=(page - 1) * size, limit=size, site=site, search=q
        )
    chosen = [p.study_id for p in patients]
    today = settings.current_date()
    shown = set(chosen)
    overdue = [r for r in Gmp(registry).overdue_reports(actor, today) if r.study_id in shown]
    rows = [
        dashboard_row(
            co,
            today=today,
            bag_warning_days=settings.bag_expiry_warning_days,
            overdue_reports=overdue,
        )
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
            "total": total,
            "first": (page - 1) * size + 1 if chosen else 0,
            "last": (page - 1) * size + len(chosen),
            "site": site or "",
            "sites": sites,
            "alerts_only": alerts_only,
            "q": q or "",
        },
    )
