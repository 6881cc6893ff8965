"""``immunoreset simulate``: a small virtual cohort, its summary table, Parquet file and plot."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from immunoreset.cli import app


def test_cli_simulate(tmp_path):
    out = tmp_path / "x.parquet"
    png = tmp_path / "x.png"
    args = ["--patients", "30", "--seed", "2", "--out", str(out), "--plot", str(png)]
    res = CliRunner().invoke(app, ["simulate", *args, "--years", "1"])
    assert res.exit_code == 0, res.output
    assert "cmax" in res.output and "30 virtual patients" in res.output
    assert len(pd.read_parquet(out)) == 30 and png.exists()


def test_cli_simulate_trial_options_csv(tmp_path):
    out = tmp_path / "x.csv"
    args = [
        "simulate", "--patients", "12", "--seed", "3", "--years", "1", "--out", str(out),
        "--age-min", "8", "--age-max", "12", "--diagnosis", "JDM", "--lymphodepletion", "cy",
        "--flat-dose", "3e7", "--rtol", "1e-7", "--atol", "1e-9",
    ]  # fmt: skip
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    df = pd.read_csv(out)  # a real CSV, not Parquet bytes under a .csv name
    assert len(df) == 12 and (df["diagnosis"] == "JDM").all()
    assert df["age_y"].between(8.0, 12.0).all() and (df["lymphodepletion"] == "cy").all()
    assert df["total_dose_cells"].to_numpy() == pytest.approx(3e7)
    assert "B-cell course" in res.output


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--out", "x.xlsx"], "--out"),
        (["--lymphodepletion", "bendamustine"], "lymphodepletion"),
        (["--diagnosis", "RA"], "diagnosis_mix"),
        (["--age-min", "1"], "age_range"),
        (["--dose", "1e6", "--flat-dose", "1e7"], "--flat-dose"),
        (["--rtol", "0.5"], "rtol"),
        (["--method", "lsoda"], "method"),
        (["--b-threshold", "recon=ten"], "--b-threshold"),
        (["--b-threshold", "reconstitution=10"], "--b-threshold"),
        (["--b-threshold", "recon=0"], "b_thresholds.recon"),
        (["--b-threshold", "clear=5", "--b-threshold", "detect=2"], "b_thresholds.detect"),
    ],
)
def test_cli_simulate_refuses_bad_options_in_one_line(tmp_path, extra, needle):
    res = CliRunner().invoke(app, ["simulate", "--patients", "3", "--years", "1", *extra])
    assert res.exit_code == 1, res.output
    assert needle in res.output and "Traceback" not in res.output
    assert not (tmp_path / "x.xlsx").exists()


def test_cli_simulate_auto_method_agrees_with_dop853(tmp_path):
    frames = {}
    for method in ("dop853", "auto"):
        out = tmp_path / f"{method}.parquet"
        args = ["simulate", "--patients", "20", "--seed", "4", "--years", "1", "--out", str(out)]
        res = CliRunner().invoke(app, [*args, "--method", method])
        assert res.exit_code == 0, res.output
        frames[method] = pd.read_parquet(out)
    a, b = frames["dop853"], frames["auto"]
    for col in ("day_b_clear", "day_b_recon", "cmax", "b_cells_d182", "autoantibody_d182"):
        assert b[col].to_numpy() == pytest.approx(a[col].to_numpy(), rel=1e-4, abs=1e-3), col


def test_cli_simulate_b_cell_thresholds_are_settings(tmp_path):
    days = {}
    for label, extra in (("default", []), ("recon50", ["--b-threshold", "recon=50"])):
        out = tmp_path / f"{label}.parquet"
        args = ["simulate", "--patients", "10", "--seed", "6", "--years", "1", "--out", str(out)]
        res = CliRunner().invoke(app, [*args, *extra])
        assert res.exit_code == 0, res.output
        days[label] = pd.read_parquet(out)["day_b_recon"].to_numpy()
    ok = ~np.isnan(days["recon50"])
    assert ok.any()
    assert (days["recon50"][ok] > days["default"][ok]).all()  # 50/µL is reached later than 10/µL
