"""Tests of the SYNTHETIC demonstration cohorts (immunoreset.demo).

Cohort-level targets are those of the Becilli et al. abstract and press coverage
(peer-data.md §1.2–1.3); grading thresholds are clinical.md §1–3.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import statistics
from collections import Counter
from functools import cache

import numpy as np
import pytest

from immunoreset import vocab
from immunoreset.clinical.sledai import SLEDAI2K_WEIGHTS
from immunoreset.course import Course
from immunoreset.demo import (
    CAR_T_FLOW_LLOQ,
    CAR_T_QPCR_LLOQ,
    DAYS_PER_MONTH,
    REGIMENS,
    month_day,
    published_cohort,
    published_cohort_with_qc,
    synthetic_cohort,
    synthetic_cohort_with_qc,
    synthetic_course,
)
from immunoreset.errors import InvalidInput


@cache
def _published() -> tuple[Course, ...]:
    return tuple(published_cohort())


@cache
def _large() -> tuple[tuple[Course, tuple], ...]:
    return tuple(synthetic_cohort_with_qc(600, seed=11))


def _by_id(study_id: str) -> Course:
    return next(c for c in _published() if c.study_id == study_id)


def _months(c: Course) -> float:
    return (c.followup.last_contact - c.day0).days / DAYS_PER_MONTH


def _series(c: Course, analyte: str, lo: int, hi: int) -> np.ndarray:
    days, values = c.lab_series(analyte)
    return values[(days >= lo) & (days <= hi)]


# --------------------------------------------------------------------------- cohort shape
def test_published_cohort_has_eight_synthetic_children():
    cohort = _published()
    assert len(cohort) == 8
    assert all(c.patient.synthetic for c in cohort)
    ages = [c.age_at_infusion for c in cohort]
    assert all(5 <= a < 18 for a in ages)
    assert int(min(ages)) == 5 and int(max(ages)) == 17


def test_published_sex_diagnosis_site_split():
    cohort = _published()
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
    codes = [c.patient.icd10 for c in _published() if c.patient.diagnosis == diagnosis]
    assert codes and all(code.startswith(prefix) for code in codes)


def test_the_boy_is_a_twelve_year_old_with_jdm_in_rome():
    (boy,) = [c for c in _published() if c.patient.sex == "M"]
    assert (boy.patient.diagnosis, boy.patient.site, int(boy.age_at_infusion)) == (
        "JDM",
        "ROME",
        12,
    )


def test_published_patient_history():
    for c in _published():
        years = (c.day0 - c.patient.diagnosis_date).days / 365.25
        assert 2 <= years <= 6, c.study_id
        assert 3 <= c.patient.prior_therapy_lines <= 8


def test_published_follow_up_median_and_range():
    months = [_months(c) for c in _published()]
    assert round(statistics.median(months), 1) == 16.5
    assert round(min(months)) == 9 and round(max(months)) == 24
    assert all(c.followup.status == "alive" for c in _published())
    assert {c.day0.year for c in _published()} <= {2023, 2024, 2025}


# --------------------------------------------------------------------------- toxicity
def test_exactly_six_have_fever_and_nobody_hypotension_or_oxygen():
    febrile = []
    for c in _published():
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
    for c in _published():
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
    for c in _published():
        window = _series(c, "anc", 31, 100)
        assert window.size >= 2 and window.min() > 1000, c.study_id
        grade1 = (window > 1000) & (window <= 1500)
        if grade1.sum() >= 2:
            late.append(c.study_id)
        else:
            assert window.min() > 1500, c.study_id
    assert late == ["RM-002", "ER-001"]


def test_no_early_icaht_in_the_published_cohort():
    for c in _published():
        early = _series(c, "anc", 0, 30)
        assert early.size == 31 and early.min() > 500, c.study_id


def test_adverse_events_match_the_abstract():
    terms = Counter()
    for c in _published():
        for ae in c.adverse_events:
            terms[(ae.category, ae.grade)] += 1
            assert not (ae.category == "infection" and ae.grade >= 3)
    assert terms[("crs", 1)] == 6 and terms[("icans", 1)] == 1
    assert terms[("hematologic", 1)] == 2
    assert not any(cat in {"crs", "icans"} and g >= 2 for (cat, g) in terms)
    assert 1 <= sum(n for (cat, _), n in terms.items() if cat == "infection") <= 2


# --------------------------------------------------------------------------- kinetics
def test_b_cells_cleared_by_day_7_and_back_at_3_to_5_months():
    for c in _published():
        days, values = c.lab_series("cd19_b_cells")
        assert values[days == -7][0] >= 110  # LHSC 12–18 y lower limit
        assert (values[(days >= 7) & (days <= 28)] < 1).all(), c.study_id
        back = days[(days > 28) & (values >= 10)]
        assert 90 <= back[0] <= 150, c.study_id


def test_car_t_peak_between_day_7_and_10():
    for c in _published():
        days, values = c.lab_series("car_t_flow")
        assert 7 <= days[values.argmax()] <= 10, c.study_id
        assert 10 <= values.max() <= 60
    days, values = _by_id("RM-001").lab_series("car_t_flow")
    assert (days[values.argmax()], values.max()) == (7, 32.69)


def test_car_t_results_below_lloq_hold_the_lloq():
    seen = Counter()
    for c in _published():
        for r in c.labs:
            if r.analyte in {"car_t_flow", "car_t_qpcr"}:
                assert (
                    r.lloq
                    == {"car_t_flow": CAR_T_FLOW_LLOQ, "car_t_qpcr": CAR_T_QPCR_LLOQ}[r.analyte]
                )
                if r.below_lloq:
                    seen[r.analyte] += 1
                    assert r.value == r.lloq
                else:
                    assert r.value >= r.lloq
    assert seen["car_t_flow"] > 0 and seen["car_t_qpcr"] > 0


@pytest.mark.parametrize(
    ("diagnosis", "analyte", "fall"),
    [("SLE", "anti_dsdna", 0.9), ("SSc", "anti_scl70", 0.8), ("JDM", "ck", 0.8)],
)
def test_autoantibodies_fall_by_month_6(diagnosis, analyte, fall):
    for c in _published():
        if c.patient.diagnosis != diagnosis:
            continue
        days, values = c.lab_series(analyte)
        base, m6 = values[days == -7][0], values[days == month_day(6)][0]
        assert m6 <= (1 - fall) * base, c.study_id


def test_complement_normalises_in_sle():
    for c in _published():
        if c.patient.diagnosis == "SLE":
            days, c3 = c.lab_series("c3")
            assert c3[days == -7][0] < 90 <= c3[days == month_day(6)][0]


def test_labs_are_in_canonical_units_with_required_schedule():
    for c in _published():
        assert all(r.unit == vocab.ANALYTES[r.analyte][0] for r in c.labs)
        analytes = {r.analyte for r in c.labs}
        assert {"anc", "platelets", "hemoglobin", "lymphocytes", "crp", "ferritin"} <= analytes
        assert {"cd19_b_cells", "car_t_flow", "car_t_qpcr", "igg", "c3", "c4", "il6"} <= analytes
        days, _ = c.lab_series("cd19_b_cells")
        assert set(days[days <= 28]) == {-7, 0, 1, 2, 3, 5, 7, 10, 14, 21, 28}
        days, _ = c.lab_series("car_t_flow")
        assert set(days[days <= 28]) == {1, 3, 5, 7, 9, 10, 14, 21, 28}
        last = c.study_day(c.followup.last_contact)
        for analyte in ("anc", "igg", "cd19_b_cells"):
            assert c.lab_series(analyte)[0].max() == last


# --------------------------------------------------------------------------- disease scores
def test_sledai_scores_equal_weighted_item_sums_and_fall_to_zero():
    for c in _published():
        if c.patient.diagnosis != "SLE":
            continue
        rows = [d for d in c.disease_assessments if d.instrument == "sledai2k"]
        for d in rows:
            assert set(d.items) == set(SLEDAI2K_WEIGHTS)
            assert d.score == sum(SLEDAI2K_WEIGHTS[k] * v for k, v in d.items.items())
        assert 8 <= rows[0].score <= 20
        assert rows[0].items["low_complement"] == rows[0].items["increased_dna_binding"] == 1
        assert all(d.score == 0 for d in rows if c.study_day(d.date) >= month_day(6))


@pytest.mark.parametrize(
    ("instrument", "baseline", "final", "n_items"),
    [
        ("cmas", (15, 35), (45, 52), 14),
        ("mmt8", (50, 65), (75, 80), 8),
        ("mrss", (20, 30), (10, 15), 17),
    ],
)
def test_item_scores_sum_and_improve(instrument, baseline, final, n_items):
    found = 0
    for c in _published():
        rows = [d for d in c.disease_assessments if d.instrument == instrument]
        if not rows:
            continue
        found += 1
        for d in rows:
            assert len(d.items) == n_items and sum(d.items.values()) == d.score
        assert baseline[0] <= rows[0].score <= baseline[1]
        assert final[0] <= rows[-1].score <= final[1]
    assert found


def test_disease_visits_within_follow_up():
    for c in _published():
        days = sorted({c.study_day(d.date) for d in c.disease_assessments})
        allowed = [-7, *(month_day(m) for m in (1, 3, 6, 9, 12, 18, 24))]
        assert days == [d for d in allowed if d <= c.study_day(c.followup.last_contact)]


# --------------------------------------------------------------------------- treatment
def test_manufacturing_chain_and_dose():
    for c, qcs in published_cohort_with_qc():
        (aph,) = c.apheresis
        (batch,) = c.batches
        assert batch.apheresis_id == aph.apheresis_id and batch.status == "released"
        assert batch.platform == "CliniMACS Prodigy"
        assert batch.process_start == aph.date + dt.timedelta(days=1)
        assert batch.harvest_date == batch.process_start + dt.timedelta(days=12)
        assert 3 <= len(c.bags) <= 5
        assert all(b.expiry == batch.harvest_date + dt.timedelta(days=365) for b in c.bags)
        statuses = Counter(b.status for b in c.bags)
        assert statuses["infused"] == 1 and statuses["stored_for_redosing"] == len(c.bags) - 1
        (infused,) = [b for b in c.bags if b.status == "infused"]
        assert c.infusion.bag_ids == (infused.bag_id,)
        assert 0.95e6 <= c.infusion.dose_cells_per_kg <= 1.05e6
        weight = c.weight_on(c.date_of_day(-1)).weight_kg
        assert infused.car_t_cells / weight == pytest.approx(c.infusion.dose_cells_per_kg, 1e-3)
        assert 5 <= sum(b.car_t_cells for b in c.bags) / infused.car_t_cells <= 40
        assert -40 <= c.study_day(aph.date) <= -30
        assert [q.outcome for q in qcs] == ["pass"] and qcs[0].batch_id == batch.batch_id


@pytest.mark.parametrize(
    ("site", "expected"),
    [
        ("ROME", {(-5, "fludarabine", 30.0), (-4, "fludarabine", 30.0), (-3, "fludarabine", 30.0),
                  (-4, "cyclophosphamide", 500.0), (-3, "cyclophosphamide", 500.0)}),
        ("ERLANGEN", {(-5, "fludarabine", 25.0), (-4, "fludarabine", 25.0),
                      (-3, "fludarabine", 25.0), (-3, "cyclophosphamide", 1000.0)}),
    ],
)  # fmt: skip
def test_lymphodepletion_by_site(site, expected):
    for c in _published():
        if c.patient.site == site:
            got = {(c.study_day(x.date), x.drug, x.dose_mg_m2) for x in c.lymphodepletion}
            assert got == expected


def test_erlangen_regimen_is_marked_unconfirmed_and_can_be_overridden():
    assert REGIMENS["erlangen_reported"].confirmed is False
    cohort = published_cohort(site_regimens={"ERLANGEN": "opbg_nicolai_2024"})
    erl = [c for c in cohort if c.patient.site == "ERLANGEN"]
    assert all(len(c.lymphodepletion) == 5 for c in erl)


def test_medications_all_stopped_before_lymphodepletion_and_never_restarted():
    for c in _published():
        assert len(c.medications) >= 2
        for m in c.medications:
            assert m.start < c.apheresis[0].date
            assert m.stop is not None and c.study_day(m.stop) < -5
        classes = {m.drug_class for m in c.medications}
        assert "glucocorticoid" in classes


def test_anthropometrics_at_apheresis_day_minus_7_and_monthly():
    for c in _published():
        days = [c.study_day(a.date) for a in c.anthropometrics]
        assert c.study_day(c.apheresis[0].date) in days and -7 in days
        assert len(days) == 2 + round(_months(c))
        assert all(a.height_cm is not None for a in c.anthropometrics)


# --------------------------------------------------------------------------- validity
def _revalidated(course: Course) -> None:
    """Every record rebuilt through its validating constructor equals the generated one."""
    for name in ("labs", "disease_assessments", "daily_assessments", "bags", "medications"):
        for record in getattr(course, name):
            assert type(record)(**dataclasses.asdict(record)) == record


def test_generated_records_pass_the_domain_validation():
    for c in _published():
        _revalidated(c)
    for c, _ in _large()[:60]:
        _revalidated(c)


# --------------------------------------------------------------------------- determinism
def test_published_cohort_is_deterministic_per_seed():
    assert published_cohort(7) == published_cohort(7)
    assert published_cohort(7) != published_cohort(8)


def test_synthetic_course_depends_only_on_seed_and_index():
    few = list(synthetic_cohort(4, seed=3))
    many = list(synthetic_cohort(9, seed=3))
    assert few == many[:4]
    assert next(iter(synthetic_cohort(1, seed=3, start_index=4))) == many[3]
    assert synthetic_course(4, seed=3) == many[3]
    assert synthetic_course(4, seed=4) != many[3]


# --------------------------------------------------------------------------- large cohort
def test_large_cohort_shape_and_rates():
    rows = _large()
    courses = [c for c, _ in rows]
    assert len({c.study_id for c in courses}) == len(courses)
    assert all(c.patient.synthetic for c in courses)
    infused = [c for c in courses if c.infusion is not None]
    ages = [c.age_at_infusion for c in infused]
    assert min(ages) >= 3 and max(ages) <= 70.1
    assert len({c.patient.site for c in courses}) == 12
    crs = Counter(
        max((a.grade for a in c.adverse_events if a.category == "crs"), default=0) for c in infused
    )
    assert 0.5 <= crs[1] / len(infused) <= 0.7
    assert 0.05 <= crs[2] / len(infused) <= 0.16
    restarted = [c for c in infused if any(m.stop is None for m in c.medications)]
    assert 0.03 <= len(restarted) / len(infused) <= 0.2


def test_large_cohort_failed_and_deviated_batches():
    outcomes = Counter()
    for c, qcs in _large():
        assert [q.batch_id for q in qcs] == [b.batch_id for b in c.batches]
        for q, b in zip(qcs, c.batches, strict=True):
            outcomes[q.outcome] += 1
            assert (b.status == "failed") == (q.outcome == "failed")
            assert bool(q.out_of_spec) == (q.outcome != "pass")
            if b.status == "failed":
                assert all(
                    bag.status == "discarded" for bag in c.bags if bag.batch_id == b.batch_id
                )
        if c.infusion is None:
            assert c.batches[-1].status == "failed"
            assert not (c.daily_assessments or c.labs or c.lymphodepletion)
            assert all(m.stop is None for m in c.medications)
        else:
            assert c.batches[-1].status == "released"
    assert outcomes["failed"] >= 5 and outcomes["deviation"] >= 10


def test_large_cohort_early_icaht_present():
    nadirs = [_series(c, "anc", 0, 30).min() for c, _ in _large() if c.infusion is not None]
    share = sum(n <= 500 for n in nadirs) / len(nadirs)
    assert 0.15 <= share <= 0.35


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: published_cohort(-1), "seed"),
        (lambda: published_cohort(1.5), "seed"),
        (lambda: published_cohort("1"), "seed"),
        (lambda: published_cohort(site_regimens={"OSLO": "erlangen_reported"}), "site_regimens"),
        (lambda: published_cohort(site_regimens={"ROME": "flu_only"}), "site_regimens"),
        (lambda: published_cohort(site_regimens=["ROME"]), "site_regimens"),
        (lambda: synthetic_cohort(-1), "n"),
        (lambda: synthetic_cohort(True), "n"),
        (lambda: synthetic_cohort(2.5), "n"),
        (lambda: synthetic_cohort(1_000_000), "n"),
        (lambda: synthetic_cohort(10, seed=-3), "seed"),
        (lambda: synthetic_cohort(10, start_index=0), "start_index"),
        (lambda: synthetic_cohort(10, start_index=999_995), "n"),
        (lambda: synthetic_course(0), "k"),
        (lambda: synthetic_course(1_000_000), "k"),
        (lambda: month_day(-1), "month"),
        (lambda: month_day("3"), "month"),
    ],
)
def test_bad_input_is_refused_on_the_call(call, field):
    with pytest.raises(InvalidInput) as err:
        call()
    assert err.value.field == field


@pytest.mark.parametrize(
    ("month", "day"), [(0, 0), (1, 30), (9, 274), (16.5, 502), (17, 517), (24, 731)]
)
def test_month_day(month, day):
    assert month_day(month) == day


def test_boundary_indices_accepted():
    assert synthetic_course(999_999).study_id.endswith("-999999")
    assert list(synthetic_cohort(0)) == []


# --------------------------------------------------------------------------- graded by clinical
def test_clinical_grading_of_the_published_cohort_matches_the_abstract():
    from immunoreset.clinical.episodes import course_toxicity

    tox = [course_toxicity(c) for c in _published()]
    assert Counter(t.max_crs_grade for t in tox) == {1: 6, 0: 2}
    assert Counter(t.max_icans_grade for t in tox) == {1: 1, 0: 7}
    assert Counter(t.late_icaht.grade for t in tox) == {1: 2, 0: 6}
    assert all(t.early_icaht.grade == 0 for t in tox)
    assert [t.study_id for t in tox if t.late_icaht.grade] == ["RM-002", "ER-001"]


def test_recorded_adverse_events_agree_with_computed_grades_in_the_large_cohort():
    from immunoreset.clinical.episodes import course_toxicity

    for c, _ in _large()[:150]:
        if c.infusion is None:
            continue
        tox = course_toxicity(c)
        recorded = {
            (ae.category, ae.term.rsplit(", ", 1)[-1]): ae.grade
            for ae in c.adverse_events
            if ae.category != "infection"
        }
        assert recorded.get(("crs", "cytokine release syndrome"), 0) == tox.max_crs_grade
        icans = ("icans", "immune effector cell-associated neurotoxicity syndrome")
        assert recorded.get(icans, 0) == tox.max_icans_grade
        assert recorded.get(("hematologic", "early"), 0) == tox.early_icaht.grade
        assert recorded.get(("hematologic", "late"), 0) == (tox.late_icaht.grade or 0)
