"""Every command, given a registry it cannot use, prints one line and exits 1 — no traceback.

The inputs of issue 17 item 10: a ``--db`` in a folder that does not exist, a folder, a CSV
file, an unsupported URL scheme, an unreachable PostgreSQL server, and a missing registry
(which must not be created empty). The commands are found by walking the Typer app, so a new
command is covered the day it is added.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from immunoreset.cli import app

runner = CliRunner()

#: Positional arguments that let each command reach the registry.
ARGS: dict[str, list[str]] = {
    "show": ["RM-001"],
    "grades": ["RM-001"],
    "trace": ["RM-001"],
    "dose": ["RM-001"],
    "site add": ["ROME", "Rome"],
    "user add": ["nurse"],
    "import csv": ["."],
    "export csv": ["out"],
    "token revoke": ["1"],
    "batch deviation approve": ["1"],
    "db restore": ["backup.db"],  # written by the test: a file, so the --db is what fails
}

#: Commands that only work on PostgreSQL: a SQLite-like --db gets that one line instead.
POSTGRES_ONLY = {"db roles"}
POSTGRES_ONLY_PHRASE = "must be a PostgreSQL registry"


def _commands(cmd=None, path=()):  # type: ignore[no-untyped-def]
    cmd = cmd or get_command(app)
    if hasattr(cmd, "commands"):
        for name, sub in cmd.commands.items():
            yield from _commands(sub, (*path, name))
    elif any("--db" in p.opts for p in cmd.params):
        yield " ".join(path), cmd


DB_COMMANDS = sorted(name for name, _ in _commands())


def _required_args(name: str) -> list[str]:
    cmd = dict(_commands())[name]
    args = list(ARGS.get(name, []))
    given = len(args)
    for p in cmd.params:
        if p.param_type_name == "argument" and p.required:
            if given:
                given -= 1
                continue
            args.append("RM-001")
        elif p.param_type_name == "option" and p.required:
            args += [p.opts[0], "1"]
    return args


def _bad_dbs(tmp: Path) -> dict[str, tuple[str, str]]:
    csv_file = tmp / "patients.csv"
    csv_file.write_text("study_id,site\nRM-001,ROME\n", encoding="utf-8")
    return {
        "missing folder": (str(tmp / "nope" / "reg.db"), "does not exist"),
        "a folder": (str(tmp), "is a folder"),
        "a CSV file": (str(csv_file), "not a registry"),
        "unsupported scheme": ("mysql://user@host/db", "unsupported database URL scheme"),
        "unreachable PostgreSQL": (
            "postgresql://nobody@127.0.0.1:9/none?connect_timeout=2",
            "cannot use the registry database",
        ),
    }


def test_every_registry_command_is_walked():
    assert {"patients", "show", "audit", "grades", "report", "import csv"} <= set(DB_COMMANDS)


@pytest.mark.parametrize("name", DB_COMMANDS)
def test_bad_db_is_one_line(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "backup.db").write_bytes(b"SQLite format 3\x00")
    args = _required_args(name)
    for case, (db, phrase) in _bad_dbs(tmp_path).items():
        if name == "demo" and case == "a folder":
            continue  # demo replaces its --db; covered by the other cases
        result = runner.invoke(app, [*name.split(), *args, "--db", db], env={})
        text = result.output
        assert result.exit_code == 1, f"{name} / {case}: exit {result.exit_code}\n{text}"
        assert "Traceback" not in text
        assert result.exception is None or isinstance(result.exception, SystemExit), (
            f"{name} / {case}: {result.exception!r}"
        )
        lines = [ln for ln in text.strip().splitlines() if ln.strip()]
        assert lines and lines[-1].startswith("error:"), f"{name} / {case}: {text}"
        if name in POSTGRES_ONLY and "PostgreSQL" not in case and "scheme" not in case:
            phrase = POSTGRES_ONLY_PHRASE
        assert phrase in " ".join(text.split()), f"{name} / {case}: {text}"


@pytest.mark.parametrize("name", [n for n in DB_COMMANDS if n not in ("demo", "db upgrade")])
def test_no_registry_is_not_created(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    creating = {"site add", "user add", "import csv", "serve", "db restore"}
    result = runner.invoke(app, [*name.split(), *_required_args(name)], env={})
    if name in creating:
        return  # these set a registry up; they may create it
    assert result.exit_code == 1, result.output
    if name in POSTGRES_ONLY:
        assert POSTGRES_ONLY_PHRASE in result.output
        return
    assert "no registry at" in result.output and "--db demo.db" in result.output
    assert not (tmp_path / "immunoreset.db").exists()


@pytest.mark.parametrize(
    ("args", "phrase"),
    [
        (["simulate", "--dose", "1e12"], "dose must be within 0–1e+09"),
        (["simulate", "--plot", "/nonexistent-folder/pi.png"], "does not exist"),
        (["simulate", "--plot", "pi.txt"], "must end in .png"),
        (["simulate", "--out", "/proc/x.parquet"], "cannot write there"),
    ],
)
def test_simulate_checks_before_the_run(args, phrase, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, [*args, "--patients", "1"], env={})
    assert result.exit_code == 1
    assert phrase in " ".join(result.output.split())
    assert "simulating" not in result.output  # refused before any work


def test_version_and_site_did_you_mean(demo_registry):
    from immunoreset import __version__

    assert runner.invoke(app, ["--version"]).output.strip() == f"immunoreset {__version__}"
    db = str(demo_registry.engine.url.database)
    ok = runner.invoke(app, ["patients", "--db", db, "--site", "rome", "--json"], env={})
    assert ok.exit_code == 0
    import json

    rows = json.loads(ok.output)
    assert rows and {r["site"] for r in rows} == {"ROME"}
    miss = runner.invoke(app, ["patients", "--db", db, "--site", "rone"], env={})
    assert miss.exit_code == 1 and "did you mean ROME?" in miss.output
    dx = runner.invoke(app, ["patients", "--db", db, "--diagnosis", "sle", "--json"], env={})
    assert {r["diagnosis"] for r in json.loads(dx.output)} == {"SLE"}


def test_help_shows_bracketed_defaults():
    result = runner.invoke(app, ["patients", "--help"], env={"COLUMNS": "200"})
    assert "[default: $IMMUNORESET_DB_URL or immunoreset.db]" in " ".join(result.output.split())
