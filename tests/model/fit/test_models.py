"""The immune-model adapter: steady start, per-patient lymphodepletion days, bad days."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from immunoreset.errors import InvalidInput
from immunoreset.interop.nonmem import validate_nonmem
from immunoreset.model.equations import ImmuneParams
from immunoreset.model.fit.data import prepare_data
from immunoreset.model.fit.models import get_model
from immunoreset.model.population import simulate_typical

DAYS = [-4.0, -2.0, 0.5, 3.0, 7.0, 14.0, 28.0, 91.0]


def _data(**cov) -> object:
    rows = []
    for i, extra in enumerate(
        [dict(zip(cov, v, strict=True)) for v in zip(*cov.values(), strict=True)] or [{}]
    ):
        pid = i + 1
        rows.append(
            {
                "ID": pid,
                "TIME": 0.0,
                "DV": np.nan,
                "AMT": 1.0,
                "EVID": 1,
                "MDV": 1,
                "CMT": 1,
                **extra,
            }
        )
        for t in DAYS:
            rows.append(
                {
                    "ID": pid,
                    "TIME": t,
                    "DV": 1.0,
                    "AMT": 0.0,
                    "EVID": 0,
                    "MDV": 0,
                    "CMT": 4,
                    **extra,
                }
            )
    frame = pd.DataFrame(rows).sort_values(["ID", "TIME", "EVID"], kind="stable")
    return prepare_data(validate_nonmem(frame, allow_predose=True))


def _predict(data) -> np.ndarray:
    m = get_model("immune_reset")
    phi = np.tile(m.default_vector(), (data.n, 1))
    return m.bind(data, rtol=1e-10)(phi, np.arange(data.n))


def test_typical_patient_matches_the_simulator():
    # same parameters, dose 1e6/kg, 70 mL/kg, Flu/Cy on days −5…−3: the adapter starts from the
    # model's steady state (programme A at its baseline) like the simulator
    f = _predict(_data())[0]
    post = [d for d in DAYS if d >= 0]
    sim, _ends = simulate_typical(
        ImmuneParams(), dose_per_kg=1e6, blood_volume_ml_per_kg=70.0, sample_days=post,
        rtol=1e-10,
    )  # fmt: skip
    assert f[len(DAYS) - len(post) :] == pytest.approx(sim["b_cells"].to_numpy(), rel=1e-6)
    # before the infusion: day −4 is just after the second of three equal fractions of the
    # 80 % lymphodepletion kill (f_ld) of the 500/µL baseline (plus one day of regrowth)
    assert f[0] == pytest.approx(500.0 * 0.2 ** (2.0 / 3.0), rel=0.03)
    assert f[0] > 500.0 * 0.2 ** (2.0 / 3.0)


def test_recorded_lymphodepletion_days_are_used():
    d = _data(LDSTART=[-5.0, -8.0, -2.0], LDEND=[-3.0, -6.0, -2.0], LD=[1, 1, 1])
    f = _predict(d)
    default = _predict(_data())[0]
    assert f[0] == pytest.approx(default, rel=1e-6)  # −5…−3 is the protocol
    # earlier lymphodepletion: the B cells have regrown a little by day −4 and later samples
    # differ; a single day (−2) leaves day −4 untouched and depletes by day −2
    assert f[1, 0] != pytest.approx(default[0], rel=1e-3)
    assert f[2, 0] == pytest.approx(500.0, rel=1e-6)
    assert f[2, 1] == pytest.approx(500.0 * 0.2 ** (1.0 / 3.0), rel=1e-6)  # first fraction
    assert f[2, 2] < 0.3 * 500.0  # all three by day 0.5
    # missing days fall back to the protocol
    g = _predict(_data(LDSTART=[np.nan], LDEND=[np.nan], LD=[1]))[0]
    assert g == pytest.approx(default, rel=1e-6)


@pytest.mark.parametrize(("start", "end"), [(-3.0, -5.0), (-5.0, 1.0), (-90.0, -3.0)])
def test_bad_lymphodepletion_days_name_the_columns(start, end):
    with pytest.raises(InvalidInput, match="LDSTART/LDEND"):
        _predict(_data(LDSTART=[start], LDEND=[end], LD=[1]))
