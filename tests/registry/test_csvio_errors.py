"""The importer lists every problem, validates without writing, and reads declared formats.

Issue 17 item 11: every error (file, row, column, value, allowed) rather than only the
first; ``import csv --check`` validates without writing; Excel files (Windows-1252, ``;``,
decimal commas) and ``--date-format dd/mm/yyyy`` are read exactly — never guessed.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from immunoreset.cli import app
from immunoreset.errors import InvalidInput
from immunoreset.registry import Registry, system_actor
from immunoreset.registry.csvio import ImportErrors, ReadOptions, export_csv, import_csv
from immunoreset.registry.rules import RuleViolation
from tests.factories import small_course

ADMIN = system_actor()
ISO = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")


@pytest.fixture
def source(tmp_path: Path) -> Iterator[Path]:
    with Registry(str(tmp_path / "src.db"), upgrade=True) as reg:
        reg.add_site(ADMIN, "ROME", "Bambino Gesù")
        reg.add_site(ADMIN, "ERLANGEN", "Erlangen")
        reg.save_courses(
            ADMIN, [small_course("RM-001"), small_course("ER-001", "ERLANGEN")], reason="entry"
        )
        export_csv(reg, ADMIN, tmp_path / "export")
    yield tmp_path / "export"


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _write(path: Path, rows: list[dict[str, str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def _set(folder: Path, name: str, index: int, column: str, value: str) -> int:
    """Set ``column`` of data row ``index``; returns its line number (header = line 1)."""
    rows = _rows(folder / name)
    rows[index][column] = value
    _write(folder / name, rows)
    return index + 2


def _new_registry(tmp_path: Path, name: str = "new.db") -> Registry:
    reg = Registry(str(tmp_path / name), upgrade=True)
    reg.add_site(ADMIN, "ROME", "Bambino Gesù")
    reg.add_site(ADMIN, "ERLANGEN", "Erlangen")
    return reg


def test_every_problem_is_listed_with_its_place(source: Path, tmp_path: Path) -> None:
    temp = _set(source, "daily_assessments.csv", 0, "temperature_max_c", "55")
    lab_date = _set(source, "labs.csv", 1, "date", "2024-02-30")
    lab_value = _set(source, "labs.csv", 2, "value", "lots")
    stranger = _set(source, "labs.csv", 3, "study_id", "RM-999")
    with _new_registry(tmp_path) as reg:
        before = reg.count_rows()
        with pytest.raises(ImportErrors) as info:
            import_csv(reg, ADMIN, source)
        assert reg.count_rows() == before  # nothing written
    err = info.value
    assert err.total == 4 and len(err.errors) == 4
    places = [(e.file, e.row, e.column) for e in err.errors]
    assert places == [
        ("daily_assessments.csv", temp, "temperature_max_c"),
        ("labs.csv", lab_date, "date"),
        ("labs.csv", lab_value, "value"),
        ("labs.csv", stranger, "study_id"),
    ]
    assert "55" in str(err.errors[0]) and "'lots'" in str(err.errors[2])
    assert "a study ID listed in patients.csv" in str(err.errors[3])
    # it reads as its first problem, with the count of the others
    assert str(err).startswith(str(err.errors[0])) and str(err).endswith("(and 3 more problems)")
    assert (err.file, err.row, err.column) == places[0]


def test_one_problem_stays_a_plain_located_error(source: Path, tmp_path: Path) -> None:
    line = _set(source, "labs.csv", 0, "value", "-")
    with _new_registry(tmp_path) as reg, pytest.raises(InvalidInput) as info:
        import_csv(reg, ADMIN, source)
    assert type(info.value) is InvalidInput
    assert (info.value.file, info.value.row, info.value.column) == ("labs.csv", line, "value")


def test_a_bad_header_does_not_drown_the_file_in_row_errors(source: Path, tmp_path: Path) -> None:
    rows = _rows(source / "labs.csv")
    text = (source / "labs.csv").read_text().replace("analyte", "analyt", 1)
    (source / "labs.csv").write_text(text)
    _set(source, "daily_assessments.csv", 0, "temperature_max_c", "55")
    with _new_registry(tmp_path) as reg, pytest.raises(ImportErrors) as info:
        import_csv(reg, ADMIN, source)
    # the folder's files and headers are checked first, then the rows of readable files
    assert [(e.file, e.row) for e in info.value.errors] == [
        ("labs.csv", 1),
        ("daily_assessments.csv", 2),
    ]
    assert len(rows) > 3  # the labs rows were not each reported


def test_check_writes_nothing_and_predicts_the_import(source: Path, tmp_path: Path) -> None:
    with _new_registry(tmp_path) as reg:
        before = reg.count_rows()
        checked = import_csv(reg, ADMIN, source, check=True)
        assert reg.count_rows() == before
        assert reg.audit_trail(ADMIN, limit=1000) == reg.audit_trail(ADMIN, limit=1000)
        done = import_csv(reg, ADMIN, source)
    assert checked.total_inserted == done.total_inserted > 0
    assert checked.total_rows == done.total_rows


def test_check_applies_the_rules_that_need_the_registry(source: Path, tmp_path: Path) -> None:
    """A bag of another patient is found by --check (the write gate), and nothing is kept."""
    infusions = _rows(source / "infusions.csv")
    er = next(r for r in infusions if r["study_id"] == "ER-001")
    rm = next(i for i, r in enumerate(infusions) if r["study_id"] == "RM-001")
    bag_col = next(c for c in infusions[0] if "bag" in c)
    _set(source, "infusions.csv", rm, bag_col, er[bag_col])
    with _new_registry(tmp_path) as reg:
        before = reg.count_rows()
        with pytest.raises(RuleViolation) as info:
            import_csv(reg, ADMIN, source, check=True)
        assert reg.count_rows() == before
    assert info.value.file == "infusions.csv"


def _excel(folder: Path, out: Path) -> None:
    """``folder`` as German Excel writes it: cp1252, ';', decimal commas, dd.mm.yyyy dates."""
    out.mkdir()
    for path in folder.iterdir():
        with path.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(fh))
        fixed = [rows[0]]
        for row in rows[1:]:
            cells = []
            for v in row:
                m = ISO.match(v)
                if m:
                    v = f"{m[3]}.{m[2]}.{m[1]}"
                elif re.fullmatch(r"-?\d+\.\d+", v):
                    v = v.replace(".", ",")
                cells.append(v)
            fixed.append(cells)
        with (out / path.name).open("w", newline="", encoding="cp1252") as fh:
            csv.writer(fh, delimiter=";", lineterminator="\r\n").writerows(fixed)


def test_an_excel_folder_with_declared_dates_reads_exactly(source: Path, tmp_path: Path) -> None:
    excel = tmp_path / "excel"
    _excel(source, excel)
    assert "ù".encode("cp1252") in (excel / "sites.csv").read_bytes()
    with _new_registry(tmp_path, "a.db") as ref:
        import_csv(ref, ADMIN, source)
        expected = [ref.load_course(ADMIN, sid) for sid in ("RM-001", "ER-001")]
    with _new_registry(tmp_path, "b.db") as reg:
        with pytest.raises(InvalidInput, match="--date-format"):
            import_csv(reg, ADMIN, excel)  # undeclared: refused, never guessed
        assert reg.count_rows()["patients"] == 0
        import_csv(reg, ADMIN, excel, opts=ReadOptions(date_format="dd.mm.yyyy"))
        got = [reg.load_course(ADMIN, sid) for sid in ("RM-001", "ER-001")]
    assert got == expected
    assert got[0].infusions and isinstance(got[0].infusions[0].date, dt.date)


def test_a_damaged_utf8_file_is_not_read_as_windows_1252(source: Path, tmp_path: Path) -> None:
    labs = source / "labs.csv"
    labs.write_bytes(labs.read_bytes() + "RM-001,é\n".encode() + b"\xe9\n")
    with _new_registry(tmp_path) as reg, pytest.raises(InvalidInput) as info:
        import_csv(reg, ADMIN, source)
    assert info.value.file == "labs.csv" and "also holds UTF-8 text" in str(info.value)


runner = CliRunner()


def _db_with_sites(tmp_path: Path) -> str:
    db = str(tmp_path / "cli.db")
    _new_registry(tmp_path, "cli.db").close()
    return db


def test_cli_lists_every_problem_then_one_error_line(source: Path, tmp_path: Path) -> None:
    _set(source, "daily_assessments.csv", 0, "temperature_max_c", "55")
    _set(source, "labs.csv", 2, "value", "lots")
    db = _db_with_sites(tmp_path)
    result = runner.invoke(app, ["import", "csv", str(source), "--db", db], env={})
    assert result.exit_code == 1 and "Traceback" not in result.output
    lines = [ln.strip() for ln in result.output.strip().splitlines() if ln.strip()]
    assert lines[0].startswith("daily_assessments.csv, row 2, column temperature_max_c")
    assert lines[1].startswith("labs.csv, row 4, column value")
    assert lines[-1].startswith("error: 2 problems in") and "nothing was written" in lines[-1]


def test_cli_check_and_date_format(source: Path, tmp_path: Path) -> None:
    excel = tmp_path / "excel"
    _excel(source, excel)
    db = _db_with_sites(tmp_path)
    checked = runner.invoke(
        app, ["import", "csv", str(excel), "--db", db, "--check", "--date-format", "dd.mm.yyyy"],
        env={},
    )  # fmt: skip
    assert checked.exit_code == 0, checked.output
    assert "would be inserted" in checked.output and "nothing was written" in checked.output
    with Registry(db) as reg:
        assert reg.count_rows()["patients"] == 0
    bad = runner.invoke(app, ["import", "csv", str(excel), "--db", db, "--date-format", "d/m"])
    assert bad.exit_code == 1 and "--date-format" in bad.output and "dd/mm/yyyy" in bad.output
    done = runner.invoke(
        app, ["import", "csv", str(excel), "--db", db, "--date-format", "dd.mm.yyyy"], env={}
    )
    assert done.exit_code == 0, done.output
    with Registry(db) as reg:
        assert reg.count_rows()["patients"] == 2
