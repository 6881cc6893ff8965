"""The JSON API (``/api/v1``): what the pages do, for site systems that push data.

Authenticate with a session cookie (writes then need the ``X-CSRF-Token`` header) or with
``Authorization: Bearer <token>`` (``immunoreset token create``). Another site's patient answers
404, a monitor's write 403, an invalid value 422 naming the field.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, status
from pydantic import BaseModel

from immunoreset import vocab
from immunoreset.clinical.episodes import daily_grades
from immunoreset.errors import InvalidInput
from immunoreset.web import schemas
from immunoreset.web.deps import CsrfChecked, RegistryDep, SiteScope
from immunoreset.web.views import check_icans_gradable, grade_day, grade_observations

__all__ = ["router"]


class ApiError(BaseModel):
    """The body of every error answer other than 422: one sentence naming the problem."""

    detail: str


def _answers(*codes: int) -> dict[int | str, dict[str, Any]]:
    text = {
        401: "Not authenticated: log in or send `Authorization: Bearer <token>`",
        403: "Not allowed: your role may not write (monitor) or the site is not yours",
        404: "No such patient among the sites you may see (another site's patient is 404 too)",
        409: "Refused by the chain-of-identity or release rules",
        503: "The database is unavailable (restarting or busy); retry after `Retry-After` s",
    }
    return {code: {"model": ApiError, "description": text[code]} for code in codes}


router = APIRouter(prefix="/api/v1", tags=["api"], responses=_answers(401, 503))


@router.get("/patients", response_model=list[schemas.PatientPublic])
def list_patients(
    actor: SiteScope,
    registry: RegistryDep,
    site: str | None = None,
    diagnosis: Annotated[
        str | None, Query(json_schema_extra={"enum": list(vocab.DIAGNOSES)})
    ] = None,
) -> list[schemas.PatientPublic]:
    """The patients you may see (your sites; every site for an admin)."""
    return [
        schemas.PatientPublic.of(p)
        for p in registry.list_patients(actor, site=site, diagnosis=diagnosis)
    ]


@router.get(
    "/patients/{study_id}/course", response_model=schemas.CoursePublic, responses=_answers(404)
)
def get_course(study_id: str, actor: SiteScope, registry: RegistryDep) -> schemas.CoursePublic:
    """A patient's whole course (every record type)."""
    return schemas.CoursePublic.of(registry.load_course(actor, study_id))


@router.get(
    "/patients/{study_id}/grades",
    response_model=list[schemas.DailyGradePublic],
    responses=_answers(404),
)
def get_grades(
    study_id: str, actor: SiteScope, registry: RegistryDep
) -> list[schemas.DailyGradePublic]:
    """CRS and ICANS grade of every assessed day from the infusion on, with reasons."""
    course = registry.load_course(actor, study_id)
    if course.day0 is None:
        return []
    return [
        schemas.DailyGradePublic(
            study_day=g.study_day,
            date=course.date_of_day(g.study_day),
            crs_grade=g.crs_grade,
            crs_reasons=list(g.crs_reasons),
            icans_grade=g.icans_grade,
            icans_reasons=list(g.icans_reasons),
            fever_masked=g.fever_masked,
            tocilizumab=g.tocilizumab,
            corticosteroids=g.corticosteroids,
        )
        for g in daily_grades(course)
    ]


@router.post(
    "/patients/{study_id}/assessments",
    response_model=schemas.AssessmentPublic,
    status_code=status.HTTP_201_CREATED,
    responses=_answers(403, 404, 409),
)
def post_assessment(
    study_id: str, body: schemas.AssessmentPost, principal: CsrfChecked, registry: RegistryDep
) -> schemas.AssessmentPublic:
    """Store one day's observations; answers with the day's grades."""
    actor = principal.actor
    actor.require_write()
    record = schemas.AssessmentCreate(**body.model_dump(exclude={"reason"})).to_record()
    course = registry.load_course(actor, study_id)
    check_icans_gradable(course, record)
    registry.add_record(actor, study_id, "daily_assessments", record, reason=body.reason)
    live = grade_day(course, record)
    return schemas.AssessmentPublic(
        **body.model_dump(exclude={"reason"}),
        study_day=live.study_day,
        crs_grade=live.crs_grade,
        crs_reasons=list(live.crs_reasons),
        icans_grade=live.icans_grade,
        icans_reasons=list(live.icans_reasons),
    )


@router.post(
    "/patients/{study_id}/labs",
    response_model=schemas.LabPublic,
    status_code=status.HTTP_201_CREATED,
    responses=_answers(403, 404, 409),
)
def post_lab(
    study_id: str, body: schemas.LabCreate, principal: CsrfChecked, registry: RegistryDep
) -> schemas.LabPublic:
    """Store one lab value (converted to the analyte's canonical unit)."""
    actor = principal.actor
    actor.require_write()
    record = body.to_record()
    registry.add_record(actor, study_id, "labs", record, reason=body.reason)
    return schemas.LabPublic(**record.as_dict())


@router.post("/grade", response_model=schemas.GradeResult, responses=_answers(404))
def grade(
    body: schemas.GradeRequest, principal: CsrfChecked, registry: RegistryDep
) -> schemas.GradeResult:
    """Grade observations without storing them (the live grade of the assessment form).

    With ``study_id`` the patient's age on ``date`` chooses ICE or CAPD and earlier days give
    the context (masked fever after tocilizumab/corticosteroids); without it, ``age_years``.
    """
    record = schemas.AssessmentCreate(
        **body.model_dump(exclude={"study_id", "age_years"})
    ).to_record()
    if body.study_id is not None:
        live = grade_day(registry.load_course(principal.actor, body.study_id), record)
    elif body.age_years is None:
        raise InvalidInput("age_years", None, "an age in years when no study_id is given")
    else:
        live = grade_observations(record, age_years=body.age_years)
    return schemas.GradeResult(
        study_day=live.study_day,
        crs_grade=live.crs_grade,
        crs_reasons=list(live.crs_reasons),
        icans_grade=live.icans_grade,
        icans_reasons=list(live.icans_reasons),
        instrument=live.instrument,
        age_years=round(live.age_years, 2),
        fever_masked=live.fever_masked,
        blank=record.is_blank,
    )
