"""CMAS (Lovell 1999; scoring sheets per clinical.md §7.1) — worked cases §7.3."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from immunoreset.clinical.cmas import (
    CMAS_ITEMS,
    SITUP_TYPES,
    UNCONFIRMED_ITEMS,
    cmas_result,
    cmas_situps_item,
    cmas_time_item,
    score_cmas,
)
from immunoreset.errors import InvalidInput

SHEET = "clinical.md §7.1 (Lovell sheet)"
WORKED = "clinical.md §7.3"
MAXIMA = [top for _, _, top in CMAS_ITEMS]

# (item number, maximum, source)
RANGE_TABLE = [
    (1, 5, SHEET), (2, 2, SHEET), (3, 5, SHEET), (4, 3, f"{SHEET}; 0–3 kept, §10 conflict"),
    (5, 6, SHEET), (6, 3, SHEET), (7, 3, SHEET), (8, 4, f"{SHEET}; not 0–5"),
    (9, 3, "inferred (UNCONFIRMED)"), (10, 4, "inferred (UNCONFIRMED)"),
    (11, 4, "inferred (UNCONFIRMED)"), (12, 4, "inferred (UNCONFIRMED)"),
    (13, 3, "inferred (UNCONFIRMED)"), (14, 3, "inferred (UNCONFIRMED)"),
]  # fmt: skip


@pytest.mark.parametrize(("number", "top", "source"), RANGE_TABLE)
def test_item_ranges_both_edges(number: int, top: int, source: str) -> None:
    assert CMAS_ITEMS[number - 1][0] == number
    items = [0] * 14
    items[number - 1] = top
    assert score_cmas(items) == top, source
    items[number - 1] = top + 1
    with pytest.raises(InvalidInput) as err:
        score_cmas(items)
    assert err.value.field == "items"
    assert f"item {number} " in str(err.value)
    items[number - 1] = -1
    with pytest.raises(InvalidInput):
        score_cmas(items)


def test_worked_case_1_all_max_is_52() -> None:
    assert score_cmas(MAXIMA) == 52
    assert score_cmas([0] * 14) == 0
    assert frozenset(range(9, 15)) == UNCONFIRMED_ITEMS


# (seconds, item, expected, source)
TIME_CASES = [
    (119, 1, 4, f"{WORKED} #2"),
    (120, 1, 5, f"{WORKED} #2"),
    (9, 1, 1, f"{WORKED} #2"),
    (0, 1, 0, f"{WORKED} #2"),
    (0.9, 1, 0, f"{SHEET} below 1 s = unable"),
    (1, 1, 1, f"{SHEET} 1–9 s"),
    (9.9, 1, 1, f"{SHEET} 1–9 s (half-open band)"),
    (10, 1, 2, f"{SHEET} 10–29 s"),
    (29, 1, 2, f"{SHEET} 10–29 s"),
    (30, 1, 3, f"{SHEET} 30–59 s"),
    (59, 1, 3, f"{SHEET} 30–59 s"),
    (60, 1, 4, f"{SHEET} 60–119 s"),
    (3600, 1, 5, f"{SHEET} ≥ 120 s"),
    (119, 3, 4, f"{SHEET} item 3 same bands"),
    (120, 3, 5, f"{SHEET} item 3 same bands"),
    (0, 8, 0, f"{SHEET} item 8"),
    (1, 8, 1, f"{SHEET} item 8 1–9 s"),
    (10, 8, 2, f"{SHEET} item 8 10–29 s"),
    (30, 8, 3, f"{SHEET} item 8 30–59 s"),
    (59, 8, 3, f"{SHEET} item 8 30–59 s"),
    (60, 8, 4, f"{SHEET} item 8 ≥ 60 s"),
    (300, 8, 4, f"{SHEET} item 8 max 4"),
]


@pytest.mark.parametrize(("seconds", "item", "expected", "source"), TIME_CASES)
def test_timed_items(seconds: float, item: int, expected: int, source: str) -> None:
    assert cmas_time_item(seconds, item=item) == expected, source


def test_worked_case_3_situps() -> None:
    assert cmas_situps_item(SITUP_TYPES[:4]) == 4
    assert cmas_situps_item([]) == 0
    assert cmas_situps_item(SITUP_TYPES) == 6


def test_worked_case_4_missing_item_gives_null() -> None:
    items: list[int | None] = list(MAXIMA)
    items[9] = None  # item 10, all-fours, not done
    result = cmas_result(items)
    assert (result.score, result.incomplete, result.missing) == (None, True, (10,))
    with pytest.raises(InvalidInput) as err:
        score_cmas(items)  # type: ignore[arg-type]
    assert err.value.field == "items"


def test_result_flags_unconfirmed_items() -> None:
    full = cmas_result(MAXIMA)
    assert (full.score, full.incomplete) == (52, False)
    assert any("UNCONFIRMED" in line for line in full.reasons)
    only_confirmed = cmas_result([*MAXIMA[:8], 0, 0, 0, 0, 0, 0])
    assert only_confirmed.score == 31
    assert not any("UNCONFIRMED" in line for line in only_confirmed.reasons)


@pytest.mark.parametrize("bad", [MAXIMA[:13], [*MAXIMA, 0], "55555", None, {"a": 1}, 52])
def test_bad_shapes(bad: object) -> None:
    with pytest.raises(InvalidInput) as err:
        score_cmas(bad)  # type: ignore[arg-type]
    assert err.value.field == "items"


@given(
    items=st.tuples(*(st.integers(0, top) for top in MAXIMA)),
    index=st.integers(0, 13),
    drop=st.integers(1, 6),
)
def test_worse_item_never_raises_cmas(items: tuple[int, ...], index: int, drop: int) -> None:
    worse = list(items)
    worse[index] = max(0, worse[index] - drop)
    assert score_cmas(worse) <= score_cmas(list(items))
    assert 0 <= score_cmas(worse) <= 52
