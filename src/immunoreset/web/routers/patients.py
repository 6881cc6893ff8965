"""Patient pages: timeline, plots, medications, chain of identity; data-entry forms.

A form that fails validation is shown again with the message beside the offending field and
nothing stored; a valid one is saved through the repository (audited with the logged-in user)
and the browser is sent back to the patient page.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from immunoreset import course as c
from immunoreset import vocab
from immunoreset.clinical.episodes import daily_grades
from immunoreset.clinical.icans import CAPD_ANSWERS, CAPD_ITEMS
from immunoreset.clinical.settings import DEFAULT_SETTINGS
from immunoreset.errors import InvalidInput
from immunoreset.web import forms
from immunoreset.web.deps import CsrfChecked, RegistryDep, SettingsDep, SiteScope
from immunoreset.web.rendering import render
from immunoreset.web.views import (
    ACUTE_DAYS,
    chain_view,
    check_icans_gradable,
    figures,
    patient_summary,
    safety_view,
    uses_ice,
)

__all__ = ["router"]

router = APIRouter(prefix="/patients", tags=["pages"])

#: Entity name -> (form parser, template, registry entity, field an existing-key error names).
FORMS: dict[str, tuple[Callable[[forms.FormData], Any], str, str, str]] = {
    "assessments": (forms.parse_assessment, "assessment_form.html", "daily_assessments", "date"),
    "labs": (forms.parse_lab, "lab_form.html", "labs", "analyte"),
    "disease": (forms.parse_disease, "disease_form.html", "disease_assessments", "instrument"),
}


@router.get("/{study_id}", response_class=HTMLResponse, include_in_schema=False)
def patient_page(
    request: Request,
    study_id: str,
    actor: SiteScope,
    registry: RegistryDep,
    settings: SettingsDep,
    grades: str = "acute",
) -> HTMLResponse:
    course = registry.load_course(actor, study_id)
    all_grades = daily_grades(course) if course.day0 is not None else []
    show_all = grades == "all"
    lo, hi = ACUTE_DAYS
    acute = [g for g in all_grades if lo <= g.study_day <= hi]
    grades_shown = all_grades if show_all else acute
    dates = {g.study_day: course.date_of_day(g.study_day) for g in all_grades}
    figs = figures(course)
    today = settings.current_date()
    try:
        chain = chain_view(course)
    except InvalidInput as err:  # a course whose records cannot be traced: say why
        chain = None
        chain_error = str(err)
    else:
        chain_error = ""
    return render(
        request,
        "patient.html",
        {
            "course": course,
            "patient": course.patient,
            "grades": grades_shown,
            "grades_total": len(all_grades),
            "grades_all": show_all,
            "acute_days": ACUTE_DAYS,
            "dates": dates,
            "figure_keys": list(figs),
            "figure_titles": {k: v.get("title", "") for k, v in figs.items()},
            "figures_json": json.dumps(figs),
            "chain": chain,
            "chain_error": chain_error,
            "today": today,
            "safety": safety_view(course, today),
            "summary": patient_summary(course, today),
            "medications": sorted(course.medications, key=lambda m: (m.stop is None, m.start)),
            "forecast": settings.fit_dir is not None and course.day0 is not None,
        },
    )


@router.get("/{study_id}/forecast.json", include_in_schema=False)
def patient_forecast_band(
    study_id: str, actor: SiteScope, registry: RegistryDep, settings: SettingsDep
) -> JSONResponse:
    """The B-cell forecast band of the patient (``IMMUNORESET_FIT_DIR``), or why there is none."""
    from immunoreset.web.forecast import patient_forecast

    registry.load_course(actor, study_id)  # 404 outside the actor's sites
    if settings.fit_dir is None:
        body = {"available": False, "message": "no population fit configured (IMMUNORESET_FIT_DIR)"}
    else:
        body = patient_forecast(registry, actor, study_id, settings.fit_dir, settings.fit_lloq)
    return JSONResponse(body)


#: CAPD item questions as the form asks them (Traube 2014; CHOP CAPD page).
CAPD_LABELS: dict[str, str] = {
    "eye_contact": "1. Does the child make eye contact with the caregiver?",
    "purposeful_actions": "2. Are the child's actions purposeful?",
    "aware_of_surroundings": "3. Is the child aware of his/her surroundings?",
    "communicates_needs": "4. Does the child communicate needs and wants?",
    "restless": "5. Is the child restless?",
    "inconsolable": "6. Is the child inconsolable?",
    "underactive": "7. Is the child underactive — very little movement while awake?",
    "slow_to_respond": "8. Does it take the child a long time to respond to interactions?",
}


def _form_context(course: c.Course, kind: str, today: dt.date) -> dict[str, Any]:
    when = today
    return {
        "course": course,
        "patient": course.patient,
        "kind": kind,
        "vocab": vocab,
        "ice": uses_ice(course, when),
        "capd_age_cut": DEFAULT_SETTINGS.capd_age_cut,
        "analytes": vocab.ANALYTES,
        "instruments": vocab.INSTRUMENTS,
        "capd_items": CAPD_ITEMS,
        "capd_labels": CAPD_LABELS,
        "capd_answers": ("", *CAPD_ANSWERS),
    }


@router.get("/{study_id}/{kind}/new", response_class=HTMLResponse, include_in_schema=False)
def entry_form(
    request: Request,
    study_id: str,
    kind: str,
    actor: SiteScope,
    registry: RegistryDep,
    settings: SettingsDep,
) -> HTMLResponse:
    if kind not in FORMS:
        from immunoreset.errors import NotFound

        raise NotFound("form", kind)
    course = registry.load_course(actor, study_id)
    actor.require_write()  # a monitor never gets a form to save
    today = settings.current_date()
    ctx = _form_context(course, kind, today)
    ctx["values"] = {"date": today.isoformat()}
    return render(request, FORMS[kind][1], ctx)


@router.post("/{study_id}/{kind}", include_in_schema=False)
async def save_entry(
    request: Request,
    study_id: str,
    kind: str,
    principal: CsrfChecked,
    registry: RegistryDep,
    settings: SettingsDep,
) -> Response:
    from fastapi.concurrency import run_in_threadpool

    if kind not in FORMS:
        from immunoreset.errors import NotFound

        raise NotFound("form", kind)
    actor = principal.actor
    actor.require_write()
    parse, template, entity, key_field = FORMS[kind]
    form = await request.form()
    data: dict[str, Any] = {
        k: form.getlist(k) if k == "vasopressors" else form.get(k) for k in form
    }
    reason = str(form.get("reason") or "").strip() or "entered on the web form"
    course = await run_in_threadpool(registry.load_course, actor, study_id)
    try:
        record = parse(data)
        if entity == "daily_assessments":
            check_icans_gradable(course, record)
        await run_in_threadpool(registry.add_record, actor, study_id, entity, record, reason=reason)
    except InvalidInput as err:
        field = key_field if err.field == entity else err.field.split(".")[0]
        message = (
            f"a {kind} record for this {key_field} already exists"
            if err.field == entity
            else err.message
        )
        ctx = _form_context(course, kind, settings.current_date())
        ctx["values"] = {k: v for k, v in data.items() if k not in ("csrf_token",)}
        ctx["errors"] = {field: message}
        if "date" in data:
            with contextlib.suppress(ValueError):
                ctx["ice"] = uses_ice(course, dt.date.fromisoformat(str(data["date"])))
        return render(request, template, ctx, status_code=422)
    anchor = ""
    if entity == "daily_assessments" and course.day0 is not None:
        day = course.study_day(record.date)
        # a day outside the acute phase is only in the full table: open that one
        lo, hi = ACUTE_DAYS
        anchor = f"#day-{day}" if lo <= day <= hi else f"?grades=all#day-{day}"
    return RedirectResponse(f"/patients/{study_id}{anchor}", status_code=303)
