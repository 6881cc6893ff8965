"""IgG after CAR T (Mayo age table; Hill 2019; AAAAI 2022; clinical-addendum.md §4)."""

from __future__ import annotations

import pytest

from immunoreset.clinical.igg import (
    IggSettings,
    igg_lln,
    ivig_episodes,
    replacement_trigger,
    summarise_igg,
)

SPEC = "clinical-addendum §4"
MAYO = "Mayo Clinic Laboratories IgG table"

LLN = [
    (0.0, 100), (5 / 12 - 1e-9, 100), (5 / 12, 164), (9 / 12, 246), (15 / 12, 313), (1.99, 313),
    (2.0, 295), (3.99, 295), (4.0, 386), (6.99, 386), (7.0, 462), (10.0, 503), (13.0, 509),
    (16.0, 487), (17.99, 487), (18.0, 767), (80.0, 767),
]  # fmt: skip


@pytest.mark.parametrize(("age", "lln"), LLN, ids=[f"{a:.4f} y" for a, _ in LLN])
def test_mayo_age_bands_both_sides(age: float, lln: float) -> None:
    assert igg_lln(age) == (lln, "fallback_mayo"), MAYO


def test_case_1_three_year_old_300() -> None:
    """§4 #1: 3 y, IgG 300 (LLN 295): not below LLN; hill_2019 trigger true (≤ 400)."""
    s = summarise_igg([30], [300], age_years=[3.0])
    assert s.below_lln == (False,) and s.lln_mg_dl == (295.0,)
    hill = IggSettings(trigger_rule="hill_2019")
    assert replacement_trigger(300, settings=hill).triggered


TRIGGERS = [
    (399.9, "threshold", False, False, True, "common trigger < 400"),
    (400, "threshold", False, False, False, "400 is not < 400"),
    (400, "hill_2019", True, False, True, f"{SPEC} #2: Hill ≤ 400"),
    (400, "aaaai_2022", True, False, False, f"{SPEC} #2: AAAAI needs < 400"),
    (399, "aaaai_2022", True, False, True, "AAAAI < 400 + recurrent infections"),
    (399, "aaaai_2022", False, False, False, "AAAAI < 400 without infections"),
    (149, "aaaai_2022", False, False, True, "AAAAI < 150"),
    (150, "aaaai_2022", False, False, False, "AAAAI 150 not < 150"),
    (600, "hill_2019", True, True, True, "Hill 400–600 with serious infections"),
    (601, "hill_2019", True, True, False, "Hill above 600"),
    (401, "hill_2019", False, False, False, "Hill 401 without serious infections"),
]


@pytest.mark.parametrize(
    ("igg", "rule", "recurrent", "serious", "expected", "source"),
    TRIGGERS,
    ids=[t[5] for t in TRIGGERS],
)
def test_replacement_triggers(igg, rule, recurrent, serious, expected, source) -> None:
    r = replacement_trigger(
        igg, recurrent_infections=recurrent, serious_infections=serious,
        settings=IggSettings(trigger_rule=rule),
    )  # fmt: skip
    assert r.triggered is expected, source
    assert r.reasons


def test_trigger_threshold_is_a_setting() -> None:
    assert replacement_trigger(450, settings=IggSettings(trigger_below_mg_dl=500)).triggered


def test_case_3_time_below_lln_locf_and_linear() -> None:
    """§4 #3: 5 y (LLN 386): day 30 = 350, 60 = 250, 90 = 500 → locf 60, linear 46.3 days."""
    args = ([30, 60, 90], [350, 250, 500])
    locf = summarise_igg(*args, age_years=[5.0, 5.1, 5.2])
    assert (locf.days_below_lln, locf.observed_days, locf.recovery_day) == (60.0, 60.0, 90)
    assert locf.fraction_below == 1.0
    linear = summarise_igg(*args, age_years=[5.0, 5.1, 5.2], settings=IggSettings(method="linear"))
    assert linear.days_below_lln == pytest.approx(30 + 30 * 136 / 250)  # crossing day 76.32
    assert round(linear.days_below_lln, 1) == 46.3


def test_case_4_lln_follows_age_at_each_sample() -> None:
    """§4 #4: a child turns 7 between samples, IgG 420: LLN 386 → 462: not below → below."""
    s = summarise_igg([30, 90], [420, 420], age_years=[6.9, 7.05])
    assert s.lln_mg_dl == (386.0, 462.0) and s.below_lln == (False, True)


def test_lab_lln_wins_over_the_fallback() -> None:
    s = summarise_igg([30, 60], [500, 500], age_years=[30, 30], lln_mg_dl=[600, 600])
    assert s.lln_source == "lab" and s.below_lln == (True, True) and "lln_fallback" not in s.flags


def test_replacement_exclusion_and_ivig_episodes() -> None:
    """8 weeks after a dose the level reflects the infusion: excluded, flagged."""
    s = summarise_igg([30, 45, 90, 150], [300, 900, 700, 350], age_years=[10.0] * 4, ivig_days=[40])
    assert s.on_replacement == (False, True, True, False)
    assert s.recovery_day is None  # 900 and 700 are on replacement
    assert s.days_below_lln == 15  # day 30–45 only; intervals from days 45 and 90 excluded
    assert s.trigger_days == (30, 150)
    assert [(e.first_day, e.last_day, e.doses) for e in s.ivig] == [(40, 40, 1)]
    eps = ivig_episodes([30, 72, 115, 300])
    assert [(e.first_day, e.last_day, e.doses) for e in eps] == [(30, 72, 2), (115, 115, 1),
                                                                 (300, 300, 1)]  # fmt: skip
