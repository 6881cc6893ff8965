"""The SYNTHETIC course builder (immunoreset.demo.builder): manufacturing, lymphodepletion,
medications, anthropometrics, domain validation.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import Counter

import pytest

from immunoreset.course import Course
from immunoreset.demo import REGIMENS, published_cohort, published_cohort_with_qc
from tests.demo.factories import followup_months, large, published


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
    for c in published():
        if c.patient.site == site:
            got = {(c.study_day(x.date), x.drug, x.dose_mg_m2) for x in c.lymphodepletion}
            assert got == expected


def test_erlangen_regimen_is_marked_unconfirmed_and_can_be_overridden():
    assert REGIMENS["erlangen_reported"].confirmed is False
    cohort = published_cohort(site_regimens={"ERLANGEN": "opbg_nicolai_2024"})
    erl = [c for c in cohort if c.patient.site == "ERLANGEN"]
    assert all(len(c.lymphodepletion) == 5 for c in erl)


def test_medications_all_stopped_before_lymphodepletion_and_never_restarted():
    for c in published():
        assert len(c.medications) >= 2
        for m in c.medications:
            assert m.start < c.apheresis[0].date
            assert m.stop is not None and c.study_day(m.stop) < -5
        classes = {m.drug_class for m in c.medications}
        assert "glucocorticoid" in classes


def test_anthropometrics_at_apheresis_day_minus_7_and_monthly():
    for c in published():
        days = [c.study_day(a.date) for a in c.anthropometrics]
        assert c.study_day(c.apheresis[0].date) in days and -7 in days
        assert len(days) == 2 + round(followup_months(c))
        assert all(a.height_cm is not None for a in c.anthropometrics)


# --------------------------------------------------------------------------- validity
def _revalidated(course: Course) -> None:
    """Every record rebuilt through its validating constructor equals the generated one."""
    for name in ("labs", "disease_assessments", "daily_assessments", "bags", "medications"):
        for record in getattr(course, name):
            assert type(record)(**dataclasses.asdict(record)) == record


def test_generated_records_pass_the_domain_validation():
    for c in published():
        _revalidated(c)
    for c, _ in large()[:60]:
        _revalidated(c)
