"""Manufacturing batches: list, and the QC and release page of one batch.

QC results typed into the form are stored through :meth:`Gmp.record_qc
<immunoreset.registry.gmp.Gmp.record_qc>` (audited with the logged-in user, site and role rules
of the registry; nothing stored when any value is refused). The page shows the stored QC
evaluated attribute by attribute (pass / fail / pending, limit and unit) against the batch's
specification — the one it was released against, else the current one — and the release
decision (who, when, specification id and version, deviation, electronic signature).

GMP forms, each through the one :class:`~immunoreset.registry.gmp.Gmp` path the CLI uses:

* ``POST /batches/{id}/release`` — a qa user of the site re-enters their password; the
  release is signed (21 CFR Part 11 §11.50/§11.70, EU GMP Annex 11 §14). A refused release is
  recorded and shown with the failed attributes; a wrong password is a 403 beside the field.
* ``POST /batches/{id}/deviations`` — raise a release deviation for the failed attributes
  (the logged-in user is the raiser).
* ``POST /batches/{id}/deviations/{n}/approve`` — a qa user other than the raiser approves,
  signing with their password; for a post-release deviation that clears the quarantine.
* ``POST /batches/{id}/post-release`` — add post-release QC results to a released batch
  (never overwriting; opens a deviation and quarantines bags on an out-of-spec result).

Monitors see no form and get 403 on a post; a batch of another site is not found (404).

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
from immunoreset.errors import InvalidInput, NotFound, PermissionDenied
from immunoreset.manufacturing.qc import ReleaseRefused
from immunoreset.manufacturing.spec import ReleaseSpec
from immunoreset.registry import Actor, Registry
from immunoreset.registry.gmp import Gmp
from immunoreset.web import forms
from immunoreset.web.deps import CsrfChecked, PageNumber, RegistryDep, SettingsDep, SiteScope
from immunoreset.web.rendering import render

__all__ = ["router"]

router = APIRouter(prefix="/batches", tags=["pages"])

#: Messages after a successful post (``?saved=``).
SAVED: dict[str, str] = {
    "qc": "QC results saved and evaluated.",
    "release": "Batch released and signed.",
    "deviation": "Deviation raised: open until a qa user other than you approves it.",
    "approved": "Deviation approved and signed.",
    "post_release": "Post-release result(s) added; a deviation was opened for QA review.",
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


def _spec_of(gmp: Gmp, actor: Actor, key: str, site: str) -> ReleaseSpec:
    try:
        return gmp.spec(actor, key, site)
    except InvalidInput:  # a snapshot no longer loaded: the attributes still come from the QC
        return gmp.current_spec(actor, site)


def _context(registry: Registry, actor: Actor, batch_id: str) -> dict[str, Any]:
    course, batch = _locate(registry, actor, batch_id)
    gmp = Gmp(registry)
    qc = gmp.evaluate(actor, batch_id)
    spec = _spec_of(gmp, actor, qc.spec_key, course.patient.site)
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
        "deviations": gmp.deviations(actor, batch_id),
        "approve_id": None,
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
    """What was typed, to show again — never the CSRF token or a password."""
    return {k: str(form.get(k) or "") for k in form if k not in ("csrf_token", "password")}


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


def _password(form: Any) -> str:
    return str(form.get("password") or "")


@router.post("/{batch_id}/release", include_in_schema=False)
async def release(
    request: Request,
    batch_id: str,
    principal: CsrfChecked,
    registry: RegistryDep,
    settings: SettingsDep,
) -> Response:
    actor = principal.actor
    actor.require_gmp_write("release a batch")
    ctx = await run_in_threadpool(_context, registry, actor, batch_id)
    form = await request.form()
    today = settings.current_date()
    try:
        await run_in_threadpool(
            lambda: Gmp(registry).release(actor, batch_id, password=_password(form), when=today)
        )
    except ReleaseRefused as err:
        page = await run_in_threadpool(_context, registry, actor, batch_id)  # shows the refusal
        failed = err.failed or ctx["qc"].failed
        lines = [ctx["qc"].result(n).reason for n in failed if n in ctx["spec"].names]
        page["message"] = (
            f"Release refused — failed: {', '.join(failed)}. " if failed else "Release refused. "
        ) + str(err)
        page["refused_lines"] = lines
        return render(request, "batch.html", page, status_code=409)
    except (InvalidInput, PermissionDenied) as err:
        return _form_error(request, ctx, form, "release", "password", err)
    return RedirectResponse(f"/batches/{batch_id}?saved=release", status_code=303)


def _form_error(
    request: Request, ctx: dict[str, Any], form: Any, which: str, field: str, err: Exception
) -> HTMLResponse:
    """The page again with the error beside ``field`` of form ``which`` (nothing stored)."""
    ctx["values"] = _field_values(form)
    if isinstance(err, InvalidInput):
        name = err.field if err.field in ("reason", "reference") else field
        ctx["errors"] = {f"{which}_{name}": err.message}
        status = 422
    else:
        ctx["errors"] = {f"{which}_{field}": getattr(err, "reason", None) or str(err)}
        status = 403
    ctx["failed_form"] = which
    if which == "deviation" and not ctx["qc"].failed:  # no form to show the error beside
        ctx["message"] = "No deviation raised: " + next(iter(ctx["errors"].values()))
    return render(request, "batch.html", ctx, status_code=status)


@router.post("/{batch_id}/deviations", include_in_schema=False)
async def raise_deviation(
    request: Request, batch_id: str, principal: CsrfChecked, registry: RegistryDep
) -> Response:
    actor = principal.actor
    actor.require_gmp_write("raise a deviation")
    ctx = await run_in_threadpool(_context, registry, actor, batch_id)
    form = await request.form()
    reason = str(form.get("deviation_reason") or "").strip()
    reference = str(form.get("deviation_reference") or "").strip() or None
    try:
        await run_in_threadpool(
            lambda: Gmp(registry).raise_deviation(actor, batch_id, reason, reference=reference)
        )
    except InvalidInput as err:
        return _form_error(request, ctx, form, "deviation", "reason", err)
    return RedirectResponse(f"/batches/{batch_id}?saved=deviation", status_code=303)


@router.post("/{batch_id}/deviations/{deviation_id}/approve", include_in_schema=False)
async def approve_deviation(
    request: Request,
    batch_id: str,
    deviation_id: int,
    principal: CsrfChecked,
    registry: RegistryDep,
) -> Response:
    actor = principal.actor
    actor.require_gmp_write("approve a deviation")
    ctx = await run_in_threadpool(_context, registry, actor, batch_id)
    if deviation_id not in {d["id"] for d in ctx["deviations"]}:
        raise NotFound("deviation", str(deviation_id))
    form = await request.form()
    reason = str(form.get("approve_reason") or "").strip() or None
    try:
        await run_in_threadpool(
            lambda: Gmp(registry).approve_deviation(
                actor, deviation_id, _password(form), reason=reason
            )
        )
    except (InvalidInput, PermissionDenied) as err:
        ctx["approve_id"] = deviation_id
        return _form_error(request, ctx, form, "approve", "password", err)
    return RedirectResponse(f"/batches/{batch_id}?saved=approved", status_code=303)


@router.post("/{batch_id}/post-release", include_in_schema=False)
async def add_post_release(
    request: Request, batch_id: str, principal: CsrfChecked, registry: RegistryDep
) -> Response:
    actor = principal.actor
    actor.require_gmp_write("add a post-release QC result")
    ctx = await run_in_threadpool(_context, registry, actor, batch_id)
    form = await request.form()
    reason = str(form.get("reason") or "").strip() or "entered on the post-release form"
    fields = {k[len("post_") :]: v for k, v in form.multi_items() if k.startswith("post_") and v}
    try:
        results = forms.parse_qc(fields, ctx["spec"])  # type: ignore[arg-type]
        await run_in_threadpool(
            Gmp(registry).add_post_release_result, actor, batch_id, results, reason
        )
    except InvalidInput as err:
        ctx["values"] = _field_values(form)
        name = f"post_{err.field}" if err.field in ctx["spec"].names else "post_results"
        ctx["errors"] = {name: err.message}
        ctx["failed_form"] = "post_release"
        ctx["message"] = f"Nothing was added: {err.message}"
        return render(request, "batch.html", ctx, status_code=422)
    return RedirectResponse(f"/batches/{batch_id}?saved=post_release", status_code=303)
