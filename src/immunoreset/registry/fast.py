"""Bulk paths of the registry: driver-level inserts and selects, and set-based audit rows.

A 10,000-patient registry holds millions of rows. Going through SQLAlchemy's per-row parameter
processing costs more than the database itself, so bulk inserts and loads here talk to the
driver (``cursor.executemany`` / plain ``SELECT``) with values encoded and decoded by column
kind for the dialect at hand (SQLite stores dates as ISO text, PostgreSQL natively).
The statements themselves are still built by SQLAlchemy from the same tables, and every row
inserted in bulk gets its audit record from one ``INSERT … SELECT`` per table inside the same
transaction, so no insert is ever without its audit entry.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sqlalchemy import Table, Text, cast, func, literal, select
from sqlalchemy.engine import Connection

from immunoreset.registry import schema as s

__all__ = [
    "Codec",
    "analyze",
    "audit_inserted",
    "codec",
    "insert_rows",
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


def audit_inserted(
    conn: Connection,
    ent: s.Entity,
    *,
    after_id: int,
    stamp: dt.datetime,
    username: str,
    reason: str,
    ids: Sequence[int] | None = None,
) -> int:
    """Write one audit row per row of ``ent`` inserted in this transaction (set-based).

    The rows are ``ids`` when the insert returned them (PostgreSQL); else (SQLite, one writer)
    those above ``after_id`` carrying this transaction's ``stamp``.
    """
    t = ent.table
    is_patient = ent is s.PATIENT_ENTITY
    sqlite = conn.dialect.name == "sqlite"
    obj = func.json_object if sqlite else func.json_build_object
    pairs: list[Any] = []
    for spec in ent.specs:
        col: Any = t.c[spec.name]
        if sqlite and spec.kind == "bool":
            col = func.json(_case_bool(col))
        pairs.extend([literal(spec.name), col])
    payload = obj(*pairs)
    if not sqlite:
        payload = payload.cast(s.audit_log.c.new_value.type)
    if is_patient:
        study = t.c.study_id
        key_expr: Any = study
        source: Any = t
    else:
        study = s.patients.c.study_id
        key_expr = study
        for k in ent.key:
            col = t.c[k]
            # cast every part to text and join with the string operator (``||`` on both
            # databases): ``+`` on a date column compiled to SQLite's numeric addition
            key_expr = key_expr.concat(literal("/")).concat(cast(col, Text))
        source = t.join(s.patients, s.patients.c.id == t.c.patient_id)
    stamp_value = codec(conn).stamp(stamp)
    if ids is not None:
        from sqlalchemy import any_
        from sqlalchemy.dialects.postgresql import ARRAY
        from sqlalchemy.types import Integer

        where: list[Any] = [t.c.id == any_(literal(list(ids), type_=ARRAY(Integer)))]
    else:
        created: Any = (
            literal(stamp_value, type_=t.c.created_at.type) if not sqlite else literal(stamp_value)
        )
        where = [t.c.id > after_id, t.c.created_at == created]
    sel = (
        select(
            literal(stamp_value, type_=s.audit_log.c.ts.type)
            if not sqlite
            else literal(stamp_value),
            literal(username),
            literal("insert"),
            literal(t.name),
            key_expr,
            study,
            literal(None, type_=s.audit_log.c.field.type),
            literal(None, type_=s.audit_log.c.old_value.type),
            payload,
            literal(reason),
        )
        .select_from(source)
        .where(*where)
        .order_by(t.c.id)
    )
    from sqlalchemy import insert

    stmt = insert(s.audit_log).from_select(
        [
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
        ],
        sel,
    )
    return conn.execute(stmt).rowcount


def _case_bool(col: Any) -> Any:
    from sqlalchemy import case

    return case((col.is_(None), "null"), (col == 1, "true"), else_="false")
