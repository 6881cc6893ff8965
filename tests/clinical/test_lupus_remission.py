"""DORIS 2021 remission (van Vollenhoven 2021) and LLDAS (Franklyn 2016) — clinical.md §6.2–6.4."""

from __future__ import annotations

import pytest

from immunoreset.clinical.lupus_remission import (
    doris_result,
    is_doris_remission,
    is_lldas,
    lldas_result,
    major_organ_descriptors,
)
from immunoreset.clinical.sledai import score_clinical_sledai, score_sledai2k

DORIS = "clinical.md §6.2 (DORIS 2021)"
LLDAS = "clinical.md §6.3 (Franklyn 2016)"
WORKED = "clinical.md §6.4"

# (clinical_sledai, physician_global, prednisone, stable, expected, source)
DORIS_CASES = [
    (0, 0.3, 0, True, True, f"{WORKED} #6 post-CAR-T, no drugs"),
    (4, 0.5, 5, True, False, f"{WORKED} #7 cSLEDAI 4"),
    (0, 0.5, 7.5, True, False, f"{WORKED} #8 PGA not < 0.5, pred > 5"),
    (0, 0.49, 5, True, True, f"{DORIS} PGA just below 0.5, pred exactly 5 (≤ 5, §10)"),
    (0, 0.5, 0, True, False, f"{DORIS} PGA exactly 0.5 (< 0.5, §10)"),
    (0, 0.0, 5.01, True, False, f"{DORIS} pred just above 5"),
    (1, 0.0, 0, True, False, f"{DORIS} cSLEDAI 1"),
    (0, 0.0, 0, False, False, f"{DORIS} unstable immunomodulators"),
]


@pytest.mark.parametrize(("c", "pga", "pred", "stable", "expected", "source"), DORIS_CASES)
def test_doris(c: int, pga: float, pred: float, stable: bool, expected: bool, source: str) -> None:
    kwargs = {
        "clinical_sledai": c,
        "physician_global": pga,
        "prednisone_mg_day": pred,
        "stable_maintenance": stable,
    }
    assert is_doris_remission(**kwargs) is expected, source
    result = doris_result(**kwargs)
    assert result.met is expected
    assert len(result.reasons) == 4
    failed = sum(line.endswith("NOT met") for line in result.reasons)
    assert (failed == 0) is expected


def test_doris_reasons_name_failed_criteria() -> None:
    r = doris_result(clinical_sledai=0, physician_global=0.5, prednisone_mg_day=7.5)
    failed = [line for line in r.reasons if line.endswith("NOT met")]
    assert failed == ["PGA 0.5 < 0.5: NOT met", "prednisone 7.5 ≤ 5 mg/day: NOT met"]


# (sledai2k, major, new, pga, pred, standard, expected, source)
LLDAS_CASES = [
    (2, False, False, 0.3, 0, True, True, f"{WORKED} #6 SLEDAI-2K 2 (serology only)"),
    (4, True, False, 0.5, 5, True, False, f"{WORKED} #7 renal activity"),
    (0, False, False, 0.5, 7.5, True, True, f"{WORKED} #8 no new features"),
    (0, False, True, 0.5, 7.5, True, False, f"{WORKED} #8 with new features"),
    (4, False, False, 1.0, 7.5, True, True, f"{LLDAS} every edge inclusive"),
    (5, False, False, 0.0, 0, True, False, f"{LLDAS} SLEDAI-2K 5 > 4"),
    (0, False, False, 1.01, 0, True, False, f"{LLDAS} PGA just above 1"),
    (0, False, False, 0.0, 7.51, True, False, f"{LLDAS} prednisone just above 7.5"),
    (0, False, False, 0.0, 0, False, False, f"{LLDAS} non-standard maintenance"),
]


@pytest.mark.parametrize(
    ("s", "major", "new", "pga", "pred", "standard", "expected", "source"), LLDAS_CASES
)
def test_lldas(
    s: int,
    major: bool,
    new: bool,
    pga: float,
    pred: float,
    standard: bool,
    expected: bool,
    source: str,
) -> None:
    kwargs = {
        "sledai2k": s,
        "major_organ_activity": major,
        "new_activity": new,
        "physician_global": pga,
        "prednisone_mg_day": pred,
        "standard_maintenance": standard,
    }
    assert is_lldas(**kwargs) is expected, source
    assert lldas_result(**kwargs).met is expected


def test_worked_case_6_end_to_end() -> None:
    # §6.4 #6: cSLEDAI 0 with anti-dsDNA still high, PGA 0.3, no drugs -> DORIS yes, LLDAS yes.
    present = ["increased_dna_binding"]
    assert is_doris_remission(
        clinical_sledai=score_clinical_sledai(present), physician_global=0.3, prednisone_mg_day=0
    )
    assert is_lldas(
        sledai2k=score_sledai2k(present),
        major_organ_activity=bool(major_organ_descriptors(present)),
        new_activity=False,
        physician_global=0.3,
        prednisone_mg_day=0,
    )


def test_worked_case_7_end_to_end() -> None:
    present = ["proteinuria"]
    assert major_organ_descriptors(present) == ("proteinuria",)
    assert not is_lldas(
        sledai2k=score_sledai2k(present),
        major_organ_activity=bool(major_organ_descriptors(present)),
        new_activity=False,
        physician_global=0.5,
        prednisone_mg_day=5,
    )
    assert not is_doris_remission(
        clinical_sledai=score_clinical_sledai(present), physician_global=0.5, prednisone_mg_day=5
    )


@pytest.mark.parametrize(
    ("descriptors", "expected"),
    [
        (["rash", "alopecia", "low_complement", "arthritis"], ()),
        (
            ["fever", "pleurisy", "seizure", "vasculitis"],
            ("seizure", "vasculitis", "pleurisy", "fever"),
        ),
        (["hematuria", "pyuria", "urinary_casts"], ("urinary_casts", "hematuria", "pyuria")),
    ],
)
def test_major_organ_descriptors(descriptors: list[str], expected: tuple[str, ...]) -> None:
    assert tuple(sorted(major_organ_descriptors(descriptors))) == tuple(sorted(expected))
