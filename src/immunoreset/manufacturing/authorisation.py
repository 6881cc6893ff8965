"""Hospital-exemption authorisations and the reports they require.

An ATMP made under the hospital exemption (Regulation (EC) No 1394/2007, Art. 28(2)) is
authorised per patient or per programme by a national competent authority, which sets its own
conditions and reporting duties. :class:`HospitalExemption` records the request and decision;
:class:`RequiredReport` records one report with its due and submission dates; :func:`overdue`
lists what is late, and :func:`standard_reports` generates the usual reports from an
authorisation and the patient's adverse events.

Source
------
Issue 4 (point-of-care manufacturing), item 4: request date, authority, reference, decision and
date, conditions, required reports with due dates. The reporting deadlines below are **not** from
a source that applies everywhere: national hospital-exemption rules differ, so they are settings
(:class:`ReportingRules`).

Settings
--------
:class:`ReportingRules` (defaults, UNCONFIRMED for any particular authority — set the site's own):

* ``annual_report_interval_months = 12``: an annual report is due on each anniversary of the
  approval decision (29 February → 28 February in common years).
* ``serious_ae_days = 15``: a serious adverse event notification is due 15 calendar days after the
  event's onset.
* ``fatal_ae_days = 7``: a fatal (CTCAE grade 5) serious adverse event notification is due 7 days
  after onset (the EU clinical-trial deadline for fatal or life-threatening SUSARs, Regulation
  (EU) No 536/2014 Art. 42, used as a default only).
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from immunoreset.course import STUDY_ID_PATTERN, AdverseEvent
from immunoreset.errors import InvalidInput, check_choice, check_range

__all__ = [
    "DECISIONS",
    "REPORT_KINDS",
    "REPORT_STATUS",
    "HospitalExemption",
    "ReportingRules",
    "RequiredReport",
    "annual_reports",
    "overdue",
    "report_status",
    "serious_ae_notifications",
    "standard_reports",
]

#: Decision of the authority on a hospital-exemption request.
DECISIONS: tuple[str, ...] = ("pending", "approved", "rejected")

#: Report kinds: key -> label as shown to users.
REPORT_KINDS: Mapping[str, str] = {
    "sae_notification": "serious AE notification",
    "ae_notification": "AE notification",
    "susar": "SUSAR",
    "annual_report": "annual report",
    "final_report": "final report",
    "other": "other report",
}


def _date(field: str, value: Any, *, allow_none: bool = False) -> dt.date | None:
    if value is None and allow_none:
        return None
    if isinstance(value, dt.datetime) or not isinstance(value, dt.date):
        raise InvalidInput(field, value, "a calendar date (YYYY-MM-DD)")
    return value


def _text(field: str, value: Any, *, allow_none: bool = False) -> str | None:
    if value is None and allow_none:
        return None
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(field, value, "a non-empty text")
    if len(value) > 500:
        raise InvalidInput(field, value, "at most 500 characters")
    return value


@dataclass(frozen=True, slots=True)
class HospitalExemption:
    """A hospital-exemption authorisation for one patient.

    Attributes
    ----------
    study_id : str
    authority : str
        The competent authority (e.g. ``"AIFA"``, ``"PEI"``).
    reference : str
        The authority's or the site's file reference.
    request_date : datetime.date
    decision : str
        One of :data:`DECISIONS`.
    decision_date : datetime.date | None
        Required (on or after ``request_date``) unless ``decision`` is ``"pending"``, when it
        must be ``None``.
    conditions : tuple[str, ...]
        Conditions the authority attached, one per entry.
    """

    study_id: str
    authority: str
    reference: str
    request_date: dt.date
    decision: str = "pending"
    decision_date: dt.date | None = None
    conditions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.study_id, str) or not STUDY_ID_PATTERN.match(self.study_id):
            raise InvalidInput("study_id", self.study_id, "a study ID such as RM-003")
        _text("authority", self.authority)
        _text("reference", self.reference)
        _date("request_date", self.request_date)
        check_choice("decision", self.decision, DECISIONS)
        _date("decision_date", self.decision_date, allow_none=True)
        if self.decision == "pending" and self.decision_date is not None:
            raise InvalidInput("decision_date", self.decision_date, "empty while pending")
        if self.decision != "pending":
            if self.decision_date is None:
                raise InvalidInput(
                    "decision_date", None, f"the date of the decision ({self.decision})"
                )
            if self.decision_date < self.request_date:
                raise InvalidInput("decision_date", self.decision_date, "on or after request_date")
        conds = self.conditions
        if isinstance(conds, str) or not isinstance(conds, tuple | list):
            raise InvalidInput("conditions", conds, "a list of texts")
        for c in conds:
            _text("conditions", c)
        object.__setattr__(self, "conditions", tuple(conds))


@dataclass(frozen=True, slots=True)
class RequiredReport:
    """One report owed to the authority.

    Attributes
    ----------
    study_id : str
    kind : str
        One of :data:`REPORT_KINDS`.
    subject : str
        What it is about (``"year 1"``, ``"CRS grade 3, onset 2025-02-03"``); with ``kind`` and
        ``due`` it identifies the report.
    due : datetime.date
    submitted : datetime.date | None
    authorisation_reference : str | None
    """

    study_id: str
    kind: str
    subject: str
    due: dt.date
    submitted: dt.date | None = None
    authorisation_reference: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.study_id, str) or not STUDY_ID_PATTERN.match(self.study_id):
            raise InvalidInput("study_id", self.study_id, "a study ID such as RM-003")
        check_choice("kind", self.kind, REPORT_KINDS)
        _text("subject", self.subject)
        _date("due", self.due)
        _date("submitted", self.submitted, allow_none=True)
        _text("authorisation_reference", self.authorisation_reference, allow_none=True)

    @property
    def label(self) -> str:
        return f"{REPORT_KINDS[self.kind]} ({self.subject})"


#: Status of a report on a given day.
REPORT_STATUS: tuple[str, ...] = ("submitted", "submitted_late", "due", "overdue")


def report_status(report: RequiredReport, today: dt.date) -> str:
    """``submitted`` / ``submitted_late`` / ``due`` / ``overdue`` of ``report`` on ``today``.

    A report is overdue when it is not submitted and ``today`` is after its due date (a report
    due today is still ``due``).

    Examples
    --------
    >>> import datetime as dt
    >>> r = RequiredReport("RM-001", "annual_report", "year 1", dt.date(2025, 3, 1))
    >>> report_status(r, dt.date(2025, 3, 1)), report_status(r, dt.date(2025, 3, 2))
    ('due', 'overdue')
    """
    if not isinstance(report, RequiredReport):
        raise InvalidInput("report", report, "a RequiredReport")
    _date("today", today)
    if report.submitted is not None:
        return "submitted" if report.submitted <= report.due else "submitted_late"
    return "overdue" if today > report.due else "due"


def overdue(reports: Sequence[RequiredReport], today: dt.date) -> list[RequiredReport]:
    """Reports not submitted whose due date is before ``today``, oldest due first.

    Parameters
    ----------
    reports : Sequence[RequiredReport]
    today : datetime.date
        Passed in (calculators never read the clock).

    Returns
    -------
    list[RequiredReport]
    """
    if isinstance(reports, str) or not isinstance(reports, Sequence):
        raise InvalidInput("reports", reports, "a list of RequiredReport")
    _date("today", today)
    late = [r for r in reports if report_status(r, today) == "overdue"]
    return sorted(late, key=lambda r: (r.due, r.study_id, r.kind, r.subject))


@dataclass(frozen=True, slots=True)
class ReportingRules:
    """Reporting deadlines of a hospital-exemption programme (national rules differ).

    Attributes
    ----------
    annual_report_interval_months : int
        Months between periodic reports, 1–24 (default 12).
    serious_ae_days : int
        Days from onset to the serious-AE notification, 1–90 (default 15).
    fatal_ae_days : int
        Days from onset for a fatal (grade 5) serious AE, 1–90 (default 7).
    """

    annual_report_interval_months: int = 12
    serious_ae_days: int = 15
    fatal_ae_days: int = 7

    def __post_init__(self) -> None:
        check_range(
            "annual_report_interval_months", self.annual_report_interval_months, 1, 24, integer=True
        )
        check_range("serious_ae_days", self.serious_ae_days, 1, 90, "days", integer=True)
        check_range("fatal_ae_days", self.fatal_ae_days, 1, 90, "days", integer=True)


def _add_months(day: dt.date, months: int) -> dt.date:
    total = day.month - 1 + months
    year, month = day.year + total // 12, total % 12 + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def _auth(value: Any) -> HospitalExemption:
    if not isinstance(value, HospitalExemption):
        raise InvalidInput("authorisation", value, "a HospitalExemption")
    return value


def _rules(value: Any) -> ReportingRules:
    if value is None:
        return ReportingRules()
    if not isinstance(value, ReportingRules):
        raise InvalidInput("rules", value, "a ReportingRules or None")
    return value


def annual_reports(
    authorisation: HospitalExemption, *, until: dt.date, rules: ReportingRules | None = None
) -> list[RequiredReport]:
    """Periodic reports due after an approval, up to and including ``until``.

    Nothing is due for a pending or rejected request.

    Examples
    --------
    >>> import datetime as dt
    >>> he = HospitalExemption("RM-001", "AIFA", "HE-2024-7", dt.date(2024, 1, 10),
    ...                        "approved", dt.date(2024, 2, 29))
    >>> [r.due.isoformat() for r in annual_reports(he, until=dt.date(2026, 3, 1))]
    ['2025-02-28', '2026-02-28']
    """
    auth = _auth(authorisation)
    _date("until", until)
    r = _rules(rules)
    if auth.decision != "approved" or auth.decision_date is None:
        return []
    out = []
    n = 1
    while (due := _add_months(auth.decision_date, n * r.annual_report_interval_months)) <= until:
        out.append(
            RequiredReport(
                study_id=auth.study_id,
                kind="annual_report",
                subject=f"period {n}",
                due=due,
                authorisation_reference=auth.reference,
            )
        )
        n += 1
    return out


def serious_ae_notifications(
    authorisation: HospitalExemption,
    adverse_events: Sequence[AdverseEvent],
    *,
    rules: ReportingRules | None = None,
) -> list[RequiredReport]:
    """A notification per serious adverse event, due ``serious_ae_days`` after onset
    (``fatal_ae_days`` for grade 5).

    Examples
    --------
    >>> import datetime as dt
    >>> from immunoreset.course import AdverseEvent
    >>> he = HospitalExemption("RM-001", "AIFA", "HE-2024-7", dt.date(2024, 1, 10),
    ...                        "approved", dt.date(2024, 2, 1))
    >>> ae = AdverseEvent("CRS", "crs", 3, dt.date(2024, 3, 5), serious=True)
    >>> serious_ae_notifications(he, [ae])[0].due
    datetime.date(2024, 3, 20)
    """
    auth = _auth(authorisation)
    if isinstance(adverse_events, str) or not isinstance(adverse_events, Sequence):
        raise InvalidInput("adverse_events", adverse_events, "a list of AdverseEvent")
    for ae in adverse_events:
        if not isinstance(ae, AdverseEvent):
            raise InvalidInput("adverse_events", ae, "an AdverseEvent")
    r = _rules(rules)
    out = []
    for ae in sorted(adverse_events, key=lambda a: (a.onset, a.term)):
        if not ae.serious:
            continue
        days = r.fatal_ae_days if ae.grade == 5 else r.serious_ae_days
        out.append(
            RequiredReport(
                study_id=auth.study_id,
                kind="sae_notification",
                subject=f"{ae.term} grade {ae.grade}, onset {ae.onset.isoformat()}",
                due=ae.onset + dt.timedelta(days=days),
                authorisation_reference=auth.reference,
            )
        )
    return out


def standard_reports(
    authorisation: HospitalExemption,
    *,
    adverse_events: Sequence[AdverseEvent] = (),
    until: dt.date,
    rules: ReportingRules | None = None,
) -> list[RequiredReport]:
    """Annual reports up to ``until`` and serious-AE notifications, sorted by due date.

    The registry merges these with the stored reports (matching on study ID, kind, subject and
    due date) to carry over submission dates.
    """
    reports = annual_reports(authorisation, until=until, rules=rules)
    reports += serious_ae_notifications(authorisation, adverse_events, rules=rules)
    return sorted(reports, key=lambda r: (r.due, r.kind, r.subject))
