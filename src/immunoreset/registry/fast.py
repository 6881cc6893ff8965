"""Bulk paths of the registry: driver-level inserts and selects, and set-based audit rows.

A 10,000-patient registry holds millions of rows. Going through SQLAlchemy's per-row parameter
processing costs more than the database itself, so bulk inserts and loads here talk to the
driver (``cursor.executemany`` / plain ``SELECT``) with values encoded and decoded by column
kind for the dialect at hand (SQLite stores dates as ISO text, PostgreSQL natively).
The statements themselves are still built by SQLAlchemy from the same tables.

:func:`insert_audited` is the bulk insert of every writer: it inserts the rows and, in the same
transaction, one audit row per inserted row, *chained at insert time* (each audit row is written
with its ``chain_seq`` and ``row_hash``, so the commit has nothing left to seal for them: sealing
5.4 million rows one ``UPDATE`` at a time had doubled the 10,000-patient import). On PostgreSQL
both go in with ``COPY`` (psycopg 3 ``cursor.copy``) of ready lines of COPY text made here
(psycopg adapting every value of ten million rows cost more than the server's COPY). The audit
rows' ids are drawn from their sequence beforehand in one statement that returns only the runs
of consecutive ids (an audit row's hash covers its id), and the chain's advisory lock is held
from the first chained row to the commit (other writers' commits wait for the import; reads do
not). On SQLite the writer already holds the database's write lock, so ids follow the current
maximum, and the values an audit row shares with the others of its insert are SQL literals
(the driver binds 6 values a row, not 13).
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from sqlalchemy import Table, func, select
from sqlalchemy.engine import Connection

from immunoreset.registry import schema as s

__all__ = [
    "Codec",
    "analyze",
    "codec",
    "insert_audited",
    "insert_rows",
    "iter_raw",
    "max_id",
    "record_maker",
    "row_encoder",
    "select_patient_range",
    "select_raw",
]

_SQLITE_DATETIME = "%Y-%m-%d %H:%M:%S.%f"


class Codec:
    """Encoders (Python value -> driver value) and decoders for one dialect."""

    def __init__(self, dialect: str) -> None:
        self.dialect = dialect
        self.sqlite = dialect == "sqlite"
        self._dates: dict[str, dt.date] = {}

    # -- values
    def stamp(self, when: dt.datetime) -> Any:
        return when.strftime(_SQLITE_DATETIME) if self.sqlite else when

    def encoder(self, kind: str) -> Callable[[Any], Any]:
        if kind == "tuple":
            return s.encode_tuple
        if kind == "mapping":
            return s.encode_mapping
        if self.sqlite and kind == "date":
            return lambda v: None if v is None else v.isoformat()
        if self.sqlite and kind == "bool":
            return lambda v: None if v is None else int(v)
        return _identity

    def decoder(self, kind: str) -> Callable[[Any], Any] | None:
        """None means the driver's value is already right."""
        if kind == "tuple":
            return s.decode_tuple
        if kind == "mapping":
            return s.decode_mapping
        if self.sqlite and kind == "date":
            cache = self._dates

            def _date(v: Any) -> Any:
                if v is None:
                    return None
                d = cache.get(v)
                if d is None:
                    d = cache[v] = dt.date.fromisoformat(v)
                return d

            return _date
        if self.sqlite and kind == "bool":
            return lambda v: None if v is None else bool(v)
        # floats need nothing: REAL (SQLite) and double precision (PostgreSQL) come back as float
        return None


def _identity(v: Any) -> Any:
    return v


_CODECS: dict[str, Codec] = {}


def codec(conn: Connection) -> Codec:
    name = conn.dialect.name
    if name not in _CODECS:
        _CODECS[name] = Codec(name)
    return _CODECS[name]


def _compiled(conn: Connection, stmt: Any) -> tuple[str, tuple[str, ...] | None]:
    compiled = stmt.compile(dialect=conn.dialect)
    return str(compiled), compiled.positiontup


def insert_rows(
    conn: Connection, table: Table, columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> list[int] | None:
    """``executemany`` an INSERT of already-encoded rows (values in ``columns`` order).

    On PostgreSQL the new ids are returned (``INSERT … RETURNING id``), so the audit rows are
    written for exactly these rows even while other sessions insert. SQLite has a single
    writer, so there the rows above the previous maximum id are ours; it returns None.
    """
    if not rows:
        return [] if conn.dialect.name == "postgresql" else None
    from sqlalchemy import bindparam, insert

    stmt = insert(table).values({c: bindparam(c) for c in columns})
    sql, order = _compiled(conn, stmt)
    if order is not None:  # positional paramstyle (sqlite qmark)
        index = [list(columns).index(name) for name in order]
        if index != list(range(len(columns))):
            rows = [tuple(r[i] for i in index) for r in rows]
        conn.exec_driver_sql(sql, list(rows))
        return None
    params = [dict(zip(columns, r, strict=True)) for r in rows]
    if conn.dialect.name != "postgresql":  # pragma: no cover - only SQLite and PostgreSQL
        conn.exec_driver_sql(sql, params)
        return None
    sql, _ = _compiled(conn, stmt.returning(table.c.id))
    cursor = conn.connection.cursor()
    ids: list[int] = []
    try:
        cursor.executemany(sql, params, returning=True)
        while True:
            ids.extend(r[0] for r in cursor.fetchall())
            if not cursor.nextset():
                break
    finally:
        cursor.close()
    return ids


def select_raw(conn: Connection, table: Table, columns: Sequence[str], where: Any) -> list[Any]:
    """Driver-level rows (tuples) of ``columns`` matching ``where``, in id order."""
    stmt = select(*(table.c[c] for c in columns)).where(where).order_by(table.c.id)
    compiled = stmt.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True})
    cursor = conn.connection.cursor()
    try:
        cursor.execute(str(compiled))
        return cursor.fetchall()
    finally:
        cursor.close()


def iter_raw(
    conn: Connection, table: Table, columns: Sequence[str], where: Any, *, size: int = 100_000
) -> Iterator[list[Any]]:
    """:func:`select_raw` in batches of ``size`` rows (for reads of whole tables)."""
    stmt = select(*(table.c[c] for c in columns)).where(where).order_by(table.c.id)
    compiled = stmt.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True})
    cursor = conn.connection.cursor()
    try:
        cursor.execute(str(compiled))
        while rows := cursor.fetchmany(size):
            yield rows
    finally:
        cursor.close()


def select_patient_range(conn: Connection, ent: s.Entity, lo: int, hi: int) -> list[Any]:
    """Live rows (``patient_id`` first, then the entity's fields) of patients ``lo``–``hi``.

    The statement is compiled once per dialect and entity and run through the driver with
    two bound ids, because loading one course runs twelve of these per request.
    """
    key = (conn.dialect.name, ent.name)
    sql = _RANGE_SQL.get(key)
    if sql is None:
        from sqlalchemy import bindparam

        t = ent.table
        stmt = (
            select(t.c.patient_id, *(t.c[c] for c in ent.columns))
            .where(
                t.c.deleted_at.is_(None), t.c.patient_id.between(bindparam("lo"), bindparam("hi"))
            )
            .order_by(t.c.id)
        )
        compiled = stmt.compile(dialect=conn.dialect)
        order = compiled.positiontup
        sql = _RANGE_SQL[key] = (str(compiled), tuple(order) if order is not None else None)
    text, order = sql
    params: Any = {"lo": lo, "hi": hi}
    if order is not None:
        params = tuple(params[name] for name in order)
    cursor = conn.connection.cursor()
    try:
        cursor.execute(text, params)
        return cursor.fetchall()
    finally:
        cursor.close()


_RANGE_SQL: dict[tuple[str, str], tuple[str, tuple[str, ...] | None]] = {}


def analyze(conn: Connection, tables: Iterable[Table]) -> None:
    """Refresh the planner's statistics after a bulk write (PostgreSQL; SQLite plans well)."""
    if conn.dialect.name == "postgresql":
        for t in tables:
            conn.exec_driver_sql(f"ANALYZE {t.name}")


def record_maker(conn: Connection, ent: s.Entity, *, offset: int = 1) -> Callable[[Any], Any]:
    """A function ``driver row -> record`` that decodes and builds without re-validating.

    The row holds the entity's fields from index ``offset`` on (index 0 is ``patient_id``).
    Rows come from the registry, where every record was validated on its way in. The
    function is generated with the fields unrolled, because it runs once per stored row.
    """
    dec = codec(conn)
    key = (conn.dialect.name, ent.name, offset)
    if key not in _MAKERS:
        scope: dict[str, Any] = {"_new": object.__new__, "_set": object.__setattr__}
        scope["_cls"] = ent.record
        lines = ["def make(v):", "    o = _new(_cls)"]
        for i, spec in enumerate(ent.specs):
            d = dec.decoder(spec.kind)
            expr = f"v[{i + offset}]"
            if d is not None:
                scope[f"_d{i}"] = d
                expr = f"_d{i}({expr})"
            lines.append(f"    _set(o, {spec.name!r}, {expr})")
        lines.append("    return o")
        exec("\n".join(lines), scope)  # generated from the table's own column names only
        _MAKERS[key] = scope["make"]
    return _MAKERS[key]


_MAKERS: dict[tuple[str, str, int], Callable[[Any], Any]] = {}


def row_encoder(conn: Connection | str, ent: s.Entity) -> Callable[[Any], tuple[Any, ...]]:
    """A function ``record -> tuple of driver values`` in column order (generated, unrolled).

    ``conn`` may be a dialect name, for a process that prepares rows without a connection.
    """
    name = conn if isinstance(conn, str) else conn.dialect.name
    dec = _CODECS.setdefault(name, Codec(name))
    key = (name, ent.name)
    if key not in _ENCODERS:
        scope: dict[str, Any] = {}
        parts = []
        for i, spec in enumerate(ent.specs):
            enc = dec.encoder(spec.kind)
            if enc is _identity:
                parts.append(f"r.{spec.name}")
            else:
                scope[f"_e{i}"] = enc
                parts.append(f"_e{i}(r.{spec.name})")
        src = "def encode(r):\n    return (" + ", ".join(parts) + ",)\n"
        exec(src, scope)  # generated from the table's own column names only
        _ENCODERS[key] = scope["encode"]
    return _ENCODERS[key]


_ENCODERS: dict[tuple[str, str], Callable[[Any], tuple[Any, ...]]] = {}


def max_id(conn: Connection, table: Table) -> int:
    return int(conn.execute(select(func.coalesce(func.max(table.c.id), 0))).scalar_one())


# --------------------------------------------------------------------------- audited bulk insert
def _json_text(dialect: str, kind: str, v: str) -> str:
    """The expression (of the value ``v``) turning one encoded value into its JSON text."""
    if kind == "bool":
        return f"('null' if {v} is None else ('true' if {v} else 'false'))"
    if kind == "int":
        return f"('null' if {v} is None else int.__repr__({v}))"
    if kind == "float":
        return f"('null' if {v} is None else float.__repr__(float({v})))"
    if kind == "date" and dialect != "sqlite":
        return f"('null' if {v} is None else '\"' + _iso({v}) + '\"')"
    return f"('null' if {v} is None else _esc({v}))"  # str, tuple and mapping text, SQLite dates


def _key_text(dialect: str, kind: str, v: str) -> str:
    if kind == "date" and dialect != "sqlite":
        return f"_iso({v})"
    return f"str({v})"


def audit_text_maker(dialect: str, ent: s.Entity, *, offset: int) -> Callable[[Any], str]:
    """``encoded row -> JSON text of the record`` (the audit row's ``new_value``), generated.

    The fields start at index ``offset`` of the row. The text is the record as a JSON object,
    dates as ISO text, like the audit rows of single edits. The function is one expression
    (it runs once per imported row, in the CSV import's parser process).
    """
    from json.encoder import encode_basestring

    key = ("json", dialect, ent.name, offset)
    if key not in _TEXT_MAKERS:
        scope: dict[str, Any] = {"_esc": encode_basestring, "_iso": _iso}
        parts = [
            f"{encode_basestring(spec.name) + ':'!r} + "
            + _json_text(dialect, spec.kind, f"r[{i + offset}]")
            for i, spec in enumerate(ent.specs)
        ]
        src = "def text(r):\n    return '{' + ','.join((" + ", ".join(parts) + ",)) + '}'\n"
        exec(src, scope)  # generated from the table's own column names only
        _TEXT_MAKERS[key] = scope["text"]
    return _TEXT_MAKERS[key]


def key_text_maker(dialect: str, ent: s.Entity, *, offset: int) -> Callable[[str, Any], str]:
    """``(study_id, encoded row) -> record key`` as single edits write it (RM-001/2024-01-02)."""
    key = ("key", dialect, ent.name, offset)
    if key not in _TEXT_MAKERS:
        index = {spec.name: (i, spec.kind) for i, spec in enumerate(ent.specs)}
        parts = ["sid"]
        for k in ent.key if ent is not s.PATIENT_ENTITY else ():
            i, kind = index[k]
            parts.append(_key_text(dialect, kind, f"r[{i + offset}]"))
        scope: dict[str, Any] = {"_iso": _iso}
        exec("def key(sid, r):\n    return '/'.join((" + ", ".join(parts) + ",))\n", scope)
        _TEXT_MAKERS[key] = scope["key"]
    return _TEXT_MAKERS[key]


_TEXT_MAKERS: dict[tuple[str, str, str, int], Any] = {}


def _reserve_ids(conn: Connection, table: Table, n: int) -> Sequence[int]:
    """``n`` new ids from ``table``'s id sequence (PostgreSQL; unique whatever others insert).

    One statement draws all of them (``nextval`` over ``generate_series``) and returns only
    the runs of consecutive ids it got — least, greatest and count of each (a run is where
    ``id - i`` stays constant): alone on the sequence that is one run, and no id crosses the
    wire (fetching 5.4 million of them had cost 37 s of a 10,000-patient import). When
    another session drew ids meanwhile there are several runs, each still ours alone
    (``nextval`` never hands a value out twice). Only if a run does not check out
    (count ≠ greatest - least + 1) are ``n`` ids drawn again and fetched one by one.
    """
    from psycopg import sql

    cur = conn.connection.cursor()
    try:
        # the sequence is named once, as a constant: looking it up for every id
        # (nextval(pg_get_serial_sequence(…))) cost 6 times the nextval calls themselves
        cur.execute("SELECT pg_get_serial_sequence(%s, 'id')", (table.name,))
        seq = sql.Literal(cur.fetchone()[0])
        draw = sql.SQL("SELECT i, nextval({}::regclass) AS v FROM generate_series(1, %s) AS i")
        draw = draw.format(seq)
        runs = sql.SQL("SELECT min(v), max(v), count(*) FROM ({}) d GROUP BY v - i ORDER BY 1")
        cur.execute(runs.format(draw), (n,))
        ids = id_runs(cur.fetchall(), n)
        if ids is None:  # never seen; the ids drawn above are left unused (a gap, as a rollback)
            cur.execute(sql.SQL("SELECT v FROM ({}) d ORDER BY i").format(draw), (n,))
            ids = [r[0] for r in cur.fetchall()]
        return ids
    finally:
        cur.close()


def id_runs(runs: Sequence[Sequence[int]], n: int) -> Sequence[int] | None:
    """The ids of ``(least, greatest, count)`` runs in ascending order, or None unless every
    run is full (count = greatest - least + 1) and they hold ``n`` ids in all."""
    if any(int(hi) - int(lo) + 1 != int(k) for lo, hi, k in runs):
        return None
    if sum(int(k) for _, _, k in runs) != n:
        return None
    if len(runs) == 1:
        return range(int(runs[0][0]), int(runs[0][1]) + 1)
    out: list[int] = []
    for lo, hi, _ in sorted(runs):
        out.extend(range(int(lo), int(hi) + 1))
    return out


def _pg_type(column: Any) -> str:
    """The PostgreSQL type name of a column's values (text for any string)."""
    from sqlalchemy import BigInteger, Boolean, Date, DateTime, Float, Integer

    t = column.type
    if isinstance(t, BigInteger):
        return "int8"
    if isinstance(t, Integer):
        return "int4"
    if isinstance(t, Float):
        return "float8"
    if isinstance(t, Boolean):
        return "bool"
    if isinstance(t, DateTime):
        return "timestamptz" if t.timezone else "timestamp"
    if isinstance(t, Date):
        return "date"
    return "text"


def copy_text(v: str) -> str:
    """``v`` escaped for a field of PostgreSQL's COPY text format (backslash, tab, newlines)."""
    if "\\" in v or "\t" in v or "\n" in v or "\r" in v:
        v = v.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return v


def _copy_field(kind: str, v: str) -> str:
    """The expression (of the value ``v``) giving its COPY text field."""
    null = "'\\\\N'"
    if kind in ("int4", "int8"):
        return f"({null} if {v} is None else int.__repr__({v}))"
    if kind == "float8":  # shortest round-trip text: PostgreSQL reads back the same double
        return f"({null} if {v} is None else float.__repr__(float({v})))"
    if kind == "bool":
        return f"({null} if {v} is None else ('t' if {v} else 'f'))"
    if kind in ("date", "timestamp", "timestamptz"):  # ISO 8601 (an aware stamp keeps its offset)
        return f"({null} if {v} is None else _iso({v}))"
    return f"({null} if {v} is None else _esc({v}))"


@functools.lru_cache(maxsize=8192)
def _iso(v: dt.date) -> str:
    """``v.isoformat()``, remembered: a bulk insert repeats its stamp and dates on every row."""
    return v.isoformat()


def copy_line_maker(table: Table, columns: Sequence[str]) -> Callable[[Sequence[Any]], str]:
    """``encoded row -> one line of COPY text`` for ``columns`` of ``table`` (generated)."""
    key = (table.name, tuple(columns))
    if key not in _LINE_MAKERS:
        fields = [_copy_field(_pg_type(table.c[c]), f"r[{i}]") for i, c in enumerate(columns)]
        src = "def line(r):\n    return '\\t'.join((" + ", ".join(fields) + ",)) + '\\n'\n"
        scope: dict[str, Any] = {"_esc": copy_text, "_iso": _iso}
        exec(src, scope)  # generated from the table's own column types only
        _LINE_MAKERS[key] = scope["line"]
    return _LINE_MAKERS[key]


_LINE_MAKERS: dict[tuple[str, tuple[str, ...]], Callable[[Sequence[Any]], str]] = {}

#: Lines sent to COPY per write (bounds the text held in memory at once).
COPY_CHUNK = 20_000


def _copy(conn: Connection, table: Table, columns: Sequence[str], lines: Iterable[str]) -> None:
    """``COPY table (columns) FROM STDIN`` of ready lines of COPY text (PostgreSQL, psycopg 3).

    The lines are made by :func:`copy_line_maker` (or, for audit rows, by the chaining loop)
    and sent a chunk at a time: letting psycopg adapt every value of ten million rows one at a
    time (``write_row``) had cost more client time than the server's whole COPY.
    """
    dbapi = conn.connection.dbapi_connection
    assert dbapi is not None
    cols = ", ".join(columns)
    with dbapi.cursor() as cur, cur.copy(f"COPY {table.name} ({cols}) FROM STDIN") as copy:
        chunk: list[str] = []
        for line in lines:
            chunk.append(line)
            if len(chunk) >= COPY_CHUNK:
                copy.write("".join(chunk))
                chunk = []
        if chunk:
            copy.write("".join(chunk))


def _insert_with_ids(
    conn: Connection, table: Table, columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    sql = (
        f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
    )
    conn.exec_driver_sql(sql, list(rows)) if rows else None


def _sqlite_literal(v: str) -> str:
    return "'" + v.replace("'", "''") + "'"


def _insert_audit_sqlite(
    conn: Connection, ts: str, username: str, table_name: str, reason: str, rows: list[Any]
) -> None:
    """``executemany`` of audit rows ``(id, record_key, study_id, new_value, chain_seq, hash)``.

    What every row of one bulk insert shares (time, user, action, table, reason) is written
    into the statement as SQL literals, so the driver binds 6 values a row instead of 13 (the
    binding is most of the cost of SQLite's inserts from Python).
    """
    shared = (ts, username, table_name, reason)
    if any("\x00" in v for v in shared):  # no NUL in SQL text: bind everything instead
        full = [(i, ts, username, "insert", table_name, k, sid, None, None, v, reason, q, h)
                for i, k, sid, v, q, h in rows]  # fmt: skip
        _insert_with_ids(conn, s.audit_log, _AUDIT_COLUMNS, full)
        return
    t, u, tn, r = (_sqlite_literal(v) for v in shared)
    sql = (
        f"INSERT INTO audit_log ({', '.join(_AUDIT_COLUMNS)}) "
        f"VALUES (?, {t}, {u}, 'insert', {tn}, ?, ?, NULL, NULL, ?, {r}, ?, ?)"
    )
    conn.exec_driver_sql(sql, rows)


def _audit_columns() -> tuple[str, ...]:
    from immunoreset.registry import audit

    return (*audit.CONTENT, "chain_seq", "row_hash")  # the hashed content, then the link


_AUDIT_COLUMNS = _audit_columns()


def insert_audited(
    conn: Connection,
    ent: s.Entity,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    study_ids: Sequence[str],
    fields_at: int,
    now: dt.datetime,
    username: str,
    reason: str,
    texts: Sequence[tuple[str, str]] | None = None,
) -> int:
    """Insert encoded ``rows`` of ``ent`` (values in ``columns`` order) with their audit rows.

    ``study_ids[i]`` is the patient of ``rows[i]``; the entity's fields start at index
    ``fields_at`` of a row. ``texts[i]``, when given, is ``rows[i]``'s audit record key and
    JSON as :func:`key_text_maker` and :func:`audit_text_maker` make them (the CSV import's
    parser process makes them beside the writer). Every audit row is written already chained
    (module docstring). Returns the number of rows inserted.
    """
    from immunoreset.registry import audit

    if not rows:
        return 0
    n = len(rows)
    postgres = conn.dialect.name == "postgresql"
    table_name = str(ent.table.name)  # a plain str: sqlite3 adapts a str subclass per value
    if postgres:
        # the rows take their ids from the column default inside COPY: no id is needed here
        # (the audit rows name records by key), and reserving millions of them first cost a
        # round trip per id (123 s of a 622 s 10,000-patient import)
        _copy(conn, ent.table, columns, map(copy_line_maker(ent.table, columns), rows))
    else:
        # SQLite gives an INTEGER PRIMARY KEY left out max(id) + 1, as the writer did before
        _insert_with_ids(conn, ent.table, columns, rows)
    dialect = conn.dialect.name
    if texts is None:
        text_of = audit_text_maker(dialect, ent, offset=fields_at)
        key_of = key_text_maker(dialect, ent, offset=fields_at)
        texts = [(key_of(sid, row), text_of(row)) for sid, row in zip(study_ids, rows, strict=True)]
    elif len(texts) != n:
        raise ValueError("texts must hold one (key, value) per row")
    if postgres:
        audit_ids: Sequence[int] = _reserve_ids(conn, s.audit_log, n)
    else:
        start = max_id(conn, s.audit_log) + 1
        audit_ids = range(start, start + n)
    seq, prev = audit.chain_tail(conn)
    esc = _esc()
    head = audit.canonical_prefix(now)
    mid = f'{esc(username)},"insert",{esc(table_name)},'
    tail_text = f",{esc(reason)}]"
    sha = hashlib.sha256
    out: list[Any] = []
    append = out.append
    if postgres:
        # one COPY text line per audit row; the fields every row shares are escaped once
        shared = f"\t{now.isoformat()}\t{copy_text(username)}\tinsert\t{copy_text(table_name)}\t"
        after = f"\t{copy_text(reason)}\t"
        for aid, sid, (key, value) in zip(audit_ids, study_ids, texts, strict=True):
            seq += 1
            canon = f"[{aid},{head}{mid}{esc(key)},{esc(sid)},null,null,{esc(value)}{tail_text}"
            prev = sha(f"{prev}\n{canon}".encode()).hexdigest()
            append(
                f"{aid}{shared}{copy_text(key)}\t{copy_text(sid)}\t\\N\t\\N\t"
                f"{copy_text(value)}{after}{seq}\t{prev}\n"
            )
        _copy(conn, s.audit_log, _AUDIT_COLUMNS, out)
        return n
    for aid, sid, (key, value) in zip(audit_ids, study_ids, texts, strict=True):
        seq += 1
        canon = f"[{aid},{head}{mid}{esc(key)},{esc(sid)},null,null,{esc(value)}{tail_text}"
        prev = sha(f"{prev}\n{canon}".encode()).hexdigest()
        append((aid, key, sid, value, seq, prev))
    _insert_audit_sqlite(conn, codec(conn).stamp(now), username, table_name, reason, out)
    return n


def _esc() -> Callable[[str], str]:
    from json.encoder import encode_basestring

    return encode_basestring
