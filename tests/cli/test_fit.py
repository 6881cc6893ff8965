"""fit, forecast, export nonmem, export model end to end through the CLI."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from immunoreset.cli import app
from immunoreset.interop.nonmem import read_nonmem
from immunoreset.registry import Registry, system_actor
from tests.factories import small_course

runner = CliRunner()
ADMIN = system_actor()
THEOPH = Path(__file__).parents[1] / "fixtures" / "theoph.csv"


def run(*args: object):  # type: ignore[no-untyped-def]
    return runner.invoke(app, [str(a) for a in args], env={}, catch_exceptions=False)


@pytest.fixture
def db(tmp_path: Path) -> str:
    path = str(tmp_path / "cli.db")
    with Registry(path) as reg:
        reg.add_site(ADMIN, "ROME", "Bambino Gesù")
        reg.save_courses(ADMIN, [small_course("RM-001"), small_course("RM-002")], reason="entry")
    return path


def test_export_nonmem_writes_data_definition_and_audits(db: str, tmp_path: Path) -> None:
    out = tmp_path / "nm.csv"
    result = run("export", "nonmem", out, "--db", db)
    assert result.exit_code == 0, result.output
    assert "2 individuals" in result.output
    frame = read_nonmem(out, allow_predose=True)
    assert set(frame.USUBJID) == {"RM-001", "RM-002"}
    assert (tmp_path / "nm.define.csv").exists()
    with Registry(db) as reg:
        trail = reg.audit_trail(ADMIN, study_id="RM-001")
    assert any(t["action"] == "export" and t["field"] == "nonmem" for t in trail)


def test_fit_from_file_and_forecast_errors(tmp_path: Path, db: str) -> None:
    out = tmp_path / "theo"
    result = run(
        "fit", "--data", THEOPH, "--model", "pk_1cmt_oral", "--out", out, "--vpc-reps", "20"
    )
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "converged" in text and "OFV 116.8" in text
    params = pd.read_csv(out / "parameters.csv")
    assert params.name.tolist()[-1] == "add_sd"
    # a pk fit has no registry compartments: one clear line, no traceback
    result = run("forecast", "RM-001", "--fit", out, "--db", db)
    assert result.exit_code == 1 and "pk_1cmt_oral" in result.output
    assert "Traceback" not in result.output
    result = run("forecast", "RM-001", "--fit", tmp_path / "nowhere", "--db", db)
    assert result.exit_code == 1 and "fit.json" in result.output


def test_fit_bad_data_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("ID,TIME,DV,AMT,EVID\n1,0,.,100,1\n1,one,3.2,0,0\n")
    result = run("fit", "--data", bad, "--model", "pk_1cmt_oral", "--out", tmp_path / "o")
    assert result.exit_code == 1
    assert "bad.csv, row 3, column TIME" in result.output and "Traceback" not in result.output
    result = run("fit", "--data", THEOPH, "--model", "pk_9cmt", "--out", tmp_path / "o")
    assert result.exit_code == 1 and "pk_1cmt_oral" in result.output


def test_export_model_code(tmp_path: Path) -> None:
    result = run("export", "model", "--format", "mrgsolve")
    assert result.exit_code == 0 and "$ODE" in result.output
    out = tmp_path / "m.R"
    result = run("export", "model", "--format", "nlmixr2", "--model", "stein2019", "--out", out)
    assert result.exit_code == 0 and "d/dt(E)" in out.read_text()
    result = run("export", "model", "--format", "monolix")
    assert result.exit_code == 1 and "nlmixr2" in result.output
