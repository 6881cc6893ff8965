"""Titre percent change, seroconversion cut-off boundaries, time off therapy (titres.py)."""

from __future__ import annotations

import pytest

from immunoreset.errors import InvalidInput
from immunoreset.kinetics.titres import (
    month_target_day,
    percent_change_from_baseline,
    seroconversion_day,
    time_off_therapy,
)


@pytest.mark.parametrize(
    ("month", "day"), [(1, 30), (2, 61), (3, 91), (6, 183), (12, 365), (24, 731)]
)
def test_month_target_day(month, day):
    # round(30.4375·m), halves up: 60.875→61, 182.625→183, 365.25→365, 730.5→731
    assert month_target_day(month) == day


# (id, days, values, kwargs, expected per-month percent changes, expected reasons)
PCT = [
    (
        "default_windows",
        [-3, 0, 28, 95, 200],
        [400, 380, 190, 38, 20],
        {},
        [-50.0, -90.0, 100 * (20 - 380) / 380, None],
        ("no_sample_in_window_m12",),
    ),
    ("m1_window_edge_16_in", [0, 16], [100, 50], {"at_months": [1]}, [-50.0], ()),
    (
        "m1_window_edge_15.9_out",
        [0, 15.9],
        [100, 50],
        {"at_months": [1]},
        [None],
        ("no_sample_in_window_m1",),
    ),
    ("m1_window_edge_44_in", [0, 44], [100, 150], {"at_months": [1]}, [50.0], ()),
    (
        "m1_window_edge_44.1_out",
        [0, 44.1],
        [100, 150],
        {"at_months": [1]},
        [None],
        ("no_sample_in_window_m1",),
    ),
    ("m3_window_30", [0, 61, 121], [100, 10, 20], {"at_months": [3]}, [-90.0], ()),
    ("tie_takes_earlier", [0, 25, 35], [100, 40, 60], {"at_months": [1]}, [-60.0], ()),
    ("nearest_wins", [0, 25, 31], [100, 40, 60], {"at_months": [1]}, [-40.0], ()),
    (
        "custom_window",
        [0, 40],
        [100, 50],
        {"at_months": [1], "window_days": 7},
        [None],
        ("no_sample_in_window_m1",),
    ),
    (
        "window_mapping",
        [0, 40, 100],
        [100, 50, 25],
        {"at_months": [1, 3], "window_days": {1: 10, 3: 10}},
        [-50.0, -75.0],
        (),
    ),
    (
        "baseline_day_before_ld",
        [-10, -2, 30],
        [200, 100, 50],
        {"at_months": [1], "baseline_day": -5},
        [-75.0],
        (),
    ),
    (
        "no_baseline",
        [5, 30],
        [100, 50],
        {"at_months": [1]},
        [None],
        ("no_baseline",),
    ),
    (
        "baseline_zero",
        [0, 30],
        [0, 50],
        {"at_months": [1]},
        [None],
        ("baseline_zero",),
    ),
]


@pytest.mark.parametrize(
    ("days", "values", "kwargs", "expected", "reasons"),
    [c[1:] for c in PCT],
    ids=[c[0] for c in PCT],
)
def test_percent_change(days, values, kwargs, expected, reasons):
    r = percent_change_from_baseline(days, values, **kwargs)
    got = [m.percent_change for m in r.months]
    assert got == pytest.approx(expected)
    assert r.reasons == reasons


def test_percent_change_result_fields():
    r = percent_change_from_baseline([-3, 0, 28], [400, 380, 190], at_months=[1])
    assert (r.baseline_day, r.baseline_value) == (0.0, 380.0)
    m = r.months[0]
    assert (m.month, m.target_day, m.window_days, m.sample_day, m.value) == (1, 30, 14, 28, 190)
    assert r.percent(1) == -50.0
    with pytest.raises(InvalidInput):
        r.percent(3)


# (id, days, values, cutoff, expected day, positive at baseline, censored, reasons)
SERO = [
    ("exactly_cutoff_still_positive", [0, 30], [300, 30.0], 30, None, True, True,
     ("still_positive",)),
    ("just_below_cutoff", [0, 30], [300, 29.99], 30, 30.0, True, False, ("seroconverted",)),
    ("baseline_exactly_cutoff_positive", [0, 30], [30, 29.99], 30, 30.0, True, False,
     ("seroconverted",)),
    ("baseline_below_cutoff", [0, 30], [29.99, 1], 30, None, False, False,
     ("not_positive_at_baseline",)),
    ("no_baseline", [3, 30], [300, 1], 30, None, False, False, ("no_baseline",)),
    ("no_sample_after", [-3, 0], [300, 300], 30, None, True, True,
     ("no_sample_after_baseline",)),
    ("first_below_counts", [0, 30, 60, 90], [300, 20, 40, 10], 30, 30.0, True, False,
     ("seroconverted",)),
]  # fmt: skip


@pytest.mark.parametrize(
    ("days", "values", "cutoff", "day", "positive", "censored", "reasons"),
    [c[1:] for c in SERO],
    ids=[c[0] for c in SERO],
)
def test_seroconversion(days, values, cutoff, day, positive, censored, reasons):
    r = seroconversion_day(days, values, cutoff=cutoff)
    assert (r.day, r.positive_at_baseline, r.censored, r.reasons) == (
        day,
        positive,
        censored,
        reasons,
    )


# (id, medications, last_day, expected off_from_day, time_off_days, ongoing)
THERAPY = [
    ("stopped", [(-400, 20, "glucocorticoid"), (-300, -6, "immunosuppressant")], 365,
     21.0, 345.0, False),
    ("ongoing_none_stop", [(-400, None, "glucocorticoid")], 365, None, None, True),
    ("stop_on_last_day_is_ongoing", [(-400, 365, "glucocorticoid")], 365, None, None, True),
    ("stop_day_before_last", [(-400, 364, "glucocorticoid")], 365, 365.0, 1.0, False),
    ("restart_counts", [(-400, 10, "glucocorticoid"), (100, 130, "glucocorticoid")], 365,
     131.0, 235.0, False),
    ("other_classes_ignored", [(-400, 10, "immunosuppressant"), (0, None, "ivig")], 100,
     11.0, 90.0, False),
    ("nothing_recorded", [(0, None, "anti_infective")], 100, None, None, False),
    ("stopped_before_infusion", [(-400, -30, "immunosuppressant")], 100, -29.0, 130.0, False),
]  # fmt: skip


@pytest.mark.parametrize(
    ("meds", "last_day", "off_from", "time_off", "ongoing"),
    [c[1:] for c in THERAPY],
    ids=[c[0] for c in THERAPY],
)
def test_time_off_therapy(meds, last_day, off_from, time_off, ongoing):
    r = time_off_therapy(meds, last_day=last_day)
    assert (r.off_from_day, r.time_off_days, r.ongoing) == (off_from, time_off, ongoing)


def test_time_off_custom_categories():
    meds = [(-400, 20, "glucocorticoid"), (-300, 50, "biologic")]
    r = time_off_therapy(meds, last_day=100, categories=["glucocorticoid", "biologic"])
    assert (r.off_from_day, r.categories) == (51.0, ("glucocorticoid", "biologic"))


@pytest.mark.parametrize(
    ("meds", "kwargs", "field"),
    [
        ([(10, 5, "glucocorticoid")], {}, "stop_day"),
        ([(200, None, "glucocorticoid")], {}, "start_day"),
        ([(0, 5, "steroid")], {}, "category"),
        ([(0, 5)], {}, "medications"),
        ("prednisone", {}, "medications"),
        ([(None, 5, "glucocorticoid")], {}, "start_day"),
        ([], {"categories": []}, "categories"),
        ([], {"categories": ["steroids"]}, "categories"),
        ([], {"last_day": float("nan")}, "last_day"),
    ],
)
def test_time_off_bad_input(meds, kwargs, field):
    kw = {"last_day": 100, **kwargs}
    with pytest.raises(InvalidInput) as exc:
        time_off_therapy(meds, **kw)
    assert exc.value.field == field


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"at_months": [0]}, "at_months"),
        ({"at_months": [1.5]}, "at_months"),
        ({"at_months": []}, "at_months"),
        ({"at_months": [1, 1]}, "at_months"),
        ({"at_months": "1,3"}, "at_months"),
        ({"window_days": -1}, "window_days"),
        ({"window_days": {1: 10}}, "window_days"),
        ({"baseline_day": "day0"}, "baseline_day"),
    ],
)
def test_percent_change_bad_settings(kwargs, field):
    with pytest.raises(InvalidInput) as exc:
        percent_change_from_baseline([0, 30], [10, 5], **kwargs)
    assert exc.value.field == field


def test_seroconversion_bad_cutoff():
    with pytest.raises(InvalidInput) as exc:
        seroconversion_day([0, 30], [10, 5], cutoff=0)
    assert exc.value.field == "cutoff"
