"""``immunoreset report`` on the main app: Typer options, paths printed, errors one line."""

from __future__ import annotations

from typer.testing import CliRunner

from immunoreset.cli import app


def test_report_command(demo_registry, tmp_path):
    db = str(demo_registry.engine.url.database)
    out = tmp_path / "rep"
    result = CliRunner().invoke(
        app, ["report", "--db", db, "--out", str(out), "--diagnosis", "SLE", "--no-pdf"]
    )
    assert result.exit_code == 0, result.output
    assert "case-series.html" in result.output
    assert (out / "case-series.html").exists()
    assert not (out / "case-series.pdf").exists()


def test_report_command_patient(demo_registry, tmp_path):
    db = str(demo_registry.engine.url.database)
    result = CliRunner().invoke(
        app, ["report", "--db", db, "--out", str(tmp_path), "--patient", "RM-003", "--no-pdf"]
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "patient-RM-003.html").exists()


def test_report_command_error_is_one_line(demo_registry, tmp_path):
    db = str(demo_registry.engine.url.database)
    result = CliRunner().invoke(
        app, ["report", "--db", db, "--out", str(tmp_path), "--patient", "RM-999"]
    )
    assert result.exit_code == 1
    assert "not found" in result.output
    assert "Traceback" not in result.output
