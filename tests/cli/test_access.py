"""Issue 13 items 1, 6 and 8 on the command line: ``--user`` authenticates, transfer, accounts."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from immunoreset.cli import app
from immunoreset.registry import Registry, system_actor
from tests.factories import small_course

runner = CliRunner()
PW = "correct horse battery"


def run(*args: str, **env: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, list(args), env=env, catch_exceptions=False)


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
        reg.add_user(admin, "rosa", "investigator", ["ROME"], password=PW)
        reg.add_user(admin, "root", "admin", [], password=PW)
    return path


def _state(db: str) -> tuple[object, ...]:
    with Registry(db, upgrade=True) as reg:
        admin = system_actor()
        return reg.list_patients(admin), reg.count_rows(), reg.list_users()


def test_user_without_password_is_refused(db: str) -> None:
    before = _state(db)
    result = run(
        "patient",
        "transfer",
        "ER-001",
        "--to",
        "ROME",
        "--reason",
        "x",
        "--db",
        db,
        "--user",
        "root",
    )
    assert result.exit_code == 1 and "needs root's password" in result.output
    wrong = run("patients", "--db", db, "--user", "rosa", IMMUNORESET_PASSWORD="guess guess")
    assert wrong.exit_code == 1 and "wrong password" in wrong.output
    assert "RM-001" not in wrong.output and "Traceback" not in wrong.output
    assert _state(db) == before


def test_user_with_password_or_token_acts_as_that_user(db: str) -> None:
    ok = run("patients", "--db", db, "--user", "rosa", IMMUNORESET_PASSWORD=PW)
    assert ok.exit_code == 0 and "RM-001" in ok.output and "ER-001" not in ok.output
    token = run(
        "token",
        "create",
        "rosa",
        "--label",
        "lab",
        "--db",
        db,
        "--user",
        "rosa",
        IMMUNORESET_PASSWORD=PW,
    ).output.strip()
    via_token = run("patients", "--db", db, "--user", "rosa", IMMUNORESET_TOKEN=token)
    assert via_token.exit_code == 0 and "RM-001" in via_token.output
    # a token is only good for its own user
    stolen = run("patients", "--db", db, "--user", "root", IMMUNORESET_TOKEN=token)
    assert stolen.exit_code == 1 and "not a live API token of root" in stolen.output


def test_token_for_someone_else_needs_an_admin(db: str) -> None:
    before = _state(db)
    result = run("token", "create", "root", "--db", db, "--user", "rosa", IMMUNORESET_PASSWORD=PW)
    assert result.exit_code == 1 and "only an admin" in result.output
    assert _state(db) == before


def test_token_list_and_revoke(db: str) -> None:
    token = run("token", "create", "rosa", "--label", "lab", "--db", db).output.strip()
    listing = run("token", "list", "--db", db)
    assert "lab" in listing.output and token not in listing.output
    assert run("token", "revoke", "1", "--reason", "rotated", "--db", db).exit_code == 0
    dead = run("patients", "--db", db, "--user", "rosa", IMMUNORESET_TOKEN=token)
    assert dead.exit_code == 1


def test_transfer_admin_only_and_audited(db: str) -> None:
    before = _state(db)
    denied = run(
        "patient",
        "transfer",
        "ER-001",
        "--to",
        "ROME",
        "--reason",
        "referral",
        "--db",
        db,
        "--user",
        "rosa",
        IMMUNORESET_PASSWORD=PW,
    )
    assert denied.exit_code == 1 and "only an admin" in denied.output
    assert _state(db) == before
    ok = run(
        "patient",
        "transfer",
        "ER-001",
        "--to",
        "ROME",
        "--reason",
        "referral",
        "--db",
        db,
        "--user",
        "root",
        IMMUNORESET_PASSWORD=PW,
    )
    assert ok.exit_code == 0 and "moved from ERLANGEN to ROME" in ok.output
    with Registry(db, upgrade=True) as reg:
        entry = reg.audit_trail(system_actor(), study_id="ER-001", limit=1)[0]
    assert (entry["username"], entry["field"]) == ("root", "site")
    assert entry["reason"] == "patient transfer: referral"


def test_local_admin_is_named_as_such_in_the_audit(db: str) -> None:
    assert (
        run(
            "patient", "transfer", "ER-001", "--to", "ROME", "--reason", "moved", "--db", db
        ).exit_code
        == 0
    )
    with Registry(db, upgrade=True) as reg:
        entry = reg.audit_trail(system_actor(), study_id="ER-001", limit=1)[0]
    assert entry["username"].startswith("local:")


def test_local_admin_needs_a_sqlite_file(postgres_url: str) -> None:
    Registry(postgres_url, upgrade=True).close()
    result = run(
        "patient", "transfer", "ER-001", "--to", "ROME", "--reason", "x", "--db", postgres_url
    )
    assert result.exit_code == 1 and "not a SQLite file" in result.output


def test_user_unlock_passwd_deactivate(db: str) -> None:
    from immunoreset.registry.logins import authenticate

    with Registry(db, upgrade=True) as reg:
        for _ in range(6):
            authenticate(reg, "rosa", "guess guess", client="cli:x@y")
    assert (
        run(
            "user", "unlock", "rosa", "--db", db, "--user", "rosa", IMMUNORESET_PASSWORD=PW
        ).exit_code
        == 1
    )
    assert "cleared" in run("user", "unlock", "rosa", "--db", db).output
    changed = run(
        "user",
        "passwd",
        "rosa",
        "--password",
        "another horse 42",
        "--db",
        db,
        "--user",
        "rosa",
        IMMUNORESET_PASSWORD=PW,
    )
    assert changed.exit_code == 0, changed.output
    assert (
        run(
            "patients", "--db", db, "--user", "rosa", IMMUNORESET_PASSWORD="another horse 42"
        ).exit_code
        == 0
    )
    before = _state(db)
    coup = run(
        "user",
        "deactivate",
        "root",
        "--reason",
        "coup",
        "--db",
        db,
        "--user",
        "rosa",
        IMMUNORESET_PASSWORD="another horse 42",
    )
    assert coup.exit_code == 1 and _state(db) == before
    assert run("user", "deactivate", "rosa", "--reason", "left", "--db", db).exit_code == 0
    assert (
        run(
            "patients", "--db", db, "--user", "rosa", IMMUNORESET_PASSWORD="another horse 42"
        ).exit_code
        == 1
    )
