"""JSON schemas of the API (``/api/v1``), in families: ``*Create`` in, ``*Public`` out.

Types are checked here; ranges and vocabularies are checked by the domain records
(:mod:`immunoreset.course`), so the API answers out-of-range values with the same field
messages as the forms and the importers (422, ``{"detail": [{"loc", "msg", "type"}]}``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from immunoreset import course as c
from immunoreset import vocab
from immunoreset.errors import InvalidInput

__all__ = [
    "AssessmentCreate",
    "AssessmentPublic",
    "CoursePublic",
    "DailyGradePublic",
    "DiseaseCreate",
    "GradeRequest",
    "GradeResult",
    "LabCreate",
    "LabPublic",
    "PatientPublic",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _one_of(values: Any, default: str | None = None) -> Any:
    """A text field whose allowed values the OpenAPI schema lists (the domain checks them)."""
    return Field(default, json_schema_extra={"enum": list(values)})


def _range(lo: float, hi: float, text: str) -> Any:
    """An optional number whose allowed range the OpenAPI schema states (the domain checks it)."""
    return Field(None, description=text, json_schema_extra={"minimum": lo, "maximum": hi})


class PatientPublic(BaseModel):
    """A pseudonymous patient as the API shows it."""

    study_id: str
    site: str
    sex: str
    birth_year: int
    birth_month: int
    diagnosis: str
    icd10: str
    diagnosis_date: dt.date
    prior_therapy_lines: int
    synthetic: bool

    @classmethod
    def of(cls, p: c.Patient) -> PatientPublic:
        return cls(**p.as_dict())


class AssessmentCreate(_Strict):
    """One day's observations (the fields of :class:`~immunoreset.course.DailyAssessment`)."""

    date: dt.date
    temperature_max_c: float | None = _range(25, 45, "day's maximum, °C (25–45)")
    hypotension: bool = False
    vasopressors: list[str] = Field(
        default_factory=list, json_schema_extra={"items": {"enum": list(vocab.VASOPRESSORS)}}
    )
    oxygen_device: str = _one_of(vocab.OXYGEN_DEVICES, "room_air")
    oxygen_flow_l_min: float | None = _range(0, 80, "L/min (0–80)")
    ice_score: int | None = _range(0, 10, "ICE 0–10, age ≥ 12 years")
    capd_score: int | None = _range(0, 32, "CAPD 0–32, children under 12")
    unable_to_assess: bool = False
    consciousness: str = _one_of(vocab.CONSCIOUSNESS, "awake")
    seizure: str = _one_of(vocab.SEIZURE, "none")
    motor_weakness: bool = False
    cerebral_edema: str = _one_of(vocab.CEREBRAL_EDEMA, "none")
    tocilizumab: bool = False
    corticosteroids: bool = False
    anakinra: bool = False
    siltuximab: bool = False
    other_anticytokine: bool = False
    antipyretic: bool = False
    capd_answers: dict[str, str] | None = Field(
        None,
        description="CAPD answered item by item (never … always; items 1–4 reverse-scored); "
        "sets capd_score",
    )

    def to_record(self) -> c.DailyAssessment:
        from immunoreset.clinical.icans import score_capd_answers

        values = self.model_dump()
        values["vasopressors"] = tuple(values["vasopressors"])
        answers = values.pop("capd_answers")
        if answers:
            total = score_capd_answers(answers)
            if values["capd_score"] is not None and values["capd_score"] != total:
                raise InvalidInput(
                    "capd_score", values["capd_score"], f"empty or {total} (the items' total)"
                )
            values["capd_score"] = total
        return c.DailyAssessment(**values)


class AssessmentPost(AssessmentCreate):
    """An assessment to store, with the reason written to the audit trail."""

    reason: str = "entered through the API"


class AssessmentPublic(AssessmentCreate):
    """A stored assessment with its study day and grades."""

    model_config = ConfigDict(extra="ignore")

    study_day: int | None = None
    crs_grade: int | None = None
    crs_reasons: list[str] = Field(default_factory=list)
    icans_grade: int | None = None
    icans_reasons: list[str] = Field(default_factory=list)


class GradeRequest(AssessmentCreate):
    """Observations to grade without storing them; ``study_id`` gives age and context."""

    study_id: str | None = None
    age_years: float | None = Field(None, description="needed without study_id (ICE vs CAPD)")


class GradeResult(BaseModel):
    """The CRS and ICANS grade of the observations, with the criteria that set them."""

    study_day: int | None
    crs_grade: int | None
    crs_reasons: list[str]
    icans_grade: int | None
    icans_reasons: list[str]
    instrument: str
    age_years: float
    fever_masked: bool = False
    blank: bool = Field(False, description="nothing observed: not assessed, cannot be saved")


class DailyGradePublic(BaseModel):
    """One study day's CRS and ICANS grade (None = not gradable), with reasons."""

    study_day: int
    date: dt.date
    crs_grade: int | None
    crs_reasons: list[str]
    icans_grade: int | None
    icans_reasons: list[str]
    fever_masked: bool
    tocilizumab: bool
    corticosteroids: bool


class LabCreate(_Strict):
    """One lab value in any supported unit (converted to the analyte's canonical unit)."""

    date: dt.date
    analyte: str = _one_of(vocab.ANALYTES, ...)
    value: float
    unit: str
    lloq: float | None = None
    below_lloq: bool = False
    reason: str = "entered through the API"

    def to_record(self) -> c.LabResult:
        values = self.model_dump(exclude={"reason"})
        return c.LabResult.create(**values)


class LabPublic(BaseModel):
    """A stored lab value, in the canonical unit."""

    date: dt.date
    analyte: str
    value: float
    unit: str
    lloq: float | None = None
    below_lloq: bool = False


class DiseaseCreate(_Strict):
    """A disease-activity score (total) on a date."""

    date: dt.date
    instrument: str
    score: float
    reason: str = "entered through the API"


class CoursePublic(BaseModel):
    """A whole course: the patient and every record type as lists of plain objects."""

    patient: PatientPublic
    day0: dt.date | None
    records: dict[str, list[dict[str, Any]]]

    @classmethod
    def of(cls, course: c.Course) -> CoursePublic:
        from dataclasses import fields

        records: dict[str, list[dict[str, Any]]] = {}
        for f in fields(course):
            if f.name == "patient":
                continue
            value = getattr(course, f.name)
            items = value if isinstance(value, tuple) else ((value,) if value else ())
            records[f.name] = [_plain(r.as_dict()) for r in items]
        return cls(patient=PatientPublic.of(course.patient), day0=course.day0, records=records)


def _plain(d: dict[str, Any]) -> dict[str, Any]:
    return {
        k: (list(v) if isinstance(v, tuple) else dict(v) if hasattr(v, "items") else v)
        for k, v in d.items()
    }
