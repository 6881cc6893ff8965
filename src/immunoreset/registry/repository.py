"""Repository functions: add, update, soft-delete and load treatment courses, with an audit trail.

All reads and writes go through :class:`Registry`, which takes an :class:`~.access.Actor` for
every call and applies the site/role rule (:mod:`.access`). Every insert, update, soft delete
and restore writes ``audit_log`` rows (user, time, table, record, field, old value, new value,
reason) in the same transaction as the change, so there is no change without its audit record.

Saving a whole course (:meth:`Registry.save_courses`) is an *upsert by natural key*: a record
whose key is new is inserted, one whose values differ is updated field by field, and an identical
one is left alone. That makes imports idempotent and lets the same function serve the demo, the
CSV importer and the web forms. Records are never removed by a save; removal is an explicit
:meth:`Registry.delete_record` with a reason, and only stamps the row.
"""

from __future__ import annotations

import datetime as dt
import gc
import json
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, and_, func, insert, or_, select, update
from sqlalchemy.engine import Connection

from immunoreset import course as c
from immunoreset import vocab
from immunoreset.errors import (
    InvalidInput,
    NotFound,
    PermissionDenied,
    check_choice,
)
from immunoreset.registry import fast, rules
from immunoreset.registry import schema as s
from immunoreset.registry.access import Actor, check_reason
from immunoreset.registry.db import check_schema, make_engine, write_transaction
from immunoreset.registry.db import upgrade as migrate

__all__ = ["Registry", "SaveStats", "gc_paused", "real_data_in"]

ProgressFn = Callable[[int], None]

#: After a save or import that inserted at least this many rows, PostgreSQL's statistics are
#: refreshed: a freshly bulk-loaded table without statistics made the set-based audit insert
#: scan the whole table (measured 34 ms → 0.9 ms per web POST after ANALYZE).
ANALYZE_AFTER_ROWS = 10_000


@dataclass
class SaveStats:
    """What a save or import did, per entity: rows inserted, updated and left unchanged."""

    inserted: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    updated: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    unchanged: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    #: soft-deleted records met again (left deleted, not changed)
    kept_deleted: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    @property
    def total_inserted(self) -> int:
        return sum(self.inserted.values())

    @property
    def total_updated(self) -> int:
        return sum(self.updated.values())

    @property
    def total_rows(self) -> int:
        return self.total_inserted + self.total_updated + sum(self.unchanged.values())


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector during bulk work.

    Bulk imports and loads create millions of small, acyclic records; every automatic
    collection would walk all of them again (a measured 20–35 % of the time). Reference
    counting still frees everything; the collector is back on afterwards.
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _jsonable(v: Any) -> Any:
    if isinstance(v, dt.date | dt.datetime):
        return v.isoformat()
    return v


def _dump(v: Any) -> str | None:
    if v is None:
        return None
    return json.dumps(_jsonable(v), ensure_ascii=False)


def _key_text(study_id: str, key: Sequence[Any]) -> str:
    return "/".join([study_id, *(str(_jsonable(k)) for k in key)])


class Registry:
    """The registry of treatment courses on one database (SQLite file or PostgreSQL URL)."""

    def __init__(
        self, db: str | None = None, *, engine: Engine | None = None, upgrade: bool = False
    ) -> None:
        """Open the registry at ``db`` (or on ``engine``).

        With ``upgrade`` the schema is created or brought to the newest migration (the
        ``db upgrade`` command); without it a registry whose schema is not current is refused
        with a :class:`~.db.SchemaError` naming the command to run.
        """
        self.engine = engine if engine is not None else make_engine(db, migrate=False)
        if upgrade:
            migrate(self.engine)
        else:
            check_schema(self.engine)

    def writing(self) -> Any:
        """A write transaction (context manager yielding the connection); see
        :func:`~.db.write_transaction`."""
        return write_transaction(self.engine)

    def analyze(self) -> None:
        """Refresh PostgreSQL's planner statistics (after bulk writes; no-op on SQLite)."""
        with write_transaction(self.engine) as conn:
            fast.analyze(conn, [s.patients, s.audit_log, *(e.table for e in s.ENTITIES.values())])

    def close(self) -> None:
        """Release the database connections."""
        self.engine.dispose()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ sites and users
    def add_site(self, actor: Actor, code: str, name: str) -> None:
        actor.require_admin("add a site")
        c._record_id("site", code)
        with write_transaction(self.engine) as conn:
            if _insert_site(conn, code, name):
                self._audit(
                    conn, actor, "insert", "sites", code, None, None, name, "site added", _now()
                )

    def list_sites(self) -> list[tuple[str, str]]:
        with self.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(select(s.sites.c.code, s.sites.c.name))]

    def add_user(
        self,
        actor: Actor,
        username: str,
        role: str,
        sites: Iterable[str] = (),
        *,
        password: str | None = None,
    ) -> None:
        """Create a user with a role and site memberships (admin only; audited)."""
        from immunoreset.registry.users import hash_password, validate_username

        if actor.role != "admin":
            raise PermissionDenied(actor.username, "add a user", "only an admin may do this")
        validate_username(username)
        check_choice("role", role, vocab.ROLES)
        site_list = sorted(set(sites))
        now = _now()
        with write_transaction(self.engine) as conn:
            known = {r[0] for r in conn.execute(select(s.sites.c.code))}
            for code in site_list:
                if code not in known:
                    raise InvalidInput("site", code, "a known site: " + ", ".join(sorted(known)))
            if conn.execute(select(s.users.c.id).where(s.users.c.username == username)).first():
                raise InvalidInput("username", username, "a username not already taken")
            uid = conn.execute(
                insert(s.users).values(
                    username=username,
                    role=role,
                    password_hash=hash_password(password) if password else None,
                    active=True,
                    failed_logins=0,
                    created_at=now,
                )
            ).inserted_primary_key[0]
            for code in site_list:
                conn.execute(insert(s.user_sites).values(user_id=uid, site_code=code))
            self._audit(
                conn,
                actor,
                "insert",
                "users",
                username,
                None,
                None,
                json.dumps({"role": role, "sites": site_list}),
                "user added",
                now,
            )

    def user_count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(s.users)).scalar_one())

    def actor_for(self, username: str) -> Actor:
        """The :class:`Actor` of an active registry user."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(s.users.c.id, s.users.c.role, s.users.c.active).where(
                    s.users.c.username == username
                )
            ).first()
            if row is None or not row.active:
                raise NotFound("user", username)
            sites = frozenset(
                r[0]
                for r in conn.execute(
                    select(s.user_sites.c.site_code).where(s.user_sites.c.user_id == row.id)
                )
            )
        return Actor(username=username, role=row.role, sites=None if row.role == "admin" else sites)

    def list_users(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            members: dict[int, list[str]] = defaultdict(list)
            for uid, code in conn.execute(select(s.user_sites.c.user_id, s.user_sites.c.site_code)):
                members[uid].append(code)
            return [
                {
                    "username": r.username,
                    "role": r.role,
                    "active": r.active,
                    "sites": sorted(members[r.id]),
                }
                for r in conn.execute(select(s.users).order_by(s.users.c.username))
            ]

    # ------------------------------------------------------------------ visibility
    def _visible_patients(
        self, conn: Connection, actor: Actor, study_ids: Sequence[str] | None, *, lock: bool = False
    ):  # type: ignore[no-untyped-def]
        q = select(s.patients).where(s.patients.c.deleted_at.is_(None))
        if lock:  # a writer of this patient's records holds its row until commit (PostgreSQL)
            q = q.with_for_update()
        if not actor.all_sites:
            q = q.where(s.patients.c.site.in_(sorted(actor.sites or ())))
        if study_ids is not None:
            q = q.where(s.patients.c.study_id.in_(list(study_ids)))
        return conn.execute(q.order_by(s.patients.c.study_id)).mappings().all()

    def _patient_row(
        self, conn: Connection, actor: Actor, study_id: str, *, lock: bool = False
    ) -> Mapping[str, Any]:
        rows = self._visible_patients(conn, actor, [study_id], lock=lock)
        if not rows:
            raise NotFound("patient", study_id)
        return rows[0]

    def list_patients(
        self, actor: Actor, *, site: str | None = None, diagnosis: str | None = None
    ) -> list[c.Patient]:
        """Patients the actor may see, optionally of one site or diagnosis."""
        with self.engine.connect() as conn:
            rows = self._visible_patients(conn, actor, None)
        out = [s.PATIENT_ENTITY.from_row(r) for r in rows]
        if site is not None:
            out = [p for p in out if p.site == site]
        if diagnosis is not None:
            out = [p for p in out if p.diagnosis == diagnosis]
        return out

    def page_patients(
        self,
        actor: Actor,
        *,
        offset: int = 0,
        limit: int = 50,
        site: str | None = None,
        diagnosis: str | None = None,
        search: str | None = None,
    ) -> tuple[list[c.Patient], int]:
        """One page of the patients the actor may see (by study ID) and the total count.

        ``search`` keeps the study IDs that contain it (case-insensitive; ``%`` and ``_`` are
        plain characters). The filtering is done by the database, so a page of a
        10,000-patient registry costs the same as a page of a small one.
        """
        from immunoreset.errors import check_range

        check_range("offset", offset, 0, None, integer=True)
        check_range("limit", limit, 1, 1000, integer=True)
        p = s.patients
        cond = [p.c.deleted_at.is_(None)]
        if not actor.all_sites:
            cond.append(p.c.site.in_(sorted(actor.sites or ())))
        if site is not None:
            cond.append(p.c.site == site)
        if diagnosis is not None:
            cond.append(p.c.diagnosis == diagnosis)
        if search:
            escaped = search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            cond.append(func.upper(p.c.study_id).like(f"%{escaped.upper()}%", escape="\\"))
        with self.engine.connect() as conn:
            total = int(conn.execute(select(func.count()).select_from(p).where(*cond)).scalar_one())
            rows = (
                conn.execute(
                    select(p).where(*cond).order_by(p.c.study_id).offset(offset).limit(limit)
                )
                .mappings()
                .all()
            )
        return [s.PATIENT_ENTITY.from_row(r) for r in rows], total

    def page_batches(
        self, actor: Actor, *, offset: int = 0, limit: int = 100
    ) -> tuple[list[tuple[str, c.Batch, list[c.Bag]]], int]:
        """One page of manufacturing batches the actor may see (newest first) with their bags.

        Returns ``[(study_id, batch, bags), …]`` and the total; two queries, whatever the size
        of the registry.
        """
        from immunoreset.errors import check_range

        check_range("offset", offset, 0, None, integer=True)
        check_range("limit", limit, 1, 1000, integer=True)
        p, b, g = s.patients, s.ENTITIES["batches"], s.ENTITIES["bags"]
        cond = [p.c.deleted_at.is_(None), b.table.c.deleted_at.is_(None)]
        if not actor.all_sites:
            cond.append(p.c.site.in_(sorted(actor.sites or ())))
        src = b.table.join(p, p.c.id == b.table.c.patient_id)
        with self.engine.connect() as conn:
            total = int(
                conn.execute(select(func.count()).select_from(src).where(*cond)).scalar_one()
            )
            rows = (
                conn.execute(
                    select(p.c.study_id, *(b.table.c[n] for n in b.columns))
                    .select_from(src)
                    .where(*cond)
                    .order_by(b.table.c.process_start.desc(), b.table.c.batch_id)
                    .offset(offset)
                    .limit(limit)
                )
                .mappings()
                .all()
            )
            batches = [(r["study_id"], b.from_row(r)) for r in rows]
            ids = [bt.batch_id for _, bt in batches]
            bags: dict[str, list[c.Bag]] = defaultdict(list)
            if ids:
                q = (
                    select(g.table)
                    .where(g.table.c.batch_id.in_(ids), g.table.c.deleted_at.is_(None))
                    .order_by(g.table.c.bag_id)
                )
                for r in conn.execute(q).mappings():
                    bags[r["batch_id"]].append(g.from_row(r))
        return [(sid, bt, bags[bt.batch_id]) for sid, bt in batches], total

    def count_rows(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            out = {
                "patients": conn.execute(select(func.count()).select_from(s.patients)).scalar_one()
            }
            for name, ent in s.ENTITIES.items():
                out[name] = conn.execute(select(func.count()).select_from(ent.table)).scalar_one()
            out["audit_log"] = conn.execute(
                select(func.count()).select_from(s.audit_log)
            ).scalar_one()
        return out

    def transfer_patient(self, actor: Actor, study_id: str, to_site: str, *, reason: str) -> str:
        """Move a patient (and with it its whole course) to another site; returns the old site.

        Admin only, with a reason; audited as an update of the patient's ``site``. This is the
        only way a patient changes site: every save refuses it.
        """
        actor.require_admin("transfer a patient to another site")
        _require_reason(reason)
        now = _now()
        with self.engine.begin() as conn:
            row = self._patient_row(conn, actor, study_id)
            known = {r[0] for r in conn.execute(select(s.sites.c.code))}
            if to_site not in known:
                raise InvalidInput("to", to_site, "a known site: " + ", ".join(sorted(known)))
            if row["site"] == to_site:
                raise InvalidInput("to", to_site, f"a site other than {study_id}'s own")
            conn.execute(
                update(s.patients)
                .where(s.patients.c.id == row["id"])
                .values(site=to_site, updated_at=now)
            )
            self._audit(
                conn,
                actor,
                "update",
                "patients",
                study_id,
                "site",
                _dump(row["site"]),
                _dump(to_site),
                f"patient transfer: {reason}",
                now,
                study_id=study_id,
            )
        return row["site"]

    # ------------------------------------------------------------------ loading
    def load_course(self, actor: Actor, study_id: str) -> c.Course:
        """One patient's whole course (soft-deleted rows left out)."""
        courses = list(self.iter_courses(actor, study_ids=[study_id]))
        if not courses:
            raise NotFound("patient", study_id)
        return courses[0]

    def iter_courses(
        self,
        actor: Actor,
        *,
        study_ids: Sequence[str] | None = None,
        site: str | None = None,
        diagnosis: str | None = None,
        chunk_size: int = 1000,
        progress: ProgressFn | None = None,
        skip: Collection[str] = (),
    ) -> Iterator[c.Course]:
        """Every visible course, loaded a chunk of patients at a time (one query per table).

        ``skip`` names entities (``labs`` …) left out of the courses, for a caller that reads
        those tables column-wise itself (the SDTM export).
        """
        with self.engine.connect() as conn:
            prow = self._visible_patients(conn, actor, study_ids)
            if site is not None:
                prow = [r for r in prow if r["site"] == site]
            if diagnosis is not None:
                prow = [r for r in prow if r["diagnosis"] == diagnosis]
            for start in range(0, len(prow), chunk_size):
                chunk = prow[start : start + chunk_size]
                with gc_paused():
                    courses = list(self._load_chunk(conn, chunk, skip))
                yield from courses
                if progress:
                    progress(len(chunk))

    def _load_chunk(
        self, conn: Connection, prow: Sequence[Mapping[str, Any]], skip: Collection[str] = ()
    ) -> Iterator[c.Course]:
        ids = sorted(r["id"] for r in prow)
        lo, hi = ids[0], ids[-1]
        contiguous = hi - lo + 1 == len(ids)
        parts: dict[str, dict[int, list[Any]]] = {}
        for name, ent in s.ENTITIES.items():
            t = ent.table
            grouped: dict[int, list[Any]] = defaultdict(list)
            if name in skip:
                parts[name] = grouped
                continue
            make = fast.record_maker(conn, ent)
            if contiguous:
                rows = fast.select_patient_range(conn, ent, lo, hi)
            else:
                cond = and_(t.c.deleted_at.is_(None), t.c.patient_id.in_(ids))
                rows = fast.select_raw(conn, t, ["patient_id", *ent.columns], cond)
            for row in rows:
                grouped[row[0]].append(make(row))
            parts[name] = grouped
        for prow_i in prow:
            pid = prow_i["id"]
            kwargs: dict[str, Any] = {}
            for name, ent in s.ENTITIES.items():
                recs = parts[name].get(pid, [])
                kwargs[ent.course_attr] = tuple(recs) if ent.many else (recs[0] if recs else None)
            yield c.Course(patient=s.PATIENT_ENTITY.from_row(prow_i), **kwargs)

    # ------------------------------------------------------------------ saving
    def save_course(self, actor: Actor, course: c.Course, *, reason: str) -> SaveStats:
        return self.save_courses(actor, [course], reason=reason)

    def save_courses(
        self,
        actor: Actor,
        courses: Iterable[c.Course],
        *,
        reason: str,
        chunk_size: int = 500,
        progress: ProgressFn | None = None,
        conn: Connection | None = None,
    ) -> SaveStats:
        """Insert or update whole courses by natural key, all in one transaction.

        Raises before anything is written when the actor may not write to a patient's site;
        any error rolls the whole save back.
        """
        actor.require_write()
        _require_reason(reason)
        stats = SaveStats()
        with gc_paused():
            if conn is None:
                with write_transaction(self.engine) as own:
                    self._save_all(own, actor, courses, reason, chunk_size, progress, stats)
                if stats.total_inserted >= ANALYZE_AFTER_ROWS:
                    self.analyze()
            else:
                self._save_all(conn, actor, courses, reason, chunk_size, progress, stats)
        return stats

    def _save_all(self, conn, actor, courses, reason, chunk_size, progress, stats) -> None:  # type: ignore[no-untyped-def]
        batch: list[c.Course] = []
        for course in courses:
            batch.append(course)
            if len(batch) >= chunk_size:
                self._save_chunk(conn, actor, batch, reason, stats)
                if progress:
                    progress(len(batch))
                batch = []
        if batch:
            self._save_chunk(conn, actor, batch, reason, stats)
            if progress:
                progress(len(batch))

    def _save_chunk(self, conn, actor, courses, reason, stats) -> None:  # type: ignore[no-untyped-def]
        ids = self.write_patients(conn, actor, [co.patient for co in courses], (), reason, stats)
        for ent in s.ENTITIES.values():
            items = []
            for co in courses:
                pid = ids[co.patient.study_id]
                value = getattr(co, ent.course_attr)
                recs = value if ent.many else ((value,) if value is not None else ())
                items.extend([(pid, co.patient.study_id, r) for r in recs])
            if items:
                self.write_records(conn, actor, ent, items, reason, stats)

    def write_patients(
        self,
        conn: Connection,
        actor: Actor,
        patients: Sequence[c.Patient],
        sites: Iterable[tuple[str, str]],
        reason: str,
        stats: SaveStats,
    ) -> dict[str, int]:
        """Within ``conn``'s transaction: add missing ``sites``, upsert ``patients``.

        Returns study ID -> patient row id. Refuses a patient of a site the actor may not
        write to, or of an unknown site.
        """
        actor.require_write()
        _require_reason(reason)
        now = _now()
        known = {r[0] for r in conn.execute(select(s.sites.c.code))}
        for code, name in sites:
            if code not in known:
                actor.require_admin("add a site")
                # another import may add the same site at the same moment: first one wins
                if _insert_site(conn, code, name):
                    self._audit(conn, actor, "insert", "sites", code, None, None, name, reason, now)
                known.add(code)
        for p in patients:
            if p.site not in known:
                raise InvalidInput("site", p.site, "a site added with `immunoreset site add`")
            actor.require_site(p.site)
        return self._upsert(
            conn,
            actor,
            s.PATIENT_ENTITY,
            [(None, p.study_id, p) for p in patients],
            reason,
            stats,
            now,
        )

    def insert_new_rows(
        self,
        conn: Connection,
        actor: Actor,
        ent: s.Entity,
        rows: Sequence[tuple[Any, ...]],
        reason: str,
        stats: SaveStats,
        *,
        audit_texts: Sequence[tuple[str, str]] | None = None,
    ) -> None:
        """Within ``conn``'s transaction: insert encoded rows of patients new in this transaction.

        ``rows`` are ``(patient row id, *encoded fields)`` (see :func:`fast.row_encoder`); every
        row is audited set-based. Only for patients :meth:`write_patients` has just inserted, so
        no stored row can share their keys (global keys such as bag IDs go through
        :meth:`write_records`, which checks them).
        """
        actor.require_write()
        if ent.global_key:
            raise InvalidInput("entity", ent.name, "a per-patient entity (not a global key)")
        now = _now()
        stamp = fast.codec(conn).stamp(now)
        study = self._study_ids(conn, {r[0] for r in rows})
        fast.insert_audited(
            conn,
            ent,
            ["patient_id", *ent.columns, "created_at", "updated_at"],
            [(*r, stamp, stamp) for r in rows],
            study_ids=[study[r[0]] for r in rows],
            fields_at=1,
            now=now,
            username=actor.username,
            reason=reason,
            texts=audit_texts,
        )
        stats.inserted[ent.name] += len(rows)
        rules.touch(conn, {r[0] for r in rows})

    def _study_ids(self, conn: Connection, pids: Iterable[int]) -> dict[int, str]:
        """Patient row id -> study ID."""
        out: dict[int, str] = {}
        for part in _chunks(sorted(pids), 500):
            q = select(s.patients.c.id, s.patients.c.study_id).where(s.patients.c.id.in_(part))
            out.update({pid: sid for pid, sid in conn.execute(q)})
        return out

    def existing_study_ids(self, conn: Connection, study_ids: Iterable[str]) -> set[str]:
        """Which of ``study_ids`` are already stored (soft-deleted or not)."""
        out: set[str] = set()
        for part in _chunks(list(study_ids), 500):
            q = select(s.patients.c.study_id).where(s.patients.c.study_id.in_(part))
            out.update(r[0] for r in conn.execute(q))
        return out

    def write_records(
        self,
        conn: Connection,
        actor: Actor,
        ent: s.Entity,
        items: list[tuple[int, str, Any]],
        reason: str,
        stats: SaveStats,
    ) -> None:
        """Within ``conn``'s transaction: upsert ``(patient row id, study ID, record)`` items.

        The patients must have been written by :meth:`write_patients` in the same
        transaction (which checked the actor's right to write to their sites).
        """
        actor.require_write()
        self._upsert(conn, actor, ent, items, reason, stats, _now())

    def _upsert(
        self,
        conn: Connection,
        actor: Actor,
        ent: s.Entity,
        items: list[tuple[int | None, str, Any]],
        reason: str,
        stats: SaveStats,
        now: dt.datetime,
    ) -> dict[str, int]:
        """Insert/update records of one entity; returns study_id -> patient row id (patients)."""
        if ent.record is c.DailyAssessment:
            for _, _, record in items:
                c.check_not_blank(record)
        t = ent.table
        is_patient = ent is s.PATIENT_ENTITY
        keycols = [t.c[k] for k in ent.key]
        # fetch existing rows with the same keys
        existing: dict[tuple[Any, ...], Mapping[str, Any]] = {}
        if is_patient or ent.global_key:
            keys = [ent.key_of(r) for _, _, r in items]
            for part in _chunks(keys, 500):
                # rows about to be compared and changed are locked until commit (PostgreSQL;
                # an SQLite writer holds the database lock): the audit's old values are the
                # values replaced, whoever else writes
                q = select(t).where(keycols[0].in_([k[0] for k in part])).with_for_update()
                for row in conn.execute(q).mappings():
                    existing[tuple(row[k] for k in ent.key)] = row
        else:
            pids = sorted({pid for pid, _, _ in items})
            for part in _chunks(pids, 500):
                q = select(t).where(t.c.patient_id.in_(part))
                for row in conn.execute(q).mappings():
                    existing[(row["patient_id"], *(row[k] for k in ent.key))] = row
        to_insert: list[tuple[Any, ...]] = []
        insert_sids: list[str] = []
        audits: list[dict[str, Any]] = []
        seen: set[tuple[Any, ...]] = set()
        cod = fast.codec(conn)
        encode = fast.row_encoder(conn, ent)
        names = ent.columns
        stamp = cod.stamp(now)
        key_of = ent.key_of
        for pid, study_id, rec in items:
            key = key_of(rec)
            full_key = key if (is_patient or ent.global_key) else (pid, *key)
            if full_key in seen:
                raise InvalidInput(
                    ent.name,
                    list(key),
                    f"one {ent.name} record per {', '.join(ent.key) or 'patient'}",
                )
            seen.add(full_key)
            old = existing.get(full_key)
            if old is None:
                row = encode(rec)
                to_insert.append((*row, stamp, stamp) if is_patient else (pid, *row, stamp, stamp))
                insert_sids.append(study_id)
                stats.inserted[ent.name] += 1
                continue
            if is_patient:
                _guard_patient_update(actor, old, rec)
            if not is_patient and ent.global_key and old["patient_id"] != pid:
                raise rules.RuleViolation(
                    f"{ent.name} {key[0]} already belongs to another patient; it cannot be "
                    f"recorded for {study_id}",
                    entity=ent.name,
                    study_id=study_id,
                    key=key,
                    column=ent.key[0],
                    reason="wrong_patient",
                )
            values = ent.to_row(rec)
            key_text = _key_text(study_id, key) if not is_patient else study_id
            changed = {k: v for k, v in values.items() if not _same(old[k], v)}
            if old["deleted_at"] is not None:
                # a save or re-import never brings back a soft-deleted record (that takes an
                # explicit, audited restore_record with a reason); it stays as deleted
                stats.kept_deleted[ent.name] += 1
                continue
            if not changed:
                stats.unchanged[ent.name] += 1
                continue
            upd: dict[str, Any] = dict(changed, updated_at=now)
            for k, v in changed.items():
                audits.append(
                    _audit_row(
                        actor,
                        "update",
                        t.name,
                        key_text,
                        study_id,
                        k,
                        _dump(old[k]),
                        _dump(v),
                        reason,
                        now,
                    )
                )
            conn.execute(update(t).where(t.c.id == old["id"]).values(**upd))
            stats.updated[ent.name] += 1
        if to_insert:
            cols = [*names, "created_at", "updated_at"]
            if not is_patient:
                cols.insert(0, "patient_id")
            fast.insert_audited(
                conn,
                ent,
                cols,
                to_insert,
                study_ids=insert_sids,
                fields_at=0 if is_patient else 1,
                now=now,
                username=actor.username,
                reason=reason,
            )
        if audits:
            conn.execute(insert(s.audit_log), audits)
        if is_patient:
            out: dict[str, int] = {}
            ids = [k[0] for k in {ent.key_of(r) for _, _, r in items}]
            for part in _chunks(ids, 500):
                q = select(t.c.study_id, t.c.id).where(t.c.study_id.in_(part))
                out.update({sid: pid for sid, pid in conn.execute(q)})
            rules.touch(conn, out.values())
            return out
        rules.touch(conn, {pid for pid, _, _ in items if pid is not None})
        return {}

    # ------------------------------------------------------------------ single-record edits
    def add_record(
        self, actor: Actor, study_id: str, entity: str, record: Any, *, reason: str
    ) -> None:
        """Add one record to a patient's course; refuses a key that already exists."""
        ent = _entity(entity)
        if not isinstance(record, ent.record):
            raise InvalidInput("record", type(record).__name__, f"a {ent.record.__name__}")
        actor.require_write()
        _require_reason(reason)
        with write_transaction(self.engine) as conn:
            prow = self._patient_row(conn, actor, study_id, lock=True)
            actor.require_site(prow["site"])
            if self._find(conn, ent, prow["id"], ent.key_of(record), include_deleted=False):
                raise InvalidInput(
                    ent.name,
                    list(ent.key_of(record)),
                    "a record not yet in the registry (use update)",
                )
            self._upsert(
                conn, actor, ent, [(prow["id"], study_id, record)], reason, SaveStats(), _now()
            )

    def update_record(
        self,
        actor: Actor,
        study_id: str,
        entity: str,
        key: Sequence[Any],
        changes: Mapping[str, Any],
        *,
        reason: str,
    ) -> Any:
        """Change fields of one record; the new record is validated before anything is written."""
        ent = _entity(entity)
        actor.require_write()
        _require_reason(reason)
        with write_transaction(self.engine) as conn:
            prow = self._patient_row(conn, actor, study_id, lock=True)
            actor.require_site(prow["site"])
            old = self._find(conn, ent, prow["id"], tuple(key), include_deleted=False)
            if old is None:
                raise NotFound(ent.name, _key_text(study_id, key))
            unknown = set(changes) - set(ent.columns)
            if unknown:
                raise InvalidInput("field", sorted(unknown)[0], "one of: " + ", ".join(ent.columns))
            current = ent.from_row(old)
            if any(k in changes and changes[k] != getattr(current, k) for k in ent.key):
                raise InvalidInput("key", list(key), "unchanged (key fields cannot be edited)")
            new = ent.record(**{**current.as_dict(), **changes})
            self._upsert(
                conn, actor, ent, [(prow["id"], study_id, new)], reason, SaveStats(), _now()
            )
            return new

    def delete_record(
        self, actor: Actor, study_id: str, entity: str, key: Sequence[Any], *, reason: str
    ) -> None:
        """Soft-delete one record: it is stamped with time and reason, never removed."""
        ent = _entity(entity)
        actor.require_write()
        _require_reason(reason)
        now = _now()
        with write_transaction(self.engine) as conn:
            prow = self._patient_row(conn, actor, study_id, lock=True)
            actor.require_site(prow["site"])
            old = self._find(conn, ent, prow["id"], tuple(key), include_deleted=False)
            if old is None:
                raise NotFound(ent.name, _key_text(study_id, key))
            conn.execute(
                update(ent.table)
                .where(ent.table.c.id == old["id"])
                .values(deleted_at=now, deleted_reason=reason, updated_at=now)
            )
            self._audit(
                conn,
                actor,
                "delete",
                ent.table.name,
                _key_text(study_id, key),
                "deleted_at",
                None,
                _dump(now),
                reason,
                now,
                study_id=study_id,
            )

    def restore_record(
        self, actor: Actor, study_id: str, entity: str, key: Sequence[Any], *, reason: str
    ) -> None:
        """Undo a soft delete (audited with its reason); the only way a deleted record returns."""
        ent = _entity(entity)
        actor.require_write()
        _require_reason(reason)
        now = _now()
        with write_transaction(self.engine) as conn:
            prow = self._patient_row(conn, actor, study_id, lock=True)
            actor.require_site(prow["site"])
            old = self._find(conn, ent, prow["id"], tuple(key), include_deleted=True)
            if old is None or old["deleted_at"] is None:
                raise NotFound(f"deleted {ent.name}", _key_text(study_id, key))
            conn.execute(
                update(ent.table)
                .where(ent.table.c.id == old["id"])
                .values(deleted_at=None, deleted_reason=None, updated_at=now)
            )
            self._audit(
                conn,
                actor,
                "restore",
                ent.table.name,
                _key_text(study_id, key),
                "deleted_at",
                _dump(old["deleted_at"]),
                None,
                reason,
                now,
                study_id=study_id,
            )

    def _find(self, conn, ent, pid, key, *, include_deleted):  # type: ignore[no-untyped-def]
        t = ent.table
        cond = [t.c[k] == v for k, v in zip(ent.key, key, strict=True)]
        if not ent.global_key:
            cond.append(t.c.patient_id == pid)
        if not include_deleted:
            cond.append(t.c.deleted_at.is_(None))
        return conn.execute(select(t).where(and_(*cond))).mappings().first()

    # ------------------------------------------------------------------ audit
    def _audit(
        self, conn, actor, action, table, key, fieldname, old, new, reason, now, *, study_id=None
    ) -> None:  # type: ignore[no-untyped-def]
        conn.execute(
            insert(s.audit_log).values(
                **_audit_row(actor, action, table, key, study_id, fieldname, old, new, reason, now)
            )
        )

    def record_export(
        self,
        actor: Actor,
        fmt: str,
        destination: str,
        study_ids: Sequence[str],
        *,
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        """Write an export to the audit trail: who exported which patients, in what format, when.

        One ``export`` row for the whole export (``record_key`` = format, ``new_value`` = the
        destination, the number of patients and ``detail`` as JSON) and one per exported
        patient, so a patient's own audit trail shows every export of their data.
        """
        check_choice("fmt", fmt, ("fhir", "sdtm", "redcap", "csv", "nonmem"))
        now = _now()
        summary = {"destination": destination, "patients": len(study_ids), **(detail or {})}
        rows = [
            _audit_row(
                actor, "export", "exports", fmt, None, None, None, _dump(summary), "export", now
            )
        ]
        rows += [
            _audit_row(actor, "export", "patients", sid, sid, fmt, None, destination, "export", now)
            for sid in study_ids
        ]
        with self.engine.begin() as conn:
            for part in _chunks(rows, 5000):
                conn.execute(insert(s.audit_log), list(part))

    def record_refusal(
        self, actor: Actor, table: str, key: str, why: str, *, study_id: str | None = None
    ) -> None:
        """Write a refused action (e.g. a chain-of-identity violation) to the audit trail."""
        with write_transaction(self.engine) as conn:
            self._audit(
                conn, actor, "refused", table, key, None, None, None, why, _now(), study_id=study_id
            )

    def audit_trail(
        self, actor: Actor, *, study_id: str | None = None, limit: int = 200
    ) -> list[dict[str, Any]]:
        """Newest-first audit entries (of one visible patient, or all for an admin)."""
        with self.engine.connect() as conn:
            q = select(s.audit_log).order_by(s.audit_log.c.id.desc()).limit(limit)
            if study_id is not None:
                self._patient_row(conn, actor, study_id)
                q = q.where(s.audit_log.c.study_id == study_id)
            elif not actor.all_sites:
                visible = [r["study_id"] for r in self._visible_patients(conn, actor, None)]
                # a site's release specifications are audited under "<SITE>/<key>" (program-
                # wide ones under "*/<key>"): the site's own users see those rows too
                a = s.audit_log.c
                specs = or_(
                    *(
                        a.record_key.startswith(f"{x}/", autoescape=True)
                        for x in (*sorted(actor.sites or ()), "*")
                    )
                )
                q = q.where(
                    or_(a.study_id.in_(visible), and_(a.table_name == "release_specs", specs))
                )
            return [dict(r) for r in conn.execute(q).mappings()]

    def page_audit(
        self,
        actor: Actor,
        *,
        study_id: str | None = None,
        username: str | None = None,
        table: str | None = None,
        since: dt.date | None = None,
        until: dt.date | None = None,
        offset: int = 0,
        limit: int = 100,
    ) -> tuple[list[dict[str, Any]], int]:
        """One page of the audit trail (newest first) and the number of matching entries.

        Filters: patient, user, table, and the UTC days ``since``–``until`` (both included).
        Site scoping as :meth:`audit_trail`: a user without every site sees only the entries
        of patients of their sites (deleted ones included: their history stays theirs), never
        entries without a patient (users, sites, specifications).
        """
        from immunoreset.errors import check_range

        check_range("offset", offset, 0, None, integer=True)
        check_range("limit", limit, 1, 100_000, integer=True)
        a = s.audit_log
        cond = []
        if study_id is not None:
            with self.engine.connect() as conn:
                self._patient_row(conn, actor, study_id)  # NotFound outside the actor's sites
            cond.append(a.c.study_id == study_id)
        if not actor.all_sites:
            mine = select(s.patients.c.study_id).where(
                s.patients.c.site.in_(sorted(actor.sites or ()))
            )
            cond.append(a.c.study_id.in_(mine))
        if username:
            cond.append(a.c.username == username)
        if table:
            cond.append(a.c.table_name == table)
        if since is not None:
            cond.append(a.c.ts >= dt.datetime.combine(since, dt.time(), dt.UTC))
        if until is not None:
            end = dt.datetime.combine(until + dt.timedelta(days=1), dt.time(), dt.UTC)
            cond.append(a.c.ts < end)
        with self.engine.connect() as conn:
            total = int(conn.execute(select(func.count()).select_from(a).where(*cond)).scalar_one())
            rows = conn.execute(
                select(a).where(*cond).order_by(a.c.id.desc()).offset(offset).limit(limit)
            ).mappings()
            return [dict(r) for r in rows], total

    def audit_choices(self, actor: Actor) -> tuple[list[str], list[str]]:
        """The users and tables that occur in the audit entries the actor may see (for filters)."""
        a = s.audit_log
        cond = []
        if not actor.all_sites:
            mine = select(s.patients.c.study_id).where(
                s.patients.c.site.in_(sorted(actor.sites or ()))
            )
            cond.append(a.c.study_id.in_(mine))
        with self.engine.connect() as conn:
            users = conn.execute(select(a.c.username).where(*cond).distinct()).scalars().all()
            tables = conn.execute(select(a.c.table_name).where(*cond).distinct()).scalars().all()
        return sorted(users), sorted(tables)


# --------------------------------------------------------------------------- safety
def real_data_in(engine: Engine) -> str | None:
    """What in the registry is not SYNTHETIC demo data (None: nothing, or no registry yet).

    ``demo`` may only replace or add to a registry without real data: every patient (deleted
    or not) must be marked synthetic and no user account may exist.
    """
    from sqlalchemy import inspect

    tables = set(inspect(engine).get_table_names())
    if "patients" not in tables:
        return None
    with engine.connect() as conn:
        real = conn.execute(
            select(func.count()).select_from(s.patients).where(s.patients.c.synthetic.is_not(True))
        ).scalar_one()
        users = (
            conn.execute(select(func.count()).select_from(s.users)).scalar_one()
            if "users" in tables
            else 0
        )
    if real:
        return f"{real} patient(s) not marked synthetic"
    if users:
        return f"{users} user account(s)"
    return None


# --------------------------------------------------------------------------- helpers
def _entity(name: str) -> s.Entity:
    check_choice("entity", name, s.ENTITIES)
    return s.ENTITIES[name]


def _require_reason(reason: str) -> None:
    check_reason(reason)


def _guard_patient_update(actor: Actor, old: Mapping[str, Any], new: c.Patient) -> None:
    """The site rule of every save (CSV, web, API, importers): an update may only touch a
    patient the actor can already see, and never moves it to another site — that is
    :meth:`Registry.transfer_patient` (admin only, with a reason)."""
    if not actor.can_see_site(old["site"]):
        raise PermissionDenied(
            actor.username,
            f"change patient {new.study_id}",
            "that study ID is taken by a patient you cannot see (choose another study ID)",
        )
    if old["site"] != new.site:
        raise PermissionDenied(
            actor.username,
            f"move patient {new.study_id} from {old['site']} to {new.site}",
            "a save never changes a patient's site; an admin moves patients with "
            "`immunoreset patient transfer STUDY_ID --to SITE --reason …`",
        )


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        try:
            return a is not None and b is not None and float(a) == float(b)
        except (TypeError, ValueError):
            return False
    if isinstance(a, dt.datetime) and not isinstance(b, dt.datetime):
        return a.date() == b
    return a == b


def _insert_site(conn: Connection, code: str, name: str) -> bool:
    """Insert a site unless it exists (also against a concurrent insert); True if inserted."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    stmt = (
        dialect_insert(s.sites)
        .values(code=code, name=name)
        .on_conflict_do_nothing()
        .returning(s.sites.c.code)
    )
    return conn.execute(stmt).first() is not None


def _chunks(seq: Sequence[Any], n: int) -> Iterator[Sequence[Any]]:
    seq = list(seq)
    for i in range(0, len(seq), n):
        yield seq[i : i + n]


def _audit_row(
    actor, action, table, key, study_id, fieldname, old, new, reason, now
) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    if study_id is None and "/" not in key and table == "patients":
        study_id = key
    return {
        "ts": now,
        "username": actor.username,
        "action": action,
        "table_name": table,
        "record_key": key,
        "study_id": study_id,
        "field": fieldname,
        "old_value": old,
        "new_value": new,
        "reason": reason,
    }
