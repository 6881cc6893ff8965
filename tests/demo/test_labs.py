"""SYNTHETIC lab series (immunoreset.demo.labs): CAR T, B cells, autoantibodies, complement."""

from __future__ import annotations

from collections import Counter

import pytest

from immunoreset import vocab
from immunoreset.demo import CAR_T_FLOW_LLOQ, CAR_T_QPCR_LLOQ, month_day
from tests.demo.factories import by_id, published


# --------------------------------------------------------------------------- kinetics
def test_b_cells_cleared_by_day_7_and_back_at_3_to_5_months():
    for c in published():
        days, values = c.lab_series("cd19_b_cells")
        assert values[days == -7][0] >= 110  # LHSC 12–18 y lower limit
        assert (values[(days >= 7) & (days <= 28)] < 1).all(), c.study_id
        back = days[(days > 28) & (values >= 10)]
        assert 90 <= back[0] <= 150, c.study_id


def test_car_t_peak_between_day_7_and_10():
    for c in published():
        days, values = c.lab_series("car_t_flow")
        assert 7 <= days[values.argmax()] <= 10, c.study_id
        assert 10 <= values.max() <= 60
    days, values = by_id("RM-001").lab_series("car_t_flow")
    assert (days[values.argmax()], values.max()) == (7, 32.69)


def test_car_t_results_below_lloq_hold_the_lloq():
    seen = Counter()
    for c in published():
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
    for c in published():
        if c.patient.diagnosis != diagnosis:
            continue
        days, values = c.lab_series(analyte)
        base, m6 = values[days == -7][0], values[days == month_day(6)][0]
        assert m6 <= (1 - fall) * base, c.study_id


def test_complement_normalises_in_sle():
    for c in published():
        if c.patient.diagnosis == "SLE":
            days, c3 = c.lab_series("c3")
            assert c3[days == -7][0] < 90 <= c3[days == month_day(6)][0]


def test_labs_are_in_canonical_units_with_required_schedule():
    for c in published():
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
