"""Every public kinetics function refuses bad arrays with InvalidInput naming the field."""

from __future__ import annotations

import math

import pytest

from immunoreset.errors import InvalidInput
from immunoreset.kinetics import (
    aplasia_cohort,
    aplasia_duration,
    clearance_day,
    compute_nca,
    compute_nca_cohort,
    percent_change_cohort,
    percent_change_from_baseline,
    reconstitution_day,
    seroconversion_day,
    terminal_slope,
)

SERIES_FUNCS = {
    "compute_nca": lambda d, v, **k: compute_nca(d, v, lloq=1.0, **k),
    "terminal_slope": lambda d, v, **k: terminal_slope(d, v, lloq=1.0, **k),
    "clearance_day": clearance_day,
    "reconstitution_day": reconstitution_day,
    "aplasia_duration": aplasia_duration,
    "percent_change_from_baseline": percent_change_from_baseline,
    "seroconversion_day": lambda d, v, **k: seroconversion_day(d, v, cutoff=10, **k),
}
COHORT_FUNCS = {
    "compute_nca_cohort": lambda i, d, v, **k: compute_nca_cohort(i, d, v, 1.0, **k),
    "aplasia_cohort": aplasia_cohort,
    "percent_change_cohort": percent_change_cohort,
}

BAD_SERIES = [
    ("negative_value", [0, 7], [1, -1], {}, "values"),
    ("nan_value", [0, 7], [1, math.nan], {}, "values"),
    ("inf_value", [0, 7], [1, math.inf], {}, "values"),
    ("nan_day", [0, math.nan], [1, 1], {}, "days"),
    ("day_out_of_range", [0, 1e6], [1, 1], {}, "days"),
    ("length_mismatch", [0, 7, 14], [1, 1], {}, "values"),
    ("duplicate_day", [0, 7, 7], [1, 2, 3], {}, "days"),
    ("text_values", [0, 7], ["1", "2"], {}, "values"),
    ("bool_values", [0, 7], [True, False], {}, "values"),
    ("string_days", "0,7", [1, 2], {}, "days"),
    ("none_values", [0, 7], None, {}, "values"),
    ("2d_values", [0, 7], [[1, 2]], {}, "values"),
    ("unknown_aggregate", [0, 7], [1, 2], {"aggregate": "median"}, "aggregate"),
]


@pytest.mark.parametrize("func", list(SERIES_FUNCS), ids=list(SERIES_FUNCS))
@pytest.mark.parametrize(
    ("days", "values", "kwargs", "field"),
    [c[1:] for c in BAD_SERIES],
    ids=[c[0] for c in BAD_SERIES],
)
def test_series_functions_refuse_bad_arrays(func, days, values, kwargs, field):
    with pytest.raises(InvalidInput) as exc:
        SERIES_FUNCS[func](days, values, **kwargs)
    assert exc.value.field == field


BAD_COHORT = [
    ("ids_length", ["A"], [0, 7], [1, 1], "days"),
    ("values_length", ["A", "A"], [0, 7], [1], "values"),
    ("negative", ["A", "A"], [0, 7], [1, -2], "values"),
    ("nan_day", ["A", "A"], [0, math.nan], [1, 2], "days"),
    ("duplicate", ["A", "A"], [7, 7], [1, 2], "days"),
    ("ids_string", "AA", [0, 7], [1, 2], "patient_ids"),
    ("ids_2d", [["A", "A"]], [0, 7], [1, 2], "patient_ids"),
    ("ids_nan", [1.0, math.nan], [0, 7], [1, 2], "patient_ids"),
]


@pytest.mark.parametrize("func", list(COHORT_FUNCS), ids=list(COHORT_FUNCS))
@pytest.mark.parametrize(
    ("ids", "days", "values", "field"),
    [c[1:] for c in BAD_COHORT],
    ids=[c[0] for c in BAD_COHORT],
)
def test_cohort_functions_refuse_bad_arrays(func, ids, days, values, field):
    with pytest.raises(InvalidInput) as exc:
        COHORT_FUNCS[func](ids, days, values)
    assert exc.value.field == field


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"lloq": 0}, "lloq"),
        ({"lloq": -1}, "lloq"),
        ({"lloq": "1"}, "lloq"),
        ({"lloq": True}, "lloq"),
        ({"lloq": 1, "end": 0}, "end"),
        ({"lloq": 1, "start": math.nan}, "start"),
        ({"lloq": 1, "assay": "elisa"}, "assay"),
        ({"lloq": 1, "blq_rule": "keep"}, "blq_rule"),
        ({"lloq": 1, "impute_start_zero": 1}, "impute_start_zero"),
    ],
)
def test_compute_nca_bad_settings(kwargs, field):
    with pytest.raises(InvalidInput) as exc:
        compute_nca([0, 7], [1, 2], **kwargs)
    assert exc.value.field == field


@pytest.mark.parametrize(
    ("lloq", "kwargs", "field"),
    [
        (0, {}, "lloq"),
        ([1, 0], {}, "lloq"),
        ([1], {}, "lloq"),
        (1, {"blq_rule": "none"}, "blq_rule"),
    ],
)
def test_compute_nca_cohort_bad_settings(lloq, kwargs, field):
    with pytest.raises(InvalidInput) as exc:
        compute_nca_cohort(["A", "A"], [0, 7], [1, 2], lloq, **kwargs)
    assert exc.value.field == field


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"min_points": 2}, "min_points"), ({"adj_r_squared_factor": -1}, "adj_r_squared_factor")],
)
def test_terminal_slope_bad_settings(kwargs, field):
    with pytest.raises(InvalidInput) as exc:
        terminal_slope([0, 7, 14, 21], [0, 10, 5, 2], lloq=1, **kwargs)
    assert exc.value.field == field
