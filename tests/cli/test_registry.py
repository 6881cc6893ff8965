"""The command line: each registry command works end to end and user errors are one clear line."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from typer.testing import CliRunner

from immunoreset.cli import app
from immunoreset.registry import Registry, system_actor
from tests.factories import small_course

runner = CliRunner()


def run(*args: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    return runner.invoke(app, list(args), env=env or {}, catch_exceptions=False)


@pytest.fixture
def db(tmp_path: Path) -> str:
    path = str(tmp_path / "cli.db")
    with Registry(path, upgrade=True) as reg:
        admin = system_actor()
        reg.add_site(admin, "ROME", "Bambino Gesù")
        reg.add_site(admin, "ERLANGEN", "Erlangen")
        reg.save_courses(
            admin, [small_course("RM-001"), small_course("ER-001", "ERLANGEN")], reason="entry"
        )
    return path


def test_help_lists_commands() -> None:
    result = run("--help")
    assert result.exit_code == 0
    for command in ("demo", "import", "export", "patients", "show", "audit", "site", "user", "db"):
        assert command in result.output


def test_sites_users_and_scoping(db: str) -> None:
    assert run("site", "add", "MILANO", "Ospedale di Milano", "--db", db).exit_code == 0
    assert "MILANO" in run("site", "list", "--db", db).output
    result = run(
        "user",
        "add",
        "rosa",
        "--role",
        "investigator",
        "--site",
        "ROME",
        "--password",
        "correct horse",
        "--db",
        db,
    )
    assert result.exit_code == 0, result.output
    assert "rosa" in run("user", "list", "--db", db).output
    pw = {"IMMUNORESET_PASSWORD": "correct horse"}
    mine = run("patients", "--db", db, "--user", "rosa", env=pw).output
    assert "RM-001" in mine and "ER-001" not in mine
    other = run("show", "ER-001", "--db", db, "--user", "rosa", env=pw)
    assert other.exit_code == 1
    assert "not found" in other.output and "Traceback" not in other.output


def test_show_and_audit(db: str) -> None:
    result = run("show", "RM-001", "--db", db)
    assert result.exit_code == 0
    assert "day 0" in result.output and "labs" in result.output
    audit = run("audit", "RM-001", "--db", db, "--limit", "5")
    assert audit.exit_code == 0 and "insert" in audit.output


def test_export_import_round_trip(db: str, tmp_path: Path) -> None:
    out = tmp_path / "csv"
    assert run("export", "csv", str(out), "--db", db).exit_code == 0
    fresh = str(tmp_path / "fresh.db")
    refused = run("import", "csv", str(out), "--db", fresh)  # opening never creates a schema
    assert refused.exit_code == 1 and "immunoreset db upgrade" in refused.output
    assert run("db", "upgrade", "--db", fresh).exit_code == 0
    result = run("import", "csv", str(out), "--db", fresh)
    assert result.exit_code == 0, result.output
    assert "2 patients" in result.output
    again = run("import", "csv", str(out), "--db", fresh)
    assert "0 inserted, 0 updated" in again.output


def test_import_error_is_one_line(db: str, tmp_path: Path) -> None:
    out = tmp_path / "csv"
    run("export", "csv", str(out), "--db", db)
    path = out / "daily_assessments.csv"
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    rows[0]["temperature_max_c"] = "55"
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    assert run("db", "upgrade", "--db", str(tmp_path / "new.db")).exit_code == 0
    result = run("import", "csv", str(out), "--db", str(tmp_path / "new.db"))
    assert result.exit_code == 1
    assert "daily_assessments.csv, row 2, column temperature_max_c" in result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_db_stats_and_upgrade(db: str) -> None:
    assert run("db", "upgrade", "--db", db).exit_code == 0
    stats = run("db", "stats", "--db", db)
    assert "labs" in stats.output and "audit_log" in stats.output


def test_env_db_url(db: str) -> None:
    result = run("patients", env={"IMMUNORESET_DB_URL": db})
    assert "RM-001" in result.output


def test_grades_from_raw_observations(db: str) -> None:
    result = run("grades", "RM-001", "--db", db)
    assert result.exit_code == 0, result.output
    assert "low-flow" in result.output or "nasal cannula" in result.output
    assert "crs" in result.output and "ICAHT early" in result.output


def test_audit_verify_and_backup_restore_verify(db: str, tmp_path: Path) -> None:
    ok = run("audit", "verify", "--db", db)
    assert ok.exit_code == 0 and "audit trail intact: 44 rows" in ok.output
    file = tmp_path / "cli.backup"
    assert run("db", "backup", str(file), "--db", db).exit_code == 0
    assert run("db", "backup", str(file), "--db", db).exit_code == 1  # never overwritten
    new = str(tmp_path / "restored.db")
    assert run("db", "restore", str(file), "--db", new).exit_code == 0
    same = run("db", "verify", "--against", str(file), "--db", new)
    assert same.exit_code == 0 and "identical: yes" in same.output
    run("site", "add", "PARIS", "Necker", "--db", new)
    differs = run("db", "verify", "--against", str(file), "--db", new)
    assert differs.exit_code == 1 and "differ: audit_log, sites" in differs.output
    roles = run("db", "roles", "--db", db)
    assert roles.exit_code == 1 and "PostgreSQL" in roles.output


def test_demo_refuses_a_registry_with_real_data(tmp_path: Path) -> None:
    import dataclasses

    path = str(tmp_path / "live.db")
    with Registry(path, upgrade=True) as reg:
        reg.add_site(system_actor(), "ROME", "Rome")
        course = small_course("RM-001")
        patient = dataclasses.replace(course.patient, synthetic=False)
        real = dataclasses.replace(course, patient=patient)
        reg.save_course(system_actor(), real, reason="a real patient")
        rows = reg.count_rows()
    result = run("demo", "--db", path, "--out", str(tmp_path / "r"))
    assert result.exit_code == 1 and "1 patient(s) not marked synthetic" in result.output
    with Registry(path) as reg:
        assert reg.count_rows() == rows  # untouched, audit trail included


def test_read_commands_on_an_old_schema_name_the_upgrade(tmp_path: Path) -> None:
    from immunoreset.registry.db import make_engine, upgrade

    path = str(tmp_path / "old.db")
    engine = make_engine(path, migrate=False)
    upgrade(engine, "0003")
    engine.dispose()
    for args in (("patients",), ("db", "stats"), ("audit",)):
        result = run(*args, "--db", path)
        assert result.exit_code == 1
        assert "is at schema 0003" in result.output and "immunoreset db upgrade" in result.output
    assert run("db", "upgrade", "--db", path).exit_code == 0
    assert run("patients", "--db", path).exit_code == 0
