"""CSV import/export: precise all-or-nothing errors, idempotent re-import, lossless round trip."""

from __future__ import annotations

import csv
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from immunoreset.errors import InvalidInput
from immunoreset.registry import Registry, system_actor
from immunoreset.registry.csvio import export_csv, import_csv
from tests.factories import day, small_course

ADMIN = system_actor("tester")


@pytest.fixture
def source(tmp_path: Path) -> Iterator[Path]:
    """A folder exported from a registry holding two small courses."""
    with Registry(str(tmp_path / "src.db"), upgrade=True) as reg:
        reg.add_site(ADMIN, "ROME", "Bambino Gesù")
        reg.add_site(ADMIN, "ERLANGEN", "Erlangen")
        reg.save_courses(
            ADMIN, [small_course("RM-001"), small_course("ER-001", "ERLANGEN")], reason="entry"
        )
        export_csv(reg, ADMIN, tmp_path / "export")
    yield tmp_path / "export"


def _edit(folder: Path, name: str, row: int, column: str, value: str) -> None:
    path = folder / name
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    rows[row - 2][column] = value
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def test_export_import_is_lossless(source: Path, db_url: str) -> None:
    with Registry(db_url, upgrade=True) as reg:
        stats = import_csv(reg, ADMIN, source)
        assert stats.inserted["patients"] == 2
        assert reg.load_course(ADMIN, "RM-001") == small_course("RM-001")
        assert reg.load_course(ADMIN, "ER-001") == small_course("ER-001", "ERLANGEN")
        again = source.parent / "again"
        export_csv(reg, ADMIN, again)
    for f in sorted(source.iterdir()):
        assert f.read_text() == (again / f.name).read_text(), f.name


def test_reimport_changes_nothing(source: Path, sqlite_url: str) -> None:
    with Registry(sqlite_url, upgrade=True) as reg:
        import_csv(reg, ADMIN, source)
        before = reg.count_rows()
        stats = import_csv(reg, ADMIN, source)
        assert stats.total_inserted == 0 and stats.total_updated == 0
        assert reg.count_rows() == before


def test_reimport_with_a_correction_updates_and_audits(source: Path, sqlite_url: str) -> None:
    with Registry(sqlite_url, upgrade=True) as reg:
        import_csv(reg, ADMIN, source)
        _edit(source, "labs.csv", 2, "value", "555.0")
        stats = import_csv(reg, ADMIN, source, reason="corrected export")
        assert stats.total_updated == 1 and stats.total_inserted == 0
        entry = reg.audit_trail(ADMIN, limit=1)[0]
        assert entry["action"] == "update" and entry["field"] == "value"
        assert entry["new_value"] == "555.0"


@pytest.mark.parametrize(
    ("file", "row", "column", "value", "field"),
    [
        ("daily_assessments.csv", 3, "temperature_max_c", "55", "temperature_max_c"),
        ("daily_assessments.csv", 2, "temperature_max_c", "hot", "temperature_max_c"),
        ("daily_assessments.csv", 2, "oxygen_device", "helmet", "oxygen_device"),
        ("labs.csv", 3, "value", "-4", "value"),
        ("labs.csv", 2, "unit", "furlongs", "unit"),
        ("labs.csv", 2, "date", "2024-13-01", "date"),
        ("patients.csv", 2, "sex", "female", "sex"),
        ("anthropometrics.csv", 2, "weight_kg", "251", "weight_kg"),
        ("daily_assessments.csv", 2, "hypotension", "maybe", "hypotension"),
        ("labs.csv", 2, "study_id", "RM-999", "study_id"),
        ("infections.csv", 2, "ctcae_grade", "7", "ctcae_grade"),
        ("infections.csv", 2, "organism_class", "prion", "organism_class"),
        ("followup_visits.csv", 2, "visit", "M4", "visit"),
        ("daily_assessments.csv", 2, "anakinra", "maybe", "anakinra"),
        ("daily_assessments.csv", 2, "oxygen_flow_l_min", "3", "oxygen_flow_l_min"),
    ],
)
def test_import_error_is_precise_and_writes_nothing(
    source: Path, sqlite_url: str, file: str, row: int, column: str, value: str, field: str
) -> None:
    _edit(source, file, row, column, value)
    with Registry(sqlite_url, upgrade=True) as reg:
        reg.add_site(ADMIN, "ROME", "Bambino Gesù")
        before = reg.count_rows()
        with pytest.raises(InvalidInput) as info:
            import_csv(reg, ADMIN, source)
        err = info.value
        assert (err.file, err.row, err.column, err.field) == (file, row, column, field)
        assert value in str(err) or repr(value) in str(err)
        assert reg.count_rows() == before


def test_lab_units_converted_on_import(source: Path, sqlite_url: str) -> None:
    path = source / "labs.csv"
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    anc = next(r for r in rows if r["analyte"] == "anc")
    anc["value"], anc["unit"] = "0.48", "10^9/L"
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    with Registry(sqlite_url, upgrade=True) as reg:
        import_csv(reg, ADMIN, source)
        _days, values = reg.load_course(ADMIN, anc["study_id"]).lab_series("anc")
        assert values[0] == pytest.approx(480.0)


def test_missing_and_unknown_columns(source: Path, sqlite_url: str) -> None:
    text = (source / "labs.csv").read_text().replace("analyte", "analyt", 1)
    (source / "labs.csv").write_text(text)
    with Registry(sqlite_url, upgrade=True) as reg, pytest.raises(InvalidInput) as info:
        import_csv(reg, ADMIN, source)
    assert info.value.file == "labs.csv" and info.value.row == 1


def test_duplicate_key_in_file(source: Path, sqlite_url: str) -> None:
    lines = (source / "labs.csv").read_text().splitlines()
    (source / "labs.csv").write_text("\n".join([*lines, lines[1]]) + "\n")
    with Registry(sqlite_url, upgrade=True) as reg, pytest.raises(InvalidInput) as info:
        import_csv(reg, ADMIN, source)
    assert info.value.row == len(lines) + 1


def test_missing_folder(tmp_path: Path, sqlite_url: str) -> None:
    with Registry(sqlite_url, upgrade=True) as reg, pytest.raises(InvalidInput):
        import_csv(reg, ADMIN, tmp_path / "nope")
    empty = tmp_path / "empty"
    empty.mkdir()
    with Registry(sqlite_url, upgrade=True) as reg, pytest.raises(InvalidInput) as info:
        import_csv(reg, ADMIN, empty)
    assert "patients.csv" in str(info.value)
    shutil.rmtree(empty)


@pytest.mark.parametrize("parser", ["thread", "process"])
def test_both_parsers_import_the_same(source: Path, sqlite_url: str, parser: str) -> None:
    with Registry(sqlite_url, upgrade=True) as reg:
        stats = import_csv(reg, ADMIN, source, parser=parser)
        assert stats.inserted["labs"] == 8
        assert reg.load_course(ADMIN, "RM-001") == small_course("RM-001")
        again = import_csv(reg, ADMIN, source, parser=parser)
        assert again.total_inserted == 0 and again.total_updated == 0


def test_process_parser_error_is_located_and_rolled_back(source: Path, sqlite_url: str) -> None:
    _edit(source, "labs.csv", 3, "value", "-4")
    with Registry(sqlite_url, upgrade=True) as reg:
        before = reg.count_rows()
        with pytest.raises(InvalidInput) as info:
            import_csv(reg, ADMIN, source, parser="process")
        assert (info.value.file, info.value.row, info.value.column) == ("labs.csv", 3, "value")
        assert reg.count_rows() == before


def test_import_adds_records_to_an_existing_patient(source: Path, sqlite_url: str) -> None:
    with Registry(sqlite_url, upgrade=True) as reg:
        import_csv(reg, ADMIN, source)
        reg.delete_record(ADMIN, "RM-001", "labs", (day(2), "anc"), reason="test")
        stats = import_csv(reg, ADMIN, source, parser="thread")
        # a re-import never resurrects a soft-deleted record
        assert stats.total_updated == 0 and stats.total_inserted == 0
        assert stats.kept_deleted["labs"] == 1
        labs = reg.load_course(ADMIN, "RM-001").labs
        assert (day(2), "anc") not in {(lab.date, lab.analyte) for lab in labs}
        reg.restore_record(ADMIN, "RM-001", "labs", (day(2), "anc"), reason="deleted in error")
        assert reg.load_course(ADMIN, "RM-001") == small_course("RM-001")
        assert reg.audit_trail(ADMIN, study_id="RM-001", limit=1)[0]["action"] == "restore"


def test_the_parser_process_dies_with_a_killed_importer(source: Path, tmp_path: Path) -> None:
    """SIGKILL the importing process while its spawned parser runs: the parser exits too."""
    import os
    import signal
    import subprocess
    import sys
    import time

    script = f"""
import os, sys, time
from pathlib import Path
import immunoreset.registry.csvio as m
with m._batches("process", Path({str(source)!r}), {{"RM-001", "ER-001"}}, "sqlite", 1) as b:
    import multiprocessing
    print(multiprocessing.active_children()[0].pid, flush=True)
    time.sleep(60)
"""
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    with proc.stdout:
        child = int(proc.stdout.readline())
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 30  # the child may still be importing on a loaded machine
    while time.monotonic() < deadline:
        try:  # gone, or a zombie waiting for init to reap it
            if Path(f"/proc/{child}/stat").read_text().split(") ")[1][0] in "ZX":
                break
        except (FileNotFoundError, ProcessLookupError):
            break
        time.sleep(0.1)
    else:
        os.kill(child, signal.SIGKILL)
        raise AssertionError("the parser process outlived its killed parent")


def test_a_killed_parser_process_fails_the_import_instead_of_hanging(
    source: Path, db_url: str
) -> None:
    """The parser process is SIGKILLed (as the OOM killer would) mid-import: the importer stops
    waiting for its batches, says so in one line, and rolls back — nothing is written."""
    import multiprocessing
    import os
    import signal
    import time

    from immunoreset.registry.csvio import ParserDied

    killed = []

    def kill_parser(_rows: int) -> None:  # called once for the patients, then per batch
        children = multiprocessing.active_children()
        if children and not killed:
            os.kill(children[0].pid, signal.SIGKILL)
            killed.append(children[0].pid)

    with Registry(db_url, upgrade=True) as reg:
        before = reg.count_rows()
        t0 = time.monotonic()
        with pytest.raises(ParserDied, match=r"parser process ended unexpectedly.*nothing was"):
            import_csv(reg, ADMIN, source, parser="process", batch_rows=1, progress=kill_parser)
        assert killed and time.monotonic() - t0 < 120
        assert reg.count_rows() == before
        assert reg.list_patients(ADMIN) == []


def test_blank_assessment_row_is_refused_naming_row(source: Path, sqlite_url: str) -> None:
    """Issue #12 item 4: a blank day is "not assessed", refused on import like on the web."""
    _edit(source, "daily_assessments.csv", 2, "temperature_max_c", "")
    _edit(source, "daily_assessments.csv", 2, "ice_score", "")
    with Registry(sqlite_url, upgrade=True) as reg:
        reg.add_site(ADMIN, "ROME", "Bambino Gesù")
        before = reg.count_rows()
        with pytest.raises(InvalidInput) as info:
            import_csv(reg, ADMIN, source)
        err = info.value
        assert (err.file, err.row, err.field) == ("daily_assessments.csv", 2, "observations")
        assert "blank assessment" in str(err) and reg.count_rows() == before


def test_blank_assessment_is_refused_by_every_registry_writer(sqlite_url: str) -> None:
    from immunoreset.course import DailyAssessment

    with Registry(sqlite_url, upgrade=True) as reg:
        reg.add_site(ADMIN, "ROME", "Bambino Gesù")
        reg.save_course(ADMIN, small_course(), reason="entry")
        with pytest.raises(InvalidInput) as info:
            reg.add_record(
                ADMIN, "RM-001", "daily_assessments", DailyAssessment(date=day(5)), reason="web"
            )
        assert info.value.field == "observations"
        with pytest.raises(InvalidInput):
            reg.update_record(
                ADMIN,
                "RM-001",
                "daily_assessments",
                (day(1),),
                {"temperature_max_c": None, "ice_score": None},
                reason="edit",
            )
