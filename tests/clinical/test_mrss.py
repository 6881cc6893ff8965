"""Modified Rodnan skin score (Clements 1993) — clinical.md §9.1, worked cases §9.3."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from immunoreset.clinical.mrss import MRSS_SITES, mrss_result, score_mrss
from immunoreset.errors import InvalidInput

WORKED = "clinical.md §9.3"
ZERO = dict.fromkeys(MRSS_SITES, 0)

# (sites, expected, source)
CASES = [
    (ZERO, 0, f"{WORKED} #1 all 0"),
    (dict.fromkeys(MRSS_SITES, 3), 51, f"{WORKED} #1 all 3"),
    (
        ZERO
        | {
            "right_fingers": 2,
            "left_fingers": 2,
            "right_hands": 1,
            "left_hands": 1,
            "right_forearms": 1,
            "left_forearms": 1,
            "face": 1,
        },
        9,
        f"{WORKED} #2",
    ),
]


@pytest.mark.parametrize(("sites", "expected", "source"), CASES)
def test_worked_cases(sites: dict[str, int], expected: int, source: str) -> None:
    assert score_mrss(sites) == expected, source
    assert mrss_result(sites).score == expected


def test_seventeen_sites() -> None:
    assert len(MRSS_SITES) == 17 and len(set(MRSS_SITES)) == 17


@pytest.mark.parametrize("site", MRSS_SITES)
@pytest.mark.parametrize(("value", "ok"), [(-1, False), (0, True), (3, True), (4, False)])
def test_site_edges(site: str, value: int, ok: bool) -> None:
    sites = ZERO | {site: value}
    if ok:
        assert score_mrss(sites) == value
    else:
        with pytest.raises(InvalidInput) as err:
            score_mrss(sites)
        assert err.value.field == "sites"


def test_all_17_required() -> None:
    sites = {k: v for k, v in ZERO.items() if k != "abdomen"}
    result = mrss_result(sites)
    assert (result.score, result.incomplete, result.missing) == (None, True, ("abdomen",))
    with pytest.raises(InvalidInput, match="abdomen"):
        score_mrss(sites)


@pytest.mark.parametrize(
    "bad",
    [
        ZERO | {"back": 1},
        ZERO | {"face": 1.5},
        ZERO | {"face": "1"},
        ZERO | {"face": True},
        [0] * 17,
    ],
)
def test_bad_sites(bad: object) -> None:
    with pytest.raises(InvalidInput) as err:
        score_mrss(bad)  # type: ignore[arg-type]
    assert err.value.field == "sites"


@given(
    sites=st.fixed_dictionaries(dict.fromkeys(MRSS_SITES, st.integers(0, 3))),
    site=st.sampled_from(MRSS_SITES),
    rise=st.integers(1, 3),
)
def test_worse_site_never_lowers_mrss(sites: dict[str, int], site: str, rise: int) -> None:
    worse = sites | {site: min(3, sites[site] + rise)}
    assert score_mrss(worse) >= score_mrss(sites)
