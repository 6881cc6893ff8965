"""Report download: the case-series report of the visible cohort (HTML or PDF).

Calls ``immunoreset.report.case_series.build_report(registry, out_dir=…, actor=…)`` (issue 5)
into a temporary folder, under the logged-in user's site rules, and returns the file of the
requested format (``?site=`` narrows it to one site, ``?patient=`` gives one patient's
summary). While the report package does not provide it the route answers 503 and says so.
"""

from __future__ import annotations

import importlib
import tempfile
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, Response

from immunoreset.web.deps import RegistryDep, SiteScope
from immunoreset.web.rendering import render

__all__ = ["router"]

router = APIRouter(prefix="/reports", tags=["pages"])
MEDIA = {"html": "text/html; charset=utf-8", "pdf": "application/pdf"}


@router.get("", response_class=HTMLResponse, include_in_schema=False)
def reports_page(request: Request, actor: SiteScope) -> HTMLResponse:
    return render(request, "reports.html", {"available": _builder() is not None})


def _builder():  # type: ignore[no-untyped-def]
    try:
        module = importlib.import_module("immunoreset.report.case_series")
    except ImportError:
        return None
    return getattr(module, "build_report", None)


@router.get("/case-series.{fmt}", include_in_schema=False)
def case_series(
    fmt: str,
    actor: SiteScope,
    registry: RegistryDep,
    site: str | None = None,
    patient: str | None = None,
) -> Response:
    if fmt not in MEDIA:
        raise HTTPException(404, f"no report format {fmt!r}; use html or pdf")
    build = _builder()
    if build is None:
        raise HTTPException(
            503,
            "the case-series report is not available in this installation yet "
            "(immunoreset.report.case_series.build_report is missing)",
        )
    with tempfile.TemporaryDirectory(prefix="immunoreset-report-") as tmp:
        build(
            registry,
            out_dir=Path(tmp),
            actor=actor,
            site=site or None,
            patient=patient or None,
            pdf=fmt == "pdf",
        )
        found = sorted(Path(tmp).rglob(f"*.{fmt}"))
        if not found:
            raise HTTPException(503, f"the report builder wrote no {fmt.upper()} file")
        content = found[0].read_bytes()
    name = f"patient-{patient}.{fmt}" if patient else f"case-series.{fmt}"
    return Response(
        content,
        media_type=MEDIA[fmt],
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
