"""One rule set on every entry path: the attacks of issue 14, each through the CSV importer,
the repository's save (demo, web forms, API, interop importers) and the GMP infusion."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from immunoreset.errors import ChainOfIdentityError, InvalidInput
from immunoreset.registry import Registry, system_actor
from immunoreset.registry.audit import verify
from immunoreset.registry.csvio import export_csv, import_csv
from immunoreset.registry.rules import RuleViolation
from tests.factories import DAY0, day, small_course

ADMIN = system_actor("tester")


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


def _edit(folder: Path, name: str, match: dict[str, str], column: str, value: str) -> int:
    """Set ``column`` of the first row matching ``match``; returns its line number."""
    path = folder / name
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    found = next(i for i, row in enumerate(rows) if all(row[k] == v for k, v in match.items()))
    rows[found][column] = value
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return found + 2


def _append(folder: Path, name: str, values: dict[str, str]) -> int:
    path = folder / name
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    rows.append({**rows[0], **values})
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return len(rows) + 1


RM = {"study_id": "RM-001"}
ER = {"study_id": "ER-001"}
ATTACKS = {
    "another patient's bag": (
        "infusions.csv", RM, "bag_ids", "BG-ER001-2", "wrong_patient"),
    "a nonexistent bag": ("infusions.csv", RM, "bag_ids", "BG-NOPE", "unknown_bag"),
    "a quarantined bag": (
        "bags.csv", {**RM, "bag_id": "BG-RM001-1"}, "status", "quarantined", "not_released"),
    "a bag of a failed batch": (
        "batches.csv", RM, "status", "failed", "batch_not_released"),
    "one bag into two patients": (
        "infusions.csv", ER, "bag_ids", "BG-ER001-1;BG-RM001-1", "wrong_patient"),
    "a bag of another patient's batch": (
        "bags.csv", {**RM, "bag_id": "BG-RM001-2"}, "batch_id", "BT-ER001", "wrong_patient"),
    "a batch of another patient's apheresis": (
        "batches.csv", RM, "apheresis_id", "AP-ER001", "wrong_patient"),
    "a batch of a nonexistent apheresis": (
        "batches.csv", RM, "apheresis_id", "AP-NOPE", "unknown_apheresis"),
    "an expired bag": (
        "bags.csv", {**RM, "bag_id": "BG-RM001-1"}, "expiry", day(-1).isoformat(), "expired"),
    "an infusion before the harvest": (
        "batches.csv", RM, "harvest_date", day(3).isoformat(), "implausible_date"),
}  # fmt: skip


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_csv_import_refuses_what_infuse_refuses(source: Path, db_url: str, attack: str) -> None:
    name, match, column, value, reason = ATTACKS[attack]
    line = _edit(source, name, match, column, value)
    with Registry(db_url, upgrade=True) as reg:
        before = reg.count_rows()
        with pytest.raises(RuleViolation) as info:
            import_csv(reg, ADMIN, source)
        err = info.value
        assert err.reason == reason
        assert err.file is not None and err.row is not None and err.column
        text = str(err)
        assert text.startswith(f"{err.file}, row {err.row}, column {err.column}: "), text
        if err.file == name:  # refused at the edited row (else at the infusion using it)
            assert (err.row, err.column) == (line, column)
        else:
            assert err.file == "infusions.csv"
        assert reg.count_rows() == before  # nothing written
        assert verify(reg.engine).ok


def test_the_same_bag_twice_for_one_patient(source: Path, sqlite_url: str) -> None:
    line = _append(
        source,
        "infusions.csv",
        {"study_id": "RM-001", "date": day(30).isoformat(), "bag_ids": "BG-RM001-1"},
    )
    with Registry(sqlite_url, upgrade=True) as reg, pytest.raises(RuleViolation) as info:
        import_csv(reg, ADMIN, source)
    assert info.value.reason == "already_infused"
    assert (info.value.file, info.value.column) == ("infusions.csv", "bag_ids")
    assert info.value.row in (line, 3)


def test_a_bag_id_owned_by_another_patient_is_located(source: Path, db_url: str) -> None:
    with Registry(db_url, upgrade=True) as reg:
        import_csv(reg, ADMIN, source)
        line = _edit(source, "bags.csv", {"bag_id": "BG-ER001-2"}, "study_id", "RM-001")
        before = reg.count_rows()
        with pytest.raises(RuleViolation) as info:
            import_csv(reg, ADMIN, source)
        assert (info.value.file, info.value.row, info.value.column) == ("bags.csv", line, "bag_id")
        assert "already belongs to another patient" in str(info.value)
        assert reg.count_rows() == before


def test_an_unknown_site_is_located(source: Path, sqlite_url: str) -> None:
    line = _edit(source, "patients.csv", RM, "site", "NOWHERE")
    with Registry(sqlite_url, upgrade=True) as reg, pytest.raises(InvalidInput) as info:
        import_csv(reg, ADMIN, source)
    assert (info.value.file, info.value.row, info.value.column) == ("patients.csv", line, "site")


# ----------------------------------------------------------------------------- other paths
def _attacked_course(attack: str):  # type: ignore[no-untyped-def]
    co = small_course("RM-001")
    bag1, bag2 = co.bags
    if attack == "quarantined":
        return dataclasses.replace(co, bags=(dataclasses.replace(bag1, status="quarantined"), bag2))
    if attack == "failed batch":
        return dataclasses.replace(
            co, batches=(dataclasses.replace(co.batches[0], status="failed"),)
        )
    if attack == "unknown bag":
        inf = dataclasses.replace(co.infusions[0], bag_ids=("BG-NOPE",))
        return dataclasses.replace(co, infusions=(inf,))
    raise AssertionError(attack)


@pytest.mark.parametrize("attack", ["quarantined", "failed batch", "unknown bag"])
def test_save_courses_refuses_the_same(db_url: str, attack: str) -> None:
    """The repository save (used by the demo, web forms, API and interop importers)."""
    with Registry(db_url, upgrade=True) as reg:
        reg.add_site(ADMIN, "ROME", "Rome")
        before = reg.count_rows()
        with pytest.raises(RuleViolation):
            reg.save_course(ADMIN, _attacked_course(attack), reason="attack")
        assert reg.count_rows() == before


def test_single_record_edits_go_through_the_rules(sqlite_url: str) -> None:
    with Registry(sqlite_url, upgrade=True) as reg:
        reg.add_site(ADMIN, "ROME", "Rome")
        reg.save_course(ADMIN, small_course("RM-001"), reason="entry")
        with pytest.raises(RuleViolation, match="quarantined"):
            reg.update_record(
                ADMIN, "RM-001", "bags", ("BG-RM001-1",), {"status": "quarantined"}, reason="x"
            )
        with pytest.raises(ChainOfIdentityError):
            reg.add_record(
                ADMIN,
                "RM-001",
                "infusions",
                __import__("immunoreset.course", fromlist=["Infusion"]).Infusion(
                    date=DAY0 + dt.timedelta(days=40), bag_ids=("BG-RM001-1",),
                    dose_cells_per_kg=1e6,
                ),
                reason="second use",
            )  # fmt: skip
        assert reg.load_course(ADMIN, "RM-001") == small_course("RM-001")


# ----------------------------------------------------------------------------- files
def test_an_unknown_file_is_an_error(source: Path, sqlite_url: str) -> None:
    (source / "labs.csv").rename(source / "lab.csv")
    with Registry(sqlite_url, upgrade=True) as reg, pytest.raises(InvalidInput) as info:
        import_csv(reg, ADMIN, source)
    assert info.value.file == "lab.csv" and "unknown file 'lab.csv'" in str(info.value)


def test_utf16_binary_and_bad_bytes_are_located(source: Path, sqlite_url: str) -> None:
    labs = source / "labs.csv"
    text = labs.read_text()
    with Registry(sqlite_url, upgrade=True) as reg:
        labs.write_bytes(text.encode("utf-16"))
        with pytest.raises(InvalidInput, match=r"labs.csv, row 1: the file is UTF-16"):
            import_csv(reg, ADMIN, source)
        lines = text.splitlines(keepends=True)
        labs.write_bytes("".join(lines[:3]).encode() + b"x\x00y\n" + "".join(lines[3:]).encode())
        with pytest.raises(InvalidInput, match=r"labs.csv, row 4: binary data"):
            import_csv(reg, ADMIN, source)
        # not UTF-8 yet holding UTF-8 text: a damaged file, not a Windows-1252 one
        labs.write_bytes("".join(lines[:2]).encode() + "é".encode() + b"\xe9t\xe9\n")
        with pytest.raises(InvalidInput, match=r"labs.csv, row 3: byte 0xe9 is not UTF-8"):
            import_csv(reg, ADMIN, source)
        assert reg.count_rows()["patients"] == 0


def test_over_long_cells_are_located(source: Path, sqlite_url: str) -> None:
    line = _edit(source, "labs.csv", RM, "unit", "x" * 300)
    with Registry(sqlite_url, upgrade=True) as reg:
        with pytest.raises(InvalidInput) as info:
            import_csv(reg, ADMIN, source)
        assert (info.value.file, info.value.row, info.value.column) == ("labs.csv", line, "unit")
        assert "at most 200 characters" in str(info.value)
        _edit(source, "labs.csv", RM, "unit", "x" * 20_000)
        with pytest.raises(InvalidInput, match=r"labs.csv, row \d+: malformed CSV: a cell longer"):
            import_csv(reg, ADMIN, source)
