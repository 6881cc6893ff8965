"""The tamper-evident audit trail: an append-only ``audit_log`` sealed into a hash chain.

* **Append-only.** Triggers (migration 0006, SQLite and PostgreSQL) refuse ``DELETE`` (and
  ``TRUNCATE``) on ``audit_log`` and every ``UPDATE`` except the one that seals a new row.
* **Hash chain.** When a transaction that wrote audit rows commits, its rows are *sealed* in
  id order: each gets the next ``chain_seq`` and ``row_hash = sha256(previous row_hash + "\\n"
  + canonical content)``, the first row chaining from 64 zeros. Changing, removing or
  inserting a row anywhere (with the triggers dropped, or in the file) breaks every later
  link, and :func:`verify` reports the first broken one. On PostgreSQL the seal holds a
  transaction-scoped advisory lock, so concurrent writers chain one after the other in
  commit order; on SQLite a writer already holds the database's write lock.

Bulk inserts (:func:`.fast.insert_audited`) chain their audit rows at insert time instead
(:func:`chain_tail`), so a 10,000-patient import has no millions of sealing updates at commit.

Sealing happens in the engine's ``commit`` event on the raw driver connection, for every
writer (repository, GMP stores, users, web security, importers) without their cooperation.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.engine import Connection

__all__ = [
    "GENESIS",
    "ChainReport",
    "canonical",
    "canonical_prefix",
    "chain_tail",
    "install",
    "link_hash",
    "seal_rows",
    "verify",
]

GENESIS = "0" * 64
#: Columns covered by a row's hash, in this order.
CONTENT = (
    "id",
    "ts",
    "username",
    "action",
    "table_name",
    "record_key",
    "study_id",
    "field",
    "old_value",
    "new_value",
    "reason",
)
#: PostgreSQL advisory lock key serialising the seal (any constant; "IMMR" in ASCII).
ADVISORY_LOCK = 0x494D4D52
_DIRTY = "immunoreset_audit_dirty"
_CHAINED = "immunoreset_audit_chained"
_SELECT_UNSEALED = f"SELECT {', '.join(CONTENT)} FROM audit_log WHERE chain_seq IS NULL ORDER BY id"
_SELECT_TAIL = (
    "SELECT chain_seq, row_hash FROM audit_log "
    "WHERE chain_seq = (SELECT max(chain_seq) FROM audit_log)"
)


def _ts(value: Any) -> str:
    """One text form of a timestamp whichever driver returned it (UTC, microseconds)."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    text = str(value)
    return text if "." in text else text + ".000000"


#: ``json.dumps(v, ensure_ascii=False, separators=(",", ":"))`` without building an encoder per
#: call (the same text; verify and seal run it once per audit row)
_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def canonical(row: Sequence[Any]) -> str:
    """The canonical text of an audit row (values in :data:`CONTENT` order)."""
    values = list(row)
    values[0] = int(values[0])
    values[1] = _ts(values[1])
    return _encode(values)


def link_hash(previous: str, row: Sequence[Any]) -> str:
    """``sha256(previous + "\\n" + canonical(row))`` as hex."""
    return hashlib.sha256(f"{previous}\n{canonical(row)}".encode()).hexdigest()


def seal_rows(
    rows: Sequence[Sequence[Any]], tail_seq: int, tail_hash: str
) -> list[tuple[int, str, int]]:
    """``(chain_seq, row_hash, id)`` for ``rows`` (id order) chained after the tail."""
    out = []
    seq, prev = tail_seq, tail_hash
    for row in rows:
        seq += 1
        prev = link_hash(prev, row)
        out.append((seq, prev, int(row[0])))
    return out


def canonical_prefix(ts: Any) -> str:
    """The text :func:`canonical` gives the timestamp field, with the comma after it."""
    return json.dumps(_ts(ts)) + ","


def chain_tail(conn: Connection) -> tuple[int, str]:
    """``(chain_seq, row_hash)`` of the chain's last row, for rows chained at insert time.

    On PostgreSQL this takes the chain's advisory lock first, held until the transaction ends,
    so no other writer can seal rows after the tail read here (on SQLite the writer holds the
    database's write lock). Rows chained after this tail must be written in this transaction.
    """
    dbapi = conn.connection.dbapi_connection
    assert dbapi is not None
    cur = dbapi.cursor()
    try:
        if conn.dialect.name == "postgresql":
            cur.execute(f"SELECT pg_advisory_xact_lock({ADVISORY_LOCK})")
        cur.execute(_SELECT_TAIL)
        tail = cur.fetchone()
    finally:
        cur.close()
    return (int(tail[0]), str(tail[1])) if tail else (0, GENESIS)


def _has_chain(conn: Connection) -> bool:
    """Whether this database's audit_log has the chain columns (migration 0006 applied)."""
    cache = conn.engine.__dict__.setdefault(_CHAINED, {})
    if "yes" not in cache:
        cur = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            if conn.dialect.name == "sqlite":
                cur.execute("PRAGMA table_info(audit_log)")
                names = {r[1] for r in cur.fetchall()}
            else:
                cur.execute(
                    "SELECT column_name FROM information_schema.columns "
                    "WHERE table_name = 'audit_log' AND table_schema = current_schema()"
                )
                names = {r[0] for r in cur.fetchall()}
        finally:
            cur.close()
        if "chain_seq" not in names:
            return False  # not cached: a migration may add the columns later
        cache["yes"] = True
    return True


def seal(conn: Connection) -> int:
    """Seal this transaction's new audit rows (see the module docstring); returns how many."""
    dbapi = conn.connection.dbapi_connection
    assert dbapi is not None
    cur = dbapi.cursor()
    try:
        cur.execute(_SELECT_UNSEALED)
        rows = cur.fetchall()
        if not rows:
            return 0
        postgres = conn.dialect.name == "postgresql"
        if postgres:
            cur.execute(f"SELECT pg_advisory_xact_lock({ADVISORY_LOCK})")
        cur.execute(_SELECT_TAIL)
        tail = cur.fetchone()
        sealed = seal_rows(rows, *(tail if tail else (0, GENESIS)))
        if postgres:
            cur.execute(
                "CREATE TEMP TABLE IF NOT EXISTS audit_seal "
                "(id integer, chain_seq bigint, row_hash text) ON COMMIT DELETE ROWS"
            )
            with cur.copy("COPY audit_seal (chain_seq, row_hash, id) FROM STDIN") as copy:
                for item in sealed:
                    copy.write_row(item)
            cur.execute(
                "UPDATE audit_log a SET chain_seq = s.chain_seq, row_hash = s.row_hash "
                "FROM audit_seal s WHERE a.id = s.id"
            )
        else:
            cur.executemany("UPDATE audit_log SET chain_seq = ?, row_hash = ? WHERE id = ?", sealed)
        return len(sealed)
    finally:
        cur.close()


def install(engine: Engine) -> None:
    """Seal audit rows at every commit of ``engine`` that wrote some."""

    @event.listens_for(engine, "before_cursor_execute")
    def _mark(conn, _cursor, statement, _params, _context, _many):  # type: ignore[no-untyped-def]
        if statement.startswith("INSERT INTO audit_log"):
            conn.info[_DIRTY] = True

    @event.listens_for(engine, "commit")
    def _seal(conn: Connection) -> None:
        if conn.info.pop(_DIRTY, False) and _has_chain(conn):
            seal(conn)

    @event.listens_for(engine, "rollback")
    def _clear(conn: Connection) -> None:
        conn.info.pop(_DIRTY, None)


@dataclass(frozen=True)
class ChainReport:
    """The result of :func:`verify`: rows checked and the first broken link (if any)."""

    rows: int
    broken_id: int | None = None
    broken_seq: int | None = None
    problem: str | None = None
    last_hash: str = GENESIS

    @property
    def ok(self) -> bool:
        return self.problem is None

    def __str__(self) -> str:
        if self.ok:
            return f"audit trail intact: {self.rows:,} rows, chain head {self.last_hash[:16]}…"
        return (
            f"audit trail BROKEN at row id {self.broken_id} (chain position {self.broken_seq}): "
            f"{self.problem}; {self.rows:,} rows before it verified"
        )


def _iter_rows(conn: Connection, size: int = 50_000) -> Iterator[Sequence[Any]]:
    cur = _streaming_cursor(conn)
    try:
        cur.execute(
            f"SELECT chain_seq, row_hash, {', '.join(CONTENT)} FROM audit_log "
            "ORDER BY chain_seq IS NULL, chain_seq, id"
        )
        while batch := cur.fetchmany(size):
            yield from batch
    finally:
        cur.close()


def _streaming_cursor(conn: Connection) -> Any:
    """A driver cursor that streams a big result (PostgreSQL: a server-side cursor, so millions
    of rows are not all held in memory at once; SQLite's cursor steps through anyway)."""
    dbapi = conn.connection.dbapi_connection
    assert dbapi is not None
    if conn.dialect.name == "postgresql":
        return dbapi.cursor(name=f"immunoreset_stream_{id(conn):x}")
    return dbapi.cursor()


def verify(engine: Engine) -> ChainReport:
    """Walk the chain from its first row; report the first row whose link does not hold.

    A link is broken when a row's hash does not match its content and the previous hash
    (a changed row, or a row removed or inserted before it), when positions skip (a removed
    row) or when a committed row was never sealed (written past the chain).
    """
    prev, expected_seq, n = GENESIS, 1, 0
    # link_hash(prev, content) inlined: this loop runs once per audit row (millions)
    sha, encode, ts = hashlib.sha256, _encode, _ts
    with engine.connect() as conn:
        for seq, stored, rid, when, *rest in _iter_rows(conn):
            rid = int(rid)
            if seq != expected_seq:
                if seq is None:
                    return ChainReport(n, rid, None, "row was never sealed into the chain", prev)
                return ChainReport(
                    n, rid, seq, f"chain position {expected_seq} is missing (row removed)", prev
                )
            text = f"{prev}\n{encode([rid, ts(when), *rest])}"
            if sha(text.encode()).hexdigest() != stored:
                return ChainReport(
                    n, rid, seq, "hash does not match the row's content and the previous hash", prev
                )
            prev, expected_seq, n = stored, expected_seq + 1, n + 1
    return ChainReport(n, last_hash=prev)
