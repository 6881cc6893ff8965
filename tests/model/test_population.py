"""Virtual population: reproducibility across chunk sizes, covariates, outputs, CLI."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from immunoreset.errors import InvalidInput
from immunoreset.model.population import (
    blood_volume_per_kg,
    plot_prediction_intervals,
    prediction_intervals,
    simulate_population,
    stream_population,
    weight_p50_kg,
    write_parquet,
)

DAYS = (0.0, 7.0, 28.0, 91.0, 182.0)


def test_identical_for_identical_seed_any_chunk_size():
    a = simulate_population(40, seed=7, chunk_size=7, sample_days=DAYS, years=1)
    b = simulate_population(40, seed=7, chunk_size=1000, sample_days=DAYS, years=1)
    pd.testing.assert_frame_equal(a, b, check_exact=True)


def test_prefix_of_larger_cohort_is_the_same_patients():
    a = simulate_population(10, seed=3, sample_days=DAYS, years=1)
    b = simulate_population(25, seed=3, chunk_size=6, sample_days=DAYS, years=1)
    pd.testing.assert_frame_equal(a, b.iloc[:10].reset_index(drop=True), check_exact=True)


def test_different_seed_gives_different_patients():
    a = simulate_population(5, seed=1, sample_days=DAYS, years=1)
    b = simulate_population(5, seed=2, sample_days=DAYS, years=1)
    assert not np.allclose(a["cmax"], b["cmax"])


@pytest.mark.parametrize(
    ("age", "sex", "kg", "source"),
    [
        (5.0, "M", 18.49, "CDC wtage P50 60.5 mo boys"),
        (10.0, "F", 33.06, "CDC wtage P50 120.5 mo girls"),
        (15.0, "M", 56.49, "CDC wtage P50 180.5 mo boys"),
        (18.0, "M", 67.29, "CDC wtage P50 216.5 mo boys"),
        (3.0, "F", 18.02, "flat below 5 y"),
        (7.5, "M", (18.49 + 32.09) / 2, "linear interpolation"),
    ],
)
def test_weight_table(age, sex, kg, source):
    assert weight_p50_kg(np.array([age]), np.array([sex]))[0] == pytest.approx(kg), source


@pytest.mark.parametrize(
    ("age", "sex", "ml", "source"),
    [
        (3.9, "M", 80.5, "Linderkamp 2–3 y boys"),
        (4.0, "F", 77.4, "Linderkamp 4–6 y girls"),
        (10.9, "M", 79.6, "Linderkamp 7–10 y boys"),
        (11.0, "F", 68.3, "Linderkamp 11–14 y girls"),
        (16.0, "F", 65.0, "Nadler adolescent girls"),
        (17.9, "M", 70.0, "Nadler adolescent boys"),
        (30.0, "F", 70.0, "adult 70 mL/kg"),
    ],
)
def test_blood_volume_table(age, sex, ml, source):
    assert blood_volume_per_kg(np.array([age]), np.array([sex]))[0][0] == ml, source


def test_dose_scales_initial_car_t():
    one = simulate_population(20, dose_per_kg=1e6, seed=0, sample_days=DAYS, years=1)
    two = simulate_population(20, dose_per_kg=2e6, seed=0, sample_days=DAYS, years=1)
    assert (one["car_t_d0"] == one["e0_cells_per_ul"]).all()
    assert np.allclose(two["e0_cells_per_ul"], 2.0 * one["e0_cells_per_ul"], rtol=1e-15)
    assert np.allclose(two["total_dose_cells"], 2e6 * two["weight_kg"])


def test_prediction_intervals_and_plot(tmp_path):
    df = simulate_population(60, seed=0, sample_days=DAYS, years=1)
    pi = prediction_intervals(df)
    assert set(pi["observable"]) == {"car_t", "transgene", "b_cells", "autoantibody", "disease"}
    assert (pi["p_lower"] <= pi["median"]).all() and (pi["median"] <= pi["p_upper"]).all()
    fig = plot_prediction_intervals(df)
    path = tmp_path / "pi.png"
    fig.savefig(path)
    assert path.stat().st_size > 1000


def test_write_parquet_roundtrip(tmp_path):
    df = simulate_population(8, seed=0, sample_days=DAYS, years=1)
    out = write_parquet(df, tmp_path / "a.parquet")
    pd.testing.assert_frame_equal(pd.read_parquet(out), df)


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"n": 0}, "n"),
        ({"n": 2.5}, "n"),
        ({"dose_per_kg": -1.0}, "dose_per_kg"),
        ({"seed": -1}, "seed"),
        ({"chunk_size": 0}, "chunk_size"),
        ({"years": 0.0}, "years"),
        ({"years": 21.0}, "years"),
        ({"sample_days": (5.0, 5.0)}, "sample_days"),
        ({"sample_days": (-1.0,)}, "sample_days"),
        ({"age_range": (1.0, 10.0)}, "age_range"),
        ({"age_range": (10.0, 5.0)}, "age_range"),
        ({"diagnosis_mix": {"XYZ": 1.0}}, "diagnosis_mix"),
        ({"diagnosis_mix": {"SLE": -1.0}}, "diagnosis_mix"),
        ({"lymphodepletion": "yes"}, "lymphodepletion"),
        ({"rtol": 1.0}, "rtol"),
    ],
)
def test_simulate_population_validation(kw, field):
    args = {"n": 3, "sample_days": DAYS, **kw}
    with pytest.raises(InvalidInput) as exc:
        simulate_population(**args)
    assert exc.value.field == field


@pytest.mark.parametrize(("kw", "field"), [({"lower": 60.0}, "lower"), ({"upper": 40.0}, "upper")])
def test_prediction_interval_validation(kw, field):
    with pytest.raises(InvalidInput) as exc:
        prediction_intervals(pd.DataFrame({"car_t_d7": [1.0]}), **kw)
    assert exc.value.field == field


@pytest.mark.parametrize("chunk_size", [3, 7, 100])
def test_streamed_parquet_equals_in_memory_frame(tmp_path, chunk_size):
    df = simulate_population(17, seed=4, sample_days=DAYS, years=1)
    out = tmp_path / "s.parquet"
    summary = stream_population(
        17, seed=4, out=out, chunk_size=chunk_size, sample_days=DAYS, years=1
    )
    pd.testing.assert_frame_equal(pd.read_parquet(out), df, check_exact=True)
    for name, values in summary.endpoints.items():
        assert values.dtype == np.float32
        np.testing.assert_array_equal(values, df[name].to_numpy(dtype=np.float32))
    cols = list(summary.samples.columns)
    assert summary.stride == 1 and len(cols) == 5 * len(DAYS)
    np.testing.assert_array_equal(summary.samples.to_numpy(), df[cols].to_numpy(np.float32))


def test_stream_subsamples_for_prediction_intervals():
    summary = stream_population(10, seed=1, max_sample_rows=4, sample_days=DAYS, years=1)
    assert summary.stride == 3 and len(summary.samples) == 4  # patients 0, 3, 6, 9
    assert len(summary.endpoints["cmax"]) == 10 and summary.out is None
    (name, n_fin, (p5, med, p95)), *_ = summary.endpoint_quantiles()
    assert name == "cmax" and n_fin == 10 and p5 <= med <= p95


@pytest.mark.parametrize(
    ("kw", "field"),
    [({"max_sample_rows": 0}, "max_sample_rows"), ({"out": 5}, "out"), ({"n": 0}, "n")],
)
def test_stream_population_validation(kw, field):
    args = {"n": 3, "sample_days": DAYS, **kw}
    with pytest.raises(InvalidInput) as exc:
        stream_population(**args)
    assert exc.value.field == field
