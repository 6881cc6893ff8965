"""SYNTHETIC safety follow-up of a demo course: IgG dip and IVIG, infection records, LTFU visits.

Shapes follow what the autoimmune CD19 CAR T series report, not any patient:

* IgG falls modestly after B-cell depletion (the series report preserved vaccine titres and
  IgG mostly within range); about one patient in four dips below the age-specific LLN
  (Mayo table, :mod:`immunoreset.clinical.igg`) around months 2–4 and receives IVIG
  (0.4 g/kg, 1–3 monthly doses) while below 400 mg/dL or the LLN; IgG then recovers.
* Infections: the plan's infections (the published cohort's, none severe) become
  :class:`~immunoreset.course.Infection` records (site, organism class, CTCAE grade), so the
  report can give them by period with density per 100 patient-days.
* LTFU visits of the 15-year schedule (:mod:`immunoreset.clinical.followup`) that fall within
  the follow-up, done a few days off their due date; now and then one is missed (overdue).

Every draw comes from a generator seeded by the study ID and infusion date, so the main demo
generator's stream — and with it every published-shape number of the cohort — is unchanged.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import zlib

import numpy as np

from immunoreset.clinical.followup import build_schedule
from immunoreset.clinical.igg import igg_lln
from immunoreset.course import FollowUpVisit, Infection, LabResult, Medication, Patient

__all__ = ["safety_records"]

#: Infection term of the plans -> (site, organism class, organism).
_TERMS: dict[str, tuple[str, str, str | None]] = {
    "upper respiratory tract infection": ("upper_respiratory", "viral", "rhinovirus"),
    "urinary tract infection": ("urinary", "bacterial", "E. coli"),
    "pneumonia": ("lower_respiratory", "bacterial", None),
    "herpes zoster": ("skin_soft_tissue", "viral", "VZV"),
}
_HYPOGAMMA_P = 0.25
_IVIG_G_PER_KG = 0.4


def _rng(patient: Patient, day0: dt.date) -> np.random.Generator:
    return np.random.default_rng([zlib.crc32(patient.study_id.encode()), day0.toordinal()])


def safety_records(
    patient: Patient,
    day0: dt.date,
    fu_days: int,
    labs: list[LabResult],
    infections: tuple[tuple[int, int, str], ...],
) -> tuple[list[LabResult], list[Medication], list[Infection], list[FollowUpVisit]]:
    """Adjusted labs (IgG dip for some), IVIG doses, infection records and LTFU visits."""
    rng = _rng(patient, day0)
    out_labs, ivig = list(labs), []
    if rng.random() < _HYPOGAMMA_P:
        out_labs, ivig = _hypogamma(patient, day0, labs, rng)
    episodes: dict[tuple[int, str, str], Infection] = {}
    for day, grade, term in infections:
        if day <= fu_days:
            site, klass, organism = _TERMS.get(term, ("other", "unknown", None))
            # two terms mapping to one site and class on one day are one episode (the
            # registry's key): keep the worse grade
            old = episodes.get((day, site, klass))
            if old is None or grade > old.ctcae_grade:
                onset = day0 + dt.timedelta(days=day)
                episodes[(day, site, klass)] = Infection(onset, site, klass, grade, organism)
    records = list(episodes.values())
    visits = []
    end = day0 + dt.timedelta(days=fu_days)
    scheduled = [v for v in build_schedule(day0) if v.due <= end]
    for i, v in enumerate(scheduled):
        last = i == len(scheduled) - 1
        if last and rng.random() < 0.15:
            continue  # a missed visit shows as overdue
        when = v.due + dt.timedelta(days=int(rng.integers(-7, 8)))
        visits.append(FollowUpVisit(v.code, min(when, end), v.contact, v.items))
    return out_labs, ivig, records, visits


def _hypogamma(
    patient: Patient,
    day0: dt.date,
    labs: list[LabResult],
    rng: np.random.Generator,
) -> tuple[list[LabResult], list[Medication]]:
    """Deepen the IgG dip below the LLN between months 2 and 4, IVIG while low, recovery."""
    nadir_day = int(rng.integers(55, 120))
    igg = [r for r in labs if r.analyte == "igg" and (r.date - day0).days > 0]
    if not igg:
        return labs, []
    first = min(igg, key=lambda r: abs((r.date - day0).days - nadir_day))
    lln = igg_lln(patient.age_on(first.date))[0]
    target = float(rng.uniform(0.7, 0.9)) * min(lln, 420.0)
    factor = target / first.value
    n_doses = int(rng.integers(1, 4))
    dose_days = [(first.date - day0).days + 1 + 28 * k for k in range(n_doses)]
    rise = float(rng.uniform(180, 280))  # mg/dL after 0.4 g/kg, half-life ≈ 21 days
    changed: dict[int, LabResult] = {}
    for r in igg:
        d = (r.date - day0).days
        # depth falls off over ~ 2 months either side of the nadir
        w = float(np.exp(-(((d - nadir_day) / 45.0) ** 2)))
        value = r.value * (1 - w * (1 - factor))
        value += sum(rise * 0.5 ** ((d - x) / 21.0) for x in dose_days if d > x)
        changed[id(r)] = dataclasses.replace(r, value=round(value, 1))
    doses = [  # recorded per kg, as programs prescribe it
        Medication("IVIG", "ivig", _IVIG_G_PER_KG, "g/kg", when, when)
        for when in (day0 + dt.timedelta(days=x) for x in dose_days)
    ]
    return [changed.get(id(r), r) for r in labs], doses
