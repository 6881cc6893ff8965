"""CRS grading (ASTCT 2019, Lee et al.; spec clinical.md §1) and hypotension (Mahadeo 2019)."""

from __future__ import annotations

import numpy as np
import pytest

from immunoreset import vocab
from immunoreset.clinical.crs import (
    OXYGEN_DEVICE_CODES,
    grade_crs,
    grade_crs_array,
    is_hypotensive,
)
from immunoreset.clinical.settings import ToxicitySettings
from immunoreset.errors import InvalidInput

SPEC = "clinical.md §1.4"
BOUNDARY = "clinical.md §1.1–1.2 (Lee 2019 Table 1)"

CASES = [
    # (kwargs, expected grade, source)
    (dict(temperature_c=38.0), 1, f"{SPEC} #1: 38.0 inclusive"),
    (dict(temperature_c=37.9), 0, f"{SPEC} #2"),
    (
        dict(
            temperature_c=39.5,
            vasopressors=["norepinephrine"],
            oxygen_device="nasal_cannula",
            oxygen_flow_l_min=2,
        ),
        3,
        f"{SPEC} #3",
    ),
    (
        dict(temperature_c=38.6, oxygen_device="nasal_cannula", oxygen_flow_l_min=6),
        2,
        f"{SPEC} #4: 6 L/min low-flow",
    ),
    (
        dict(temperature_c=38.6, oxygen_device="nasal_cannula", oxygen_flow_l_min=6.5),
        3,
        f"{SPEC} #4: 6.5 L/min high-flow",
    ),
    (
        dict(temperature_c=37.2, vasopressors=["norepinephrine", "vasopressin"], fever_masked=True),
        3,
        f"{SPEC} #5: vasopressin not counted",
    ),
    (
        dict(
            temperature_c=37.2, vasopressors=["norepinephrine", "phenylephrine"], fever_masked=True
        ),
        4,
        f"{SPEC} #5: two vasopressors",
    ),
    (dict(temperature_c=38.3, oxygen_device="blow_by"), 2, f"{SPEC} #6: child, blow-by"),
    (dict(temperature_c=38.5, oxygen_device="bipap"), 4, f"{SPEC} #7"),
    (dict(temperature_c=38.5, oxygen_device="bipap", died_of_crs=True), 5, f"{SPEC} #7: death"),
    # boundaries and domains
    (dict(temperature_c=37.9, hypotension=True), 0, f"{BOUNDARY}: no fever → no CRS"),
    (dict(temperature_c=None, oxygen_device="cpap"), None, f"{BOUNDARY}: not measured"),
    (dict(temperature_c=None, fever_masked=True), 1, f"{BOUNDARY}: masked fever"),
    (dict(temperature_c=38.0, hypotension=True), 2, f"{BOUNDARY}: hypotension no pressor"),
    (dict(temperature_c=38.0, vasopressors=["vasopressin"]), 3, f"{BOUNDARY}: vasopressin alone"),
    (
        dict(temperature_c=38.0, vasopressors=["norepinephrine", "norepinephrine"]),
        3,
        f"{BOUNDARY}: the same drug twice is one vasopressor",
    ),
    (
        dict(temperature_c=38.0, vasopressors=["epinephrine", "dopamine", "vasopressin"]),
        4,
        f"{BOUNDARY}: multiple",
    ),
    (dict(temperature_c=38.0, oxygen_device="high_flow_nasal_cannula"), 3, BOUNDARY),
    (dict(temperature_c=38.0, oxygen_device="face_mask"), 3, BOUNDARY),
    (dict(temperature_c=38.0, oxygen_device="non_rebreather"), 3, BOUNDARY),
    (dict(temperature_c=38.0, oxygen_device="venturi"), 3, BOUNDARY),
    (dict(temperature_c=38.0, oxygen_device="cpap"), 4, BOUNDARY),
    (dict(temperature_c=38.0, oxygen_device="mechanical_ventilation"), 4, BOUNDARY),
    (dict(temperature_c=25.0, died_of_crs=True), 5, f"{BOUNDARY}: grade 5"),
]


@pytest.mark.parametrize(("kwargs", "expected", "source"), CASES, ids=[c[2] for c in CASES])
def test_grade_crs(kwargs: dict, expected: int, source: str) -> None:
    result = grade_crs(**kwargs)
    assert result.grade == expected, source
    assert result.reasons and all(isinstance(r, str) for r in result.reasons)


def test_reasons_name_the_deciding_domain() -> None:
    result = grade_crs(
        temperature_c=39.5,
        vasopressors=["norepinephrine"],
        oxygen_device="nasal_cannula",
        oxygen_flow_l_min=2,
    )
    assert result.reasons[0].startswith("fever 39.5")
    assert any("one vasopressor" in r for r in result.reasons)
    assert not any("nasal cannula" in r for r in result.reasons)
    assert (result.hypotension_grade, result.hypoxia_grade) == (3, 2)


HYPOTENSION = [
    # (sbp, age, expected, source)
    (84, 4, False, "clinical.md §1.4 #6: threshold 70 + 8 = 78"),
    (78, 4, False, "Mahadeo 2019: SBP < threshold, 78 is not < 78"),
    (77, 4, True, "Mahadeo 2019"),
    (71, 1, True, "Mahadeo 2019: age 1 threshold 72"),
    (72, 1, False, "Mahadeo 2019: age 1 threshold 72"),
    (77, 4.9, True, "completed years: 4.9 → 78"),
    (89, 10, True, "Mahadeo 2019: age 10 threshold 90"),
    (90, 10.5, False, "Mahadeo 2019: > 10 y threshold 90"),
    (89, 11, True, "Mahadeo 2019: > 10 y"),
    (89.9, 45, True, "PMC8021214 Table 1: adult SBP < 90"),
    (90, 45, False, "PMC8021214 Table 1: adult SBP < 90"),
]


@pytest.mark.parametrize(("sbp", "age", "expected", "source"), HYPOTENSION)
def test_is_hypotensive(sbp: float, age: float, expected: bool, source: str) -> None:
    assert is_hypotensive(systolic_bp_mmhg=sbp, age_years=age) is expected, source


def test_infant_threshold_is_a_documented_setting() -> None:
    with pytest.raises(InvalidInput) as err:
        is_hypotensive(systolic_bp_mmhg=65, age_years=0.5)
    assert err.value.field == "age_years"
    use_70 = ToxicitySettings(hypotension_under_1_year="use_70")
    assert is_hypotensive(systolic_bp_mmhg=69, age_years=0.5, settings=use_70) is True
    assert is_hypotensive(systolic_bp_mmhg=70, age_years=0.5, settings=use_70) is False


def test_nasal_cannula_requires_flow() -> None:
    with pytest.raises(InvalidInput) as err:
        grade_crs(temperature_c=38.5, oxygen_device="nasal_cannula")
    assert err.value.field == "oxygen_flow_l_min"


def test_array_equals_scalar_on_random_inputs() -> None:
    rng = np.random.default_rng(20240501)
    n = 3000
    temp = rng.choice([np.nan, 37.0, 37.9, 38.0, 38.5, 40.0], n)
    hypo = rng.random(n) < 0.3
    pressors = [
        tuple(rng.choice(vocab.VASOPRESSORS, rng.integers(0, 4), replace=False)) for _ in range(n)
    ]
    device = rng.integers(0, len(vocab.OXYGEN_DEVICES), n)
    flow = rng.choice([np.nan, 0.5, 6.0, 6.5, 15.0], n)
    flow = np.where(
        device == OXYGEN_DEVICE_CODES["nasal_cannula"], np.nan_to_num(flow, nan=2), flow
    )
    flow = np.where(device == OXYGEN_DEVICE_CODES["room_air"], np.nan, flow)
    masked = rng.random(n) < 0.2
    died = rng.random(n) < 0.02
    grades = grade_crs_array(
        temperature_c=temp,
        hypotension=hypo,
        n_vasopressors=np.array([len(set(p) - {"vasopressin", "dobutamine"}) for p in pressors]),
        vasopressin=np.array(["vasopressin" in p for p in pressors]),
        # dobutamine is not counted (setting off): it neither counts nor implies hypotension
        oxygen_device=device,
        oxygen_flow_l_min=flow,
        fever_masked=masked,
        died_of_crs=died,
    )
    for i in range(n):
        expected = grade_crs(
            temperature_c=None if np.isnan(temp[i]) else float(temp[i]),
            hypotension=bool(hypo[i]),
            vasopressors=list(pressors[i]),
            oxygen_device=vocab.OXYGEN_DEVICES[device[i]],
            oxygen_flow_l_min=None if np.isnan(flow[i]) else float(flow[i]),
            fever_masked=bool(masked[i]),
            died_of_crs=bool(died[i]),
        ).grade
        assert grades[i] == (-1 if expected is None else expected), i


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        (dict(temperature_c=[55.0]), "temperature_c"),
        (dict(hypotension=[1]), "hypotension"),
        (dict(oxygen_device=[99]), "oxygen_device"),
        (dict(oxygen_device=[OXYGEN_DEVICE_CODES["nasal_cannula"]]), "oxygen_flow_l_min"),
        (dict(n_vasopressors=[1, 2]), "n_vasopressors"),
    ],
)
def test_array_refuses_bad_input(kwargs: dict, field: str) -> None:
    base = dict(
        temperature_c=[38.0],
        hypotension=[False],
        n_vasopressors=[0],
        vasopressin=[False],
        oxygen_device=[0],
        oxygen_flow_l_min=[np.nan],
    )
    with pytest.raises(InvalidInput) as err:
        grade_crs_array(**{**base, **kwargs})
    assert err.value.field == field


# ------------------------------------------------------------ issue #12 corrections
HYPOXIA_BY_FLOW = [
    # (device, flow, expected grade, source)
    ("high_flow_nasal_cannula", 4.0, 2, "Lee 2019 Table 1: high-flow is > 6 L/min"),
    ("high_flow_nasal_cannula", 6.0, 2, "Lee 2019: ≤ 6 L/min is low-flow"),
    ("high_flow_nasal_cannula", 6.1, 3, "Lee 2019: > 6 L/min is high-flow"),
    ("high_flow_nasal_cannula", None, 3, "Lee 2019: high-flow device, no flow recorded"),
    ("nasal_cannula", 6.0, 2, "Lee 2019"),
    ("nasal_cannula", 6.1, 3, "Lee 2019"),
    ("room_air", 0.0, 1, "Lee 2019: room air, 0 L/min is consistent"),
]


@pytest.mark.parametrize(
    ("device", "flow", "expected", "source"), HYPOXIA_BY_FLOW, ids=[str(c) for c in HYPOXIA_BY_FLOW]
)
def test_lee_2019_hypoxia_graded_by_flow(device, flow, expected, source) -> None:
    result = grade_crs(temperature_c=38.5, oxygen_device=device, oxygen_flow_l_min=flow)
    assert result.grade == expected, source


@pytest.mark.parametrize(
    ("device", "flow"),
    [("room_air", 2.0), ("nasal_cannula", 0.0), ("high_flow_nasal_cannula", 0.0)],
)
def test_lee_2019_contradictory_oxygen_records_are_refused(device, flow) -> None:
    with pytest.raises(InvalidInput) as info:
        grade_crs(temperature_c=38.5, oxygen_device=device, oxygen_flow_l_min=flow)
    assert info.value.field == "oxygen_flow_l_min"


@pytest.mark.parametrize(
    ("kwargs", "span"),
    [
        (dict(oxygen_device="bipap"), "0 or 4"),
        (dict(vasopressors=["norepinephrine"]), "0 or 3"),
        (dict(), "0 or 1"),
    ],
)
def test_lee_2019_missing_temperature_is_not_gradable(kwargs, span) -> None:
    """Lee 2019: fever (≥ 38.0 °C) is required; without a temperature the day is not gradable."""
    result = grade_crs(temperature_c=None, **kwargs)
    assert result.grade is None
    assert {"not_gradable", "incomplete", "temperature_missing"} <= set(result.flags)
    assert span in result.reasons[0]
    assert grade_crs(temperature_c=None, fever_masked=True, **kwargs).grade is not None


def test_lee_2019_dobutamine_is_an_inotrope_not_a_vasopressor() -> None:
    """Lee 2019 counts vasopressors; dobutamine (inotrope) counts only by setting."""
    one = grade_crs(temperature_c=38.5, vasopressors=["norepinephrine", "dobutamine"])
    assert one.grade == 3 and "dobutamine_not_counted" in one.flags
    assert grade_crs(temperature_c=38.5, vasopressors=["dobutamine"]).grade == 1
    counted = ToxicitySettings(count_dobutamine_as_vasopressor=True)
    assert (
        grade_crs(
            temperature_c=38.5, vasopressors=["norepinephrine", "dobutamine"], settings=counted
        ).grade
        == 4
    )


NEONATE = [
    # (SBP, age in days, expected, source)
    (59, 0, True, "PALS: neonate SBP < 60"),
    (60, 28, False, "PALS: neonate 0–28 days, 60 not < 60"),
    (59, 28, True, "PALS: day 28 is still neonatal"),
    (65, 29, True, "PALS: infant from day 29, SBP < 70"),
    (70, 29, False, "PALS: infant 70 not < 70"),
]


@pytest.mark.parametrize(
    ("sbp", "days", "expected", "source"), NEONATE, ids=[n[3] for n in NEONATE]
)
def test_pals_neonatal_threshold_with_infant_setting(sbp, days, expected, source) -> None:
    infant = ToxicitySettings(hypotension_under_1_year="use_70")
    age = days / 365.25
    assert is_hypotensive(systolic_bp_mmhg=sbp, age_years=age, settings=infant) is expected, source
    with pytest.raises(InvalidInput):
        is_hypotensive(systolic_bp_mmhg=sbp, age_years=age)  # default setting refuses
