"""Bulk paths: audit rows of a bulk insert belong to exactly the rows that insert wrote, and are
chained at insert time into an unbroken audit chain (both databases, concurrent writers too)."""

from __future__ import annotations

import datetime as dt
import json
import threading
from pathlib import Path

import pytest
from sqlalchemy import func, select

from immunoreset.registry import Registry, fast, system_actor
from immunoreset.registry import schema as s
from immunoreset.registry.audit import canonical, link_hash, verify
from immunoreset.registry.db import write_transaction
from tests.factories import day, small_course

ADMIN = system_actor("tester")


def _pids(reg: Registry) -> dict[str, int]:
    with reg.engine.connect() as conn:
        return dict(conn.execute(select(s.patients.c.study_id, s.patients.c.id)).all())


def _insert(conn, entity: str, pid: int, sid: str, records: list, reason: str) -> int:  # type: ignore[no-untyped-def]
    """``fast.insert_audited`` of ``records`` (course records of ``entity``) for one patient."""
    ent = s.ENTITIES[entity]
    now = dt.datetime.now(dt.UTC)
    stamp = fast.codec(conn).stamp(now)
    encode = fast.row_encoder(conn, ent)
    rows = [(pid, *encode(r), stamp, stamp) for r in records]
    return fast.insert_audited(
        conn,
        ent,
        ["patient_id", *ent.columns, "created_at", "updated_at"],
        rows,
        study_ids=[sid] * len(rows),
        fields_at=1,
        now=now,
        username="bulk",
        reason=reason,
    )


def _bulk(reg: Registry, conn, pid: int, sid: str, days: range, reason: str) -> int:  # type: ignore[no-untyped-def]
    import immunoreset.course as c

    records = [c.Anthropometric(day(d), 30.0 + d, 140.0) for d in days]
    return _insert(conn, "anthropometrics", pid, sid, records, reason)


def test_bulk_audit_rows_are_chained_at_insert_time(db_url: str) -> None:
    """Every audit row of a bulk insert is written sealed; its stored hash is the hash of what
    is stored (the chain text built at insert time is the canonical text of the row)."""
    with Registry(db_url, upgrade=True) as reg:
        reg.add_site(ADMIN, "ROME", "Rome")
        reg.save_courses(ADMIN, [small_course("RM-001")], reason="entry")
        with write_transaction(reg.engine) as conn:
            n = _bulk(reg, conn, _pids(reg)["RM-001"], "RM-001", range(40, 45), 'bulk ü "q"')
        assert n == 5
        with reg.engine.connect() as conn:
            rows = conn.exec_driver_sql(
                "SELECT id, ts, username, action, table_name, record_key, study_id, field, "
                "old_value, new_value, reason, chain_seq, row_hash FROM audit_log "
                "ORDER BY chain_seq"
            ).all()
        mine = [r for r in rows if r[2] == "bulk"]
        assert len(mine) == 5 and all(r[11] is not None for r in mine)
        prev = rows[rows.index(mine[0]) - 1][12]
        for r in mine:
            assert link_hash(prev, r[:11]) == r[12], canonical(r[:11])
            prev = r[12]
        assert mine[0][5] == f"RM-001/{day(40).isoformat()}"
        stored = json.loads(mine[0][9])
        assert stored == {"date": day(40).isoformat(), "weight_kg": 70.0, "height_cm": 140.0}
        report = verify(reg.engine)
        assert report.ok, str(report)
        assert report.rows == reg.count_rows()["audit_log"]


def test_every_saved_row_has_exactly_one_audit_row(db_url: str) -> None:
    with Registry(db_url, upgrade=True) as reg:
        reg.add_site(ADMIN, "ROME", "Rome")
        stats = reg.save_courses(
            ADMIN, [small_course(f"RM-{i:03d}") for i in range(1, 4)], reason="entry"
        )
        with reg.engine.connect() as conn:
            audited = conn.execute(
                select(func.count())
                .select_from(s.audit_log)
                .where(s.audit_log.c.action == "insert", s.audit_log.c.reason == "entry")
            ).scalar_one()
        assert audited == stats.total_inserted
        assert verify(reg.engine).ok


@pytest.mark.postgres
def test_concurrent_inserts_audit_only_their_rows_and_keep_the_chain(postgres_url: str) -> None:
    """A bulk insert holds the chain; another session inserting rows meanwhile gets none of its
    audit rows, and a concurrent single edit commits after it with the chain unbroken."""
    with Registry(postgres_url, upgrade=True) as reg:
        reg.add_site(ADMIN, "ROME", "Rome")
        reg.save_courses(ADMIN, [small_course("RM-001"), small_course("RM-002")], reason="x")
        pids = _pids(reg)
        ent = s.ENTITIES["anthropometrics"]
        stamp = dt.datetime(2030, 1, 1, 12, 0, tzinfo=dt.UTC)
        cols = ["patient_id", *ent.columns, "created_at", "updated_at"]
        done = threading.Event()
        with write_transaction(reg.engine) as first:
            mine = _bulk(reg, first, pids["RM-001"], "RM-001", range(50, 53), "r")
            with reg.engine.begin() as second:  # commits while `first` is still open
                fast.insert_rows(
                    second, ent.table, cols, [(pids["RM-002"], day(60), 30.0, 140.0, stamp, stamp)]
                )

            def edit() -> None:
                reg.update_record(
                    ADMIN, "RM-002", "labs", (day(2), "anc"), {"value": 3.0}, reason="edit"
                )
                done.set()

            worker = threading.Thread(target=edit)
            worker.start()
            assert not done.wait(1.0)  # its commit waits for the bulk insert's chain
        worker.join(30)
        assert done.is_set()
        with reg.engine.connect() as conn:
            audited = conn.execute(
                select(func.count()).select_from(s.audit_log).where(s.audit_log.c.reason == "r")
            ).scalar_one()
        assert mine == 3 and audited == 3
        report = verify(reg.engine)
        assert report.ok, str(report)


def test_sqlite_insert_returns_no_ids(sqlite_url: str) -> None:
    with Registry(sqlite_url, upgrade=True) as reg, reg.engine.begin() as conn:
        assert fast.insert_rows(conn, s.sites, ["code", "name"], [("X1", "x")]) is None


@pytest.mark.parametrize("parser", ["thread", "process"])
def test_csv_import_audit_texts_made_by_the_parser_match_the_rows(
    sqlite_url: str, tmp_path: Path, parser: str
) -> None:
    """The CSV import's parser makes each new row's audit key and JSON beside the writer: they
    are exactly what the writer would make from the stored row (save_courses' path)."""
    from immunoreset.registry.csvio import import_csv, write_csv

    write_csv([small_course("RM-001"), small_course("RM-002")], tmp_path / "csv")
    with Registry(sqlite_url, upgrade=True) as reg:
        reg.add_site(ADMIN, "ROME", "Rome")
        import_csv(reg, ADMIN, tmp_path / "csv", parser=parser)
        with Registry(tmp_path / "direct.db", upgrade=True) as direct:
            direct.add_site(ADMIN, "ROME", "Rome")
            direct.save_courses(ADMIN, [small_course("RM-001"), small_course("RM-002")], reason="x")

            def texts(r: Registry) -> list[tuple[str, str, str]]:
                with r.engine.connect() as conn:
                    q = select(
                        s.audit_log.c.table_name, s.audit_log.c.record_key, s.audit_log.c.new_value
                    ).where(
                        s.audit_log.c.action == "insert",
                        s.audit_log.c.table_name != "patients",
                        s.audit_log.c.table_name != "sites",
                    )
                    return sorted(tuple(row) for row in conn.execute(q))

            mine = texts(reg)
            assert len(mine) > 20 and mine == texts(direct)
        assert verify(reg.engine).ok


def test_id_runs_accept_only_full_runs() -> None:
    """The ids drawn for audit rows come back as runs (least, greatest, count): one run is a
    range, several are joined in order, and a run with a hole or a wrong total is refused."""
    assert fast.id_runs([(5, 9, 5)], 5) == range(5, 10)
    assert list(fast.id_runs([(20, 21, 2), (5, 6, 2)], 4) or []) == [5, 6, 20, 21]
    assert fast.id_runs([(5, 9, 4)], 4) is None  # a hole: not every id of 5..9 is ours
    assert fast.id_runs([(5, 9, 5)], 6) is None  # fewer ids than asked for
    assert fast.id_runs([], 1) is None


@pytest.mark.postgres
def test_audit_ids_drawn_in_runs_stay_unique_beside_a_concurrent_writer(
    postgres_url: str,
) -> None:
    """While a bulk insert draws its audit ids, another session takes ids from the same
    sequence: every id is handed out once, the bulk insert's ids are all its own."""
    with Registry(postgres_url, upgrade=True) as reg:
        other: list[int] = []
        stop = threading.Event()

        def draw() -> None:
            with reg.engine.connect() as conn:
                while not stop.is_set():
                    other.append(
                        conn.exec_driver_sql("SELECT nextval('audit_log_id_seq')").scalar_one()
                    )
                    conn.commit()

        worker = threading.Thread(target=draw)
        worker.start()
        draws: list[list[int]] = []
        try:
            while len(other) < 5:  # the other writer is drawing before the block starts
                threading.Event().wait(0.01)
            for _ in range(5):  # until the other writer drew ids in the middle of a block
                with reg.engine.begin() as conn:
                    draws.append(list(fast._reserve_ids(conn, s.audit_log, 300_000)))
                if any(draws[-1][0] < o < draws[-1][-1] for o in list(other)):
                    break
        finally:
            stop.set()
            worker.join(30)
        mine = draws[-1]
        assert any(mine[0] < o < mine[-1] for o in other), "no concurrent draw happened"
        assert len(mine) == len(set(mine)) == 300_000
        assert mine == sorted(mine)
        everything = [i for d in draws for i in d] + other
        assert len(everything) == len(set(everything))  # no id handed out twice


def _medications(reg: Registry, conn, pid: int, sid: str, drugs: list[str], reason: str) -> None:  # type: ignore[no-untyped-def]
    import immunoreset.course as c

    doses = [0.1 + 0.2, 1e-300, 12345.6789, 1 / 3, 5e-324, 99999.99999999999]
    records = [
        c.Medication(d, "other", doses[i % len(doses)], "mg", day(i)) for i, d in enumerate(drugs)
    ]
    _insert(conn, "medications", pid, sid, records, reason)


AWKWARD = ["tab\there", "new\nline", "back\\slash", "cr\rlf", "quote ' and \"", "ü € 😀", "\\N"]


def test_bulk_insert_stores_awkward_text_and_floats_exactly(db_url: str) -> None:
    """COPY text (PostgreSQL) and literal SQL (SQLite) carry tabs, newlines, backslashes, quotes,
    the text ``\\N`` and any double exactly, and the audit rows chained at insert time verify."""
    import immunoreset.course as c

    reason = 'import of it\'s "odd" \\ file\twith\ntabs'
    with Registry(db_url, upgrade=True) as reg:
        reg.add_site(ADMIN, "ROME", "Rome")
        reg.save_courses(ADMIN, [small_course("RM-001")], reason="entry")
        with write_transaction(reg.engine) as conn:
            _medications(reg, conn, _pids(reg)["RM-001"], "RM-001", AWKWARD, reason)
        meds = {m.drug: m for m in reg.load_course(ADMIN, "RM-001").medications}
        doses = [0.1 + 0.2, 1e-300, 12345.6789, 1 / 3, 5e-324, 99999.99999999999]
        for i, drug in enumerate(AWKWARD):
            assert meds[drug] == c.Medication(drug, "other", doses[i % len(doses)], "mg", day(i))
        with reg.engine.connect() as conn:
            rows = conn.execute(
                select(s.audit_log.c.reason, s.audit_log.c.new_value).where(
                    s.audit_log.c.username == "bulk"
                )
            ).all()
        assert len(rows) == len(AWKWARD) and {r[0] for r in rows} == {reason}
        assert sorted(json.loads(r[1])["drug"] for r in rows) == sorted(AWKWARD)
        report = verify(reg.engine)
        assert report.ok, str(report)


def test_sqlite_bulk_audit_with_a_nul_in_the_reason(sqlite_url: str) -> None:
    """A NUL cannot go into SQL text: the shared values are then bound like the others."""
    with Registry(sqlite_url, upgrade=True) as reg:
        reg.add_site(ADMIN, "ROME", "Rome")
        reg.save_courses(ADMIN, [small_course("RM-001")], reason="entry")
        with write_transaction(reg.engine) as conn:
            _medications(reg, conn, _pids(reg)["RM-001"], "RM-001", ["a", "b"], "nul\x00here")
        with reg.engine.connect() as conn:
            reasons = conn.execute(
                select(s.audit_log.c.reason).where(s.audit_log.c.username == "bulk")
            ).scalars()
            assert list(reasons) == ["nul\x00here"] * 2
        assert verify(reg.engine).ok


@pytest.mark.postgres
def test_audit_ids_fetched_one_by_one_when_runs_do_not_check_out(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If the runs reported ever failed their check, the ids are drawn again and fetched."""
    monkeypatch.setattr(fast, "id_runs", lambda runs, n: None)
    with Registry(postgres_url, upgrade=True) as reg, reg.engine.begin() as conn:
        first = list(fast._reserve_ids(conn, s.audit_log, 50))
        second = list(fast._reserve_ids(conn, s.audit_log, 50))
    assert len(set(first + second)) == 100
    assert first == sorted(first) and second[0] > first[-1] + 50  # the unchecked ones are skipped
