"""Infections after CAR T: events by period and infection density per 100 patient-days at risk.

Sources
-------
Hill JA, Li D, Hay KA, et al. Infectious complications of CD19-targeted CAR-modified T-cell
immunotherapy. *Blood* 2018;131(1):121–130: windows **days 0–28 and 29–90**; density 1.19
(0–28) and 0.67 (29–90) infections per 100 days at risk. Paediatric/AYA: Maron GM et al.
*Front Oncol* 2022;12:845540 (same windows). Severity: BMT CTN Technical MOP v3.0 (2013)
Appendix 4-A (3 grades) and the BMT CTN 5-level severity (mild … fatal); CTCAE v5.0 generic
grades. Project specification clinical-addendum.md §3.

Definition
----------
* Window sets (:data:`WINDOW_SETS`): ``hill_2018`` = [0–28], [29–90];
  ``platform_default`` = [0–30], [31–100], [> 100] (aligns with ICAHT/T-ICAHT, not from an
  infection paper). Day 0 = infusion; windows are inclusive.
* Days at risk of a patient in [a, b] = min(b, end of follow-up) − a + 1, 0 if negative, where
  the end of follow-up is the earliest of death, last contact and a censoring event
  (re-infusion, HCT, new line of therapy — Hill's exact rules UNCONFIRMED, so the caller passes
  the censoring day). An open last window runs to the end of follow-up.
* Density = 100 × events in the window / Σ days at risk. Event day = onset (first positive
  sample or clinical diagnosis); events after the end of follow-up or before day 0 are not
  counted.
* Recurrence: a repeat of the same organism class and site counts as a new event only after
  ``recurrence_interval_days`` (BMT CTN intervals UNCONFIRMED; default ``None`` = every recorded
  infection is an event, as entered by the investigator).
* Bacteraemia severity (:func:`grade_bacteraemia`, BMT CTN MOP App. 4-A as read from an OCR copy,
  UNCONFIRMED column assignment): CoNS/diphtheroid bacteraemia → 3-grade 1, 5-level moderate;
  other bacteraemia without severe sepsis → 2, severe; with severe sepsis or deep-organ
  involvement → 3, severe (life-threatening if the clinician says so).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from immunoreset import vocab
from immunoreset.clinical.settings import _check_flag
from immunoreset.errors import InvalidInput, check_choice, check_range

__all__ = [
    "ORGANISM_CLASSES",
    "SEVERITY_SCHEMES",
    "WINDOW_SETS",
    "DensityRow",
    "InfectionEvent",
    "PatientFollowUp",
    "assign_window",
    "compute_infection_density",
    "days_at_risk",
    "grade_bacteraemia",
]

ORGANISM_CLASSES: tuple[str, ...] = vocab.ORGANISM_CLASSES
SEVERITY_SCHEMES: tuple[str, ...] = ("ctcae_v5", "bmtctn_3grade", "bmtctn_5level")
#: Window set -> ((first day, last day or None = open), …).
WINDOW_SETS: Mapping[str, tuple[tuple[int, int | None], ...]] = {
    "hill_2018": ((0, 28), (29, 90)),
    "platform_default": ((0, 30), (31, 100), (101, None)),
}
_DAY_MAX = 36_500


@dataclass(frozen=True, slots=True)
class InfectionEvent:
    """One infection: onset study day, organism class, site, CTCAE grade (1–5)."""

    onset_day: int
    organism_class: str
    site: str
    ctcae_grade: int

    def __post_init__(self) -> None:
        check_range("onset_day", self.onset_day, -365, _DAY_MAX, "study day", integer=True)
        check_choice("organism_class", self.organism_class, ORGANISM_CLASSES)
        if not isinstance(self.site, str) or not self.site.strip():
            raise InvalidInput("site", self.site, "a non-empty infection site")
        check_range("ctcae_grade", self.ctcae_grade, 1, 5, integer=True)


@dataclass(frozen=True, slots=True)
class PatientFollowUp:
    """One patient's follow-up end (study day of death, last contact or censoring) and events."""

    end_day: int
    events: tuple[InfectionEvent, ...] = ()

    def __post_init__(self) -> None:
        check_range("end_day", self.end_day, 0, _DAY_MAX, "study day", integer=True)
        if isinstance(self.events, str) or not isinstance(self.events, Sequence):
            raise InvalidInput("events", self.events, "a list of InfectionEvent")
        for e in self.events:
            if not isinstance(e, InfectionEvent):
                raise InvalidInput("events", e, "an InfectionEvent")
        object.__setattr__(self, "events", tuple(self.events))


@dataclass(frozen=True, slots=True)
class DensityRow:
    """Infections in one window: events, patients at risk, patient-days, density per 100 days."""

    window: str
    first_day: int
    last_day: int | None
    events: int
    patients_at_risk: int
    patient_days: int
    density_per_100: float | None
    events_by_class: tuple[tuple[str, int], ...]
    severe_events: int  # CTCAE grade ≥ 3


def _window_set(name: str) -> tuple[tuple[int, int | None], ...]:
    return WINDOW_SETS[check_choice("window_set", name, WINDOW_SETS)]


def days_at_risk(first_day: int, last_day: int | None, end_day: int) -> int:
    """Days at risk in [first_day, last_day] for follow-up ending on ``end_day`` (inclusive).

    Examples
    --------
    >>> days_at_risk(0, 28, 14), days_at_risk(29, 90, 14), days_at_risk(0, 28, 200)
    (15, 0, 29)
    """
    check_range("first_day", first_day, 0, _DAY_MAX, "study day", integer=True)
    check_range("last_day", last_day, 0, _DAY_MAX, "study day", integer=True, allow_none=True)
    check_range("end_day", end_day, 0, _DAY_MAX, "study day", integer=True)
    if last_day is not None and last_day < first_day:
        raise InvalidInput("last_day", last_day, f"≥ first_day ({first_day})")
    stop = end_day if last_day is None else min(last_day, end_day)
    return max(0, stop - first_day + 1)


def _label(a: int, b: int | None) -> str:
    return f"days {a}–{b}" if b is not None else f"days > {a - 1}"


def assign_window(onset_day: int, window_set: str = "hill_2018") -> str | None:
    """The window label an onset day falls in (None outside every window).

    Examples
    --------
    >>> assign_window(28), assign_window(29), assign_window(91)
    ('days 0–28', 'days 29–90', None)
    >>> assign_window(30, "platform_default"), assign_window(101, "platform_default")
    ('days 0–30', 'days > 100')
    """
    check_range("onset_day", onset_day, -365, _DAY_MAX, "study day", integer=True)
    for a, b in _window_set(window_set):
        if onset_day >= a and (b is None or onset_day <= b):
            return _label(a, b)
    return None


def _counted(events: Sequence[InfectionEvent], interval: int | None) -> list[InfectionEvent]:
    if interval is None:
        return list(events)
    last: dict[tuple[str, str], int] = {}
    out = []
    for e in sorted(events, key=lambda e: e.onset_day):
        key = (e.organism_class, e.site.strip().lower())
        if key in last and e.onset_day - last[key] < interval:
            continue  # same organism class and site within the recurrence interval
        last[key] = e.onset_day
        out.append(e)
    return out


def compute_infection_density(
    patients: Sequence[PatientFollowUp],
    *,
    window_set: str = "hill_2018",
    recurrence_interval_days: int | None = None,
) -> tuple[DensityRow, ...]:
    """Infection events and density per 100 patient-days at risk, by window.

    Parameters
    ----------
    patients : sequence of PatientFollowUp
        Each patient's follow-up end day and infections.
    window_set : str
        ``"hill_2018"`` (0–28, 29–90) or ``"platform_default"`` (0–30, 31–100, > 100).
    recurrence_interval_days : int or None
        Same organism class + site within this many days is not a new event (UNCONFIRMED;
        None = every record counts).

    Returns
    -------
    tuple of DensityRow

    Examples
    --------
    >>> ten = [PatientFollowUp(90) for _ in range(7)] + [
    ...     PatientFollowUp(90, (InfectionEvent(d, "viral", "upper respiratory", 2),))
    ...     for d in (3, 10, 20)]
    >>> row = compute_infection_density(ten)[0]
    >>> row.events, row.patient_days, round(row.density_per_100, 2)
    (3, 290, 1.03)
    """
    if isinstance(patients, str) or not isinstance(patients, Sequence):
        raise InvalidInput("patients", patients, "a list of PatientFollowUp")
    for p in patients:
        if not isinstance(p, PatientFollowUp):
            raise InvalidInput("patients", p, "a PatientFollowUp")
    windows = _window_set(window_set)
    check_range(
        "recurrence_interval_days",
        recurrence_interval_days,
        1,
        365,
        "days",
        integer=True,
        allow_none=True,
    )
    rows = []
    for a, b in windows:
        events = 0
        days = 0
        at_risk = 0
        by_class: dict[str, int] = {}
        severe = 0
        for p in patients:
            risk = days_at_risk(a, b, p.end_day)
            days += risk
            at_risk += risk > 0
            for e in _counted(p.events, recurrence_interval_days):
                if (
                    e.onset_day < a
                    or (b is not None and e.onset_day > b)
                    or e.onset_day > p.end_day
                ):
                    continue
                events += 1
                by_class[e.organism_class] = by_class.get(e.organism_class, 0) + 1
                severe += e.ctcae_grade >= 3
        density = 100.0 * events / days if days else None
        rows.append(
            DensityRow(
                _label(a, b),
                a,
                b,
                events,
                at_risk,
                days,
                density,
                tuple(sorted(by_class.items())),
                severe,
            )
        )
    return tuple(rows)


def grade_bacteraemia(
    *,
    cons_or_diphtheroid: bool,
    severe_sepsis: bool = False,
    deep_organ_involvement: bool = False,
) -> Mapping[str, str | int]:
    """BMT CTN severity of a bacteraemia in both schemes (MOP App. 4-A; addendum §3.2 #4).

    Examples
    --------
    >>> grade_bacteraemia(cons_or_diphtheroid=True)
    {'bmtctn_3grade': 1, 'bmtctn_5level': 'moderate'}
    >>> grade_bacteraemia(cons_or_diphtheroid=False)
    {'bmtctn_3grade': 2, 'bmtctn_5level': 'severe'}
    """
    cons = _check_flag("cons_or_diphtheroid", cons_or_diphtheroid)
    sepsis = _check_flag("severe_sepsis", severe_sepsis)
    deep = _check_flag("deep_organ_involvement", deep_organ_involvement)
    if sepsis or deep:
        return {"bmtctn_3grade": 3, "bmtctn_5level": "severe"}
    if cons:
        return {"bmtctn_3grade": 1, "bmtctn_5level": "moderate"}
    return {"bmtctn_3grade": 2, "bmtctn_5level": "severe"}
