"""Output files of a fit (exact columns, self-contained HTML, fit.json round trip)."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from immunoreset.errors import InvalidInput
from immunoreset.model.fit.results import PARAMETER_COLUMNS, vpc
from immunoreset.model.fit.workflow import FIT_FILES, load_fit, write_fit


@pytest.fixture(scope="module")
def written(theoph_fit, tmp_path_factory):
    out = tmp_path_factory.mktemp("fit")
    write_fit(theoph_fit, out, vpc_reps=50)
    return out


def test_files_and_parameter_columns(written):
    assert sorted(p.name for p in written.iterdir()) == sorted(FIT_FILES)
    params = pd.read_csv(written / "parameters.csv")
    assert tuple(params.columns) == PARAMETER_COLUMNS
    assert params.name.tolist() == ["ka", "cl", "v", "omega2_ka", "omega2_cl", "omega2_v", "add_sd"]
    pred = pd.read_csv(written / "predictions.csv")
    for col in ("ID", "TIME", "DV", "PRED", "IPRED", "RES", "IWRES", "CWRES", "NPDE"):
        assert col in pred
    assert len(pred) == 132
    # NPDE from the VPC's 50 simulations (K > 11 observations per subject): all present
    assert pred.NPDE.notna().all() and abs(pred.NPDE.mean()) < 0.4
    # CWRES of a good fit: mean ≈ 0, SD ≈ 1
    assert abs(pred.CWRES.mean()) < 0.3 and 0.7 < pred.CWRES.std() < 1.3
    ind = pd.read_csv(written / "individual.csv")
    assert len(ind) == 12 and {"ETA_ka", "ka", "cl", "v"} <= set(ind.columns)


def test_html_is_self_contained_with_plots(written):
    html = (written / "fit.html").read_text()
    assert html.count("<svg") >= 3  # goodness of fit, individual fits, VPC
    assert not re.search(r"""(src|href)=["']https?:""", html)  # nothing fetched from outside
    assert "<link" not in html and "<script" not in html
    assert "Visual predictive check" in html and "CWRES" in html


def test_fit_json_round_trip(written, theoph_fit):
    doc = json.loads((written / "fit.json").read_text())
    assert doc["model"] == "pk_1cmt_oral" and doc["converged"]
    assert doc["ofv"] == pytest.approx(theoph_fit.ofv)
    saved = load_fit(written)
    assert np.allclose(saved.x, theoph_fit.x)
    assert saved.spec.model == "pk_1cmt_oral"


def test_load_fit_refuses_other_files(tmp_path):
    (tmp_path / "fit.json").write_text("{}")
    with pytest.raises(InvalidInput):
        load_fit(tmp_path)
    with pytest.raises(InvalidInput):
        load_fit(tmp_path / "missing")


@pytest.mark.parametrize(
    ("edit", "says"),
    [
        (lambda d: d.pop("spec"), "missing key 'spec'"),
        (lambda d: d["spec"].pop("parameters"), "missing key 'parameters'"),
        (lambda d: d.update(x="abc"), "fit.json written by"),
        (lambda d: d.update(x=[1.0, None]), "finite numbers"),
        (lambda d: d["spec"]["parameters"][0].update(bogus=1), "fit.json written by"),
        (lambda d: d.clear() or d.update(format="immunoreset-fit/1"), "missing key 'spec'"),
    ],
)
def test_load_fit_names_what_is_wrong_in_an_edited_file(written, tmp_path, edit, says):
    doc = json.loads((written / "fit.json").read_text())
    edit(doc)
    (tmp_path / "fit.json").write_text(json.dumps(doc))
    with pytest.raises(InvalidInput) as err:
        load_fit(tmp_path)
    assert err.value.field == "fit" and says in str(err.value)


def test_vpc_brackets_the_observed_median(theoph_fit):
    v = vpc(theoph_fit, n_rep=100, seed=1)[2]
    inside = [
        lo <= o <= hi
        for lo, o, hi in zip(v["sim_p50_lo"], v["obs_p50"], v["sim_p50_hi"], strict=True)
    ]
    # 90 % intervals per bin; theophylline's absorption phase is the known misfit
    assert sum(inside) >= 0.75 * len(inside)
