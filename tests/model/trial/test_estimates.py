"""Population estimates: the fit.json shape, defaults, and draws of the typical values."""

from __future__ import annotations

import json

import numpy as np
import pytest

from immunoreset.errors import InvalidInput
from immunoreset.model.equations import ImmuneParams
from immunoreset.model.population import OMEGA
from immunoreset.model.trial.estimates import (
    FORMAT,
    default_estimates,
    read_estimates,
    write_estimates,
)

IDX = {n: i for i, n in enumerate(ImmuneParams.names())}


def test_default_has_no_uncertainty_and_population_omega():
    est = default_estimates()
    assert not est.has_uncertainty
    assert est.omega_names == tuple(OMEGA)
    np.testing.assert_allclose(np.sqrt(np.diag(est.omega)), list(OMEGA.values()))
    rng = np.random.default_rng(0)
    np.testing.assert_array_equal(est.draw_typical(rng), ImmuneParams().to_array())


def test_stated_rse_is_the_log_scale_sd_of_draws():
    est = default_estimates({"k_kill": 0.2, "c50": 0.5})
    rng = np.random.default_rng(1)
    draws = np.array([est.draw_typical(rng) for _ in range(4000)])
    logs = np.log(draws / ImmuneParams().to_array())
    assert logs[:, IDX["k_kill"]].std() == pytest.approx(0.2, rel=0.05)
    assert logs[:, IDX["c50"]].std() == pytest.approx(0.5, rel=0.05)
    assert np.all(logs[:, IDX["rho"]] == 0.0)  # not uncertain: fixed
    # sample=False: the estimates, but the same amount of the stream is used
    a, b = np.random.default_rng(2), np.random.default_rng(2)
    est.draw_typical(a, sample=False)
    est.draw_typical(b)
    assert a.random() == b.random()


def test_fit_json_round_trip_and_correlated_draws(tmp_path):
    path = tmp_path / "fit.json"
    path.write_text(
        json.dumps(
            {
                "format": FORMAT,
                "source": "test fit",
                "typical": {"k_kill": 0.1, "c50": 0.03},
                "omega": {"names": ["b0", "c50"], "matrix": [[0.09, 0.0], [0.0, 0.16]]},
                "covariance": {
                    "names": ["k_kill", "c50"],
                    "matrix": [[0.04, 0.036], [0.036, 0.09]],
                },
            }
        )
    )
    est = read_estimates(path)
    assert est.typical.k_kill == 0.1 and est.typical.rho == ImmuneParams().rho
    assert est.source == "test fit" and est.has_uncertainty
    again = read_estimates(write_estimates(est, tmp_path / "again.json"))
    assert again.to_json() == est.to_json()
    rng = np.random.default_rng(3)
    d = np.log(np.array([est.draw_typical(rng) for _ in range(4000)]))
    r = np.corrcoef(d[:, IDX["k_kill"]], d[:, IDX["c50"]])[0, 1]
    assert r == pytest.approx(0.036 / (0.2 * 0.3), abs=0.05)


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ({"format": "nonmem"}, "format"),
        ({"format": FORMAT, "typical": {"kkill": 1.0}}, "typical.kkill"),
        ({"format": FORMAT, "typical": {"k_kill": "0.1"}}, "typical.k_kill"),
        ({"format": FORMAT, "omega": {"names": ["b0"], "matrix": [[-1.0]]}}, "omega.matrix"),
        (
            {"format": FORMAT, "covariance": {"names": ["rho", "mu"], "matrix": [[1, 2], [2, 1]]}},
            "covariance.matrix",
        ),
        ({"format": FORMAT, "covariance": {"names": ["rho"], "matrix": [[1, 2]]}},
         "covariance.matrix"),
        ({"format": FORMAT, "thetas": {}}, "thetas"),
    ],
)  # fmt: skip
def test_bad_fit_json_refused_naming_the_key(tmp_path, doc, field):
    path = tmp_path / "fit.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(InvalidInput) as err:
        read_estimates(path)
    assert err.value.field == field


def test_unreadable_fit_refused(tmp_path):
    with pytest.raises(InvalidInput):
        read_estimates(tmp_path / "none.json")
    (tmp_path / "x.json").write_text("{not json")
    with pytest.raises(InvalidInput):
        read_estimates(tmp_path / "x.json")
