"""Height and weight for age and sex from rcpchgrowth (UK-WHO, CDC).

Oracle: ``rcpchgrowth.measurement_from_sds(reference, 0, "weight", sex, age)`` — the RCPCH
package's own median (P50) of each reference, not a number written here.
"""

from __future__ import annotations

import numpy as np
import pytest
from rcpchgrowth import measurement_from_sds

from immunoreset.errors import InvalidInput
from immunoreset.model.trial.cohort import draw_arm
from immunoreset.model.trial.design import parse_design
from immunoreset.model.trial.estimates import default_estimates
from immunoreset.model.trial.growth import load_growth_reference

SEX = {"F": "female", "M": "male"}


def _design(age, female, reference):
    return parse_design(
        {
            "name": "growth",
            "patients_per_arm": 4000,
            "population": {
                "age_years": [age, age],
                "female_fraction": 1.0 if female else 0.0,
                "growth_reference": reference,
            },
            "arms": [{"name": "A", "dose_per_kg": 1e6}],
            "success": {
                "conditions": [{"arm": "A", "endpoint": "b_clear_d7", "min_proportion": 1}]
            },
        }
    )


@pytest.mark.parametrize("reference", ["uk-who", "cdc"])
@pytest.mark.parametrize("sex", ["F", "M"])
@pytest.mark.parametrize("age", [2.0, 4.5, 8.0, 12.25, 16.0, 19.5])
def test_drawn_median_weight_matches_reference_within_2_percent(reference, sex, age):
    d = _design(age, sex == "F", reference)
    est = default_estimates()
    draw = draw_arm(
        d, d.arms[0], est.typical.to_array()[None, :], est, load_growth_reference(reference),
        [np.random.SeedSequence(11)], 4000,
    )  # fmt: skip
    expected = measurement_from_sds(reference, 0.0, "weight", SEX[sex], age)
    assert np.median(draw.weight_kg) == pytest.approx(expected, rel=0.02)
    # heights too, and weight increases with height (correlated z-scores)
    h_expected = measurement_from_sds(reference, 0.0, "height", SEX[sex], age)
    assert np.median(draw.height_cm) == pytest.approx(h_expected, rel=0.02)
    assert np.corrcoef(draw.height_cm, draw.weight_kg)[0, 1] > 0.4


@pytest.mark.parametrize("reference", ["uk-who", "cdc"])
def test_grid_reproduces_rcpchgrowth_between_grid_points(reference):
    ref = load_growth_reference(reference)
    ages = np.array([2.0, 3.013, 7.77, 11.111, 14.9, 20.0])
    for sex in ("F", "M"):
        for m in ("height", "weight"):
            for z in (-2.0, 0.0, 1.5):
                got = ref.measurement_for_z(m, ages, np.full(len(ages), sex), np.full(len(ages), z))
                want = [measurement_from_sds(reference, z, m, SEX[sex], float(a)) for a in ages]
                np.testing.assert_allclose(got, want, rtol=1e-3)


@pytest.mark.parametrize("age", [1.99, 20.01, float("nan")])
def test_age_outside_reference_refused(age):
    ref = load_growth_reference("uk-who")
    with pytest.raises(InvalidInput) as err:
        ref.measurement_for_z("weight", np.array([age]), np.array(["F"]), np.zeros(1))
    assert err.value.field == "age_y"


def test_unknown_reference_and_sex_refused():
    with pytest.raises(InvalidInput):
        load_growth_reference("who-2007")
    with pytest.raises(InvalidInput):
        load_growth_reference("cdc").measurement_for_z(
            "weight", np.array([5.0]), np.array(["X"]), np.zeros(1)
        )
