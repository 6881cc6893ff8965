"""CSV carriage of deviations, post-release QC results and electronic signatures (both
databases): export → import into an empty registry → export gives the same files; an imported
signature is the historic one (signer, meaning, time, hash), marked as imported, and
``verify_signature`` still checks it; an edited record or signature is refused, and an import
never signs anything itself."""

from __future__ import annotations

import csv
import shutil
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from immunoreset.errors import InvalidInput
from immunoreset.registry import Registry
from immunoreset.registry import schema as s
from immunoreset.registry.audit import verify
from immunoreset.registry.csvio import export_csv, import_csv
from immunoreset.registry.gmp import Gmp
from tests.manufacturing.factories import PASSING_RELEASE
from tests.registry.gmp.factories import (
    ADMIN,
    PASSWORD,
    QA2,
    ROSA,
    add_batch,
    add_people,
    approved_deviation,
    two_site_registry,
)
from tests.registry.test_csvextra import _populate, _read

SIGNED = ("deviations.csv", "qc_post_release.csv", "signatures.csv")


def _populate_signed(reg: Registry) -> None:
    """The GMP registry of test_csvextra plus a post-release deviation (failed sterility,
    approved by a second qa user, quarantine cleared) and an open one (passing VCN)."""
    _populate(reg)
    gmp = Gmp(reg)
    failed = gmp.add_post_release_result(ROSA, "BT-X", {"sterility_final": "positive"}, "day 14")
    gmp.approve_deviation(QA2, failed["deviation_id"], PASSWORD)
    gmp.add_post_release_result(ROSA, "BT-X", {"vcn": 1.8}, "=VCN report")


def _empty_like(url: str, tmp_path: Path) -> str:
    """An empty database on the same kind of server as ``url``."""
    if not url.startswith("postgresql"):
        return str(tmp_path / f"empty-{uuid.uuid4().hex[:6]}.db")
    server, _, _ = url.rpartition("/")
    name = "t_" + uuid.uuid4().hex[:12]
    admin = sa.create_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return f"{server}/{name}"


def _signed_state(reg: Registry) -> dict[str, list[tuple[object, ...]]]:
    """Signed records and signatures as comparable rows (no internal signature ids)."""
    out = {}
    with reg.engine.connect() as conn:
        for t, cols in (
            (s.deviations, ("id", "batch_id", "kind", "status", "approved_by", "reason")),
            (s.qc_post_release, ("deviation_id", "attribute", "value_text", "status")),
            (s.signatures, ("username", "meaning", "record_key", "content_sha256")),
        ):
            q = sa.select(*(t.c[c] for c in cols)).order_by(t.c.id)
            out[t.name] = [tuple(r) for r in conn.execute(q)]
    return out


def _edit(path: Path, row: int, column: str, value: str) -> None:
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    rows[row - 1][rows[0].index(column)] = value
    with path.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(rows)


def _count(reg: Registry) -> dict[str, int]:
    with reg.engine.connect() as conn:
        return {
            t.name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
            for t in (s.deviations, s.qc_post_release, s.signatures, s.audit_log)
        }


def test_signed_records_round_trip_losslessly(db_url: str, tmp_path: Path) -> None:
    for reg in two_site_registry(db_url):
        _populate_signed(reg)
        counts = export_csv(reg, ADMIN, tmp_path / "a")
        source = _signed_state(reg)
    assert counts["deviations.csv"] == 3 and counts["qc_post_release.csv"] == 2
    assert counts["signatures.csv"] == 3  # deviation 1, the release, deviation 2
    first = _read(tmp_path / "a")
    assert first["deviations.csv"][0][0] == "number"
    assert [r[0] for r in first["deviations.csv"][1:]] == ["1", "2", "3"]
    assert "id" not in first["signatures.csv"][0]
    with Registry(_empty_like(db_url, tmp_path), upgrade=True) as target:
        stats = import_csv(target, ADMIN, tmp_path / "a")
        assert stats.inserted["signatures"] == 3 and stats.inserted["deviations"] == 3
        assert stats.inserted["qc_post_release"] == 2
        export_csv(target, ADMIN, tmp_path / "b")
        assert _signed_state(target) == source
        gmp = Gmp(target)
        sigs = [d["signature"] for d in gmp.deviations(ADMIN, "BT-X") if d["signature"]]
        sigs += [d["signature"] for d in gmp.decisions(ADMIN, "BT-X") if d["signature"]]
        assert len(sigs) == 3
        for sig in sigs:  # the historic signature, checked, and marked as carried
            assert gmp.verify_signature(ADMIN, sig.id)
            assert sig.imported and sig.imported_by == ADMIN.username
            assert "imported by tester" in sig.manifestation
        assert [r["deviation_id"] for r in gmp.post_release_results(ADMIN, "BT-X")] == [2, 3]
        again = import_csv(target, ADMIN, tmp_path / "a")  # idempotent
        assert again.total_inserted == 0 and again.unchanged["signatures"] == 3
        assert verify(target.engine).ok
        trail = target.audit_trail(ADMIN, study_id="RM-001", limit=500)
        carried = [e for e in trail if e["table_name"] == "signatures"]
        assert len(carried) == 3 and all("not signed here" in e["reason"] for e in carried)
        # the numbers carried do not block the next deviation (PostgreSQL's sequence follows)
        nxt = gmp.add_post_release_result(ROSA, "BT-X", {"vcn": 1.9}, "second VCN")
        assert nxt["deviation_id"] == 4
    assert _read(tmp_path / "b") == first


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One SQLite registry's export, copied by each refusal case."""
    base = tmp_path_factory.mktemp("signed")
    for reg in two_site_registry(str(base / "source.db")):
        _populate_signed(reg)
        export_csv(reg, ADMIN, base / "a")
    return base / "a"


@pytest.mark.parametrize(
    ("file", "row", "column", "value", "refused"),
    [
        # an edited signed record: its signature no longer matches it
        ("deviations.csv", 2, "reason", "risk accepted", ("signatures.csv", "content_sha256")),
        ("release_decisions.csv", 2, "reasons", '["ok"]', ("signatures.csv", "content_sha256")),
        # an edited signature: another signer, another hash, another record
        ("signatures.csv", 2, "username", "qa.rome2", ("signatures.csv", "username")),
        ("signatures.csv", 2, "content_sha256", "ab" * 32, ("signatures.csv", "content_sha256")),
        ("signatures.csv", 2, "record_key", "ER-001/BT-X/1", ("signatures.csv", "record_key")),
        ("signatures.csv", 2, "meaning", "released", ("signatures.csv", "meaning")),
        ("signatures.csv", 2, "username", "nobody", ("signatures.csv", "username")),
        ("deviations.csv", 2, "status", "closed", ("deviations.csv", "status")),
        ("deviations.csv", 4, "approved_by", "qa.rome", ("deviations.csv", "approved_by")),
        ("deviations.csv", 2, "batch_id", "BT-NONE", ("deviations.csv", "batch_id")),
        ("qc_post_release.csv", 2, "deviation", "1", ("qc_post_release.csv", "deviation")),
        ("qc_post_release.csv", 2, "deviation", "9", ("qc_post_release.csv", "deviation")),
    ],
)
def test_an_edited_signed_record_or_signature_is_refused(
    exported: Path,
    tmp_path: Path,
    file: str,
    row: int,
    column: str,
    value: str,
    refused: tuple[str, str],
) -> None:
    shutil.copytree(exported, tmp_path / "a")
    _edit(tmp_path / "a" / file, row, column, value)
    with Registry(tmp_path / "new.db", upgrade=True) as target:
        before = target.count_rows()
        with pytest.raises(InvalidInput) as err:
            import_csv(target, ADMIN, tmp_path / "a")
        msg = str(err.value)
        assert refused[0] in msg and refused[1] in msg and "row " in msg, msg
        assert target.count_rows() == before and _count(target)["signatures"] == 0


def test_an_import_never_signs_a_record_itself(db_url: str, tmp_path: Path) -> None:
    """A signature row removed from the file leaves its record unsigned, and a signature
    for a record whose signature is already stored differently is refused."""
    for reg in two_site_registry(db_url):
        _populate_signed(reg)
        export_csv(reg, ADMIN, tmp_path / "a")
    sig_file = tmp_path / "a" / "signatures.csv"
    with sig_file.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    release_row = next(r for r in rows if r[1] == "released")
    with sig_file.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([r for r in rows if r is not release_row])
    with Registry(_empty_like(db_url, tmp_path), upgrade=True) as target:
        stats = import_csv(target, ADMIN, tmp_path / "a")
        assert stats.inserted["signatures"] == 2
        gmp = Gmp(target)
        assert [d["signature"] for d in gmp.decisions(ADMIN, "BT-X")] == [None]
        with sig_file.open("w", newline="", encoding="utf-8") as fh:
            csv.writer(fh).writerows(rows)
        stats = import_csv(target, ADMIN, tmp_path / "a")  # the release signature, carried now
        assert stats.inserted["signatures"] == 1
        _edit(sig_file, rows.index(release_row) + 1, "signed_at", "2020-01-01T00:00:00+00:00")
        with pytest.raises(InvalidInput, match=r"signatures\.csv.*signed_at"):
            import_csv(target, ADMIN, tmp_path / "a")


def test_a_deviation_number_taken_by_another_batch_is_refused(db_url: str, tmp_path: Path) -> None:
    for reg in two_site_registry(db_url):
        _populate_signed(reg)
        export_csv(reg, ADMIN, tmp_path / "a")
    (tmp_path / "a" / "deleted.csv").unlink()  # the target's lab record is live
    for reg in two_site_registry(_empty_like(db_url, tmp_path)):
        add_people(reg)
        add_batch(reg, "BT-Y")
        gmp = Gmp(reg)
        gmp.record_qc(ADMIN, "BT-Y", {**PASSING_RELEASE, "endotoxin": 5.0}, "QC")
        approved_deviation(gmp, "BT-Y", "endotoxin")  # number 1, batch BT-Y
        before = _count(reg)
        with pytest.raises(InvalidInput, match=r"deviations\.csv.*row 2.*number.*BT-Y"):
            import_csv(reg, ADMIN, tmp_path / "a")
        assert _count(reg) == before
