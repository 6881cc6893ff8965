"""The interop commands end to end: export → import round trips, refusals as clear errors."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from typer.testing import CliRunner

from immunoreset.cli import app
from immunoreset.registry import Registry, system_actor
from tests.factories import small_course

runner = CliRunner()
ADMIN = system_actor()


def run(*args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, [str(a) for a in args], env={}, catch_exceptions=False)


@pytest.fixture
def db(tmp_path: Path) -> str:
    path = str(tmp_path / "cli.db")
    with Registry(path, upgrade=True) as reg:
        reg.add_site(ADMIN, "ROME", "Bambino Gesù")
        reg.add_site(ADMIN, "ERLANGEN", "Erlangen")
        reg.save_courses(
            ADMIN, [small_course("RM-001"), small_course("ER-001", "ERLANGEN")], reason="entry"
        )
    return path


def _courses(db: str) -> list:
    with Registry(db, upgrade=True) as reg:
        return list(reg.iter_courses(ADMIN))


def test_fhir_export_import(db: str, tmp_path: Path) -> None:
    out = tmp_path / "fhir"
    result = run("export", "fhir", out, "--db", db, "--validate")
    assert result.exit_code == 0, result.output
    assert "2 bundles" in result.output
    copy = str(tmp_path / "copy.db")
    assert run("db", "upgrade", "--db", copy).exit_code == 0  # a new, empty registry
    result = run("import", "fhir", out, "--db", copy)
    assert result.exit_code == 0, result.output
    assert _courses(copy) == _courses(db)  # every collection, infections and visits included
    one = tmp_path / "one"
    assert run("export", "fhir", one, "--db", db, "--patient", "ER-001").exit_code == 0
    assert [p.name for p in one.iterdir()] == ["ER-001.json"]


def test_fhir_unknown_patient_is_one_line(db: str, tmp_path: Path) -> None:
    result = run("export", "fhir", tmp_path / "x", "--db", db, "--patient", "RM-999")
    assert result.exit_code == 1 and "RM-999" in result.output
    assert "Traceback" not in result.output


def test_redcap_export_import_and_refusal(db: str, tmp_path: Path) -> None:
    out = tmp_path / "redcap"
    result = run("export", "redcap", out, "--db", db, "--labels")
    assert result.exit_code == 0, result.output
    copy = str(tmp_path / "copy.db")
    assert run("db", "upgrade", "--db", copy).exit_code == 0  # a new, empty registry
    args = ("import", "redcap", out / "records.csv", "--db", copy)
    assert run(*args, "--dictionary", out / "dictionary.csv").exit_code == 0
    assert _courses(copy) == _courses(db)
    rows = list(csv.DictReader((out / "records.csv").read_text("utf-8").splitlines()))
    rows[0]["birth_month"] = "14"
    with (out / "records.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    empty = str(tmp_path / "empty.db")
    assert run("db", "upgrade", "--db", empty).exit_code == 0
    result = run("import", "redcap", out / "records.csv", "--db", empty)
    assert result.exit_code == 1
    assert "record ER-001" in result.output and "birth_month" in result.output
    assert "Traceback" not in result.output
    with Registry(empty, upgrade=True) as reg:
        assert reg.count_rows()["patients"] == 0


def test_sdtm_export(db: str, tmp_path: Path) -> None:
    out = tmp_path / "sdtm"
    result = run("export", "sdtm", out, "--db", db, "--study", "TRIAL1")
    assert result.exit_code == 0, result.output
    assert {p.name for p in out.glob("*.xpt")} >= {"dm.xpt", "lb.xpt", "zp.xpt"}
    assert (out / "define.xml").exists()
    assert "TRIAL1-RM-001" in (out / "dm.csv").read_text("utf-8")
    assert (out / "fa.csv").read_text("utf-8").count("TRIAL1-RM-001") > 0  # daily findings


def test_sdtm_export_refuses_bad_workers(db: str, tmp_path: Path) -> None:
    result = run("export", "sdtm", tmp_path / "s", "--db", db, "--workers", "0")
    assert result.exit_code == 1
    assert "workers" in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
