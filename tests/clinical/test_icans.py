"""ICANS, ICE and CAPD (ASTCT 2019, Lee et al.; pediatric table via MDedge/NCIt; spec §2)."""

from __future__ import annotations

import numpy as np
import pytest

from immunoreset import vocab
from immunoreset.clinical.icans import (
    compute_capd,
    compute_ice,
    grade_icans,
    grade_icans_array,
)
from immunoreset.clinical.settings import ToxicitySettings
from immunoreset.errors import InvalidInput

SPEC = "clinical.md §2.4"
TABLE = "clinical.md §2.3 (Lee 2019 ICANS table)"

WORKED = [
    (dict(age_years=40, ice_score=8, consciousness="awakens_spontaneously"), 1, f"{SPEC} #1"),
    (dict(age_years=40, ice_score=10, seizure="resolved"), 3, f"{SPEC} #2"),
    (dict(age_years=40, ice_score=3, seizure="resolved"), 3, f"{SPEC} #2: ASTCT example"),
    (dict(age_years=40, ice_score=0), 3, f"{SPEC} #3: awake, global aphasia"),
    (
        dict(age_years=40, ice_score=0, unable_to_assess=True, consciousness="unarousable"),
        4,
        f"{SPEC} #3: unarousable",
    ),
    (dict(age_years=8, capd_score=10, consciousness="awakens_spontaneously"), 3, f"{SPEC} #4"),
    (dict(age_years=6, capd_score=6, consciousness="awakens_to_voice"), 2, f"{SPEC} #5"),
    (dict(age_years=10, unable_to_assess=True, consciousness="unarousable"), 4, f"{SPEC} #6"),
    (dict(age_years=12.0, ice_score=9), 1, f"{SPEC} #7: ICE from 12.0"),
    (dict(age_years=40, ice_score=10, cerebral_edema="none"), 0, f"{SPEC} #8: ICH excluded"),
]
ICE_BOUNDARIES = [
    (10, 0), (9, 1), (7, 1), (6, 2), (3, 2), (2, 3), (0, 3),
]  # fmt: skip
CAPD_BOUNDARIES = [(0, 0), (1, 1), (8, 1), (9, 3), (32, 3)]
DOMAINS = [
    (dict(consciousness="awakens_spontaneously"), 1),
    (dict(consciousness="awakens_to_voice"), 2),
    (dict(consciousness="awakens_to_touch"), 3),
    (dict(consciousness="unarousable"), 4),
    (dict(seizure="prolonged_or_repetitive"), 4),
    (dict(motor_weakness=True), 4),
    (dict(cerebral_edema="focal"), 3),
    (dict(cerebral_edema="diffuse"), 4),
    (dict(died_of_icans=True), 5),
]


@pytest.mark.parametrize(("kwargs", "expected", "source"), WORKED, ids=[c[2] for c in WORKED])
def test_worked_cases(kwargs: dict, expected: int, source: str) -> None:
    result = grade_icans(**kwargs)
    assert result.grade == expected, source
    assert result.reasons


@pytest.mark.parametrize(("ice", "expected"), ICE_BOUNDARIES)
def test_ice_boundaries(ice: int, expected: int) -> None:
    assert grade_icans(age_years=30, ice_score=ice).grade == expected, TABLE


@pytest.mark.parametrize(("capd", "expected"), CAPD_BOUNDARIES)
def test_capd_boundaries(capd: int, expected: int) -> None:
    """CAPD 1–8 → 1 and ≥ 9 → 3, never 2 (clinical.md §0 item 1)."""
    assert grade_icans(age_years=5, capd_score=capd).grade == expected, TABLE


@pytest.mark.parametrize(("kwargs", "expected"), DOMAINS)
def test_other_domains(kwargs: dict, expected: int) -> None:
    assert grade_icans(age_years=30, ice_score=10, **kwargs).grade == expected, TABLE


def test_age_cut_both_sides_and_ncit_setting() -> None:
    with pytest.raises(InvalidInput) as err:
        grade_icans(age_years=11.9, ice_score=9)
    assert err.value.field == "ice_score"
    assert grade_icans(age_years=11.9, capd_score=4).grade == 1
    assert grade_icans(age_years=12.0, ice_score=9).instrument == "ice"
    assert "age_12_ambiguous" in grade_icans(age_years=12.0, ice_score=9).flags
    assert "age_12_ambiguous" not in grade_icans(age_years=11.9, capd_score=4).flags
    ncit = ToxicitySettings(capd_age_rule="ncit_12_and_under")
    with pytest.raises(InvalidInput):
        grade_icans(age_years=12.5, ice_score=9, settings=ncit)
    assert grade_icans(age_years=13.0, ice_score=9, settings=ncit).grade == 1


def test_capd_accepted_at_any_age_for_developmental_delay() -> None:
    result = grade_icans(age_years=25, capd_score=12)
    assert (result.grade, result.instrument) == (3, "capd")


def test_unassessed_encephalopathy_is_flagged() -> None:
    result = grade_icans(age_years=30, consciousness="awakens_to_voice")
    assert result.grade == 2
    assert "encephalopathy_not_assessed" in result.flags


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        (dict(age_years=30, ice_score=9, capd_score=3), "capd_score"),
        (dict(age_years=30, ice_score=5, unable_to_assess=True), "ice_score"),
        (dict(age_years=8, capd_score=5, unable_to_assess=True), "capd_score"),
    ],
)
def test_contradictions_refused(kwargs: dict, field: str) -> None:
    with pytest.raises(InvalidInput) as err:
        grade_icans(**kwargs)
    assert err.value.field == field


ICE_ITEMS_CASES = [
    (dict(orientation=3, naming=3, following_commands=1, writing=0, attention=1), 8, f"{SPEC} #1"),
    (dict(orientation=4, naming=3, following_commands=1, writing=1, attention=1), 10, "§2.1 max"),
    (dict(orientation=0, naming=0, following_commands=0, writing=0, attention=0), 0, "§2.1 min"),
    (dict(orientation=None, naming=3, following_commands=1, writing=1, attention=1), None, "§0"),
]


@pytest.mark.parametrize(("kwargs", "expected", "source"), ICE_ITEMS_CASES)
def test_compute_ice(kwargs: dict, expected: int | None, source: str) -> None:
    assert compute_ice(**kwargs) == expected, source


@pytest.mark.parametrize(
    ("items", "expected", "source"),
    [
        ([2, 1, 1, 2, 1, 0, 2, 1], 10, f"{SPEC} #4"),
        ([0] * 8, 0, "§2.2 min"),
        ([4] * 8, 32, "§2.2 max"),
        ([1, 1, 1, 1, 1, 1, 1, 1], 8, "§2.2"),
        ([1, 1, 1, 1, 1, 1, 1, None], None, "clinical.md missing-data rule"),
    ],
)
def test_compute_capd(items: list, expected: int | None, source: str) -> None:
    assert compute_capd(items) == expected, source


def test_array_equals_scalar_on_random_inputs() -> None:
    rng = np.random.default_rng(7)
    n = 3000
    age = rng.choice([3.0, 8.0, 11.9, 12.0, 12.5, 30.0, 70.0], n)
    scale = rng.integers(0, 3, n)  # 0 none, 1 ICE/CAPD by age, 2 CAPD (any age)
    unable = rng.random(n) < 0.1
    ice = np.where((scale == 1) & (age >= 12), rng.integers(0, 11, n), np.nan)
    capd = np.where(((scale == 1) & (age < 12)) | (scale == 2), rng.integers(0, 33, n), np.nan)
    ice = np.where(unable, np.where(np.isnan(ice), np.nan, 0), ice)
    capd = np.where(unable, np.nan, capd)
    cons = rng.integers(0, len(vocab.CONSCIOUSNESS), n)
    cons = np.where(unable & (cons == 0), len(vocab.CONSCIOUSNESS) - 1, cons)  # not "awake"
    seiz = rng.integers(0, len(vocab.SEIZURE), n)
    motor = rng.random(n) < 0.05
    edema = rng.integers(0, len(vocab.CEREBRAL_EDEMA), n)
    died = rng.random(n) < 0.02
    grades = grade_icans_array(
        age_years=age,
        ice_score=ice,
        capd_score=capd,
        unable_to_assess=unable,
        consciousness=cons,
        seizure=seiz,
        motor_weakness=motor,
        cerebral_edema=edema,
        died_of_icans=died,
    )
    for i in range(n):
        expected = grade_icans(
            age_years=float(age[i]),
            ice_score=None if np.isnan(ice[i]) else int(ice[i]),
            capd_score=None if np.isnan(capd[i]) else int(capd[i]),
            unable_to_assess=bool(unable[i]),
            consciousness=vocab.CONSCIOUSNESS[cons[i]],
            seizure=vocab.SEIZURE[seiz[i]],
            motor_weakness=bool(motor[i]),
            cerebral_edema=vocab.CEREBRAL_EDEMA[edema[i]],
            died_of_icans=bool(died[i]),
        ).grade
        assert grades[i] == expected, i


def test_array_refuses_ice_below_age_cut() -> None:
    with pytest.raises(InvalidInput) as err:
        grade_icans_array(
            age_years=[8.0],
            ice_score=[9.0],
            capd_score=[np.nan],
            unable_to_assess=[False],
            consciousness=[0],
            seizure=[0],
            motor_weakness=[False],
            cerebral_edema=[0],
        )
    assert err.value.field == "ice_score"


# ------------------------------------------------------------ CAPD answers (issue #12, item 7)
def test_traube_2014_capd_items_1_to_4_are_reverse_scored() -> None:
    """Traube 2014 / CHOP CAPD: items 1–4 Never 4 … Always 0; items 5–8 Never 0 … Always 4."""
    from immunoreset.clinical.icans import (
        CAPD_ANSWERS,
        CAPD_ITEMS,
        score_capd_answers,
        score_capd_item,
    )

    calm = dict.fromkeys(CAPD_ITEMS[:4], "Always") | dict.fromkeys(CAPD_ITEMS[4:], "Never")
    assert score_capd_answers(calm) == 0  # not 16
    delirious = dict.fromkeys(CAPD_ITEMS[:4], "never") | dict.fromkeys(CAPD_ITEMS[4:], "always")
    assert score_capd_answers(delirious) == 32
    assert [score_capd_item("eye_contact", a) for a in CAPD_ANSWERS] == [4, 3, 2, 1, 0]
    assert [score_capd_item("slow_to_respond", a) for a in CAPD_ANSWERS] == [0, 1, 2, 3, 4]
    # clinical.md §2.4 #4: scored items (2,1,1,2,1,0,2,1) = 10 from the form's answers
    answers = dict(
        zip(
            CAPD_ITEMS,
            ["sometimes", "often", "often", "sometimes", "rarely", "never", "sometimes", "rarely"],
            strict=True,
        )
    )
    assert score_capd_answers(answers) == 10
    assert score_capd_answers(answers | {"restless": None}) is None


def test_lee_2019_unable_to_assess_while_awake_is_refused() -> None:
    with pytest.raises(InvalidInput) as info:
        grade_icans(age_years=8, unable_to_assess=True, consciousness="awake")
    assert info.value.field == "unable_to_assess"


def test_lee_2019_icans_not_assessed_is_flagged_incomplete() -> None:
    result = grade_icans(age_years=30)
    assert result.grade == 0 and "incomplete" in result.flags
