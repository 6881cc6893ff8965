"""Individual forecasts from a saved population fit (MAP, prediction bands)."""

from __future__ import annotations

import numpy as np
import pytest

from immunoreset.errors import InvalidInput
from immunoreset.interop.nonmem import read_nonmem
from immunoreset.model.fit.forecast import forecast_band, forecast_patient
from immunoreset.model.fit.simulate import simulate_dataset
from immunoreset.model.fit.workflow import load_fit, write_fit
from tests.model.fit.conftest import FIXTURE


@pytest.fixture(scope="module")
def saved(theoph_fit, tmp_path_factory):
    out = tmp_path_factory.mktemp("fit")
    write_fit(theoph_fit, out, vpc_reps=0)
    return load_fit(out)


def _subject(i: str):
    frame = read_nonmem(FIXTURE)
    return frame[frame.ID.eq(i)].reset_index(drop=True)


def test_map_from_all_data_equals_the_fit_ebe(saved, theoph_fit):
    fc = forecast_patient(saved, _subject("1"), days=np.linspace(0, 24, 49))
    assert np.allclose(fc.eta, theoph_fit.eta[0], atol=1e-3)
    band = fc.bands[2]
    assert np.all(band.low <= band.median) and np.all(band.median <= band.high)


def test_forecast_from_early_data_covers_later_observations(saved):
    frame = _subject("3")
    early = frame[(frame.EVID == 1) | (frame.TIME <= 2.0)]
    later = frame[(frame.EVID == 0) & (frame.TIME > 2.0)]
    fc = forecast_patient(saved, early, days=later.TIME.to_numpy())  # default: prediction
    band = fc.bands[2]
    inside = (later.DV.to_numpy() >= band.low) & (later.DV.to_numpy() <= band.high)
    assert inside.mean() >= 0.8
    assert fc.n_observations == len(early) - 1


def test_no_data_gives_the_population_band(saved):
    frame = _subject("5")
    dose_only = frame[frame.EVID == 1]
    fc = forecast_patient(saved, dose_only, days=[1.0, 4.0, 12.0])
    assert np.allclose(fc.eta, 0.0) and fc.n_observations == 0
    days, med, lo, hi = forecast_band(saved, dose_only, 2, days=np.array([1.0, 4.0, 12.0]))
    assert days.tolist() == [1.0, 4.0, 12.0] and np.all(lo < med) and np.all(med < hi)


def test_bad_requests(saved):
    frame = read_nonmem(FIXTURE)
    with pytest.raises(InvalidInput, match="one patient"):
        forecast_patient(saved, frame)
    with pytest.raises(InvalidInput):
        forecast_patient(saved, _subject("1"), level=1.5)
    with pytest.raises(InvalidInput):
        forecast_band(saved, _subject("1"), 7)


def _truth(saved):
    """The fit's typical values, BSV SDs and additive SD (theophylline spec: diagonal Ω)."""
    doc = saved.document
    theta = {n: float(doc["theta"][n]) for n in ("ka", "cl", "v")}
    names = doc["omega_names"]
    omega = {n: float(np.sqrt(doc["omega"][i][i])) for i, n in enumerate(names)}
    return theta, omega, float(doc["sigma"]["add_sd"])


def test_prediction_interval_is_wider_than_the_confidence_band(saved):
    days = np.array([0.5, 1.0, 2.0, 4.0, 8.0, 12.0, 24.0])
    pi = forecast_patient(saved, _subject("3"), days=days, n_samples=2000, seed=3)
    ci = forecast_patient(saved, _subject("3"), days=days, n_samples=2000, seed=3,
                          include_residual=False)  # fmt: skip
    p, c = pi.bands[2], ci.bands[2]
    assert p.interval == "prediction" and c.interval == "confidence"
    _, _, add_sd = _truth(saved)
    # the residual SD (≈ 0.7 mg/L) dominates a MAP from 11 observations: the PI is wider
    # everywhere, by at least ~2·1.645·σ minus the confidence band's own width
    width_p, width_c = p.high - p.low, c.high - c.low
    assert np.all(width_p > width_c)
    assert np.all(width_p >= 2 * 1.645 * add_sd * 0.9)
    table = pi.table()
    assert set(table.interval) == {"prediction"} and set(table.level) == {0.9}


def test_prediction_interval_covers_90_percent_of_new_observations(saved):
    """Population PI (no data) vs 3,000 new patients simulated from the fitted model by
    ``simulate_dataset`` (an independent path: its own parameter draws and error)."""
    dose_only = _subject("5")[lambda f: f.EVID == 1]
    days = np.array([0.5, 1.0, 2.0, 4.0, 8.0, 12.0, 24.0])
    pi = forecast_patient(saved, dose_only, days=days, n_samples=20_000, seed=11)
    ci = forecast_patient(saved, dose_only, days=days, n_samples=20_000, seed=11,
                          include_residual=False)  # fmt: skip
    theta, omega, add_sd = _truth(saved)
    sim = simulate_dataset("pk_1cmt_oral", times=days, cmts=[2], theta=theta, omega=omega,
                           errors={2: ("additive", add_sd, 0.0)}, n=3000,
                           dose=float(dose_only.AMT.iloc[0]), seed=12)  # fmt: skip
    obs = sim[sim.EVID == 0]
    y = obs.DV.to_numpy().reshape(3000, len(days))
    assert np.allclose(obs.TIME.to_numpy().reshape(3000, len(days))[0], days)
    band, conf = pi.bands[2], ci.bands[2]
    inside = (y >= band.low) & (y <= band.high)
    cover = inside.mean(axis=0)  # per day; binomial SD at 3,000 ≈ 0.55 %
    assert np.all(np.abs(cover - 0.9) < 0.025), cover
    assert abs(inside.mean() - 0.9) < 0.01
    # the parameter-only band misses the measurement error: it under-covers new observations
    under = ((y >= conf.low) & (y <= conf.high)).mean(axis=0)
    assert np.all(under < cover - 0.02), under


def test_prediction_interval_from_early_data_covers_new_patients_later(saved):
    """Conditional PI: 150 virtual patients from the fit, MAP from their samples up to 2 h,
    forecast at 4–24 h; ≈ 90 % of their later (simulated) measurements fall inside."""
    theta, omega, add_sd = _truth(saved)
    days = [0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 12.0, 24.0]
    sim = simulate_dataset("pk_1cmt_oral", times=days, cmts=[2], theta=theta, omega=omega,
                           errors={2: ("additive", add_sd, 0.0)}, n=150, dose=320.0,
                           seed=21)  # fmt: skip
    from immunoreset.interop.nonmem import validate_nonmem

    frame = validate_nonmem(sim.assign(ID=sim.ID.astype(str)))
    hits = []
    for _, g in frame.groupby("ID", sort=False):
        g = g.reset_index(drop=True)
        early = g[(g.EVID == 1) | (g.TIME <= 2.0)]
        later = g[(g.EVID == 0) & (g.TIME > 2.0)]
        fc = forecast_patient(saved, early, days=later.TIME.to_numpy(), n_samples=1000, seed=1)
        b = fc.bands[2]
        y = later.DV.to_numpy()
        hits.append((y >= b.low) & (y <= b.high))
    cover = np.concatenate(hits).mean()  # 600 measurements: binomial SD ≈ 1.2 %
    assert 0.86 <= cover <= 0.94, cover
