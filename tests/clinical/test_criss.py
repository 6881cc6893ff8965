"""ACR-CRISS 2016 (Khanna et al., Arthritis Rheumatol 2016, Table 4) — clinical.md §9.2–9.3."""

from __future__ import annotations

import pytest

from immunoreset.clinical.criss import criss_result, probability_improved
from immunoreset.errors import InvalidInput

WORKED = "clinical.md §9.3"
NONE = {
    "delta_mrss": 0.0,
    "delta_fvc_percent": 0.0,
    "delta_patient_global": 0.0,
    "delta_physician_global": 0.0,
    "delta_haq_di": 0.0,
}

# (deltas, L, P, P decimals, improved, source)
CASES = [
    (
        {
            "delta_mrss": -10,
            "delta_fvc_percent": 5,
            "delta_patient_global": -2,
            "delta_physician_global": -2,
            "delta_haq_di": -0.5,
        },
        6.995,
        0.9991,
        4,
        True,
        f"{WORKED} #4",
    ),
    ({}, -5.54, 0.0039, 4, False, f"{WORKED} #5"),
    ({"delta_mrss": -7}, 0.13, 0.532, 3, False, f"{WORKED} #6"),
    ({"delta_mrss": -7.5}, 0.535, 0.631, 3, True, f"{WORKED} #6"),
    ({"delta_mrss": -8}, 0.94, 0.719, 3, True, f"{WORKED} #6"),
]


@pytest.mark.parametrize(("deltas", "lp", "p", "decimals", "improved", "source"), CASES)
def test_worked_cases(
    deltas: dict, lp: float, p: float, decimals: int, improved: bool, source: str
) -> None:
    result = criss_result(**(NONE | deltas))
    assert result.linear_predictor == pytest.approx(lp, abs=1e-9), source
    assert round(result.probability, decimals) == p, source
    assert result.improved is improved
    assert round(probability_improved(**(NONE | deltas)), decimals) == p


def test_worked_case_3_step1_event() -> None:
    result = criss_result(**NONE, step1_event=True)
    assert (result.probability, result.improved, result.linear_predictor) == (0.0, False, None)
    assert probability_improved(**(NONE | {"delta_mrss": -30}), step1_event=True) == 0.0


def test_threshold_060_inclusive() -> None:
    # L = 0 exactly at P = 0.5; P = 0.6 at L = ln(1.5). Solve ΔmRSS for L = ln(1.5) ± 1e-6.
    import math

    edge = (math.log(1.5) + 5.54) / -0.81
    below = criss_result(**(NONE | {"delta_mrss": edge + 1e-6}))
    above = criss_result(**(NONE | {"delta_mrss": edge - 1e-6}))
    assert below.probability < 0.6 and not below.improved
    assert above.probability > 0.6 and above.improved


def test_extreme_deltas_stay_finite() -> None:
    best = criss_result(
        delta_mrss=-51,
        delta_fvc_percent=200,
        delta_patient_global=-10,
        delta_physician_global=-10,
        delta_haq_di=-3,
    )
    worst = criss_result(
        delta_mrss=51,
        delta_fvc_percent=-200,
        delta_patient_global=10,
        delta_physician_global=10,
        delta_haq_di=3,
    )
    assert 0.999 < best.probability <= 1.0
    assert 0.0 <= worst.probability < 1e-9


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("delta_mrss", 52),
        ("delta_fvc_percent", -201),
        ("delta_patient_global", 10.5),
        ("delta_physician_global", float("nan")),
        ("delta_haq_di", "0"),
        ("step1_event", "yes"),
    ],
)
def test_refuses(field: str, value: object) -> None:
    with pytest.raises(InvalidInput) as err:
        criss_result(**(NONE | {field: value}))
    assert err.value.field == field
