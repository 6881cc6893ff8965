"""CTCAE v5.0/v6.0 cytopenias and febrile neutropenia (NCI; spec clinical.md §5)."""

from __future__ import annotations

import pytest

from immunoreset.clinical.ctcae import grade_lab, grade_lab_result, is_febrile_neutropenia
from immunoreset.errors import InvalidInput

SPEC = "clinical.md §5.2"
TABLE = "clinical.md §5 table (CTCAE v5.0)"
N, P, L, W, A = (
    "neutrophil_count_decreased",
    "platelet_count_decreased",
    "lymphocyte_count_decreased",
    "white_blood_cell_decreased",
    "anemia",
)

CASES = [
    # (term, value, lln, version, expected, source)
    (N, 1200, None, "5.0", 2, f"{SPEC} #1"),
    (N, 500, None, "5.0", 3, f"{SPEC} #1"),
    (N, 499, None, "5.0", 4, f"{SPEC} #1"),
    (N, 1600, 1800, "5.0", 1, f"{SPEC} #2"),
    (N, 1600, 1500, "5.0", 0, f"{SPEC} #2"),
    (N, 1500, 1800, "5.0", 1, f"{TABLE}: 1500 is grade 1"),
    (N, 1499, 1800, "5.0", 2, TABLE),
    (N, 1000, None, "5.0", 2, f"{TABLE}: 1000 → 2"),
    (N, 999, None, "5.0", 3, f"{TABLE}: 999 → 3"),
    (N, 1600, None, "5.0", 0, "no LLN: grade 1 not assessed"),
    (P, 74_000, None, "5.0", 2, f"{SPEC} #3"),
    (P, 25_000, None, "5.0", 3, f"{SPEC} #3"),
    (P, 24_999, None, "5.0", 4, f"{SPEC} #3"),
    (P, 24_999, None, "6.0", 3, f"{SPEC} #3 (v6)"),
    (P, 10_000, None, "6.0", 3, "clinical.md §5: v6 grade 4 < 10,000"),
    (P, 9_000, None, "6.0", 4, f"{SPEC} #3 (v6)"),
    (P, 75_000, 150_000, "5.0", 1, TABLE),
    (P, 50_000, None, "5.0", 2, TABLE),
    (P, 49_999, None, "5.0", 3, TABLE),
    (A, 8.0, None, "5.0", 2, f"{SPEC} #4"),
    (A, 7.9, None, "5.0", 3, f"{SPEC} #4"),
    (A, 10.0, 12.0, "5.0", 1, TABLE),
    (A, 9.9, 12.0, "5.0", 2, TABLE),
    (A, 0.5, None, "5.0", 3, f"{TABLE}: grade 4 is clinical, not lab"),
    (L, 200, None, "5.0", 3, f"{SPEC} #5"),
    (L, 199, None, "5.0", 4, f"{SPEC} #5"),
    (L, 800, 1000, "5.0", 1, TABLE),
    (L, 799, None, "5.0", 2, TABLE),
    (L, 500, None, "5.0", 2, f"{TABLE}: 500 is still grade 2"),
    (L, 499, None, "5.0", 3, TABLE),
    (W, 3000, 4000, "5.0", 1, TABLE),
    (W, 2999, None, "5.0", 2, TABLE),
    (W, 1000, None, "5.0", 3, TABLE),
    (W, 999, None, "5.0", 4, TABLE),
]


@pytest.mark.parametrize(
    ("term", "value", "lln", "version", "expected", "source"),
    CASES,
    ids=[f"{c[0]}-{c[1]}-v{c[3]}" for c in CASES],
)
def test_grade_lab(term: str, value: float, lln, version: str, expected: int, source: str) -> None:
    assert grade_lab(term, value, lln=lln, version=version) == expected, source
    assert grade_lab_result(term, value, lln=lln, version=version).reasons


FEBRILE = [
    (800, 38.4, False, True, f"{SPEC} #6"),
    (800, 38.3, False, False, f"{SPEC} #6: not > 38.3"),
    (1100, 39.0, False, False, f"{SPEC} #6: ANC not < 1000"),
    (1000, 39.0, False, False, "clinical.md §5: ANC < 1000 strict"),
    (999, 39.0, False, True, "clinical.md §5"),
    (800, 38.0, True, True, "clinical.md §5: sustained ≥ 38 °C > 1 h"),
]


@pytest.mark.parametrize(("anc", "temp", "sustained", "expected", "source"), FEBRILE)
def test_febrile_neutropenia(anc, temp, sustained, expected, source) -> None:
    result = is_febrile_neutropenia(
        anc_per_ul=anc, temperature_c=temp, sustained_38_over_1h=sustained
    )
    assert result is expected, source


# ------------------------------------------------------------ units at the door (issue #12, 6)
UNIT_CASES = [
    # (term, value, unit, expected grade, source)
    ("neutrophil_count_decreased", 1.2, "10^9/L", 2, "CTCAE v5.0: 1200/µL < 1500"),
    ("neutrophil_count_decreased", 0.499, "10^9/L", 4, "CTCAE v5.0: 499/µL < 500"),
    ("platelet_count_decreased", 24.9, "10^9/L", 4, "CTCAE v5.0: 24,900/µL < 25,000"),
    ("platelet_count_decreased", 25.0, "x10^9/L", 3, "CTCAE v5.0: 25,000/µL"),
    ("anemia", 79, "g/L", 3, "CTCAE v5.0: 7.9 g/dL < 8.0"),
    ("neutrophil_count_decreased", 1200, "cells/uL", 2, "CTCAE v5.0"),
]


@pytest.mark.parametrize(
    ("term", "value", "unit", "expected", "source"), UNIT_CASES, ids=[str(c) for c in UNIT_CASES]
)
def test_ctcae_v5_explicit_unit_is_converted(term, value, unit, expected, source) -> None:
    assert grade_lab(term, value, unit=unit) == expected, source


@pytest.mark.parametrize(
    ("term", "value"),
    [
        ("neutrophil_count_decreased", 1.2),
        ("neutrophil_count_decreased", 5),
        ("lymphocyte_count_decreased", 0.45),
        ("platelet_count_decreased", 25),
    ],
)
def test_ctcae_v5_counts_implausible_in_cells_per_ul_are_refused(term, value) -> None:
    """CTCAE v5.0 grades counts in /mm³ = cells/µL; 1.2 is a 10⁹/L value, not 1.2 cells/µL."""
    with pytest.raises(InvalidInput) as info:
        grade_lab(term, value)
    assert info.value.field == "value"
    assert "cells/µL" in str(info.value) and "10^9/L" in str(info.value)


def test_ctcae_v5_plausible_counts_and_allow_setting() -> None:
    from immunoreset.clinical.settings import ToxicitySettings

    assert grade_lab("neutrophil_count_decreased", 0) == 4  # zero is a real count
    assert grade_lab("neutrophil_count_decreased", 10) == 4
    allow = ToxicitySettings(implausible_counts="allow")
    assert grade_lab("neutrophil_count_decreased", 1.2, settings=allow) == 4
