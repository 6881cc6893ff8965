"""CAR-HEMATOTOX (Rejeski et al., Blood 2021; cut-offs UNCONFIRMED, spec clinical.md §4)."""

from __future__ import annotations

import pytest

from immunoreset.clinical.hematotox import score_hematotox, score_hematotox_partial
from immunoreset.clinical.settings import ToxicitySettings
from immunoreset.errors import InvalidInput
from immunoreset.units import to_canonical

SPEC = "clinical.md §4.1"
NORMAL = dict(
    platelets_per_ul=200_000,
    anc_per_ul=3000,
    hemoglobin_g_dl=12.0,
    crp_mg_dl=0.5,
    ferritin_ng_ml=300,
)

WORKED = [
    ({}, 0, "low", f"{SPEC} #1"),
    (dict(platelets_per_ul=150_000), 1, "low", f"{SPEC} #2"),
    (dict(platelets_per_ul=60_000), 2, "high", f"{SPEC} #3"),
    (dict(ferritin_ng_ml=1000, crp_mg_dl=4.0), 2, "high", f"{SPEC} #4"),
    (dict(crp_mg_dl=45 * to_canonical("crp", "mg/L")), 1, "low", f"{SPEC} #5: 45 mg/L"),
    (dict(ferritin_ng_ml=2001), 2, "high", "clinical.md §4 table: ferritin > 2000"),
    (dict(anc_per_ul=1199), 1, "low", "clinical.md §4 table: ANC < 1200"),
    (dict(hemoglobin_g_dl=8.9), 1, "low", "clinical.md §4 table: Hb < 9.0"),
    (
        dict(platelets_per_ul=10_000, anc_per_ul=100, hemoglobin_g_dl=7, crp_mg_dl=20,
             ferritin_ng_ml=5000),
        7, "high", "clinical.md §4: range 0–7",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("changes", "score", "risk", "source"), WORKED, ids=[w[3] for w in WORKED])
def test_worked_cases(changes: dict, score: int, risk: str, source: str) -> None:
    result = score_hematotox(**{**NORMAL, **changes})
    assert (result.score, result.risk) == (score, risk), source
    assert not any(f.startswith("on_cutoff") for f in result.flags)
    assert "cutoffs_unconfirmed" in result.flags


CUTOFFS = [
    # (variable, value, points with higher_points, points with lower_points)
    ("platelets_per_ul", 175_000, 1, 0),
    ("platelets_per_ul", 75_000, 2, 1),
    ("anc_per_ul", 1200, 1, 0),
    ("hemoglobin_g_dl", 9.0, 1, 0),
    ("crp_mg_dl", 3.0, 1, 0),
    ("ferritin_ng_ml", 650, 1, 0),
    ("ferritin_ng_ml", 2000, 2, 1),
]


@pytest.mark.parametrize(("name", "value", "higher", "lower"), CUTOFFS)
def test_values_on_a_cutoff_are_flagged_and_follow_the_setting(
    name: str, value: float, higher: int, lower: int
) -> None:
    """Exact-boundary handling is UNCONFIRMED (clinical.md §4): a setting, and a flag."""
    default = score_hematotox(**{**NORMAL, name: value})
    other = score_hematotox(
        **{**NORMAL, name: value}, settings=ToxicitySettings(hematotox_on_cutoff="lower_points")
    )
    assert (default.score, other.score) == (higher, lower)
    assert f"on_cutoff:{name}" in default.flags and f"on_cutoff:{name}" in other.flags


@pytest.mark.parametrize(
    ("name", "just_better", "just_worse"),
    [
        ("platelets_per_ul", 175_001, 174_999),
        ("anc_per_ul", 1201, 1199),
        ("hemoglobin_g_dl", 9.1, 8.9),
        ("crp_mg_dl", 2.9, 3.1),
        ("ferritin_ng_ml", 649, 651),
    ],
)
def test_both_sides_of_the_first_cutoff(name: str, just_better: float, just_worse: float) -> None:
    assert score_hematotox(**{**NORMAL, name: just_better}).score == 0
    assert score_hematotox(**{**NORMAL, name: just_worse}).score == 1


def test_missing_value_is_incomplete() -> None:
    """clinical.md §4.1 #6: ferritin missing, others normal → incomplete, cannot rule out high."""
    result = score_hematotox_partial(**{**NORMAL, "ferritin_ng_ml": None})
    assert result.score is None and result.risk is None
    assert (result.min_score, result.max_score) == (0, 2)
    assert {"incomplete", "missing:ferritin_ng_ml"} <= set(result.flags)


def test_missing_value_with_high_partial_is_still_high() -> None:
    result = score_hematotox_partial(**{**NORMAL, "platelets_per_ul": 50_000, "crp_mg_dl": None})
    assert (result.score, result.risk, result.min_score, result.max_score) == (None, "high", 2, 3)


def test_missing_value_that_cannot_reach_high_is_low() -> None:
    result = score_hematotox_partial(**{**NORMAL, "anc_per_ul": None})
    assert (result.risk, result.max_score) == ("low", 1)


NORMAL = dict(
    platelets_per_ul=200_000,
    anc_per_ul=3000,
    hemoglobin_g_dl=12.0,
    crp_mg_dl=0.5,
    ferritin_ng_ml=300,
)


def test_european_mcl_not_validated_in_children_or_autoimmune_disease_flag() -> None:
    """european-mcl.net: CAR-HEMATOTOX "established and validated only in LBCL"."""
    result = score_hematotox(**NORMAL)
    assert "not_validated_in_children_or_autoimmune_disease" in result.flags
    assert any("not validated in children or autoimmune disease" in r for r in result.reasons)
    partial = score_hematotox_partial(**(NORMAL | {"ferritin_ng_ml": None}))
    assert "not_validated_in_children_or_autoimmune_disease" in partial.flags


def test_rejeski_2021_units_at_the_door() -> None:
    """Rejeski 2021 cut-offs are in /µL and mg/dL: 10⁹/L and mg/L values are converted."""
    converted = score_hematotox(
        **(NORMAL | {"platelets_per_ul": 60, "crp_mg_dl": 45}),
        units={"platelets_per_ul": "10^9/L", "crp_mg_dl": "mg/L"},
    )
    assert converted.score == 3  # PLT 60,000/µL → 2, CRP 4.5 mg/dL → 1
    with pytest.raises(InvalidInput) as info:
        score_hematotox(**(NORMAL | {"platelets_per_ul": 60}))
    assert info.value.field == "platelets_per_ul" and "10^9/L" in str(info.value)
    with pytest.raises(InvalidInput) as info:
        score_hematotox(**(NORMAL | {"anc_per_ul": 1.2}))
    assert info.value.field == "anc_per_ul"
    with pytest.raises(InvalidInput) as info:
        score_hematotox(**NORMAL, units={"platelets": "10^9/L"})
    assert info.value.field == "units"
