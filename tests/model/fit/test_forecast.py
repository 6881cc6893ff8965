"""Individual forecasts from a saved population fit (MAP, prediction bands)."""

from __future__ import annotations

import numpy as np
import pytest

from immunoreset.errors import InvalidInput
from immunoreset.interop.nonmem import read_nonmem
from immunoreset.model.fit.forecast import forecast_band, forecast_patient
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
    fc = forecast_patient(saved, early, days=later.TIME.to_numpy(), include_residual=True)
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
