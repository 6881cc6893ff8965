"""``immunoreset trial``: runs a small design, refuses bad input with one line and exit 1."""

from __future__ import annotations

import yaml
from typer.testing import CliRunner

from immunoreset.cli import app

DESIGN = {
    "name": "cli",
    "seed": 3,
    "replicates": 3,
    "patients_per_arm": 4,
    "sample_days": [0, 7, 28, 182, 365],
    "arms": [{"name": "A", "dose_per_kg": 1e6}, {"name": "B", "flat_dose": 3e7}],
    "success": {"conditions": [{"arm": "A", "endpoint": "b_clear_d7", "min_proportion": 0.5}]},
}


def _write(tmp_path, design):
    f = tmp_path / "design.yaml"
    f.write_text(yaml.safe_dump(design))
    return f


def test_trial_writes_outputs_and_prints_probability(tmp_path):
    out = tmp_path / "out"
    r = CliRunner().invoke(app, ["trial", str(_write(tmp_path, DESIGN)), "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "Probability of success" in r.output
    for name in ("summary.csv", "replicates.parquet", "trial.html"):
        assert (out / name).is_file()
    again = tmp_path / "again"
    r = CliRunner().invoke(
        app, ["trial", str(_write(tmp_path, DESIGN)), "--out", str(again), "--seed", "3"]
    )
    assert r.exit_code == 0
    assert (out / "summary.csv").read_bytes() == (again / "summary.csv").read_bytes()


def test_bad_design_is_one_line_naming_the_path(tmp_path):
    bad = {**DESIGN, "arms": [{"name": "A", "dose_per_kg": 1e6}, {"name": "B", "dose_per_kg": 0}]}
    r = CliRunner().invoke(app, ["trial", str(_write(tmp_path, bad)), "--out", str(tmp_path)])
    assert r.exit_code == 1
    assert "arms[1].dose_per_kg" in r.output
    assert "Traceback" not in r.output
    assert not (tmp_path / "summary.csv").exists()


def test_missing_file_and_exclusive_options(tmp_path):
    r = CliRunner().invoke(app, ["trial", str(tmp_path / "none.yaml")])
    assert r.exit_code == 1 and "Traceback" not in r.output
    f = _write(tmp_path, DESIGN)
    r = CliRunner().invoke(app, ["trial", str(f), "--workers", "2", "--scheduler", "tcp://x:1"])
    assert r.exit_code == 1 and "exclude each other" in r.output
