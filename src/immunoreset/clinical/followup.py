"""Long-term follow-up (LTFU) after gene-modified T cells: schedule, due and overdue visits.

Sources
-------
* FDA. *Long Term Follow-up After Administration of Human Gene Therapy Products*, Guidance for
  Industry, January 2020 (docket FDA-2018-D-2173): integrating vectors (γ-retroviral,
  lentiviral) → **15 years** of follow-up, ≥ 5 years of annual examinations then annual
  contacts/questionnaires (per the RAPS summary; guidance wording UNCONFIRMED).
* FDA. *Testing of Retroviral Vector-Based Human Gene Therapy Products for RCR During Product
  Manufacture and Patient Follow-up*, January 2020 (RCR/RCL monitoring; schedule UNCONFIRMED →
  :attr:`LtfuSettings.rcr_visits`).
* FDA boxed warning for T-cell malignancies after BCMA-/CD19-directed autologous CAR T,
  18 Apr 2024: life-long monitoring for new malignancies (applied here by analogy).
* EMA. *Guideline on follow-up of patients administered with gene therapy medicinal products*,
  CHMP/GTWP/60436/07 (2009/2010): risk-based follow-up; no fixed duration found (UNCONFIRMED).
* Items and frequencies: *Transplant Cell Ther* 2021;27(3):222–229, Table II (CBC, IgG until
  > 400 mg/dL, CD4 until > 200/µL, second-malignancy screening); vaccination eligibility from
  6 months (Hill & Seo, *Blood* 2020, attribution UNCONFIRMED). Project specification
  clinical-addendum.md §5.

Schedule (practice, configurable)
---------------------------------
Visits D28 (study day 28), M3, M6, M12 (calendar months after the infusion date), then yearly
Y2 … Y15 (anniversaries). Years 1–5 are clinic visits; years 6–15 may be remote annual contacts
(``remote_from_year``, default 6). Visit window ± 14 days (``window_days``; no source). A visit
is **due** from its window's start while not done, **overdue** once the window has closed
without a visit recorded in it. Non-integrating vectors: duration by risk assessment
(``years_by_vector``, default 5 years, UNCONFIRMED); unknown vector → 15 years.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from immunoreset.errors import InvalidInput, check_choice, check_range

__all__ = [
    "ITEMS",
    "VECTOR_TYPES",
    "LtfuSettings",
    "ScheduledVisit",
    "VisitStatus",
    "add_months",
    "build_schedule",
    "visit_status",
]

VECTOR_TYPES: tuple[str, ...] = ("integrating", "non_integrating", "unknown")
#: What a visit collects -> description (clinical-addendum §5.2).
ITEMS: Mapping[str, str] = {
    "cbc_differential": "blood count with differential",
    "igg": "serum IgG (monthly from day 30 until > 400 mg/dL, then each visit)",
    "lymphocyte_subsets": "CD4 count and lymphocyte subsets incl. CD19 B cells",
    "car_transgene_qpcr": "CAR transgene / vector copy number by qPCR",
    "rcr_rcl": "replication-competent retro/lentivirus test (FDA RCR guidance)",
    "secondary_malignancy_screen": "second malignancy screen (CBC, age-appropriate screening)",
    "disease_activity": "disease score (SLEDAI-2K/DORIS, CMAS/TIS, mRSS/CRISS)",
    "vaccination_status": "vaccination status / eligibility after B-cell recovery",
    "contact_questionnaire": "annual contact: questionnaire on new malignancy, "
    "neurologic, autoimmune and haematologic disorders",
}


@dataclass(frozen=True, slots=True)
class LtfuSettings:
    """The practice choices of the LTFU schedule (all UNCONFIRMED as regulatory text)."""

    years_by_vector: Mapping[str, int] = field(
        default_factory=lambda: {"integrating": 15, "non_integrating": 5, "unknown": 15}
    )
    window_days: int = 14
    remote_from_year: int = 6
    rcr_visits: tuple[str, ...] = ("M3", "M6", "M12")
    vaccination_from_month: int = 6

    def __post_init__(self) -> None:
        if not isinstance(self.years_by_vector, Mapping):
            raise InvalidInput("years_by_vector", self.years_by_vector, "a mapping")
        for k, v in self.years_by_vector.items():
            check_choice("years_by_vector", k, VECTOR_TYPES)
            check_range("years_by_vector", v, 1, 30, "years", integer=True)
        for k in VECTOR_TYPES:
            if k not in self.years_by_vector:
                raise InvalidInput("years_by_vector", k, "a duration for every vector type")
        check_range("window_days", self.window_days, 0, 90, "days", integer=True)
        check_range("remote_from_year", self.remote_from_year, 2, 31, "years", integer=True)
        if isinstance(self.rcr_visits, str) or not isinstance(self.rcr_visits, Sequence):
            raise InvalidInput("rcr_visits", self.rcr_visits, "a list of visit codes")
        check_range("vaccination_from_month", self.vaccination_from_month, 0, 60, integer=True)


DEFAULT_LTFU_SETTINGS = LtfuSettings()


@dataclass(frozen=True, slots=True)
class ScheduledVisit:
    """One scheduled LTFU visit."""

    code: str
    due: dt.date
    study_day: int
    window_start: dt.date
    window_end: dt.date
    contact: str  # visit | remote
    items: tuple[str, ...]


def add_months(when: dt.date, months: int) -> dt.date:
    """Calendar months after ``when`` (clipped to the month's last day).

    Examples
    --------
    >>> add_months(dt.date(2025, 1, 10), 3), add_months(dt.date(2025, 1, 31), 1)
    (datetime.date(2025, 4, 10), datetime.date(2025, 2, 28))
    """
    if isinstance(when, dt.datetime) or not isinstance(when, dt.date):
        raise InvalidInput("when", when, "a calendar date")
    check_range("months", months, 0, 1200, "months", integer=True)
    y, m = divmod(when.month - 1 + months, 12)
    year, month = when.year + y, m + 1
    return dt.date(year, month, min(when.day, calendar.monthrange(year, month)[1]))


def build_schedule(
    infusion_date: dt.date,
    *,
    vector_type: str = "integrating",
    settings: LtfuSettings = DEFAULT_LTFU_SETTINGS,
) -> tuple[ScheduledVisit, ...]:
    """The LTFU schedule of one patient: visits, windows and what each collects.

    Parameters
    ----------
    infusion_date : date
        Day 0.
    vector_type : str
        ``integrating`` (lentiviral/γ-retroviral: 15 years), ``non_integrating``, ``unknown``.
    settings : LtfuSettings

    Examples
    --------
    >>> s = build_schedule(dt.date(2025, 1, 10))
    >>> s[1].code, s[1].due, s[-1].code, s[-1].due
    ('M3', datetime.date(2025, 4, 10), 'Y15', datetime.date(2040, 1, 10))
    """
    if isinstance(infusion_date, dt.datetime) or not isinstance(infusion_date, dt.date):
        raise InvalidInput("infusion_date", infusion_date, "a calendar date")
    check_choice("vector_type", vector_type, VECTOR_TYPES)
    if not isinstance(settings, LtfuSettings):
        raise InvalidInput("settings", settings, "an LtfuSettings")
    years = settings.years_by_vector[vector_type]
    plan: list[tuple[str, dt.date]] = [("D28", infusion_date + dt.timedelta(days=28))]
    plan += [(f"M{m}", add_months(infusion_date, m)) for m in (3, 6, 12)]
    plan += [(f"Y{y}", add_months(infusion_date, 12 * y)) for y in range(2, years + 1)]
    w = dt.timedelta(days=settings.window_days)
    out = []
    for code, due in plan:
        months = (due.year - infusion_date.year) * 12 + due.month - infusion_date.month
        remote = code.startswith("Y") and int(code[1:]) >= settings.remote_from_year
        if remote:
            items: tuple[str, ...] = ("contact_questionnaire", "secondary_malignancy_screen")
        else:
            items = (
                "cbc_differential",
                "igg",
                "lymphocyte_subsets",
                "car_transgene_qpcr",
                "secondary_malignancy_screen",
                "disease_activity",
            )
            if vector_type != "non_integrating" and (code in settings.rcr_visits):
                items += ("rcr_rcl",)
            if months >= settings.vaccination_from_month:
                items += ("vaccination_status",)
        out.append(
            ScheduledVisit(
                code,
                due,
                (due - infusion_date).days,
                due - w,
                due + w,
                "remote" if remote else "visit",
                items,
            )
        )
    return tuple(out)


@dataclass(frozen=True, slots=True)
class VisitStatus:
    """Status of each scheduled visit on a date."""

    visit: ScheduledVisit
    status: str  # done | due | overdue | upcoming
    done_on: dt.date | None = None
    days_overdue: int = 0


def visit_status(
    schedule: Sequence[ScheduledVisit],
    *,
    done: Mapping[str, dt.date],
    today: dt.date,
) -> tuple[VisitStatus, ...]:
    """Which visits are done, due (window open), overdue (window closed) or upcoming.

    Parameters
    ----------
    schedule : sequence of ScheduledVisit
        From :func:`build_schedule`.
    done : mapping of visit code -> date
        Recorded visits (a visit counts wherever its date falls; outside the window it is
        still done, and the date shows it).
    today : date
        The reference date (passed in: calculators never read the clock).

    Examples
    --------
    >>> s = build_schedule(dt.date(2025, 1, 10))
    >>> st = visit_status(s, done={"D28": dt.date(2025, 2, 7)}, today=dt.date(2025, 5, 1))
    >>> [(v.visit.code, v.status) for v in st[:3]]
    [('D28', 'done'), ('M3', 'overdue'), ('M6', 'upcoming')]
    """
    if isinstance(today, dt.datetime) or not isinstance(today, dt.date):
        raise InvalidInput("today", today, "a calendar date")
    if not isinstance(done, Mapping):
        raise InvalidInput("done", done, "a mapping of visit code to date")
    codes = {v.code for v in schedule}
    for k, d in done.items():
        if k not in codes:
            raise InvalidInput("done", k, "a visit code of the schedule: " + ", ".join(codes))
        if isinstance(d, dt.datetime) or not isinstance(d, dt.date):
            raise InvalidInput("done", d, "a calendar date")
    out = []
    for v in schedule:
        if v.code in done:
            out.append(VisitStatus(v, "done", done[v.code]))
        elif today > v.window_end:
            out.append(VisitStatus(v, "overdue", None, (today - v.window_end).days))
        elif today >= v.window_start:
            out.append(VisitStatus(v, "due"))
        else:
            out.append(VisitStatus(v, "upcoming"))
    return tuple(out)
