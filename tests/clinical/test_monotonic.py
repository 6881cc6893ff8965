"""Property tests: a worse observation never lowers a toxicity grade.

Sources: the grading tables are ordered by severity in Lee 2019 (CRS, ICANS), CTCAE v5.0/v6.0 and
Rejeski 2023 (ICAHT); spec clinical.md §1–3, §5.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from immunoreset import vocab
from immunoreset.clinical.crs import OXYGEN_DEVICE_GRADES, grade_crs
from immunoreset.clinical.ctcae import CTCAE_TERMS, TERM_ANALYTES, grade_lab
from immunoreset.clinical.icaht import grade_early_icaht, grade_late_icaht
from immunoreset.clinical.icans import grade_icans

temps = st.floats(25, 45, allow_nan=False)
pressor_sets = st.sets(st.sampled_from(vocab.VASOPRESSORS))
devices = st.sampled_from([d for d in vocab.OXYGEN_DEVICES if d != "nasal_cannula"])
flows = st.floats(0.1, 80, allow_nan=False)


@given(a=temps, b=temps, pressors=pressor_sets, masked=st.booleans(), hypo=st.booleans())
def test_higher_temperature(a: float, b: float, pressors: set, masked: bool, hypo: bool) -> None:
    lo, hi = sorted((a, b))
    kw = dict(vasopressors=sorted(pressors), fever_masked=masked, hypotension=hypo)
    assert grade_crs(temperature_c=hi, **kw).grade >= grade_crs(temperature_c=lo, **kw).grade


@given(temp=temps, a=devices, b=devices, f1=flows, f2=flows)
def test_more_oxygen(temp: float, a: str, b: str, f1: float, f2: float) -> None:
    less, more = sorted((a, b), key=OXYGEN_DEVICE_GRADES.__getitem__)
    assert (
        grade_crs(temperature_c=temp, oxygen_device=more).grade
        >= grade_crs(temperature_c=temp, oxygen_device=less).grade
    )
    lo, hi = sorted((f1, f2))
    nc = dict(temperature_c=temp, oxygen_device="nasal_cannula")
    assert (
        grade_crs(**nc, oxygen_flow_l_min=hi).grade >= grade_crs(**nc, oxygen_flow_l_min=lo).grade
    )


@given(temp=temps, a=pressor_sets, extra=pressor_sets, hypo=st.booleans())
def test_more_pressors(temp: float, a: set, extra: set, hypo: bool) -> None:
    fewer = grade_crs(temperature_c=temp, vasopressors=sorted(a), hypotension=hypo).grade
    more = grade_crs(temperature_c=temp, vasopressors=sorted(a | extra), hypotension=hypo).grade
    assert more >= fewer


icans_other = dict(
    consciousness=st.sampled_from(vocab.CONSCIOUSNESS),
    seizure=st.sampled_from(vocab.SEIZURE),
    cerebral_edema=st.sampled_from(vocab.CEREBRAL_EDEMA),
    motor_weakness=st.booleans(),
)


@given(a=st.integers(0, 10), b=st.integers(0, 10), age=st.floats(12, 100), **icans_other)
def test_lower_ice(a: int, b: int, age: float, **other: object) -> None:
    lo, hi = sorted((a, b))
    worse = grade_icans(age_years=age, ice_score=lo, **other).grade
    assert worse >= grade_icans(age_years=age, ice_score=hi, **other).grade
    unarousable = other | {"consciousness": "unarousable"}
    assert (
        grade_icans(age_years=age, ice_score=0, unable_to_assess=True, **unarousable).grade >= worse
    )


@given(a=st.integers(0, 32), b=st.integers(0, 32), age=st.floats(0, 11.99), **icans_other)
def test_higher_capd(a: int, b: int, age: float, **other: object) -> None:
    lo, hi = sorted((a, b))
    worse = grade_icans(age_years=age, capd_score=hi, **other).grade
    assert worse >= grade_icans(age_years=age, capd_score=lo, **other).grade
    unarousable = other | {"consciousness": "unarousable"}
    assert grade_icans(age_years=age, unable_to_assess=True, **unarousable).grade >= worse


@given(
    a=st.sampled_from(vocab.CONSCIOUSNESS),
    b=st.sampled_from(vocab.CONSCIOUSNESS),
    ice=st.none() | st.integers(0, 10),
)
def test_deeper_consciousness(a: str, b: str, ice: int | None) -> None:
    shallow, deep = sorted((a, b), key=vocab.CONSCIOUSNESS.index)
    assert (
        grade_icans(age_years=30, ice_score=ice, consciousness=deep).grade
        >= grade_icans(age_years=30, ice_score=ice, consciousness=shallow).grade
    )


@given(
    term=st.sampled_from(sorted(CTCAE_TERMS)),
    a=st.floats(0, 1, allow_nan=False),
    b=st.floats(0, 1, allow_nan=False),
    version=st.sampled_from(["5.0", "6.0"]),
    with_lln=st.booleans(),
)
def test_lower_lab_value(term: str, a: float, b: float, version: str, with_lln: bool) -> None:
    scale = {"anemia": 20.0, "platelet_count_decreased": 300_000.0}.get(term, 5000.0)
    lo, hi = sorted((a * scale, b * scale))
    lln = 0.8 * scale if with_lln else None
    unit = vocab.ANALYTES[TERM_ANALYTES[term]][0]  # explicit unit: any value is plausible
    assert grade_lab(term, lo, lln=lln, version=version, unit=unit) >= grade_lab(
        term, hi, lln=lln, version=version, unit=unit
    )


anc_series = st.lists(
    st.sampled_from([0, 50, 100, 101, 300, 500, 501, 1000, 1500, 3000]), min_size=45, max_size=45
)


@settings(max_examples=150)
@given(
    values=anc_series,
    lowered=st.lists(st.booleans(), min_size=45, max_size=45),
    step=st.integers(1, 3),
    mode=st.sampled_from(["cumulative", "longest_joined"]),
)
def test_lower_anc_or_longer_neutropenia(values, lowered, step, mode) -> None:
    """Lowering any ANC value (e.g. a longer neutropenia) never lowers early or late ICAHT."""
    days = np.arange(-2, 43, dtype=float)[::step]
    base = np.array(values, dtype=float)[::step]
    worse = np.where(np.array(lowered)[::step], np.minimum(base, 50.0), base)
    for fn, kw in ((grade_early_icaht, {"duration_mode": mode}), (grade_late_icaht, {})):
        g_base, g_worse = fn(days, base, **kw).grade, fn(days, worse, **kw).grade
        assert (g_worse if g_worse is not None else -1) >= (g_base if g_base is not None else -1)


@given(start=st.integers(0, 10), length=st.integers(0, 40), extra=st.integers(1, 10))
def test_longer_neutropenia_span(start: int, length: int, extra: int) -> None:
    days = np.arange(0, 60, dtype=float)

    def grade(n: int) -> int:
        anc = np.where((days >= start) & (days < start + n), 300.0, 2000.0)
        return grade_early_icaht(days, anc).grade  # type: ignore[return-value]

    assert grade(length + extra) >= grade(length)
