"""``immunoreset simulate``: a small virtual cohort, its summary table, Parquet file and plot."""

from __future__ import annotations

import pandas as pd
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
