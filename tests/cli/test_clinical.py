"""``immunoreset grades`` and ``immunoreset followup due`` end to end."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from immunoreset.cli import app
from immunoreset.registry import Registry, system_actor
from tests.factories import small_course

runner = CliRunner()


def run(*args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, list(args), env={}, catch_exceptions=False)


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


def test_followup_due_and_overdue_by_site(db: str) -> None:
    # infusion 2024-03-01: D28 done; M3 due 2024-06-01, window 2024-05-18 – 2024-06-15
    due = run("followup", "due", "--db", db, "--today", "2024-06-09", "--site", "ROME")
    assert due.exit_code == 0, due.output
    assert "RM-001" in due.output and "ER-001" not in due.output
    assert "M3" in due.output and "0 overdue, 1 due" in due.output
    late = run("followup", "due", "--db", db, "--today", "2024-06-20")
    assert "2 overdue, 0 due" in late.output and "ER-001" in late.output


@pytest.mark.parametrize(
    ("args", "word"),
    [
        (("--today", "June"), "today"),
        (("--site", "PARIS"), "site"),
        (("--vector", "aav"), "vector"),
    ],
)
def test_followup_due_user_errors_are_one_line(db: str, args: tuple[str, ...], word: str) -> None:
    result = runner.invoke(app, ["followup", "due", "--db", db, *args])
    assert result.exit_code == 1
    assert word in result.output and "Traceback" not in result.output
