"""Manufacturing batches: list, and a QC/release page that evaluates results against the spec.

The registry stores batches and bags but no QC results yet, so the QC page evaluates the
results typed into its form against the release specification (:func:`evaluate_batch` with
:func:`default_spec`) and stores nothing; the evaluation is shown attribute by attribute.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from immunoreset.errors import InvalidInput, NotFound
from immunoreset.registry import Actor, Registry
from immunoreset.web.deps import CsrfChecked, RegistryDep, SiteScope
from immunoreset.web.rendering import render

__all__ = ["router"]

router = APIRouter(prefix="/batches", tags=["pages"])


def _batches(registry: Registry, actor: Actor) -> list[tuple[str, object, list[object]]]:
    out = []
    for co in registry.iter_courses(actor):
        for b in co.batches:
            out.append((co.study_id, b, [g for g in co.bags if g.batch_id == b.batch_id]))
    return out


def _find(registry: Registry, actor: Actor, batch_id: str) -> tuple[str, object, list[object]]:
    for row in _batches(registry, actor):
        if row[1].batch_id == batch_id:  # type: ignore[attr-defined]
            return row
    raise NotFound("batch", batch_id)


@router.get("", response_class=HTMLResponse, include_in_schema=False)
def batch_list(request: Request, actor: SiteScope, registry: RegistryDep) -> HTMLResponse:
    return render(request, "batches.html", {"batches": _batches(registry, actor)})


def _qc_page(request: Request, row, results, qc, errors, status_code=200) -> HTMLResponse:  # type: ignore[no-untyped-def]
    from immunoreset.manufacturing import default_spec

    study_id, batch, bags = row
    return render(
        request,
        "batch.html",
        {
            "study_id": study_id,
            "batch": batch,
            "bags": bags,
            "spec": default_spec(),
            "results": results,
            "qc": qc,
            "errors": errors,
        },
        status_code=status_code,
    )


@router.get("/{batch_id}", response_class=HTMLResponse, include_in_schema=False)
def batch_page(
    request: Request, batch_id: str, actor: SiteScope, registry: RegistryDep
) -> HTMLResponse:
    return _qc_page(request, _find(registry, actor, batch_id), {}, None, {})


@router.post("/{batch_id}/qc", response_class=HTMLResponse, include_in_schema=False)
async def evaluate_qc(
    request: Request, batch_id: str, principal: CsrfChecked, registry: RegistryDep
) -> HTMLResponse:
    from fastapi.concurrency import run_in_threadpool

    from immunoreset.manufacturing import default_spec, evaluate_batch

    row = await run_in_threadpool(_find, registry, principal.actor, batch_id)
    form = await request.form()
    spec = default_spec()
    results: dict[str, float | str | None] = {}
    errors: dict[str, str] = {}
    for attr in spec.attributes:
        raw = str(form.get(attr.name) or "").strip()
        if not raw:
            results[attr.name] = None
        elif attr.numeric:
            try:
                results[attr.name] = float(raw.replace(",", "."))
            except ValueError:
                errors[attr.name] = f"{attr.name} must be a number; got {raw!r}"
        else:
            results[attr.name] = raw
    qc = None
    if not errors:
        try:
            qc = evaluate_batch(spec, results, batch_id=batch_id)
        except InvalidInput as err:
            errors[err.field] = err.message
    shown = {k: ("" if v is None else v) for k, v in results.items()}
    shown.update({k: str(form.get(k) or "") for k in errors})
    return _qc_page(request, row, shown, qc, errors, 422 if errors else 200)
