"""SLEDAI-2K / clinical SLEDAI (Gladman 2002; Touma 2010 window) — clinical.md §6.1, §6.4."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from immunoreset.clinical.sledai import (
    SLEDAI2K_WEIGHTS,
    descriptors_in_window,
    is_arthritis,
    is_fever,
    is_hematuria,
    is_leukopenia,
    is_proteinuria,
    is_pyuria,
    is_thrombocytopenia,
    lab_descriptors,
    score_clinical_sledai,
    score_sledai2k,
    sledai2k_result,
)
from immunoreset.errors import InvalidInput

SPEC = "clinical.md §6.1 (Gladman 2002 weights)"
WORKED = "clinical.md §6.4"

# (descriptor, weight, source) — every row of the weight table.
WEIGHT_TABLE = [
    ("seizure", 8, SPEC),
    ("psychosis", 8, SPEC),
    ("organic_brain_syndrome", 8, SPEC),
    ("visual_disturbance", 8, SPEC),
    ("cranial_nerve_disorder", 8, SPEC),
    ("lupus_headache", 8, SPEC),
    ("cva", 8, SPEC),
    ("vasculitis", 8, SPEC),
    ("arthritis", 4, SPEC),
    ("myositis", 4, SPEC),
    ("urinary_casts", 4, SPEC),
    ("hematuria", 4, SPEC),
    ("proteinuria", 4, SPEC),
    ("pyuria", 4, SPEC),
    ("rash", 2, SPEC),
    ("alopecia", 2, SPEC),
    ("mucosal_ulcers", 2, SPEC),
    ("pleurisy", 2, SPEC),
    ("pericarditis", 2, SPEC),
    ("low_complement", 2, SPEC),
    ("increased_dna_binding", 2, SPEC),
    ("fever", 1, SPEC),
    ("thrombocytopenia", 1, SPEC),
    ("leukopenia", 1, SPEC),
]


@pytest.mark.parametrize(("descriptor", "weight", "source"), WEIGHT_TABLE)
def test_single_descriptor_weight(descriptor: str, weight: int, source: str) -> None:
    assert score_sledai2k([descriptor]) == weight, source
    serologic = descriptor in {"low_complement", "increased_dna_binding"}
    assert score_clinical_sledai([descriptor]) == (0 if serologic else weight), source


def test_table_covers_vocabulary_and_totals_105() -> None:
    assert [d for d, _, _ in WEIGHT_TABLE] == list(SLEDAI2K_WEIGHTS)
    everything = list(SLEDAI2K_WEIGHTS)
    assert score_sledai2k(everything) == 105
    assert score_clinical_sledai(everything) == 101
    assert score_sledai2k([]) == 0


# (descriptors, SLEDAI-2K, cSLEDAI, source)
WORKED_CASES = [
    (["arthritis", "low_complement", "increased_dna_binding"], 8, 4, f"{WORKED} #1"),
    (["proteinuria", "pyuria", "hematuria", "urinary_casts"], 16, 16, f"{WORKED} #2"),
    (["alopecia"], 2, 2, f"{WORKED} #3 (persistent alopecia counts in 2K)"),
    (["increased_dna_binding"], 2, 0, f"{WORKED} #6"),
    (["proteinuria"], 4, 4, f"{WORKED} #7"),
]


@pytest.mark.parametrize(("descriptors", "total", "clinical", "source"), WORKED_CASES)
def test_worked_cases(descriptors: list[str], total: int, clinical: int, source: str) -> None:
    assert score_sledai2k(descriptors) == total, source
    assert score_clinical_sledai(descriptors) == clinical, source
    result = sledai2k_result(descriptors)
    assert (result.score, result.clinical_score, result.incomplete) == (total, clinical, False)


def test_worked_case_2_proteinuria_from_number() -> None:
    # clinical.md §6.4 #2: proteinuria 0.6 g/24 h counts.
    assert is_proteinuria(0.6)
    renal = [*lab_descriptors(protein_g_per_24h=0.6), "pyuria", "hematuria", "urinary_casts"]
    assert score_sledai2k(renal) == 16


# (days before visit, window, counted, source)
WINDOW_CASES = [
    (15, 10, False, f"{WORKED} #4 (10-day window)"),
    (15, 30, True, f"{WORKED} #4 (30-day window, Touma 2010)"),
    (10, 10, True, "§6.1 'in the preceding 10 days' (edge counts)"),
    (10.5, 10, False, "§6.1 just outside the window"),
    (30, 30, True, "Touma 2010 edge counts"),
    (31, 30, False, "Touma 2010 just outside"),
    (0, 10, True, "present at the visit"),
]


@pytest.mark.parametrize(("days", "window", "counted", "source"), WINDOW_CASES)
def test_window(days: float, window: int, counted: bool, source: str) -> None:
    assert descriptors_in_window({"seizure": days}, window_days=window) == (
        ("seizure",) if counted else ()
    ), source
    result = sledai2k_result([], days_before_visit={"seizure": days}, window_days=window)
    assert result.score == (8 if counted else 0), source
    assert result.window_days == window


def test_result_reasons_and_order() -> None:
    r = sledai2k_result(["fever", "arthritis"], days_before_visit={"seizure": 15})
    assert r.descriptors == ("arthritis", "fever")
    assert any("seizure not counted" in line for line in r.reasons)
    assert r.reasons[-1] == "SLEDAI-2K 5, clinical SLEDAI 5 (10-day window)"


def test_missing_descriptor_makes_result_incomplete() -> None:
    r = sledai2k_result(["arthritis"], not_assessed=["low_complement"])
    assert (r.score, r.clinical_score, r.incomplete) == (None, None, True)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"descriptors": ["seizure"], "days_before_visit": {"seizure": 1}}, "days_before_visit"),
        ({"descriptors": ["seizure"], "not_assessed": ["seizure"]}, "not_assessed"),
        ({"descriptors": [], "window_days": 20}, "window_days"),
    ],
)
def test_result_conflicting_inputs(kwargs: dict, field: str) -> None:
    with pytest.raises(InvalidInput) as err:
        sledai2k_result(**kwargs)
    assert err.value.field == field


@pytest.mark.parametrize(
    "bad", [["seizure", "seizure"], ["Seizure"], ["seizures"], "seizure", [1], None, 8, {"a": 1}]
)
def test_bad_descriptors(bad: object) -> None:
    for fn in (score_sledai2k, score_clinical_sledai):
        with pytest.raises(InvalidInput) as err:
            fn(bad)  # type: ignore[arg-type]
        assert err.value.field == "descriptors"


def test_unknown_word_suggests_allowed_list() -> None:
    with pytest.raises(InvalidInput, match="lupus_headache"):
        score_sledai2k(["headache"])


# (helper, value, kwargs, expected, source) — both sides of each numeric threshold.
LAB_BOUNDARIES = [
    (is_fever, 38.0, {}, False, "§6.1 fever > 38 °C"),
    (is_fever, 38.1, {}, True, "§6.1 fever > 38 °C"),
    (is_fever, 38.5, {"infectious_cause": True}, False, f"{WORKED} #5 pneumonia"),
    (is_thrombocytopenia, 100_000, {}, False, f"{WORKED} #5 platelets 100 ×10⁹/L"),
    (is_thrombocytopenia, 99_000, {}, True, f"{WORKED} #5 platelets 99 ×10⁹/L"),
    (is_thrombocytopenia, 99_000, {"drug_cause": True}, False, "§6.1 exclude drug causes"),
    (is_leukopenia, 3_000, {}, False, "§6.1 leukopenia < 3 ×10⁹/L"),
    (is_leukopenia, 2_999, {}, True, "§6.1 leukopenia < 3 ×10⁹/L"),
    (is_leukopenia, 2_000, {"drug_cause": True}, False, "§6.1 exclude drug causes"),
    (is_proteinuria, 0.5, {}, False, "§6.1 proteinuria > 0.5 g/24 h"),
    (is_proteinuria, 0.51, {}, True, "§6.1 proteinuria > 0.5 g/24 h"),
    (is_hematuria, 5, {}, False, "§6.1 hematuria > 5 RBC/HPF"),
    (is_hematuria, 6, {}, True, "§6.1 hematuria > 5 RBC/HPF"),
    (is_hematuria, 6, {"other_cause": True}, False, "§6.1 exclude stone/infection"),
    (is_pyuria, 5, {}, False, "§6.1 pyuria > 5 WBC/HPF"),
    (is_pyuria, 6, {}, True, "§6.1 pyuria > 5 WBC/HPF"),
    (is_pyuria, 6, {"infection": True}, False, "§6.1 exclude infection"),
    (is_arthritis, 1, {}, False, "§6.1 / §10 default ≥ 2 joints (UNCONFIRMED)"),
    (is_arthritis, 2, {}, True, "§6.1 / §10 default ≥ 2 joints (UNCONFIRMED)"),
    (is_arthritis, 2, {"definition": "more_than_2"}, False, "§10 'more than 2' reading"),
    (is_arthritis, 3, {"definition": "more_than_2"}, True, "§10 'more than 2' reading"),
]


@pytest.mark.parametrize(("helper", "value", "kwargs", "expected", "source"), LAB_BOUNDARIES)
def test_lab_boundaries(helper, value: float, kwargs: dict, expected: bool, source: str) -> None:
    assert helper(value, **kwargs) is expected, source


def test_lab_descriptors_combined() -> None:
    assert lab_descriptors() == ()
    assert lab_descriptors(
        temperature_c=38.6,
        platelets_per_ul=50_000,
        wbc_per_ul=2_000,
        protein_g_per_24h=1.0,
        rbc_per_hpf=10,
        wbc_per_hpf=10,
    ) == ("hematuria", "proteinuria", "pyuria", "fever", "thrombocytopenia", "leukopenia")


@given(
    base=st.sets(st.sampled_from(list(SLEDAI2K_WEIGHTS))),
    extra=st.sampled_from(list(SLEDAI2K_WEIGHTS)),
)
def test_adding_a_descriptor_never_lowers_the_score(base: set[str], extra: str) -> None:
    more = base | {extra}
    assert score_sledai2k(more) >= score_sledai2k(base)
    assert score_clinical_sledai(more) >= score_clinical_sledai(base)
    assert 0 <= score_sledai2k(more) <= 105
