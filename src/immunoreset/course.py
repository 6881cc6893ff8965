"""One patient's treatment course as validated, immutable domain objects.

Every record keeps calendar dates; study days (day 0 = infusion) are derived by :class:`Course`.
Each constructor validates its values and raises :class:`~immunoreset.errors.InvalidInput` naming
the field and the allowed range, so an impossible value can never reach the registry, the
calculators or a report. Lab values are converted to the analyte's canonical unit on entry
(:mod:`immunoreset.units`), so every count is in cells/µL everywhere downstream.

Records are frozen dataclasses with ``__slots__``: a 10,000-patient registry holds millions of
them, and they are shared by the web app, the report and the analyses without copying.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from functools import cache, cached_property
from operator import attrgetter
from typing import Any

import numpy as np

from immunoreset import vocab
from immunoreset.errors import InvalidInput, check_choice, check_range

__all__ = [
    "COLLECTIONS",
    "AdverseEvent",
    "Anthropometric",
    "Apheresis",
    "Bag",
    "Batch",
    "Course",
    "DailyAssessment",
    "DiseaseAssessment",
    "FollowUp",
    "FollowUpVisit",
    "Infection",
    "Infusion",
    "LabResult",
    "Lymphodepletion",
    "Medication",
    "Patient",
]

STUDY_ID_PATTERN = re.compile(r"^[A-Z]{2,5}-\d{3,6}$")
ICD10_PATTERN = re.compile(r"^[A-Z]\d{2}(\.\d{1,2})?$")
ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,63}$")
EARLIEST = dt.date(1900, 1, 1)
LATEST = dt.date(2100, 12, 31)


# --------------------------------------------------------------------------- field checks
def _date(name: str, value: Any, *, allow_none: bool = False) -> dt.date | None:
    if value is None and allow_none:
        return None
    if isinstance(value, dt.datetime) or not isinstance(value, dt.date):
        raise InvalidInput(name, value, "a calendar date (YYYY-MM-DD)")
    if not EARLIEST <= value <= LATEST:
        raise InvalidInput(name, value, "a date within 1900-01-01–2100-12-31")
    return value


def _text(name: str, value: Any, *, pattern: re.Pattern[str] | None = None, what: str = "") -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(name, value, what or "a non-empty text")
    if pattern is not None and not pattern.match(value):
        raise InvalidInput(name, value, what or f"text matching {pattern.pattern}")
    if len(value) > 200:
        raise InvalidInput(name, value, "at most 200 characters")
    return value


def _flag(name: str, value: Any) -> bool:
    if not isinstance(value, bool | np.bool_):
        raise InvalidInput(name, value, "true or false")
    return bool(value)


def _set(obj: Any, name: str, value: Any) -> None:
    object.__setattr__(obj, name, value)


def _study_id(value: Any) -> str:
    return _text("study_id", value, pattern=STUDY_ID_PATTERN, what="a study ID such as RM-003")


def _record_id(name: str, value: Any) -> str:
    return _text(name, value, pattern=ID_PATTERN, what="an ID of letters, digits, . _ / -")


class _Record:
    """Shared helpers of the record types (field names, plain dict for import/export)."""

    __slots__ = ()

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))  # type: ignore[arg-type]

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.field_names()}


# --------------------------------------------------------------------------- patient
@dataclass(frozen=True, slots=True)
class Patient(_Record):
    """A pseudonymous patient: no names, no full birth dates (year and month only).

    ``synthetic`` marks records made by the demo generator; reports label them SYNTHETIC.
    """

    study_id: str
    site: str
    sex: str
    birth_year: int
    birth_month: int
    diagnosis: str
    icd10: str
    diagnosis_date: dt.date
    prior_therapy_lines: int = 0
    synthetic: bool = False

    def __post_init__(self) -> None:
        _study_id(self.study_id)
        _record_id("site", self.site)
        check_choice("sex", self.sex, vocab.SEXES)
        check_range("birth_year", self.birth_year, 1900, 2100, integer=True)
        check_range("birth_month", self.birth_month, 1, 12, integer=True)
        check_choice("diagnosis", self.diagnosis, vocab.DIAGNOSES)
        _text("icd10", self.icd10, pattern=ICD10_PATTERN, what="an ICD-10 code such as M32.1")
        _date("diagnosis_date", self.diagnosis_date)
        if (self.diagnosis_date.year, self.diagnosis_date.month) < (
            self.birth_year,
            self.birth_month,
        ):
            raise InvalidInput(
                "diagnosis_date", self.diagnosis_date, "a date on or after the birth month"
            )
        check_range("prior_therapy_lines", self.prior_therapy_lines, 0, 30, integer=True)
        _flag("synthetic", self.synthetic)

    def age_on(self, when: dt.date) -> float:
        """Age in years on ``when``, taking birth as the middle of the birth month."""
        born = dt.date(self.birth_year, self.birth_month, 15)
        return (when - born).days / 365.25


# --------------------------------------------------------------------------- body size
@dataclass(frozen=True, slots=True)
class Anthropometric(_Record):
    """Weight (kg) and height (cm) on a date."""

    date: dt.date
    weight_kg: float
    height_cm: float | None = None

    def __post_init__(self) -> None:
        _date("date", self.date)
        check_range("weight_kg", self.weight_kg, 1, 250, "kg")
        check_range("height_cm", self.height_cm, 40, 230, "cm", allow_none=True)


# --------------------------------------------------------------------------- manufacturing
@dataclass(frozen=True, slots=True)
class Apheresis(_Record):
    """Leukapheresis collection: the start of the chain of identity."""

    apheresis_id: str
    date: dt.date
    cd3_cells: float
    volume_ml: float

    def __post_init__(self) -> None:
        _record_id("apheresis_id", self.apheresis_id)
        _date("date", self.date)
        check_range("cd3_cells", self.cd3_cells, 0, 1e12, "cells")
        check_range("volume_ml", self.volume_ml, 0, 2000, "mL", lo_open=True)


BATCH_STATUS = ("in_process", "quarantined", "released", "failed")


@dataclass(frozen=True, slots=True)
class Batch(_Record):
    """A manufacturing batch made from one apheresis product."""

    batch_id: str
    apheresis_id: str
    platform: str
    process_start: dt.date
    harvest_date: dt.date | None
    operator: str
    status: str = "in_process"

    def __post_init__(self) -> None:
        _record_id("batch_id", self.batch_id)
        _record_id("apheresis_id", self.apheresis_id)
        _text("platform", self.platform)
        _date("process_start", self.process_start)
        _date("harvest_date", self.harvest_date, allow_none=True)
        if self.harvest_date is not None and self.harvest_date < self.process_start:
            raise InvalidInput("harvest_date", self.harvest_date, "on or after process_start")
        _text("operator", self.operator)
        check_choice("status", self.status, BATCH_STATUS)


BAG_STATUS = (
    "quarantined",
    "released",
    "infused",
    "stored_for_redosing",
    "discarded",
    "expired",
)


@dataclass(frozen=True, slots=True)
class Bag(_Record):
    """A drug-product bag of one batch."""

    bag_id: str
    batch_id: str
    car_t_cells: float
    volume_ml: float
    status: str = "quarantined"
    location: str | None = None
    expiry: dt.date | None = None

    def __post_init__(self) -> None:
        _record_id("bag_id", self.bag_id)
        _record_id("batch_id", self.batch_id)
        check_range("car_t_cells", self.car_t_cells, 0, 1e11, "CAR+ T cells")
        check_range("volume_ml", self.volume_ml, 0, 1000, "mL", lo_open=True)
        check_choice("status", self.status, BAG_STATUS)
        if self.location is not None:
            _text("location", self.location)
        _date("expiry", self.expiry, allow_none=True)


# --------------------------------------------------------------------------- treatment
LYMPHODEPLETION_DRUGS = ("fludarabine", "cyclophosphamide", "bendamustine")


@dataclass(frozen=True, slots=True)
class Lymphodepletion(_Record):
    """One day's lymphodepleting chemotherapy dose."""

    date: dt.date
    drug: str
    dose_mg_m2: float

    def __post_init__(self) -> None:
        _date("date", self.date)
        check_choice("drug", self.drug, LYMPHODEPLETION_DRUGS)
        check_range("dose_mg_m2", self.dose_mg_m2, 0, 3000, "mg/m²", lo_open=True)


@dataclass(frozen=True, slots=True)
class Infusion(_Record):
    """The CAR T infusion (day 0)."""

    date: dt.date
    bag_ids: tuple[str, ...]
    dose_cells_per_kg: float

    def __post_init__(self) -> None:
        _date("date", self.date)
        if isinstance(self.bag_ids, str) or not isinstance(self.bag_ids, tuple | list):
            raise InvalidInput("bag_ids", self.bag_ids, "a list of bag IDs")
        if not self.bag_ids:
            raise InvalidInput("bag_ids", self.bag_ids, "at least one bag ID")
        for bag in self.bag_ids:
            _record_id("bag_ids", bag)
        _set(self, "bag_ids", tuple(self.bag_ids))
        check_range("dose_cells_per_kg", self.dose_cells_per_kg, 0, 1e9, "CAR+ T cells/kg")


# --------------------------------------------------------------------------- observations
#: DailyAssessment flags of drugs that can mask fever -> the agent key of the settings.
MASKING_FLAGS: dict[str, str] = {
    "tocilizumab": "tocilizumab",
    "corticosteroids": "corticosteroid",
    "anakinra": "anakinra",
    "siltuximab": "siltuximab",
    "other_anticytokine": "other_anticytokine",
    "antipyretic": "antipyretic",
}


@dataclass(frozen=True, slots=True)
class DailyAssessment(_Record):
    """The day's raw observations from which CRS and ICANS are graded.

    ``temperature_max_c`` is the day's maximum; ``hypotension`` whether hypotension (by the
    age-dependent threshold, see :func:`immunoreset.clinical.crs.is_hypotensive`) was present;
    ``vasopressors`` the drugs given; the oxygen device and flow the most intensive support of
    the day; ``ice_score`` (age ≥ 12) or ``capd_score`` (younger children) the worst of the day.
    ``tocilizumab``, ``corticosteroids``, ``anakinra``, ``siltuximab``, ``other_anticytokine``
    and ``antipyretic`` record that the drug was given that day (fever masking, see
    :mod:`immunoreset.clinical.episodes`). Contradictions are refused: a flow on room air, a
    nasal cannula at 0 L/min, ``unable_to_assess`` while ``awake``.
    """

    date: dt.date
    temperature_max_c: float | None = None
    hypotension: bool = False
    vasopressors: tuple[str, ...] = ()
    oxygen_device: str = "room_air"
    oxygen_flow_l_min: float | None = None
    ice_score: int | None = None
    capd_score: int | None = None
    unable_to_assess: bool = False
    consciousness: str = "awake"
    seizure: str = "none"
    motor_weakness: bool = False
    cerebral_edema: str = "none"
    tocilizumab: bool = False
    corticosteroids: bool = False
    anakinra: bool = False
    siltuximab: bool = False
    other_anticytokine: bool = False
    antipyretic: bool = False

    def __post_init__(self) -> None:
        _date("date", self.date)
        check_range("temperature_max_c", self.temperature_max_c, 25, 45, "°C", allow_none=True)
        _flag("hypotension", self.hypotension)
        if isinstance(self.vasopressors, str) or not isinstance(self.vasopressors, tuple | list):
            raise InvalidInput("vasopressors", self.vasopressors, "a list of vasopressor names")
        for drug in self.vasopressors:
            check_choice("vasopressors", drug, vocab.VASOPRESSORS)
        _set(self, "vasopressors", tuple(self.vasopressors))
        check_choice("oxygen_device", self.oxygen_device, vocab.OXYGEN_DEVICES)
        check_range("oxygen_flow_l_min", self.oxygen_flow_l_min, 0, 80, "L/min", allow_none=True)
        if self.oxygen_device == "nasal_cannula" and self.oxygen_flow_l_min is None:
            raise InvalidInput(
                "oxygen_flow_l_min", None, "a flow in L/min when oxygen_device is nasal_cannula"
            )
        flow = self.oxygen_flow_l_min
        if self.oxygen_device == "room_air" and flow is not None and flow > 0:
            raise InvalidInput("oxygen_flow_l_min", flow, "empty (or 0) on room air")
        if "nasal_cannula" in self.oxygen_device and flow is not None and flow <= 0:
            raise InvalidInput("oxygen_flow_l_min", flow, "> 0 L/min on a nasal cannula")
        check_range("ice_score", self.ice_score, 0, 10, integer=True, allow_none=True)
        check_range("capd_score", self.capd_score, 0, 32, integer=True, allow_none=True)
        _flag("unable_to_assess", self.unable_to_assess)
        check_choice("consciousness", self.consciousness, vocab.CONSCIOUSNESS)
        check_choice("seizure", self.seizure, vocab.SEIZURE)
        _flag("motor_weakness", self.motor_weakness)
        check_choice("cerebral_edema", self.cerebral_edema, vocab.CEREBRAL_EDEMA)
        if self.unable_to_assess and self.consciousness == "awake":
            raise InvalidInput(
                "unable_to_assess", True, "false while awake (unable to assess = unarousable)"
            )
        for name in MASKING_FLAGS:
            _flag(name, getattr(self, name))

    @property
    def is_blank(self) -> bool:
        """True when nothing was observed: "not assessed", never a grade 0 (issue #12 item 4)."""
        return all(getattr(self, name) == default for name, default in _blank_defaults())


@cache
def _blank_defaults() -> tuple[tuple[str, Any], ...]:
    return tuple((f.name, f.default) for f in fields(DailyAssessment) if f.name != "date")


def check_not_blank(record: Any) -> None:
    """Refuse a blank daily assessment: the one rule every writer of the registry applies."""
    if isinstance(record, DailyAssessment) and record.is_blank:
        raise InvalidInput(
            "observations",
            f"none on {record.date.isoformat()}",
            "at least one observation (a blank assessment is 'not assessed' and is not saved)",
            message="a blank assessment cannot be saved: enter at least one observation "
            "(a day with nothing entered is 'not assessed', not grade 0)",
        )


@dataclass(frozen=True, slots=True)
class LabResult(_Record):
    """One laboratory value, stored in the analyte's canonical unit (see :data:`vocab.ANALYTES`).

    Construct with :meth:`LabResult.create` to convert from another unit; the plain constructor
    requires the canonical unit. ``lloq`` is the assay's lower limit of quantification, in the
    same unit, when the lab reports one (CAR T assays); ``below_lloq`` marks a result reported
    as "< LLOQ" (``value`` then holds the LLOQ itself, never a made-up zero).
    """

    date: dt.date
    analyte: str
    value: float
    unit: str
    lloq: float | None = None
    below_lloq: bool = False

    def __post_init__(self) -> None:
        _date("date", self.date)
        check_choice("analyte", self.analyte, vocab.ANALYTES)
        canonical, maximum, _ = vocab.ANALYTES[self.analyte]
        if self.unit != canonical:
            raise InvalidInput(
                "unit",
                self.unit,
                f"{canonical} for {self.analyte} (use LabResult.create to convert)",
            )
        check_range("value", self.value, 0, maximum, canonical)
        check_range("lloq", self.lloq, 0, maximum, canonical, allow_none=True)
        _flag("below_lloq", self.below_lloq)
        if self.below_lloq and self.lloq is None:
            raise InvalidInput("lloq", None, "the assay's LLOQ when below_lloq is true")

    @classmethod
    def create(
        cls,
        *,
        date: dt.date,
        analyte: str,
        value: float,
        unit: str,
        lloq: float | None = None,
        below_lloq: bool = False,
    ) -> LabResult:
        """Build a result from any supported unit, converting value and LLOQ to canonical."""
        from immunoreset.units import to_canonical

        check_choice("analyte", analyte, vocab.ANALYTES)
        check_range("value", value, 0, None, unit if isinstance(unit, str) else "")
        canonical = vocab.ANALYTES[analyte][0]
        factor = to_canonical(analyte, unit)
        return cls(
            date=date,
            analyte=analyte,
            value=float(value) * factor,
            unit=canonical,
            lloq=None if lloq is None else float(check_range("lloq", lloq, 0, None)) * factor,
            below_lloq=below_lloq,
        )


@dataclass(frozen=True, slots=True)
class DiseaseAssessment(_Record):
    """A disease-activity instrument on a date: its total score and, where recorded, its items.

    Items hold the raw entries (SLEDAI-2K descriptors present = 1, CMAS items, MMT8 groups,
    mRSS sites); the score is the instrument's total in its own range (:data:`vocab.INSTRUMENTS`).
    """

    date: dt.date
    instrument: str
    score: float
    items: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _date("date", self.date)
        check_choice("instrument", self.instrument, vocab.INSTRUMENTS)
        lo, hi, _ = vocab.INSTRUMENTS[self.instrument]
        check_range("score", self.score, lo, hi)
        if not isinstance(self.items, Mapping):
            raise InvalidInput("items", self.items, "a mapping of item name to value")
        for key, val in self.items.items():
            _text("items", key)
            check_range(f"items.{key}", val, 0, 1000)
        _set(self, "items", dict(self.items))

    def __hash__(self) -> int:
        return hash((self.date, self.instrument, self.score, tuple(sorted(self.items.items()))))


DOSE_UNITS = ("mg/day", "mg/kg/day", "mg/m2", "mg/week", "mg/month", "g/kg", "mg")


@dataclass(frozen=True, slots=True)
class Medication(_Record):
    """A medication (immunosuppressant or other) over an interval; ``stop`` None = ongoing."""

    drug: str
    drug_class: str
    dose: float
    dose_unit: str
    start: dt.date
    stop: dt.date | None = None

    def __post_init__(self) -> None:
        _text("drug", self.drug)
        check_choice("drug_class", self.drug_class, vocab.MEDICATION_CLASSES)
        check_range("dose", self.dose, 0, 100_000, self.dose_unit)
        check_choice("dose_unit", self.dose_unit, DOSE_UNITS)
        _date("start", self.start)
        _date("stop", self.stop, allow_none=True)
        if self.stop is not None and self.stop < self.start:
            raise InvalidInput("stop", self.stop, "on or after start")


@dataclass(frozen=True, slots=True)
class AdverseEvent(_Record):
    """An adverse event as the investigator recorded it (CTCAE grade 1–5)."""

    term: str
    category: str
    grade: int
    onset: dt.date
    resolution: dt.date | None = None
    serious: bool = False
    related: bool = False

    def __post_init__(self) -> None:
        _text("term", self.term)
        check_choice("category", self.category, vocab.AE_CATEGORIES)
        check_range("grade", self.grade, 1, 5, integer=True)
        _date("onset", self.onset)
        _date("resolution", self.resolution, allow_none=True)
        if self.resolution is not None and self.resolution < self.onset:
            raise InvalidInput("resolution", self.resolution, "on or after onset")
        _flag("serious", self.serious)
        _flag("related", self.related)


@dataclass(frozen=True, slots=True)
class FollowUp(_Record):
    """Last contact and vital status."""

    last_contact: dt.date
    status: str = "alive"

    def __post_init__(self) -> None:
        _date("last_contact", self.last_contact)
        check_choice("status", self.status, vocab.FOLLOWUP_STATUS)


INFECTION_SITES = (
    "bloodstream",
    "upper_respiratory",
    "lower_respiratory",
    "urinary",
    "gastrointestinal",
    "skin_soft_tissue",
    "cns",
    "disseminated",
    "other",
)


@dataclass(frozen=True, slots=True)
class Infection(_Record):
    """An infection (Hill 2018 reporting): onset date, site, organism class, CTCAE grade.

    ``organism`` is optional free text (e.g. ``CMV``, ``E. coli``); ``bmtctn_severity`` the
    BMT CTN 5-level severity when the investigator recorded it.
    """

    onset: dt.date
    site: str
    organism_class: str
    ctcae_grade: int
    organism: str | None = None
    bmtctn_severity: str | None = None

    def __post_init__(self) -> None:
        _date("onset", self.onset)
        check_choice("site", self.site, INFECTION_SITES)
        check_choice("organism_class", self.organism_class, vocab.ORGANISM_CLASSES)
        check_range("ctcae_grade", self.ctcae_grade, 1, 5, integer=True)
        if self.organism is not None:
            _text("organism", self.organism)
        if self.bmtctn_severity is not None:
            check_choice("bmtctn_severity", self.bmtctn_severity, vocab.BMTCTN_SEVERITY)


@dataclass(frozen=True, slots=True)
class FollowUpVisit(_Record):
    """A long-term follow-up visit that took place, with its date, contact and items collected.

    ``visit`` is a code of :func:`immunoreset.clinical.followup.build_schedule` (``M3``, ``Y2``).
    """

    visit: str
    date: dt.date
    contact: str = "visit"
    items: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.visit, str) or not VISIT_CODE_PATTERN.match(self.visit):
            raise InvalidInput("visit", self.visit, "a visit code: D28, M3, M6, M12, Y2 … Y30")
        _date("date", self.date)
        check_choice("contact", self.contact, ("visit", "remote"))
        if isinstance(self.items, str) or not isinstance(self.items, tuple | list):
            raise InvalidInput("items", self.items, "a list of collected items")
        for item in self.items:
            check_choice("items", item, vocab.LTFU_ITEMS)
        # a set of items, kept in vocabulary order (so every format round-trips it exactly)
        _set(self, "items", tuple(i for i in vocab.LTFU_ITEMS if i in self.items))


VISIT_CODE_PATTERN = re.compile(r"^(D28|M3|M6|M12|Y([2-9]|[12]\d|30))$")


# --------------------------------------------------------------------------- the course
@dataclass(frozen=True)
class Course:
    """Everything known about one patient's treatment course.

    Collections are tuples sorted by date. Study days are derived from the first infusion
    (day 0); before an infusion exists, :attr:`day0` is ``None`` and :meth:`study_day` raises.
    """

    patient: Patient
    anthropometrics: tuple[Anthropometric, ...] = ()
    apheresis: tuple[Apheresis, ...] = ()
    batches: tuple[Batch, ...] = ()
    bags: tuple[Bag, ...] = ()
    lymphodepletion: tuple[Lymphodepletion, ...] = ()
    infusions: tuple[Infusion, ...] = ()
    daily_assessments: tuple[DailyAssessment, ...] = ()
    labs: tuple[LabResult, ...] = ()
    disease_assessments: tuple[DiseaseAssessment, ...] = ()
    medications: tuple[Medication, ...] = ()
    adverse_events: tuple[AdverseEvent, ...] = ()
    infections: tuple[Infection, ...] = ()
    followup_visits: tuple[FollowUpVisit, ...] = ()
    followup: FollowUp | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.patient, Patient):
            raise InvalidInput("patient", self.patient, "a Patient")
        for name in COLLECTIONS:
            items = tuple(getattr(self, name))
            key = _SORT_KEYS[name]
            object.__setattr__(self, name, tuple(sorted(items, key=key)))
        seen: set[dt.date] = set()
        for a in self.daily_assessments:
            if a.date in seen:
                raise InvalidInput("daily_assessments", a.date, "one assessment per date")
            seen.add(a.date)

    # ---- time
    @property
    def study_id(self) -> str:
        return self.patient.study_id

    @property
    def infusion(self) -> Infusion | None:
        """The first (index) infusion, or None before infusion."""
        return self.infusions[0] if self.infusions else None

    @property
    def day0(self) -> dt.date | None:
        return self.infusions[0].date if self.infusions else None

    def study_day(self, when: dt.date) -> int:
        """Study day of ``when``: 0 on the infusion date, negative before (no day zero skipped)."""
        if self.day0 is None:
            raise InvalidInput("infusion", None, "an infusion date before study days exist")
        return (when - self.day0).days

    def date_of_day(self, day: int) -> dt.date:
        if self.day0 is None:
            raise InvalidInput("infusion", None, "an infusion date before study days exist")
        return self.day0 + dt.timedelta(days=int(day))

    def age_on(self, when: dt.date) -> float:
        return self.patient.age_on(when)

    @property
    def age_at_infusion(self) -> float | None:
        return None if self.day0 is None else self.patient.age_on(self.day0)

    def weight_on(self, when: dt.date) -> Anthropometric | None:
        """The most recent body measurement on or before ``when`` (else the earliest after)."""
        before = [a for a in self.anthropometrics if a.date <= when]
        if before:
            return before[-1]
        return self.anthropometrics[0] if self.anthropometrics else None

    # ---- series
    def lab_series(self, analyte: str) -> tuple[np.ndarray, np.ndarray]:
        """Study days and values of one analyte, sorted by day (lowest value kept per day)."""
        return self._lab_index.get(analyte, (np.empty(0), np.empty(0)))

    def lab_results(self, analyte: str) -> tuple[LabResult, ...]:
        check_choice("analyte", analyte, vocab.ANALYTES)
        return tuple(r for r in self.labs if r.analyte == analyte)

    def disease_series(self, instrument: str) -> tuple[np.ndarray, np.ndarray]:
        check_choice("instrument", instrument, vocab.INSTRUMENTS)
        rows = [d for d in self.disease_assessments if d.instrument == instrument]
        days = np.array([self.study_day(d.date) for d in rows], dtype=float)
        return days, np.array([d.score for d in rows], dtype=float)

    @cached_property
    def _lab_index(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        if self.day0 is None:
            return {}
        out: dict[str, dict[int, float]] = {}
        day0 = self.day0
        for r in self.labs:
            d = (r.date - day0).days
            per = out.setdefault(r.analyte, {})
            if d not in per or r.value < per[d]:
                per[d] = r.value
        return {
            k: (np.array(sorted(v), dtype=float), np.array([v[d] for d in sorted(v)], dtype=float))
            for k, v in out.items()
        }

    @property
    def last_contact(self) -> dt.date | None:
        if self.followup is not None:
            return self.followup.last_contact
        dates = [r.date for r in self.labs] + [a.date for a in self.daily_assessments]
        return max(dates) if dates else None


#: The record collections of a course, in chain-of-care order.
COLLECTIONS = (
    "anthropometrics",
    "apheresis",
    "batches",
    "bags",
    "lymphodepletion",
    "infusions",
    "daily_assessments",
    "labs",
    "disease_assessments",
    "medications",
    "adverse_events",
    "infections",
    "followup_visits",
)
_SORT_KEYS: dict[str, Any] = {
    "anthropometrics": attrgetter("date"),
    "apheresis": attrgetter("date", "apheresis_id"),
    "batches": attrgetter("process_start", "batch_id"),
    "bags": attrgetter("bag_id"),
    "lymphodepletion": attrgetter("date", "drug"),
    "infusions": attrgetter("date"),
    "daily_assessments": attrgetter("date"),
    "labs": attrgetter("date", "analyte"),
    "disease_assessments": attrgetter("date", "instrument"),
    "medications": attrgetter("start", "drug"),
    "adverse_events": attrgetter("onset", "term"),
    "infections": attrgetter("onset", "site"),
    "followup_visits": attrgetter("date", "visit"),
}
