"""Manufacturing batches: list, and the QC and release page of one batch.

QC results typed into the form are stored through :meth:`Gmp.record_qc
<immunoreset.registry.gmp.Gmp.record_qc>` (audited with the logged-in user, site and role rules
of the registry; nothing stored when any value is refused). The page shows the stored QC
evaluated attribute by attribute (pass / fail / pending, limit and unit) against the batch's
specification — the one it was released against, else the current one — and the release
decision (who, when, specification id and version, deviation). The release form calls
:meth:`Gmp.release <immunoreset.registry.gmp.Gmp.release>`; a refused release is recorded by
the registry and shown with the failed attributes. Monitors see no form and get 403 on a post;
a batch of another site is not found (404).

Settings
--------
* The release date, and the date of a deviation entered with it, is the app's "today"
  (``IMMUNORESET_TODAY`` when fixed, else the server's date).
* A deviation entered on the form covers every attribute that failed at the time of release.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from immunoreset import course as c
from immunoreset.errors import InvalidInput, NotFound
from immunoreset.manufacturing.qc import Deviation, ReleaseRefused
from immunoreset.manufacturing.spec import ReleaseSpec
from immunoreset.registry import Actor, Registry
from immunoreset.registry.gmp import Gmp
from immunoreset.web import forms
from immunoreset.web.deps import CsrfChecked, PageNumber, RegistryDep, SettingsDep, SiteScope
from immunoreset.web.rendering import render

__all__ = ["DEVIATION_FIELDS", "router"]

router = APIRouter(prefix="/batches", tags=["pages"])

#: Release-form field -> Deviation attribute (``reference`` optional).
DEVIATION_FIELDS: dict[str, str] = {
    "deviation_reason": "reason",
    "deviation_raised_by": "raised_by",
    "deviation_approved_by": "approved_by",
    "deviation_reference": "reference",
}

#: Messages after a successful post (``?saved=``).
SAVED: dict[str, str] = {
    "qc": "QC results saved and evaluated.",
    "release": "Batch released.",
}


#: Batches per page of the batch list.
PAGE_SIZE = 100


def _locate(registry: Registry, actor: Actor, batch_id: str) -> tuple[c.Course, c.Batch]:
    """The course and batch of ``batch_id`` (``NotFound`` for another site's or no batch)."""
    study_id = Gmp(registry).trace(actor, batch_id).study_id
    course = registry.load_course(actor, study_id)
    for b in course.batches:
        if b.batch_id == batch_id:
            return course, b
    raise NotFound("batch", batch_id)


def _spec_of(gmp: Gmp, key: str) -> ReleaseSpec:
    try:
        return gmp.spec(key)
    except InvalidInput:  # a snapshot no longer loaded: the attributes still come from the QC
        return gmp.current_spec()


def _context(registry: Registry, actor: Actor, batch_id: str) -> dict[str, Any]:
    course, batch = _locate(registry, actor, batch_id)
    gmp = Gmp(registry)
    qc = gmp.evaluate(actor, batch_id)
    spec = _spec_of(gmp, qc.spec_key)
    return {
        "study_id": course.study_id,
        "batch": batch,
        "bags": [g for g in course.bags if g.batch_id == batch_id],
        "qc": qc,
        "spec": spec,
        "spec_attrs": {a.name: a for a in spec.attributes},
        "decision": gmp.decision(actor, batch_id),
        "history": gmp.decisions(actor, batch_id),
        "post_release": gmp.post_release_results(actor, batch_id),
        "values": {},
        "errors": {},
        "message": "",
        "saved": "",
        "failed_form": "",
        "refused_lines": [],
    }


@router.get("", response_class=HTMLResponse, include_in_schema=False)
def batch_list(
    request: Request, actor: SiteScope, registry: RegistryDep, page: PageNumber = 1
) -> HTMLResponse:
    page = max(1, page)
    rows, total = registry.page_batches(actor, offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE)
    pages = max(1, -(-total // PAGE_SIZE))
    return render(
        request,
        "batches.html",
        {"batches": rows, "page": page, "pages": pages, "total": total},
    )


@router.get("/{batch_id}", response_class=HTMLResponse, include_in_schema=False)
def batch_page(
    request: Request,
    batch_id: str,
    actor: SiteScope,
    registry: RegistryDep,
    saved: str | None = None,
) -> HTMLResponse:
    ctx = _context(registry, actor, batch_id)
    ctx["saved"] = SAVED.get(saved or "", "")
    return render(request, "batch.html", ctx)


def _field_values(form: Any) -> dict[str, str]:
    return {k: str(form.get(k) or "") for k in form if k != "csrf_token"}


@router.post("/{batch_id}/qc", include_in_schema=False)
async def save_qc(
    request: Request, batch_id: str, principal: CsrfChecked, registry: RegistryDep
) -> Response:
    actor = principal.actor
    actor.require_gmp_write("enter QC results")
    ctx = await run_in_threadpool(_context, registry, actor, batch_id)
    form = await request.form()
    reason = str(form.get("reason") or "").strip() or "entered on the batch QC form"
    try:
        results = forms.parse_qc(form, ctx["spec"])
        await run_in_threadpool(Gmp(registry).record_qc, actor, batch_id, results, reason)
    except InvalidInput as err:
        field = err.field if err.field in ctx["spec"].names else "results"
        ctx["values"] = _field_values(form)
        ctx["errors"] = {field: err.message}
        ctx["failed_form"] = "qc"
        return render(request, "batch.html", ctx, status_code=422)
    return RedirectResponse(f"/batches/{batch_id}?saved=qc", status_code=303)


def _deviation(form: Any, failed: tuple[str, ...], when: Any) -> Deviation | None:
    typed = {attr: str(form.get(name) or "").strip() for name, attr in DEVIATION_FIELDS.items()}
    if not any(typed.values()):
        return None
    if not failed:
        raise InvalidInput(
            "reason", typed["reason"], "empty: no attribute failed, so no deviation is needed"
        )
    return Deviation(
        attributes=failed,
        raised_by=typed["raised_by"],
        reason=typed["reason"],
        approved_by=typed["approved_by"],
        date=when,
        reference=typed["reference"] or None,
    )


@router.post("/{batch_id}/release", include_in_schema=False)
async def release(
    request: Request,
    batch_id: str,
    principal: CsrfChecked,
    registry: RegistryDep,
    settings: SettingsDep,
) -> Response:
    actor = principal.actor
    actor.require_write("release a batch")
    ctx = await run_in_threadpool(_context, registry, actor, batch_id)
    form = await request.form()
    today = settings.current_date()
    fields = {attr: name for name, attr in DEVIATION_FIELDS.items()}
    try:
        deviation = _deviation(form, ctx["qc"].failed, today)
        await run_in_threadpool(
            lambda: Gmp(registry).release(actor, batch_id, deviation=deviation, when=today)
        )
    except ReleaseRefused as err:
        page = await run_in_threadpool(_context, registry, actor, batch_id)  # shows the refusal
        failed = err.failed or ctx["qc"].failed
        lines = [ctx["qc"].result(n).reason for n in failed if n in ctx["spec"].names]
        page["message"] = (
            f"Release refused — failed: {', '.join(failed)}. " if failed else "Release refused. "
        ) + str(err)
        page["refused_lines"] = lines
        page["values"] = _field_values(form)
        return render(request, "batch.html", page, status_code=409)
    except InvalidInput as err:
        ctx["values"] = _field_values(form)
        ctx["errors"] = {fields.get(err.field, "release"): err.message}
        ctx["failed_form"] = "release"
        return render(request, "batch.html", ctx, status_code=422)
    return RedirectResponse(f"/batches/{batch_id}?saved=release", status_code=303)
