"""CSV export → import carries accounts (never credentials), GMP records and soft-deleted
records, losslessly: export → import into an empty registry → export gives the same files, and
a second import changes nothing (both databases)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import sqlalchemy as sa

from immunoreset.errors import InvalidInput, PermissionDenied
from immunoreset.manufacturing import HospitalExemption, RequiredReport
from immunoreset.registry import Registry
from immunoreset.registry import schema as s
from immunoreset.registry.audit import verify
from immunoreset.registry.csvio import export_csv, import_csv
from immunoreset.registry.gmp import Gmp
from tests.factories import day
from tests.manufacturing.factories import PASSING_RELEASE
from tests.registry.gmp.factories import (
    ADMIN,
    ROSA,
    add_batch,
    add_people,
    approved_deviation,
    release,
    two_site_registry,
)

FILES = (
    "users.csv",
    "deleted.csv",
    "release_specs.csv",
    "qc_results.csv",
    "release_decisions.csv",
    "he_authorisations.csv",
    "he_reports.csv",
)


def _populate(reg: Registry) -> None:
    gmp = Gmp(reg)
    add_people(reg)  # rosa (investigator) and the sites' qa users, who sign
    reg.add_user(ADMIN, "qa.lead", "qa", [])
    add_batch(reg, "BT-X", bags=(("BG-X-1", "quarantined", day(300)),))
    gmp.record_qc(ADMIN, "BT-X", {**PASSING_RELEASE, "endotoxin": 5.0}, "=QC report 1")
    approved_deviation(gmp, "BT-X", "endotoxin")
    release(gmp, "BT-X", when=day(-20))
    gmp.add_authorisation(
        ADMIN,
        HospitalExemption(
            "RM-001", "AIFA", "HE-2024-7", day(-60), "approved", day(-40), ("annual report",)
        ),
    )
    gmp.add_report(ADMIN, RequiredReport("RM-001", "annual_report", "period 1", day(325)))
    reg.delete_record(ADMIN, "RM-001", "labs", (day(2), "anc"), reason="entered twice")


def _read(folder: Path) -> dict[str, list[list[str]]]:
    out = {}
    for name in sorted(p.name for p in folder.iterdir()):
        with (folder / name).open(newline="", encoding="utf-8") as fh:
            out[name] = list(csv.reader(fh))
    return out


def test_export_import_export_is_lossless(db_url: str, tmp_path: Path) -> None:
    for reg in two_site_registry(db_url):
        _populate(reg)
        counts = export_csv(reg, ADMIN, tmp_path / "a")
        before = reg.count_rows()
    assert all(counts[f] >= 1 for f in FILES if f != "release_specs.csv"), counts
    first = _read(tmp_path / "a")
    users = {r[0]: r for r in first["users.csv"][1:]}
    assert users["rosa"][1:4] == ["investigator", "true", "ROME"]
    assert not any("$" in cell or "argon" in cell for r in first["users.csv"] for cell in r)
    assert first["qc_results.csv"][0][:2] == ["batch_id", "attribute"]
    assert first["deleted.csv"][1][:4][:2] == ["labs", "RM-001"]
    new = tmp_path / "new.db"
    with Registry(new, upgrade=True) as target:
        stats = import_csv(target, ADMIN, tmp_path / "a")
        assert stats.inserted["users"] == 6 and stats.inserted["labs (deleted)"] == 1
        export_csv(target, ADMIN, tmp_path / "b")
        after = target.count_rows()
        again = import_csv(target, ADMIN, tmp_path / "a")  # idempotent
        assert again.total_inserted == 0 and again.unchanged["qc_results"] >= 1
        assert target.count_rows() == after
        assert verify(target.engine).ok
        with target.engine.connect() as conn:
            hashes = conn.execute(sa.select(s.users.c.password_hash)).scalars().all()
            tokens = conn.execute(sa.select(sa.func.count()).select_from(s.api_tokens)).scalar()
        assert hashes == [None] * 6 and tokens == 0  # accounts come without credentials
        trail = target.audit_trail(ADMIN, study_id="RM-001", limit=100)
        deleted = [e for e in trail if e["action"] == "delete" and e["table_name"] == "labs"]
        assert len(deleted) == 1 and "entered twice" in deleted[0]["reason"]
    assert _read(tmp_path / "b") == first
    for table in set(before) & {"qc_results", "release_decisions", "he_authorisations", "labs"}:
        assert after[table] == before[table], table


def test_a_changed_gmp_row_is_refused_naming_file_row_column(db_url: str, tmp_path: Path) -> None:
    for reg in two_site_registry(db_url):
        _populate(reg)
        export_csv(reg, ADMIN, tmp_path / "a")
        path = tmp_path / "a" / "qc_results.csv"
        with path.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(fh))
        col = rows[0].index("value_number")
        rows[2][col] = "1.5" if rows[2][col] != "1.5" else "2.5"
        with path.open("w", newline="", encoding="utf-8") as fh:
            csv.writer(fh).writerows(rows)
        counted = reg.count_rows()
        with pytest.raises(InvalidInput) as err:
            import_csv(reg, ADMIN, tmp_path / "a")
        assert "qc_results.csv" in str(err.value) and "row 3" in str(err.value)
        assert "value_number" in str(err.value)
        assert reg.count_rows() == counted


def test_a_live_record_deleted_in_the_file_is_refused(sqlite_url: str, tmp_path: Path) -> None:
    for reg in two_site_registry(sqlite_url):
        _populate(reg)
        export_csv(reg, ADMIN, tmp_path / "a")
        reg.restore_record(ADMIN, "RM-001", "labs", (day(2), "anc"), reason="not a duplicate")
        with pytest.raises(InvalidInput, match=r"deleted\.csv.*row 2.*live here"):
            import_csv(reg, ADMIN, tmp_path / "a")


def test_only_an_admin_imports_accounts_and_gmp_records(sqlite_url: str, tmp_path: Path) -> None:
    for reg in two_site_registry(sqlite_url):
        _populate(reg)
        export_csv(reg, ADMIN, tmp_path / "a")
        site_export = export_csv(reg, ROSA, tmp_path / "rosa")
        assert "users.csv" not in site_export and site_export["deleted.csv"] == 1
        with pytest.raises(PermissionDenied):
            import_csv(reg, ROSA, tmp_path / "a")
