"""The large SYNTHETIC cohort (immunoreset.demo.synthetic): determinism, rates, bad input."""

from __future__ import annotations

from collections import Counter

import pytest

from immunoreset.demo import month_day, published_cohort, synthetic_cohort, synthetic_course
from immunoreset.errors import InvalidInput
from tests.demo.factories import lab_values, large


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
    rows = large()
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
    for c, qcs in large():
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
    nadirs = [lab_values(c, "anc", 0, 30).min() for c, _ in large() if c.infusion is not None]
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


def test_boundary_indices_accepted():
    assert synthetic_course(999_999).study_id.endswith("-999999")
    assert list(synthetic_cohort(0)) == []


def test_recorded_adverse_events_agree_with_computed_grades_in_the_large_cohort():
    from immunoreset.clinical.episodes import course_toxicity

    for c, _ in large()[:150]:
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
