"""Daily grades, CRS/ICANS episodes and course toxicity from hand-built courses.

Sources: grading by Lee 2019 (CRS, ICANS), Rejeski 2023 (ICAHT), CTCAE v5.0; the episode rules
are the project's documented operational choices (immunoreset.clinical.episodes docstring).
"""

from __future__ import annotations

import datetime as dt

import pytest

from immunoreset.clinical.episodes import (
    course_toxicity,
    crs_episodes,
    daily_grades,
    icans_episodes,
)
from immunoreset.course import Course, DailyAssessment, FollowUp, Infusion, LabResult, Patient
from immunoreset.errors import InvalidInput

DAY0 = dt.date(2024, 6, 10)


def day(n: int) -> dt.date:
    return DAY0 + dt.timedelta(days=n)


def patient(birth_year: int = 1990, birth_month: int = 1) -> Patient:
    return Patient(
        study_id="RM-001",
        site="ERL",
        sex="F",
        birth_year=birth_year,
        birth_month=birth_month,
        diagnosis="SLE",
        icd10="M32.1",
        diagnosis_date=dt.date(2020, 1, 1),
    )


def course(assessments=(), labs=(), pt: Patient | None = None, followup=None) -> Course:
    return Course(
        patient=pt or patient(),
        infusions=(Infusion(date=DAY0, bag_ids=("BAG-1",), dose_cells_per_kg=1e6),),
        daily_assessments=tuple(assessments),
        labs=tuple(labs),
        followup=followup,
    )


def da(n: int, **kwargs) -> DailyAssessment:
    return DailyAssessment(date=day(n), **kwargs)


def anc(n: int, value: float, analyte: str = "anc") -> LabResult:
    unit = "g/dL" if analyte == "hemoglobin" else "cells/uL"
    return LabResult(date=day(n), analyte=analyte, value=value, unit=unit)


def test_crs_episode_with_masked_fever_and_split_by_missing_day() -> None:
    c = course(
        [
            da(-2, temperature_max_c=39.0),  # before infusion: not CRS
            da(1, temperature_max_c=38.5),
            da(2, temperature_max_c=39.0, hypotension=True, tocilizumab=True),
            da(3, temperature_max_c=37.0, vasopressors=("norepinephrine",)),  # masked → 3
            da(4, temperature_max_c=37.0),  # afebrile, no support → 0, episode ends
            da(6, temperature_max_c=38.2),  # day 5 missing → new episode
            da(7, temperature_max_c=38.1),
            da(9, temperature_max_c=38.1),  # day 8 missing → another
        ]
    )
    episodes = crs_episodes(c)
    assert [(e.onset_day, e.last_day, e.duration_days, e.max_grade) for e in episodes] == [
        (1, 3, 3, 3),
        (6, 7, 2, 1),
        (9, 9, 1, 1),
    ]
    first = episodes[0]
    assert (first.max_day, first.tocilizumab, first.corticosteroids) == (3, True, False)
    assert any("fever masked" in r for r in first.max_reasons)
    assert first.grade == 3 and first.reasons == first.max_reasons
    timeline = daily_grades(c)
    assert [d.study_day for d in timeline] == [1, 2, 3, 4, 6, 7, 9]
    assert [d.fever_masked for d in timeline][:4] == [False, True, True, False]


def test_no_masking_without_prior_crs_or_without_treatment() -> None:
    untreated = course(
        [da(1, temperature_max_c=38.5), da(2, temperature_max_c=37.0, hypotension=True)]
    )
    assert [e.max_grade for e in crs_episodes(untreated)] == [1]
    no_prior = course([da(1, temperature_max_c=37.0, hypotension=True, tocilizumab=True)])
    assert crs_episodes(no_prior) == ()
    steroid = course(
        [
            da(1, temperature_max_c=38.5, corticosteroids=True),
            da(2, temperature_max_c=36.8, oxygen_device="face_mask"),
        ]
    )
    (episode,) = crs_episodes(steroid)
    assert (episode.duration_days, episode.max_grade, episode.corticosteroids) == (2, 3, True)


def test_icans_uses_age_on_each_day() -> None:
    child = patient(birth_year=2012, birth_month=6)  # 11.99 y on day 0, 12.0 y from day 5
    c = course(
        [
            da(1, capd_score=10, consciousness="awakens_spontaneously"),
            da(2, capd_score=4),
            da(3),
            da(10, ice_score=9),
        ],
        pt=child,
    )
    episodes = icans_episodes(c)
    assert [(e.onset_day, e.last_day, e.max_grade) for e in episodes] == [(1, 2, 3), (10, 10, 1)]
    assert "CAPD 10 → 3" in episodes[0].max_reasons


def test_ice_below_age_cut_is_not_gradable_and_flagged() -> None:
    child = patient(birth_year=2016, birth_month=1)
    c = course([da(1, ice_score=8), da(2, capd_score=3)], pt=child)
    timeline = daily_grades(c)
    assert timeline[0].icans_grade is None and "not gradable" in timeline[0].icans_reasons[0]
    tox = course_toxicity(c)
    assert tox.flags == (  # no temperature recorded either: CRS not gradable (Lee 2019: fever)
        "crs_not_gradable:day 1",
        "crs_not_gradable:day 2",
        "icans_not_gradable:day 1",
    )
    assert [e.onset_day for e in tox.icans_episodes] == [2]


def test_course_toxicity_summary() -> None:
    anc_values = {d: 2000.0 for d in range(-3, 31)}
    anc_values.update({d: 300.0 for d in range(1, 8)})  # ≤ 500 on days 1–7 → early grade 2
    labs = [anc(d, v) for d, v in anc_values.items()]
    labs += [anc(45, 900), anc(52, 1200)]  # late grade 2 (clinical.md §3.4 #7)
    labs += [anc(-3, 90_000, "platelets"), anc(5, 40_000, "platelets")]  # v5 grade 3
    labs += [anc(0, 7.0, "hemoglobin"), anc(4, 7.9, "hemoglobin")]  # day 0 excluded; 7.9 → 3
    labs += [anc(3, 150, "lymphocytes")]  # → 4
    c = course(
        [
            da(2, temperature_max_c=38.5),  # ANC 300 + 38.5 °C: febrile neutropenia
            da(3, temperature_max_c=38.3),  # not > 38.3
            da(9, temperature_max_c=39.0),  # ANC 2000: not FN
        ],
        labs,
    )
    tox = course_toxicity(c)
    assert (tox.early_icaht.grade, tox.late_icaht.grade, tox.max_icaht_grade) == (2, 2, 2)
    assert tox.early_icaht.days_anc_le_500 == 7
    assert (tox.neutrophil_grade, tox.platelet_grade) == (4, 3)
    assert (tox.anemia_grade, tox.lymphocyte_grade) == (3, 4)
    assert tox.febrile_neutropenia_days == (2,)
    assert [(e.onset_day, e.duration_days) for e in tox.crs_episodes] == [(2, 2), (9, 1)]
    assert (tox.max_crs_grade, tox.max_icans_grade) == (1, 0)
    assert tox.study_id == "RM-001"


def test_course_without_data() -> None:
    tox = course_toxicity(course())
    assert tox.crs_episodes == () and tox.max_crs_grade is None
    assert tox.early_icaht.grade is None and tox.max_icaht_grade is None
    assert tox.neutrophil_grade is None and tox.febrile_neutropenia_days == ()


def test_death_censors_icaht() -> None:
    labs = [anc(d, 300.0) for d in range(0, 6)] + [anc(d, 2000.0) for d in range(6, 31)]
    alive = course(labs=labs)
    dead = course(labs=labs, followup=FollowUp(last_contact=day(3), status="dead"))
    assert course_toxicity(alive).early_icaht.grade == 1
    assert course_toxicity(dead).early_icaht.grade == 4  # ongoing at death from day 0


def test_refuses_course_without_infusion() -> None:
    with pytest.raises(InvalidInput) as err:
        course_toxicity(Course(patient=patient()))
    assert err.value.field == "infusion"
    with pytest.raises(InvalidInput) as err:
        daily_grades("RM-001")  # type: ignore[arg-type]
    assert err.value.field == "course"


# ------------------------------------------------- fever masking by class (issue #12, item 5)
def test_addendum_7_case_1_tocilizumab_masks_after_onset() -> None:
    """clinical-addendum §7 #1 (Lee 2019 footnote): CRS day 2, tocilizumab day 2, day 3 afebrile
    on NC 2 L/min → grade 2, the reason naming the agent."""
    c = course(
        [
            da(2, temperature_max_c=38.5, tocilizumab=True),
            da(3, temperature_max_c=37.1, oxygen_device="nasal_cannula", oxygen_flow_l_min=2),
        ]
    )
    day3 = daily_grades(c)[1]
    assert (day3.crs_grade, day3.fever_masked, day3.masking_agents) == (2, True, ("tocilizumab",))
    assert any("tocilizumab" in r and "named by ASTCT" in r for r in day3.crs_reasons)
    assert "class_based_masking" not in day3.crs_flags


def test_addendum_7_case_2_premedication_before_crs_does_not_mask() -> None:
    """clinical-addendum §7 #2: paracetamol premedication, 37.8 °C + hypotension → no CRS."""
    c = course([da(0, temperature_max_c=37.8, hypotension=True, antipyretic=True)])
    assert daily_grades(c)[0].crs_grade == 0
    c2 = course(
        [
            da(0, temperature_max_c=37.0, antipyretic=True),
            da(1, temperature_max_c=38.4),
            da(2, temperature_max_c=37.0, hypotension=True),  # the day-0 dose was before onset
        ]
    )
    assert [g.crs_grade for g in daily_grades(c2)] == [0, 1, 0]


def test_addendum_7_case_3_anakinra_masks_by_class_with_flag() -> None:
    """clinical-addendum §7 #3: CRS, anakinra, 37.0 °C, one vasopressor → 3, class_based."""
    c = course(
        [
            da(1, temperature_max_c=38.8, anakinra=True),
            da(2, temperature_max_c=37.0, vasopressors=("norepinephrine",)),
        ]
    )
    day2 = daily_grades(c)[1]
    assert day2.crs_grade == 3 and "class_based_masking" in day2.crs_flags
    assert any("anakinra" in r and "by ASTCT class only" in r for r in day2.crs_reasons)


@pytest.mark.parametrize("agent", ["siltuximab", "other_anticytokine", "antipyretic"])
def test_lee_2019_class_agents_mask_unless_the_setting_leaves_them_out(agent: str) -> None:
    from immunoreset.clinical.settings import ToxicitySettings

    c = course(
        [
            da(1, temperature_max_c=38.8, **{agent: True}),
            da(2, temperature_max_c=37.0, hypotension=True),
        ]
    )
    assert daily_grades(c)[1].crs_grade == 2
    astct_named = ToxicitySettings(fever_masking_agents=("tocilizumab", "corticosteroid"))
    assert daily_grades(c, settings=astct_named)[1].crs_grade == 0


def test_addendum_7_case_4_masking_duration_setting_expires() -> None:
    """clinical-addendum §7 #4: masking ends (setting fever_masking_days) → no CRS, flagged."""
    from immunoreset.clinical.settings import ToxicitySettings

    days = [
        da(1, temperature_max_c=38.8, tocilizumab=True),
        da(2, temperature_max_c=37.0, hypotension=True),
        da(3, temperature_max_c=37.0, hypotension=True),
    ]
    assert [g.crs_grade for g in daily_grades(course(days))] == [1, 2, 2]
    short = ToxicitySettings(fever_masking_days=1)
    grades = daily_grades(course(days), settings=short)
    assert [g.crs_grade for g in grades] == [1, 2, 0]
    assert "masking_expired" in grades[2].crs_flags


def test_addendum_7_medication_records_mask_and_baseline_steroid_does_not() -> None:
    """clinical-addendum §7: agents from medication records; maintenance prednisolone started
    before infusion is not masking (flag baseline_steroid)."""
    from immunoreset.course import Medication

    base = dict(
        patient=patient(),
        infusions=(Infusion(date=DAY0, bag_ids=("BAG-1",), dose_cells_per_kg=1e6),),
        daily_assessments=(
            da(1, temperature_max_c=38.8),
            da(2, temperature_max_c=37.0, hypotension=True),
        ),
    )
    anakinra = Medication("Anakinra", "anticytokine", 100, "mg", day(1), day(3))
    pred = Medication("prednisolone", "glucocorticoid", 5, "mg/day", day(-60))
    masked = daily_grades(Course(**base, medications=(anakinra,)))[1]
    assert masked.crs_grade == 2 and masked.masking_agents == ("anakinra",)
    maintenance = daily_grades(Course(**base, medications=(pred,)))[1]
    assert maintenance.crs_grade == 0 and "baseline_steroid" in maintenance.crs_flags


def test_lee_2019_missing_temperature_day_is_not_gradable_not_grade_0() -> None:
    """Lee 2019: fever decides whether there is CRS; a day on BiPAP without temperature is not
    a confident grade 0 (issue #12 item 4)."""
    c = course([da(1, oxygen_device="bipap"), da(2, temperature_max_c=37.0)])
    grades = daily_grades(c)
    assert grades[0].crs_grade is None and "temperature_missing" in grades[0].crs_flags
    assert "crs_not_gradable:day 1" in course_toxicity(c).flags


def test_rejeski_2023_course_alive_with_data_ending_day_12_is_not_grade_4() -> None:
    """Rejeski 2023 (issue #12 item 1): ANC ≤ 500 days 0–12, data end day 12, alive → 2."""
    labs = [anc(d, 300.0) for d in range(0, 13)]
    alive = course(labs=labs, followup=FollowUp(last_contact=day(12), status="alive"))
    tox = course_toxicity(alive)
    assert tox.early_icaht.grade == 2 and "incomplete" in tox.early_icaht.flags
    lost = course(labs=labs, followup=FollowUp(last_contact=day(12), status="lost_to_follow_up"))
    assert course_toxicity(lost).early_icaht.grade == 4  # end of follow-up before day 30
