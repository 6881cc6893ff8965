"""The SYNTHETIC published-shaped cohort (immunoreset.demo.cohort).

Cohort-level targets are those of the Becilli et al. abstract and press coverage
(peer-data.md §1.2–1.3); grading thresholds are clinical.md §1–3.
"""

from __future__ import annotations

import statistics
from collections import Counter

import pytest

from tests.demo.factories import followup_months, lab_values, published


# --------------------------------------------------------------------------- cohort shape
def test_published_cohort_has_eight_synthetic_children():
    cohort = published()
    assert len(cohort) == 8
    assert all(c.patient.synthetic for c in cohort)
    ages = [c.age_at_infusion for c in cohort]
    assert all(5 <= a < 18 for a in ages)
    assert int(min(ages)) == 5 and int(max(ages)) == 17


def test_published_sex_diagnosis_site_split():
    cohort = published()
    assert Counter(c.patient.sex for c in cohort) == {"F": 7, "M": 1}
    assert Counter(c.patient.diagnosis for c in cohort) == {"SLE": 4, "JDM": 3, "SSc": 1}
    assert Counter(c.patient.site for c in cohort) == {"ROME": 5, "ERLANGEN": 3}
    ids = [c.study_id for c in cohort]
    assert ids == [*(f"RM-00{i}" for i in range(1, 6)), *(f"ER-00{i}" for i in range(1, 4))]


@pytest.mark.parametrize(
    ("diagnosis", "prefix"),
    [("SLE", "M32.1"), ("JDM", "M33.0"), ("SSc", "M34.")],
)
def test_published_icd10_codes(diagnosis, prefix):
    codes = [c.patient.icd10 for c in published() if c.patient.diagnosis == diagnosis]
    assert codes and all(code.startswith(prefix) for code in codes)


def test_the_boy_is_a_twelve_year_old_with_jdm_in_rome():
    (boy,) = [c for c in published() if c.patient.sex == "M"]
    assert (boy.patient.diagnosis, boy.patient.site, int(boy.age_at_infusion)) == (
        "JDM",
        "ROME",
        12,
    )


def test_published_patient_history():
    for c in published():
        years = (c.day0 - c.patient.diagnosis_date).days / 365.25
        assert 2 <= years <= 6, c.study_id
        assert 3 <= c.patient.prior_therapy_lines <= 8


def test_published_follow_up_median_and_range():
    months = [followup_months(c) for c in published()]
    assert round(statistics.median(months), 1) == 16.5
    assert round(min(months)) == 9 and round(max(months)) == 24
    assert all(c.followup.status == "alive" for c in published())
    assert {c.day0.year for c in published()} <= {2023, 2024, 2025}


# --------------------------------------------------------------------------- toxicity
def test_exactly_six_have_fever_and_nobody_hypotension_or_oxygen():
    febrile = []
    for c in published():
        days = c.daily_assessments
        assert [c.study_day(a.date) for a in days] == list(range(-7, 31))
        assert not any(a.hypotension or a.vasopressors for a in days)
        assert all(a.oxygen_device == "room_air" and not a.tocilizumab for a in days)
        fever = [c.study_day(a.date) for a in days if a.temperature_max_c >= 38.0]
        if fever:
            febrile.append(c.study_id)
            assert 1 <= len(fever) <= 3 and fever == list(range(fever[0], fever[-1] + 1))
            assert 1 <= fever[0] <= 6
            assert max(a.temperature_max_c for a in days) <= 39.2
        else:
            assert max(a.temperature_max_c for a in days) <= 37.6
    assert len(febrile) == 6


def test_exactly_one_has_icans_grade_1_and_the_right_tool_by_age():
    affected = []
    for c in published():
        for a in c.daily_assessments:
            ice = c.age_on(a.date) >= 12
            assert (a.ice_score is not None) == ice and (a.capd_score is not None) != ice
            assert a.consciousness == "awake" and a.seizure == "none"
        low = [a for a in c.daily_assessments if (a.ice_score or 10) < 10 or (a.capd_score or 0)]
        if low:
            affected.append(c.study_id)
            assert 1 <= len(low) <= 2
            assert all(7 <= (a.ice_score or 7) <= 9 and (a.capd_score or 1) <= 8 for a in low)
            assert 4 <= c.study_day(low[0].date) <= 7
    assert affected == ["RM-004"]


def test_exactly_two_have_late_hematotoxicity_grade_1():
    late = []
    for c in published():
        window = lab_values(c, "anc", 31, 100)
        assert window.size >= 2 and window.min() > 1000, c.study_id
        grade1 = (window > 1000) & (window <= 1500)
        if grade1.sum() >= 2:
            late.append(c.study_id)
        else:
            assert window.min() > 1500, c.study_id
    assert late == ["RM-002", "ER-001"]


def test_no_early_icaht_in_the_published_cohort():
    for c in published():
        early = lab_values(c, "anc", 0, 30)
        assert early.size == 31 and early.min() > 500, c.study_id


def test_adverse_events_match_the_abstract():
    terms = Counter()
    for c in published():
        for ae in c.adverse_events:
            terms[(ae.category, ae.grade)] += 1
            assert not (ae.category == "infection" and ae.grade >= 3)
    assert terms[("crs", 1)] == 6 and terms[("icans", 1)] == 1
    assert terms[("hematologic", 1)] == 2
    assert not any(cat in {"crs", "icans"} and g >= 2 for (cat, g) in terms)
    assert 1 <= sum(n for (cat, _), n in terms.items() if cat == "infection") <= 2


# --------------------------------------------------------------------------- graded by clinical
def test_clinical_grading_of_the_published_cohort_matches_the_abstract():
    from immunoreset.clinical.episodes import course_toxicity

    tox = [course_toxicity(c) for c in published()]
    assert Counter(t.max_crs_grade for t in tox) == {1: 6, 0: 2}
    assert Counter(t.max_icans_grade for t in tox) == {1: 1, 0: 7}
    assert Counter(t.late_icaht.grade for t in tox) == {1: 2, 0: 6}
    assert all(t.early_icaht.grade == 0 for t in tox)
    assert [t.study_id for t in tox if t.late_icaht.grade] == ["RM-002", "ER-001"]
