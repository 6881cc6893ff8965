"""SYNTHETIC safety follow-up of the demo cohort: IgG/IVIG, infections, LTFU visits."""

from __future__ import annotations

import datetime as dt

from immunoreset import demo
from immunoreset.clinical import course_safety as cs
from immunoreset.clinical.igg import igg_lln


def test_published_cohort_safety_records_are_plausible() -> None:
    cohort = demo.published_cohort(seed=2026)
    summaries = {co.study_id: cs.course_igg(co) for co in cohort}
    assert all(s is not None for s in summaries.values())
    # some patients dip below the age-specific LLN and get IVIG after infusion, not all
    post_ivig = [sid for sid, s in summaries.items() if any(e.first_day > 0 for e in s.ivig)]
    assert 1 <= len(post_ivig) < len(cohort)
    for co in cohort:
        _, values = co.lab_series("igg")
        assert values.min() > 150 and values.max() < 2500  # mg/dL, plausible range
        assert values[0] >= igg_lln(co.age_at_infusion)[0]  # baseline within range
    # the published infections, none severe, are records with site and organism class
    infections = [i for co in cohort for i in co.infections]
    assert infections and all(i.ctcae_grade < 3 for i in infections)
    # LTFU visits within each follow-up, on the schedule's codes
    for co in cohort:
        assert co.followup_visits
        assert all(v.date <= co.followup.last_contact for v in co.followup_visits)
        status = cs.course_followup(co, today=co.followup.last_contact)
        assert status is not None and {v.visit.code for v in status.visits} >= {"D28", "M3"}


def test_safety_records_are_deterministic_and_leave_the_cohort_shape_alone() -> None:
    a, b = demo.published_cohort(seed=2026), demo.published_cohort(seed=2026)
    assert [co.followup_visits for co in a] == [co.followup_visits for co in b]
    assert [co.medications for co in a] == [co.medications for co in b]
    assert cs.course_followup(a[0], today=dt.date(2100, 1, 1)) is not None
