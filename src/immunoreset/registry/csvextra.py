"""What the CSV folder carries beyond the courses: accounts, GMP records and deleted records.

:func:`.csvio.export_csv` writes these files next to the course files (an admin's export of
the whole registry), and :func:`.csvio.import_csv` reads them in the same all-or-nothing
transaction, after the courses:

* ``users.csv`` — ``username, role, active, sites, created_at``. **Never** a password hash, an
  API token or login-throttle state: an imported account has no password and cannot sign in
  until an admin sets one (``immunoreset user passwd NAME``).
* ``release_specs.csv``, ``qc_results.csv``, ``release_decisions.csv``,
  ``he_authorisations.csv``, ``he_reports.csv`` — every column of the GMP tables except the
  internal row id (``patient_id`` is carried as ``study_id``), with their own soft-delete
  stamps.
* ``deviations.csv`` (with the deviation's ``number``, kept), ``qc_post_release.csv`` (naming
  its deviation by number) and ``signatures.csv`` — historic electronic signatures without
  their ids: each is linked to the imported release decision or approved deviation whose
  content has its SHA-256, and marked ``imported_by``/``imported_at``; one matching no record
  (an edited record or signature) is refused, and an import never signs anything itself.
* ``deleted.csv`` — soft-deleted course records: ``entity, study_id, deleted_at,
  deleted_reason, created_at, record`` where ``record`` is a JSON object of the record's cells
  exactly as its own file would hold them.

Rows are matched by natural key: a row already stored and identical is left alone (re-import
changes nothing); one that differs is refused naming file, row and column (GMP records and
accounts are changed by their own audited commands, never silently by an import). Every
insert is audited. Text cells are formula-neutralised like the course files.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Boolean, Date, DateTime, Float, Integer, Table, insert, select
from sqlalchemy.engine import Connection

from immunoreset import vocab
from immunoreset.errors import InvalidInput
from immunoreset.registry import schema as s
from immunoreset.registry.access import Actor

__all__ = ["DELETED_FILE", "FILES", "SIGNED_FILES", "USERS_FILE", "export_extra", "import_extra"]

USERS_FILE = "users.csv"
DELETED_FILE = "deleted.csv"


@dataclass(frozen=True)
class GmpFile:
    """One GMP table as a CSV file: its natural key (None: the whole row is its identity)."""

    file: str
    table: Table
    key: tuple[str, ...] | None

    @property
    def columns(self) -> list[str]:
        # no signature ids: signatures.csv carries each signature, linked on import to the
        # record whose content it hashes (see _import_signatures); `db backup` keeps the ids
        skip = {"id", "patient_id", "signature_id"}
        return [c.name for c in self.table.columns if c.name not in skip]


GMP_FILES = (
    GmpFile("release_specs.csv", s.release_specs, ("site", "spec_id", "version")),
    GmpFile("qc_results.csv", s.qc_results, ("batch_id", "attribute")),
    GmpFile("release_decisions.csv", s.release_decisions, None),
    GmpFile("he_authorisations.csv", s.he_authorisations, ("study_id", "reference")),
    GmpFile("he_reports.csv", s.he_reports, ("study_id", "kind", "subject", "due")),
)
_USER_COLUMNS = ("username", "role", "active", "sites", "created_at")
_DELETED_COLUMNS = ("entity", "study_id", "deleted_at", "deleted_reason", "created_at", "record")
DEVIATIONS_FILE = "deviations.csv"
POST_RELEASE_FILE = "qc_post_release.csv"
SIGNATURES_FILE = "signatures.csv"
SIGNED_FILES = (DEVIATIONS_FILE, POST_RELEASE_FILE, SIGNATURES_FILE)
#: Every file name this module reads (the import folder check accepts them).
FILES = (USERS_FILE, DELETED_FILE, *(g.file for g in GMP_FILES), *SIGNED_FILES)


# --------------------------------------------------------------------------- cell text
def _stamp_text(v: dt.datetime) -> str:
    if v.tzinfo is None:  # SQLite returns the stored UTC value without its zone
        v = v.replace(tzinfo=dt.UTC)
    return v.astimezone(dt.UTC).isoformat()


def _cell(col: Any, v: Any) -> str:
    from immunoreset.registry.csvio import neutralise_cell

    if v is None:
        return ""
    t = col.type
    if isinstance(t, DateTime):
        return _stamp_text(v)
    if isinstance(t, Date):
        return v.isoformat()
    if isinstance(t, Boolean):
        return "true" if v else "false"
    if isinstance(t, Float):
        return repr(float(v))
    if isinstance(t, Integer):
        return str(int(v))
    return neutralise_cell(str(v))


def _value(col: Any, raw: str, where: dict[str, Any]) -> Any:
    from immunoreset.registry.csvio import restore_cell

    t = col.type
    if raw == "":
        if col.nullable:
            return None
        if isinstance(t, DateTime | Date | Boolean | Float | Integer):
            raise InvalidInput(col.name, raw, "a value (the cell is empty)", **where)
        return ""
    try:
        if isinstance(t, DateTime):
            v = dt.datetime.fromisoformat(raw)
            return v if v.tzinfo else v.replace(tzinfo=dt.UTC)
        if isinstance(t, Date):
            return dt.date.fromisoformat(raw)
        if isinstance(t, Boolean):
            if raw not in ("true", "false"):
                raise ValueError
            return raw == "true"
        if isinstance(t, Float):
            return float(raw)
        if isinstance(t, Integer):
            return int(raw)
    except ValueError:
        kind = type(t).__name__.lower()
        expected = {
            "datetime": "a time stamp as YYYY-MM-DDTHH:MM:SS+00:00",
            "date": "a date as YYYY-MM-DD",
            "boolean": "true or false",
            "float": "a number",
            "integer": "a whole number",
        }.get(kind, "a value")
        raise InvalidInput(col.name, raw, expected, **where) from None
    text = restore_cell(raw)
    limit = getattr(t, "length", None)
    if limit and len(text) > limit:
        raise InvalidInput(col.name, raw[:40], f"text of at most {limit} characters", **where)
    return text


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, dt.datetime) and isinstance(b, dt.datetime):
        return _stamp_text(a) == _stamp_text(b)
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and float(a) == float(b)
    return a == b


# --------------------------------------------------------------------------- export
def _write(path: Path, header: list[str] | tuple[str, ...], rows: Iterator[list[str]]) -> int:
    n = 0
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        for row in rows:
            w.writerow(row)
            n += 1
    return n


def export_extra(conn: Connection, actor: Actor, folder: Path) -> dict[str, int]:
    """Write accounts, GMP records and soft-deleted records (admin: the whole registry).

    Another actor's export holds only what it may see: the deleted records of its sites; the
    account and GMP files are written by an admin's export only.
    """
    counts: dict[str, int] = {}
    visible = {
        sid: pid
        for pid, sid, site in conn.execute(
            select(s.patients.c.id, s.patients.c.study_id, s.patients.c.site)
        )
        if actor.can_see_site(site)
    }
    counts[DELETED_FILE] = _write(
        folder / DELETED_FILE, _DELETED_COLUMNS, _deleted_rows(conn, visible)
    )
    if actor.role != "admin":
        return counts
    counts[USERS_FILE] = _write(folder / USERS_FILE, _USER_COLUMNS, _user_rows(conn))
    for g in GMP_FILES:
        cols = [g.table.c[c] for c in g.columns]
        rows = conn.execute(select(*cols).order_by(g.table.c.id))
        counts[g.file] = _write(
            folder / g.file,
            g.columns,
            ([_cell(c, v) for c, v in zip(cols, r, strict=True)] for r in rows),
        )
    counts.update(_export_signed(conn, folder))
    return counts


def _user_rows(conn: Connection) -> Iterator[list[str]]:
    sites: dict[int, list[str]] = {}
    for uid, code in conn.execute(
        select(s.user_sites.c.user_id, s.user_sites.c.site_code).order_by(s.user_sites.c.site_code)
    ):
        sites.setdefault(uid, []).append(code)
    u = s.users.c
    for uid, name, role, active, created in conn.execute(
        select(u.id, u.username, u.role, u.active, u.created_at).order_by(u.id)
    ):
        yield [
            name,
            role,
            "true" if active else "false",
            ";".join(sites.get(uid, [])),
            _stamp_text(created),
        ]


def _deleted_rows(conn: Connection, visible: Mapping[str, int]) -> Iterator[list[str]]:
    from immunoreset.registry.csvio import _format_value

    by_pid = {pid: sid for sid, pid in visible.items()}
    for name, ent in s.ENTITIES.items():
        t = ent.table
        q = (
            select(
                t.c.patient_id,
                t.c.deleted_at,
                t.c.deleted_reason,
                t.c.created_at,
                *(t.c[c] for c in ent.columns),
            )
            .where(t.c.deleted_at.is_not(None))
            .order_by(t.c.id)
        )
        for row in conn.execute(q):
            sid = by_pid.get(row[0])
            if sid is None:
                continue
            rec = ent.from_row(dict(zip(ent.columns, row[4:], strict=True)))
            cells = {sp.name: _format_value(sp.kind, getattr(rec, sp.name)) for sp in ent.specs}
            yield [
                name,
                sid,
                _stamp_text(row[1]),
                row[2] or "",
                _stamp_text(row[3]),
                json.dumps(cells, ensure_ascii=False),
            ]


# --------------------------------------------------------------------------- import
def _rows(path: Path, header: list[str] | tuple[str, ...]) -> Iterator[tuple[int, dict[str, str]]]:
    from immunoreset.registry.csvdialect import open_csv

    with open_csv(path) as fh:
        reader = csv.reader(fh)
        first = next(reader, None)
        if first is None or [h.strip() for h in first] != list(header):
            raise InvalidInput(
                "header",
                ",".join(first or []),
                ",".join(header),
                file=path.name,
                row=1,
                message=f"{path.name} must have the header: {','.join(header)}",
            )
        for lineno, cells in enumerate(reader, start=2):
            if not cells:
                continue
            if len(cells) != len(header):
                raise InvalidInput(
                    "row",
                    len(cells),
                    f"{len(header)} cells like the header",
                    row=lineno,
                    file=path.name,
                )
            yield lineno, dict(zip(header, cells, strict=True))


def import_extra(
    registry: Any, conn: Connection, actor: Actor, folder: Path, reason: str, stats: Any
) -> None:
    """Within the import's transaction: read the files of this module present in ``folder``."""
    if (folder / DELETED_FILE).exists():
        _import_deleted(registry, conn, actor, folder / DELETED_FILE, reason, stats)
    present = [f for f in FILES if f != DELETED_FILE and (folder / f).exists()]
    if present:
        actor.require_admin("import accounts and GMP records")
    if (folder / USERS_FILE).exists():
        _import_users(registry, conn, actor, folder / USERS_FILE, reason, stats)
    for g in GMP_FILES:
        if (folder / g.file).exists():
            _import_gmp(registry, conn, actor, g, folder / g.file, reason, stats)
    import_signed(registry, conn, actor, folder, reason, stats)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _audit(
    registry: Any,
    conn: Connection,
    actor: Actor,
    table: str,
    key: str,
    new: Any,
    reason: str,
    *,
    study_id: str | None = None,
    action: str = "insert",
    fieldname: str | None = None,
) -> None:
    registry._audit(
        conn,
        actor,
        action,
        table,
        key,
        fieldname,
        None,
        json.dumps(new, ensure_ascii=False, default=str),
        reason,
        _now(),
        study_id=study_id,
    )


def _import_users(
    registry: Any, conn: Connection, actor: Actor, path: Path, reason: str, stats: Any
) -> None:
    from immunoreset.registry.users import validate_username

    known_sites = {r[0] for r in conn.execute(select(s.sites.c.code))}
    u = s.users.c
    for lineno, row in _rows(path, _USER_COLUMNS):
        where: dict[str, Any] = {"file": path.name, "row": lineno}
        name = row["username"].strip()
        try:
            validate_username(name)
        except InvalidInput as err:
            raise err.located(column="username", **where) from None
        role = row["role"].strip()
        if role not in vocab.ROLES:
            raise InvalidInput(
                "role", role, "one of " + ", ".join(vocab.ROLES), column="role", **where
            )
        active = _value(s.users.c.active, row["active"].strip(), {**where, "column": "active"})
        created = _value(
            s.users.c.created_at, row["created_at"].strip(), {**where, "column": "created_at"}
        )
        sites = sorted({x.strip() for x in row["sites"].split(";") if x.strip()})
        for code in sites:
            if code not in known_sites:
                raise InvalidInput(
                    "sites", code, "a site of the registry or of sites.csv", column="sites", **where
                )
        old = conn.execute(select(u.id, u.role, u.active).where(u.username == name)).first()
        if old is not None:
            old_sites = sorted(
                r[0]
                for r in conn.execute(
                    select(s.user_sites.c.site_code).where(s.user_sites.c.user_id == old.id)
                )
            )
            for column, a, b in (
                ("role", old.role, role),
                ("active", bool(old.active), active),
                ("sites", old_sites, sites),
            ):
                if a != b:
                    raise InvalidInput(
                        column,
                        row[column],
                        f"the registry's value {a!r} (accounts change with `immunoreset user`, "
                        "not by import)",
                        column=column,
                        **where,
                    )
            stats.unchanged["users"] += 1
            continue
        uid = conn.execute(
            insert(s.users).values(
                username=name,
                role=role,
                password_hash=None,
                active=active,
                failed_logins=0,
                created_at=created,
            )
        ).inserted_primary_key[0]
        for code in sites:
            conn.execute(insert(s.user_sites).values(user_id=uid, site_code=code))
        _audit(
            registry,
            conn,
            actor,
            "users",
            name,
            {"role": role, "sites": sites, "active": active},
            reason,
        )
        stats.inserted["users"] += 1


def _import_gmp(
    registry: Any, conn: Connection, actor: Actor, g: GmpFile, path: Path, reason: str, stats: Any
) -> None:
    t = g.table
    has_patient = "patient_id" in t.c
    pids: dict[str, int] = {}
    if has_patient:
        pids = dict(conn.execute(select(s.patients.c.study_id, s.patients.c.id)).all())
    batches = {r[0] for r in conn.execute(select(s.ENTITIES["batches"].table.c.batch_id))}
    seen: set[tuple[Any, ...]] = set()
    for lineno, row in _rows(path, g.columns):
        where: dict[str, Any] = {"file": path.name, "row": lineno}
        values = {c: _value(t.c[c], row[c], {**where, "column": c}) for c in g.columns}
        if "batch_id" in values and values["batch_id"] not in batches:
            raise InvalidInput(
                "batch_id",
                values["batch_id"],
                "a batch of the registry or of batches.csv",
                column="batch_id",
                **where,
            )
        if has_patient:
            if values["study_id"] not in pids:
                raise InvalidInput(
                    "study_id",
                    values["study_id"],
                    "a study ID of the registry or of patients.csv",
                    column="study_id",
                    **where,
                )
            actor.require_site(_site_of(conn, pids[values["study_id"]]))
            values["patient_id"] = pids[values["study_id"]]
        key_cols = g.key or tuple(g.columns)
        key = tuple(values[k] for k in key_cols)
        if key in seen:
            raise InvalidInput(
                key_cols[0],
                row[key_cols[0]],
                f"one row per {', '.join(key_cols)}",
                column=key_cols[0],
                **where,
            )
        seen.add(key)
        conds = [
            t.c[k].is_(None) if values[k] is None else t.c[k] == values[k]
            for k in key_cols
            if g.key or not isinstance(t.c[k].type, DateTime)
        ]
        old = conn.execute(select(t).where(*conds)).mappings().first()
        if old is not None and g.key is None:
            old = old if all(_same(old[c], values[c]) for c in g.columns) else None
        if old is not None:
            for c in g.columns:
                if not _same(old[c], values[c]):
                    raise InvalidInput(
                        c,
                        row[c][:40],
                        f"the registry's value {_cell(t.c[c], old[c])[:40]!r} (GMP records change "
                        "with their own commands, not by import)",
                        column=c,
                        **where,
                    )
            stats.unchanged[t.name] += 1
            continue
        conn.execute(insert(t).values(**values))
        label = "/".join(str(values[k]) for k in (g.key or ("batch_id",)) if k in values)
        _audit(
            registry,
            conn,
            actor,
            t.name,
            label,
            {c: row[c] for c in g.columns},
            reason,
            study_id=values.get("study_id"),
        )
        stats.inserted[t.name] += 1


def _site_of(conn: Connection, pid: int) -> str:
    return str(conn.execute(select(s.patients.c.site).where(s.patients.c.id == pid)).scalar_one())


def _import_deleted(
    registry: Any, conn: Connection, actor: Actor, path: Path, reason: str, stats: Any
) -> None:
    from immunoreset.registry.csvio import build_record

    pids = dict(conn.execute(select(s.patients.c.study_id, s.patients.c.id)).all())
    for lineno, row in _rows(path, _DELETED_COLUMNS):
        where: dict[str, Any] = {"file": path.name, "row": lineno}
        name = row["entity"].strip()
        ent = s.ENTITIES.get(name)
        if ent is None:
            raise InvalidInput(
                "entity", name, "one of " + ", ".join(s.ENTITIES), column="entity", **where
            )
        sid = row["study_id"].strip()
        if sid not in pids:
            raise InvalidInput(
                "study_id",
                sid,
                "a study ID of the registry or of patients.csv",
                column="study_id",
                **where,
            )
        actor.require_site(_site_of(conn, pids[sid]))
        deleted_at = _value(
            ent.table.c.created_at, row["deleted_at"].strip(), {**where, "column": "deleted_at"}
        )
        created_at = _value(
            ent.table.c.created_at, row["created_at"].strip(), {**where, "column": "created_at"}
        )
        try:
            cells = json.loads(row["record"])
            if not isinstance(cells, dict) or not all(isinstance(v, str) for v in cells.values()):
                raise ValueError
        except ValueError:
            raise InvalidInput(
                "record",
                row["record"][:40],
                "a JSON object of the record's cells",
                column="record",
                **where,
            ) from None
        unknown = sorted(set(cells) - set(ent.columns))
        if unknown:
            raise InvalidInput(
                "record", unknown[0], f"a column of {name}.csv", column="record", **where
            )
        rec = build_record(ent, cells, lineno, path.name)
        pid = pids[sid]
        t = ent.table
        conds = [t.c[k] == v for k, v in zip(ent.key, ent.key_of(rec), strict=True)]
        if not ent.global_key:
            conds.append(t.c.patient_id == pid)
        old = conn.execute(select(t).where(*conds)).mappings().first()
        if old is not None:
            if old["deleted_at"] is None:
                raise InvalidInput(
                    "record",
                    row["record"][:40],
                    f"a record not live in the registry: this {name} record is live here "
                    "but deleted in the file",
                    column="record",
                    **where,
                )
            stats.kept_deleted[name] += 1
            continue
        values = ent.to_row(rec)
        conn.execute(
            insert(t).values(
                patient_id=pid,
                **values,
                created_at=created_at,
                updated_at=deleted_at,
                deleted_at=deleted_at,
                deleted_reason=row["deleted_reason"] or None,
            )
        )
        from immunoreset.registry.repository import _key_text

        key = _key_text(sid, ent.key_of(rec))
        _audit(registry, conn, actor, t.name, key, values, reason, study_id=sid)
        _audit(
            registry,
            conn,
            actor,
            t.name,
            key,
            _stamp_text(deleted_at),
            f"{reason} (deleted in the source: {row['deleted_reason']})",
            study_id=sid,
            action="delete",
            fieldname="deleted_at",
        )
        stats.inserted[f"{name} (deleted)"] += 1


# --------------------------------------------------------------------------- signed records
# Deviations, the results added after a release, and the electronic signatures of releases and
# deviation approvals. A deviation keeps its number (``number``; its approval's signature
# covers it) and a post-release result names its deviation by that number. A signature row
# carries no id: it is linked on import to the record whose content it hashes.
_DEV_COLUMNS = (
    "number",
    *(c.name for c in s.deviations.columns if c.name not in ("id", "signature_id")),
)
_POST_COLUMNS = (
    "deviation",
    *(c.name for c in s.qc_post_release.columns if c.name not in ("id", "deviation_id")),
)
_SIG_COLUMNS = ("username", "meaning", "table_name", "record_key", "content_sha256", "signed_at")
#: what each signed table's signature means
_SIGNED = {"release_decisions": "released", "deviations": "approved"}


def _export_signed(conn: Connection, folder: Path) -> dict[str, int]:
    counts = {}
    for file, t, first, header in (
        (DEVIATIONS_FILE, s.deviations, s.deviations.c.id, _DEV_COLUMNS),
        (POST_RELEASE_FILE, s.qc_post_release, s.qc_post_release.c.deviation_id, _POST_COLUMNS),
        (SIGNATURES_FILE, s.signatures, None, _SIG_COLUMNS),
    ):
        cols = [t.c[c] for c in (header if first is None else header[1:])]
        head = [] if first is None else [first]
        rows = conn.execute(select(*head, *cols).order_by(t.c.id))
        counts[file] = _write(
            folder / file,
            header,
            ([*(str(v) for v in r[: len(head)]), *map(_cell, cols, r[len(head) :])] for r in rows),
        )
    return counts


def _values(t: Table, header: tuple[str, ...], row: dict[str, str], where: dict[str, Any]) -> Any:
    return {c: _value(t.c[c], row[c], {**where, "column": c}) for c in header[1:]}


def _number(raw: str, column: str, where: dict[str, Any]) -> int:
    if not raw.strip().isdigit() or int(raw) < 1:
        raise InvalidInput(column, raw, "a deviation number (1, 2, …)", column=column, **where)
    return int(raw)


def _owner(conn: Connection, batch_id: str, where: dict[str, Any]) -> tuple[str, str]:
    """The (study ID, site) of the patient owning a batch (refused when there is none)."""
    b = s.ENTITIES["batches"].table
    row = conn.execute(
        select(s.patients.c.study_id, s.patients.c.site)
        .join(b, b.c.patient_id == s.patients.c.id)
        .where(b.c.batch_id == batch_id)
    ).first()
    if row is None:
        raise InvalidInput(
            "batch_id",
            batch_id,
            "a batch of the registry or of batches.csv",
            column="batch_id",
            **where,
        )
    return str(row[0]), str(row[1])


def _refuse_changed(
    t: Table, old: Mapping[str, Any], values: Mapping[str, Any], row: Any, where: dict[str, Any]
) -> bool:
    """True when ``old`` equals ``values``; refuse naming the first differing column."""
    for c, v in values.items():
        if not _same(old[c], v):
            raise InvalidInput(
                c,
                row[c][:40],
                f"the registry's value {_cell(t.c[c], old[c])[:40]!r} (GMP records change "
                "with their own commands, not by import)",
                column=c,
                **where,
            )
    return True


def _import_deviations(
    registry: Any, conn: Connection, actor: Actor, path: Path, reason: str, stats: Any
) -> None:
    t = s.deviations
    seen: set[int] = set()
    for lineno, row in _rows(path, _DEV_COLUMNS):
        where: dict[str, Any] = {"file": path.name, "row": lineno}
        number = _number(row["number"], "number", where)
        if number in seen:
            raise InvalidInput(
                "number", number, "one row per deviation number", column="number", **where
            )
        seen.add(number)
        values = _values(t, _DEV_COLUMNS, row, where)
        for col, allowed in (
            ("kind", ("release", "post_release")),
            ("status", ("open", "approved")),
        ):
            if values[col] not in allowed:
                raise InvalidInput(
                    col, values[col], "one of " + ", ".join(allowed), column=col, **where
                )
        for col in ("approved_by", "approved_at"):
            if (values[col] is None) != (values["status"] == "open"):
                need = (
                    "empty for an open deviation"
                    if values["status"] == "open"
                    else ("a value for an approved deviation")
                )
                raise InvalidInput(col, row[col], need, column=col, **where)
        sid, site = _owner(conn, values["batch_id"], where)
        actor.require_site(site)
        old = conn.execute(select(t).where(t.c.id == number)).mappings().first()
        if old is not None:
            if old["batch_id"] != values["batch_id"]:
                raise InvalidInput(
                    "number",
                    number,
                    f"a number not used by another deviation (here it is batch "
                    f"{old['batch_id']}'s; a deviation keeps its number because its signature "
                    "covers it — import into a registry without it)",
                    column="number",
                    **where,
                )
            _refuse_changed(t, old, values, row, where)
            stats.unchanged[t.name] += 1
            continue
        conn.execute(insert(t).values(id=number, **values))
        _audit(
            registry,
            conn,
            actor,
            t.name,
            f"{sid}/{values['batch_id']}/{number}",
            {c: row[c] for c in _DEV_COLUMNS},
            reason,
            study_id=sid,
        )
        stats.inserted[t.name] += 1
    if conn.dialect.name == "postgresql":  # explicit ids: the next raised deviation follows them
        from sqlalchemy import text

        conn.execute(
            text(
                "SELECT setval(pg_get_serial_sequence('deviations', 'id'), "
                "(SELECT coalesce(max(id), 0) + 1 FROM deviations), false)"
            )
        )


def _import_post_release(
    registry: Any, conn: Connection, actor: Actor, path: Path, reason: str, stats: Any
) -> None:
    t, d = s.qc_post_release, s.deviations
    seen: set[tuple[int, str]] = set()
    for lineno, row in _rows(path, _POST_COLUMNS):
        where: dict[str, Any] = {"file": path.name, "row": lineno}
        number = _number(row["deviation"], "deviation", where)
        values = _values(t, _POST_COLUMNS, row, where)
        dev = conn.execute(select(d.c.batch_id, d.c.kind).where(d.c.id == number)).first()
        if dev is None or dev.kind != "post_release" or dev.batch_id != values["batch_id"]:
            raise InvalidInput(
                "deviation",
                number,
                f"the number of a post-release deviation of batch {values['batch_id']} (in the "
                "registry or deviations.csv)",
                column="deviation",
                **where,
            )
        if values["status"] not in ("pass", "fail"):
            raise InvalidInput("status", values["status"], "pass or fail", column="status", **where)
        if (values["value_number"] is None) == (values["value_text"] is None):
            raise InvalidInput(
                "value_number",
                row["value_number"],
                "a number or (in value_text) a word, not both or neither",
                column="value_number",
                **where,
            )
        key = (number, values["attribute"])
        if key in seen:
            raise InvalidInput(
                "attribute",
                values["attribute"],
                "one row per deviation and attribute",
                column="attribute",
                **where,
            )
        seen.add(key)
        sid, site = _owner(conn, values["batch_id"], where)
        actor.require_site(site)
        old = (
            conn.execute(
                select(t).where(t.c.deviation_id == number, t.c.attribute == values["attribute"])
            )
            .mappings()
            .first()
        )
        if old is not None:
            _refuse_changed(t, old, values, row, where)
            stats.unchanged[t.name] += 1
            continue
        conn.execute(insert(t).values(deviation_id=number, **values))
        _audit(
            registry,
            conn,
            actor,
            t.name,
            f"{sid}/{values['batch_id']}/{values['attribute']}",
            {c: row[c] for c in _POST_COLUMNS},
            reason,
            study_id=sid,
        )
        stats.inserted[t.name] += 1


def _signed_records(conn: Connection, table: str) -> dict[str, Mapping[str, Any]]:
    """The table's signable records keyed by the SHA-256 of the content a signature binds."""
    from immunoreset.registry.gmp.deviations import deviation_content
    from immunoreset.registry.gmp.release import release_content
    from immunoreset.registry.gmp.signatures import content_sha256

    out: dict[str, Mapping[str, Any]] = {}
    if table == "release_decisions":
        t = s.release_decisions
        for r in conn.execute(
            select(t).where(t.c.decision != "refused").order_by(t.c.id)
        ).mappings():
            out.setdefault(content_sha256(release_content(r)), r)
    else:
        t = s.deviations
        for r in conn.execute(
            select(t).where(t.c.status == "approved").order_by(t.c.id)
        ).mappings():
            out.setdefault(content_sha256(deviation_content(r, r["approved_by"])), r)
    return out


def _import_signatures(
    registry: Any, conn: Connection, actor: Actor, path: Path, reason: str, stats: Any
) -> None:
    """Carry each signature as the historic record it is: linked to the imported record whose
    content has its hash (refused when none has: the record or the signature was edited),
    marked ``imported_by``/``imported_at`` — never a fresh signature of this registry."""
    import re

    t = s.signatures
    accounts = {r[0] for r in conn.execute(select(s.users.c.username))}
    records = {name: _signed_records(conn, name) for name in _SIGNED}
    seen: set[tuple[str, str]] = set()
    for lineno, row in _rows(path, _SIG_COLUMNS):
        where: dict[str, Any] = {"file": path.name, "row": lineno}
        values = {c: _value(t.c[c], row[c], {**where, "column": c}) for c in _SIG_COLUMNS}
        table, sha = values["table_name"], values["content_sha256"]
        if table not in _SIGNED:
            raise InvalidInput(
                "table_name", table, "one of " + ", ".join(_SIGNED), column="table_name", **where
            )
        if values["meaning"] != _SIGNED[table]:
            raise InvalidInput(
                "meaning",
                values["meaning"],
                f"{_SIGNED[table]} (for {table})",
                column="meaning",
                **where,
            )
        if not re.fullmatch(r"[0-9a-f]{64}", sha):
            raise InvalidInput(
                "content_sha256",
                sha[:40],
                "a SHA-256 as 64 hex digits",
                column="content_sha256",
                **where,
            )
        if values["username"] not in accounts:
            raise InvalidInput(
                "username",
                values["username"],
                "an account of the registry or of users.csv",
                column="username",
                **where,
            )
        if (table, sha) in seen:
            raise InvalidInput(
                "content_sha256",
                sha[:40],
                "one signature per signed record",
                column="content_sha256",
                **where,
            )
        seen.add((table, sha))
        rec = records[table].get(sha)
        if rec is None:
            raise InvalidInput(
                "content_sha256",
                sha[:16] + "…",
                f"the hash of a {table} record of the registry or of {table}.csv: none has "
                "this content, so the record or its signature was edited (a CSV cannot carry a "
                "signature that does not match its record; `immunoreset db backup` carries a "
                "registry as it is)",
                column="content_sha256",
                **where,
            )
        sid, _site = _owner(conn, rec["batch_id"], where)
        signer = rec["released_by"] if table == "release_decisions" else rec["approved_by"]
        key = f"{sid}/{rec['batch_id']}" + ("" if table == "release_decisions" else f"/{rec['id']}")
        for col, want in (("username", signer), ("record_key", key)):
            if values[col] != want:
                raise InvalidInput(
                    col, values[col], f"{want!r}, as the signed record says", column=col, **where
                )
        if rec["signature_id"] is not None:
            old = conn.execute(select(t).where(t.c.id == rec["signature_id"])).mappings().one()
            _refuse_changed(t, old, values, row, where)
            stats.unchanged[t.name] += 1
            continue
        now = _now()
        sig_id = conn.execute(
            insert(t).values(**values, imported_by=actor.username, imported_at=now)
        ).inserted_primary_key[0]
        rt = s.release_decisions if table == "release_decisions" else s.deviations
        conn.execute(rt.update().where(rt.c.id == rec["id"]).values(signature_id=sig_id))
        _audit(
            registry,
            conn,
            actor,
            t.name,
            f"{key}/signature/{sig_id}",
            {**{c: row[c] for c in _SIG_COLUMNS}, "imported": True},
            f"{reason} (historic electronic signature carried by CSV import: made by "
            f"{values['username']} on the source registry, its hash checked against the "
            "imported record; not signed here)",
            study_id=sid,
        )
        registry._audit(
            conn,
            actor,
            "update",
            table,
            key,
            "signature_id",
            None,
            str(sig_id),
            f"{reason} (imported signature {sig_id} linked)",
            now,
            study_id=sid,
        )
        stats.inserted[t.name] += 1


def import_signed(
    registry: Any, conn: Connection, actor: Actor, folder: Path, reason: str, stats: Any
) -> None:
    """Deviations, post-release results, then the signatures (after every signed record)."""
    for file, step in (
        (DEVIATIONS_FILE, _import_deviations),
        (POST_RELEASE_FILE, _import_post_release),
        (SIGNATURES_FILE, _import_signatures),
    ):
        if (folder / file).exists():
            step(registry, conn, actor, folder / file, reason, stats)
