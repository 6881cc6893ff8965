"""MMT8, Kendall 0–10 (IMACS Form 04) — clinical.md §7.2, worked cases §7.3."""

from __future__ import annotations

import pytest

from immunoreset.clinical.mmt8 import (
    BILATERAL_CONFIRMED,
    BILATERAL_KEYS,
    MMT8_GROUPS,
    mmt8_result,
    score_mmt8,
    score_mmt8_bilateral,
)
from immunoreset.errors import InvalidInput

WORKED = "clinical.md §7.3"
CASE5 = {
    "neck_flexors": 8,
    "deltoid": 9,
    "biceps": 10,
    "wrist_extensors": 10,
    "gluteus_maximus": 7,
    "gluteus_medius": 8,
    "quadriceps": 9,
    "ankle_dorsiflexors": 10,
}

# (scores, unilateral expected, source)
UNILATERAL = [
    (CASE5, 71, f"{WORKED} #5"),
    (dict.fromkeys(MMT8_GROUPS, 10), 80, f"{WORKED} #6 (unilateral all 10)"),
    (dict.fromkeys(MMT8_GROUPS, 0), 0, "IMACS Form 04 minimum"),
]


@pytest.mark.parametrize(("scores", "expected", "source"), UNILATERAL)
def test_unilateral(scores: dict[str, int], expected: int, source: str) -> None:
    assert score_mmt8(scores) == expected, source
    assert mmt8_result(scores).score == expected


def test_bilateral_worked_case_6() -> None:
    assert len(BILATERAL_KEYS) == 15
    assert score_mmt8_bilateral(dict.fromkeys(BILATERAL_KEYS, 10)) == 150
    assert score_mmt8_bilateral(dict.fromkeys(BILATERAL_KEYS, 0)) == 0
    assert BILATERAL_CONFIRMED is False
    assert (
        "UNCONFIRMED" in mmt8_result(dict.fromkeys(BILATERAL_KEYS, 10), bilateral=True).reasons[0]
    )


@pytest.mark.parametrize("group", MMT8_GROUPS)
@pytest.mark.parametrize(("value", "ok"), [(-1, False), (0, True), (10, True), (11, False)])
def test_kendall_edges(group: str, value: int, ok: bool) -> None:
    scores = dict.fromkeys(MMT8_GROUPS, 5) | {group: value}
    if ok:
        assert score_mmt8(scores) == 35 + value
    else:
        with pytest.raises(InvalidInput) as err:
            score_mmt8(scores)
        assert err.value.field == "scores"


def test_missing_group() -> None:
    scores = {k: v for k, v in CASE5.items() if k != "deltoid"}
    result = mmt8_result(scores)
    assert (result.score, result.incomplete, result.missing) == (None, True, ("deltoid",))
    with pytest.raises(InvalidInput, match="deltoid"):
        score_mmt8(scores)


@pytest.mark.parametrize(
    "bad",
    [
        CASE5 | {"triceps": 5},
        CASE5 | {"deltoid": 9.5},
        CASE5 | {"deltoid": "9"},
        CASE5 | {"deltoid": True},
        [8] * 8,
        None,
    ],
)
def test_bad_scores(bad: object) -> None:
    with pytest.raises(InvalidInput) as err:
        score_mmt8(bad)  # type: ignore[arg-type]
    assert err.value.field == "scores"


def test_unilateral_keys_refused_by_bilateral_form() -> None:
    with pytest.raises(InvalidInput) as err:
        score_mmt8_bilateral(CASE5)
    assert err.value.field == "scores"
