"""2016 ACR/EULAR myositis response (Rider 2017 JDM, Aggarwal 2017 adult) — clinical.md §8."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from immunoreset.clinical.myositis_response import (
    ENZYME_METHOD_CONFIRMED,
    TIS_POINTS,
    enzyme_improvement,
    percent_improvement,
    score_tis,
    tis_category,
)
from immunoreset.errors import InvalidInput

TABLE = "Rider 2017 Table 3 (clinical.md §8)"
WORKED = "clinical.md §8.1"
MEASURES = list(TIS_POINTS)
ZERO = dict.fromkeys(MEASURES, 0.0)

# (measure, percent improvement, points, source) — both sides of every band edge.
POINT_TABLE = [
    *[
        (m, pct, pts, TABLE)
        for m, row in {
            "physician_global": (0, 7.5, 15, 17.5, 20),
            "patient_global": (0, 2.5, 5, 7.5, 10),
            "function": (0, 5, 7.5, 7.5, 10),
            "enzyme": (0, 2.5, 5, 7.5, 7.5),
            "extramuscular": (0, 7.5, 12.5, 15, 20),
        }.items()
        for pct, pts in [
            (-50, row[0]), (0, row[0]), (5, row[0]), (5.01, row[1]), (15, row[1]),
            (15.01, row[2]), (25, row[2]), (25.01, row[3]), (40, row[3]), (40.01, row[4]),
            (100, row[4]),
        ]
    ],
    ("strength", -20, 0, TABLE),
    ("strength", 2, 0, f"{WORKED} #5 exactly 2 %"),
    ("strength", 2.1, 10, f"{WORKED} #5 2.1 %"),
    ("strength", 10, 10, TABLE),
    ("strength", 10.01, 20, TABLE),
    ("strength", 20, 20, TABLE),
    ("strength", 20.01, 27.5, TABLE),
    ("strength", 30, 27.5, TABLE),
    ("strength", 30.01, 32.5, TABLE),
    ("strength", 100, 32.5, TABLE),
]  # fmt: skip


@pytest.mark.parametrize(("measure", "pct", "points", "source"), POINT_TABLE)
def test_point_table(measure: str, pct: float, points: float, source: str) -> None:
    result = score_tis(**(ZERO | {measure: pct}))
    assert result.points[measure] == points, source
    assert result.score == points


def test_maximum_is_100() -> None:
    assert score_tis(**dict.fromkeys(MEASURES, 100.0)).score == 100.0


CASE1 = {
    "physician_global": percent_improvement(
        baseline=8, followup=3, minimum=0, maximum=10, higher_is_better=False
    ),
    "patient_global": percent_improvement(
        baseline=6, followup=3, minimum=0, maximum=10, higher_is_better=False
    ),
    "strength": percent_improvement(
        baseline=30, followup=40, minimum=0, maximum=52, higher_is_better=True
    ),
    "function": percent_improvement(
        baseline=1.5, followup=1.0, minimum=0, maximum=3, higher_is_better=False
    ),
    "enzyme": 30.0,  # the ">25–40 %" band of the worked case
    "extramuscular": percent_improvement(
        baseline=4, followup=2, minimum=0, maximum=10, higher_is_better=False
    ),
}


def test_worked_case_1_percentages() -> None:
    assert CASE1["physician_global"] == 50.0
    assert CASE1["patient_global"] == 30.0
    assert CASE1["strength"] == pytest.approx(19.2, abs=0.05)
    assert CASE1["function"] == pytest.approx(16.7, abs=0.05)
    assert CASE1["extramuscular"] == 20.0


# (inputs, population, score, category, source)
TIS_CASES = [
    (CASE1, "jdm", 75.0, "major", f"{WORKED} #1"),
    (CASE1, "adult", 75.0, "major", f"{WORKED} #1 adult thresholds"),
    (
        CASE1
        | {
            "strength": percent_improvement(
                baseline=30, followup=31, minimum=0, maximum=52, higher_is_better=True
            )
        },
        "jdm",
        55.0,
        "moderate",
        f"{WORKED} #2 CMAS 30→31 (1.9 %)",
    ),
    (ZERO | {"physician_global": -30, "strength": -10}, "jdm", 0.0, "none", f"{WORKED} #6"),
]


@pytest.mark.parametrize(("inputs", "population", "score", "category", "source"), TIS_CASES)
def test_tis_cases(inputs: dict, population: str, score: float, category: str, source: str) -> None:
    result = score_tis(**inputs, population=population)
    assert (result.score, result.category, result.population) == (score, category, population)
    assert all(p >= 0 for p in result.points.values()), source
    assert len(result.reasons) == 7


def test_worked_case_4_exactly_five_percent() -> None:
    pct = percent_improvement(
        baseline=5.0, followup=4.5, minimum=0, maximum=10, higher_is_better=False
    )
    assert pct == 5.0
    assert score_tis(**(ZERO | {"physician_global": pct})).points["physician_global"] == 0


def test_worked_case_5_cmas_two_percent() -> None:
    exactly_two = percent_improvement(
        baseline=10, followup=11, minimum=0, maximum=50, higher_is_better=True
    )
    assert exactly_two == 2.0
    assert score_tis(**(ZERO | {"strength": exactly_two})).points["strength"] == 0
    assert score_tis(**(ZERO | {"strength": 2.1})).points["strength"] == 10


def test_band_edge_float_noise_removed() -> None:
    # 0.45 on a 0–3 scale is 15 % exactly; binary floats give 15.000000000000002 without rounding.
    pct = percent_improvement(
        baseline=1.5, followup=1.05, minimum=0, maximum=3, higher_is_better=False
    )
    assert pct == 15.0
    assert score_tis(**(ZERO | {"function": pct})).points["function"] == 5


# (score, population, category, source) — every threshold on both sides.
CATEGORY_CASES = [
    (29.5, "jdm", "none", f"{WORKED} #3"),
    (30.0, "jdm", "minimal", f"{WORKED} #3"),
    (44.9, "jdm", "minimal", "§8 JDM moderate ≥ 45"),
    (45.0, "jdm", "moderate", "§8 JDM moderate ≥ 45"),
    (69.9, "jdm", "moderate", "§8 JDM major ≥ 70"),
    (70.0, "jdm", "major", "§8 JDM major ≥ 70"),
    (19.9, "adult", "none", "§8 adult minimal ≥ 20"),
    (20.0, "adult", "minimal", f"{WORKED} #3 adult"),
    (30.0, "adult", "minimal", f"{WORKED} #3 adult"),
    (39.9, "adult", "minimal", "§8 adult moderate ≥ 40"),
    (40.0, "adult", "moderate", "§8 adult moderate ≥ 40"),
    (59.9, "adult", "moderate", "§8 adult major ≥ 60"),
    (60.0, "adult", "major", "§8 adult major ≥ 60"),
    (0.0, "adult", "none", "§8"),
    (100.0, "jdm", "major", "§8"),
]


@pytest.mark.parametrize(("score", "population", "category", "source"), CATEGORY_CASES)
def test_categories(score: float, population: str, category: str, source: str) -> None:
    assert tis_category(score, population=population) == category, source


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        (
            {"baseline": 8, "followup": 3, "minimum": 0, "maximum": 10, "higher_is_better": False},
            50.0,
        ),
        (
            {"baseline": 3, "followup": 8, "minimum": 0, "maximum": 10, "higher_is_better": False},
            -50.0,
        ),
        (
            {"baseline": 60, "followup": 80, "minimum": 0, "maximum": 80, "higher_is_better": True},
            25.0,
        ),
        (
            {"baseline": 2, "followup": 2, "minimum": 0, "maximum": 3, "higher_is_better": False},
            0.0,
        ),
    ],
)
def test_percent_improvement(kwargs: dict, expected: float) -> None:
    assert percent_improvement(**kwargs) == expected


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"baseline": 11, "followup": 3, "minimum": 0, "maximum": 10}, "baseline"),
        ({"baseline": 1, "followup": -1, "minimum": 0, "maximum": 10}, "followup"),
        ({"baseline": 1, "followup": 1, "minimum": 10, "maximum": 10}, "maximum"),
        (
            {"baseline": 1, "followup": 1, "minimum": 0, "maximum": 10, "higher_is_better": 1},
            "higher_is_better",
        ),
    ],
)
def test_percent_improvement_refuses(kwargs: dict, field: str) -> None:
    kwargs = {"higher_is_better": False} | kwargs
    with pytest.raises(InvalidInput) as err:
        percent_improvement(**kwargs)
    assert err.value.field == field


# (baseline, followup, uln, method, expected) — formula is UNCONFIRMED; tests pin the choice.
ENZYME_CASES = [
    (1000, 700, 200, "relative_to_baseline", 30.0),
    (1000, 1500, 200, "relative_to_baseline", -50.0),
    (1000, 700, 200, "excess_over_uln", 37.5),
    (1000, 100, 200, "excess_over_uln", 100.0),
    (150, 100, 200, "excess_over_uln", 0.0),
    (150, 300, 200, "excess_over_uln", -50.0),
    (100, 5000, 200, "relative_to_baseline", -1000.0),
]


@pytest.mark.parametrize(("b", "f", "uln", "method", "expected"), ENZYME_CASES)
def test_enzyme_improvement(b: float, f: float, uln: float, method: str, expected: float) -> None:
    assert enzyme_improvement(baseline=b, followup=f, uln=uln, method=method) == expected
    assert ENZYME_METHOD_CONFIRMED is False


improvement = st.floats(-200, 100, allow_nan=False)


@given(
    values=st.fixed_dictionaries(dict.fromkeys(MEASURES, improvement)),
    measure=st.sampled_from(MEASURES),
    more=st.floats(0, 300, allow_nan=False),
    population=st.sampled_from(["jdm", "adult"]),
)
def test_tis_monotone_in_each_input(
    values: dict, measure: str, more: float, population: str
) -> None:
    better = values | {measure: min(100.0, values[measure] + more)}
    low = score_tis(**values, population=population)
    high = score_tis(**better, population=population)
    assert high.score >= low.score
    order = ["none", "minimal", "moderate", "major"]
    assert order.index(high.category) >= order.index(low.category)
    assert 0 <= high.score <= 100
