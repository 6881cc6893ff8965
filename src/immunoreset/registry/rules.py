"""The one write gate: chain-of-identity, release and plausibility rules for every writer.

Every write to the registry happens in a :func:`~.db.write_transaction`; every writer that
stores records marks the patients it touched (:func:`touch`, done by the repository's upsert
and bulk insert, which the CSV importer, the web forms and API, the demo, the interop
importers and the GMP stores all go through). Before such a transaction commits,
:func:`enforce` checks the *stored result* for those patients, so no entry path can store what
another refuses:

* a batch's apheresis exists and belongs to the batch's patient; the batch starts on or after
  the collection (plausibility);
* a bag's batch exists and belongs to the bag's patient;
* every bag of an infusion exists, belongs to the infused patient (bag, batch and apheresis),
  comes from a released batch, is released, stored for re-dosing or recorded as infused
  (never quarantined, discarded or expired), has an expiry date on or after the infusion
  date, and is not in any other infusion (of this or another patient); the infusion is on or
  after the batch's harvest (plausibility);
* every date of a clinical or manufacturing record of the patient (assessments, labs,
  anthropometrics, apheresis, batch start and harvest, lymphodepletion, infusions,
  medications, adverse events, infections, follow-up, the diagnosis) is **not after today**
  and **not before the patient's birth month** — the registry keeps birth year and month only
  (pseudonymous), so the first day of that month is the earliest possible date (issue 13
  item 5: no assessment in 2083, no lab in 2031). Reason codes ``future_date`` and
  ``before_birth``. "Today" is the latest calendar date anywhere on Earth (UTC+14,
  :data:`DATE_AHEAD_ALLOWANCE`), so a site east of Greenwich entering today's record just
  after its midnight is not refused. A bag's expiry date is a date in the future by nature and
  is not checked.

A refusal is a :class:`RuleViolation` naming entity, patient, key and column (the CSV importer
adds file and row); the whole transaction is rolled back. The bedside check of a single
infusion (:meth:`~.gmp.Gmp.infuse`) applies the same rules to the scanned bags first, through
:func:`immunoreset.manufacturing.chain.check_infusion`.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Date, func, select
from sqlalchemy.engine import Connection

from immunoreset.errors import ChainOfIdentityError, InvalidInput
from immunoreset.manufacturing.chain import INFUSABLE_BAG_STATUS
from immunoreset.registry import schema as s

__all__ = [
    "DATE_AHEAD_ALLOWANCE",
    "ImplausibleDate",
    "RuleViolation",
    "enforce",
    "latest_today",
    "touch",
]

_TOUCHED = "immunoreset_touched_patients"
#: Bag statuses an infusion record may reference (a bag is marked infused once infused).
RECORDED_INFUSED_STATUS = (*INFUSABLE_BAG_STATUS, "infused")
#: How far ahead of UTC "today" may be: the easternmost time zone (Line Islands) is UTC+14.
DATE_AHEAD_ALLOWANCE = dt.timedelta(hours=14)
#: Date columns that are not events that have happened (a bag's expiry lies ahead).
NOT_EVENT_DATES: frozenset[tuple[str, str]] = frozenset({("bags", "expiry")})


def latest_today() -> dt.date:
    """The latest calendar date anywhere on Earth now (UTC + 14 h)."""
    return (dt.datetime.now(dt.UTC) + DATE_AHEAD_ALLOWANCE).date()


class RuleViolation(ChainOfIdentityError):
    """A record the rules refuse: which entity, patient, key and column, and why."""

    def __init__(
        self,
        message: str,
        *,
        entity: str,
        study_id: str,
        key: Sequence[Any],
        column: str,
        reason: str,
        bag_id: str | None = None,
        file: str | None = None,
        row: int | None = None,
    ) -> None:
        self.entity = entity
        self.key = tuple(key)
        self.column = column
        self.reason = reason
        self.file = file
        self.row = row
        self.plain = message
        where = [p for p in (file, f"row {row}" if row else None) if p]
        if where:
            where.append(f"column {column}")
        super().__init__(
            (", ".join(where) + ": " if where else "") + message, bag_id=bag_id, study_id=study_id
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (self.plain, self.__dict__.copy()))

    def located(self, *, file: str, row: int | None) -> RuleViolation:
        """The same refusal, saying where in an import it came from."""
        return RuleViolation(
            self.plain,
            entity=self.entity,
            study_id=self.study_id or "",
            key=self.key,
            column=self.column,
            reason=self.reason,
            bag_id=self.bag_id,
            file=file,
            row=row,
        )


class ImplausibleDate(InvalidInput, RuleViolation):
    """A record date after today or before the birth month: bad input (``InvalidInput``
    naming the field and the allowed range, shown beside a form's field, 422 on the API) that
    the write gate refuses like every rule (``RuleViolation``: entity, patient, key, column,
    reason code; the CSV importer adds file and row)."""

    def __init__(
        self,
        message: str,
        *,
        entity: str,
        study_id: str,
        key: Sequence[Any],
        column: str,
        reason: str,
        value: dt.date,
        allowed: str,
    ) -> None:
        RuleViolation.__init__(
            self, message, entity=entity, study_id=study_id, key=key, column=column, reason=reason
        )
        self.field = column
        self.value = value
        self.allowed = allowed
        self.message = message

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            _rebuild_date,
            (self.plain, self.entity, self.study_id, self.key, self.column, self.reason,
             self.value, self.allowed),
        )  # fmt: skip


def _rebuild_date(*args: Any) -> ImplausibleDate:
    message, entity, study_id, key, column, reason, value, allowed = args
    return ImplausibleDate(
        message, entity=entity, study_id=study_id, key=key, column=column, reason=reason,
        value=value, allowed=allowed,
    )  # fmt: skip


def _rebuild(message: str, state: dict[str, Any]) -> RuleViolation:
    return RuleViolation(
        message,
        entity=state["entity"],
        study_id=state["study_id"],
        key=state["key"],
        column=state["column"],
        reason=state["reason"],
        bag_id=state.get("bag_id"),
        file=state.get("file"),
        row=state.get("row"),
    )


def touch(conn: Connection, patient_ids: Iterable[int]) -> None:
    """Mark patients (row ids) written in this transaction: :func:`enforce` checks them."""
    conn.info.setdefault(_TOUCHED, set()).update(patient_ids)


def pending(conn: Connection) -> bool:
    return bool(conn.info.get(_TOUCHED))


def clear(conn: Connection) -> None:
    conn.info.pop(_TOUCHED, None)


def _rows(conn: Connection, name: str, cond: Any) -> list[Any]:
    t = s.ENTITIES[name].table
    return list(conn.execute(select(t).where(t.c.deleted_at.is_(None), cond)).mappings())


def _chunked_in(conn: Connection, name: str, column: str, values: Iterable[Any]) -> list[Any]:
    t = s.ENTITIES[name].table
    values = sorted(set(values))
    out: list[Any] = []
    for i in range(0, len(values), 500):
        out.extend(_rows(conn, name, t.c[column].in_(values[i : i + 500])))
    return out


def enforce(conn: Connection) -> None:
    """Check the touched patients' stored chain of identity; raise :class:`RuleViolation`."""
    pids = conn.info.pop(_TOUCHED, None)
    if not pids:
        return
    _check_dates(conn, pids)
    study: dict[int, str] = {}

    def sid(pid: int) -> str:
        if pid not in study:
            row = conn.execute(
                select(s.patients.c.study_id).where(s.patients.c.id == pid)
            ).scalar_one()
            study[pid] = row
        return study[pid]

    batches = _chunked_in(conn, "batches", "patient_id", pids)
    bags = _chunked_in(conn, "bags", "patient_id", pids)
    infusions = _chunked_in(conn, "infusions", "patient_id", pids)
    infused_ids = {b for inf in infusions for b in s.decode_tuple(inf["bag_ids"])}
    bag_by_id = {b["bag_id"]: b for b in bags}
    bag_by_id.update(
        {b["bag_id"]: b for b in _chunked_in(conn, "bags", "bag_id", infused_ids - set(bag_by_id))}
    )
    batch_by_id = {b["batch_id"]: b for b in batches}
    wanted = {b["batch_id"] for b in bag_by_id.values()} - set(batch_by_id)
    batch_by_id.update({b["batch_id"]: b for b in _chunked_in(conn, "batches", "batch_id", wanted)})
    aph_by_id = {
        a["apheresis_id"]: a
        for a in _chunked_in(
            conn, "apheresis", "apheresis_id", {b["apheresis_id"] for b in batch_by_id.values()}
        )
    }

    def refuse(
        entity: str, pid: int, key: Sequence[Any], column: str, reason: str, msg: str, **kw: Any
    ) -> RuleViolation:
        return RuleViolation(
            f"{entity} {'/'.join(map(str, key))} of {sid(pid)}: {msg}",
            entity=entity,
            study_id=sid(pid),
            key=key,
            column=column,
            reason=reason,
            **kw,
        )

    for b in batches:
        aph = aph_by_id.get(b["apheresis_id"])
        key = (b["batch_id"],)
        if aph is None:
            raise refuse(
                "batches", b["patient_id"], key, "apheresis_id", "unknown_apheresis",
                f"apheresis {b['apheresis_id']} is not in the registry",
            )  # fmt: skip
        if aph["patient_id"] != b["patient_id"]:
            raise refuse(
                "batches", b["patient_id"], key, "apheresis_id", "wrong_patient",
                f"apheresis {b['apheresis_id']} was collected from another patient",
            )  # fmt: skip
        if _day(b["process_start"]) < _day(aph["date"]):
            raise refuse(
                "batches", b["patient_id"], key, "process_start", "implausible_date",
                f"manufacturing starts {_day(b['process_start'])}, before the apheresis on "
                f"{_day(aph['date'])}",
            )  # fmt: skip
    for g in bags:
        batch = batch_by_id.get(g["batch_id"])
        key = (g["bag_id"],)
        if batch is None:
            raise refuse(
                "bags", g["patient_id"], key, "batch_id", "unknown_batch",
                f"batch {g['batch_id']} is not in the registry", bag_id=g["bag_id"],
            )  # fmt: skip
        if batch["patient_id"] != g["patient_id"]:
            raise refuse(
                "bags", g["patient_id"], key, "batch_id", "wrong_patient",
                f"batch {g['batch_id']} was made for another patient", bag_id=g["bag_id"],
            )  # fmt: skip
    uses = _bag_uses(conn, infused_ids)
    for inf in infusions:
        pid, key = inf["patient_id"], (_day(inf["date"]).isoformat(),)
        for bag_id in s.decode_tuple(inf["bag_ids"]):

            def no(
                reason: str, msg: str, bag_id: str = bag_id, pid: int = pid, key: Any = key
            ) -> RuleViolation:
                return refuse(
                    "infusions", pid, key, "bag_ids", reason, f"bag {bag_id} {msg}", bag_id=bag_id
                )

            bag = bag_by_id.get(bag_id)
            if bag is None:
                raise no("unknown_bag", "is not in the registry")
            batch = batch_by_id.get(bag["batch_id"])
            aph = None if batch is None else aph_by_id.get(batch["apheresis_id"])
            if bag["patient_id"] != pid or batch is None or batch["patient_id"] != pid:
                raise no("wrong_patient", "belongs to another patient")
            if aph is None or aph["patient_id"] != pid:
                raise no("wrong_patient", "was made from another patient's apheresis")
            if len(uses.get(bag_id, ())) > 1:
                raise no("already_infused", "is recorded in more than one infusion")
            if batch["status"] != "released":
                raise no("batch_not_released", f"comes from batch {batch['batch_id']}, which is "
                         f"{batch['status']}, not released")  # fmt: skip
            if bag["status"] not in RECORDED_INFUSED_STATUS:
                raise no("not_released", f"is {bag['status']}, not released")
            day = _day(inf["date"])
            if bag["expiry"] is None:
                raise no("no_expiry", "has no expiry date recorded")
            if day > _day(bag["expiry"]):
                raise no("expired", f"expired on {_day(bag['expiry'])}, before the infusion")
            harvest = batch["harvest_date"] or batch["process_start"]
            if day < _day(harvest):
                raise no("implausible_date", f"was harvested on {_day(harvest)}, after the "
                         "infusion date")  # fmt: skip


def _date_columns() -> list[tuple[s.Entity, str]]:
    return [
        (ent, col.name)
        for ent in s.ENTITIES.values()
        for col in ent.table.c
        if isinstance(col.type, Date)
        and col.name not in ("created_at", "updated_at", "deleted_at")
        and (ent.name, col.name) not in NOT_EVENT_DATES
    ]


def _check_dates(conn: Connection, pids: Iterable[int]) -> None:
    """No record date after today or before the birth month (one grouped query per column)."""
    p = s.patients
    limit = latest_today()
    ids = sorted(set(pids))
    for i in range(0, len(ids), 500):
        part = ids[i : i + 500]
        born: dict[int, tuple[str, dt.date]] = {}
        for pid, sid, year, month, diagnosed in conn.execute(
            select(p.c.id, p.c.study_id, p.c.birth_year, p.c.birth_month, p.c.diagnosis_date).where(
                p.c.id.in_(part)
            )
        ):
            floor = dt.date(int(year), int(month), 1)
            born[pid] = (sid, floor)
            if diagnosed is not None and _day(diagnosed) > limit:
                raise _date_refusal(
                    "patients", sid, (sid,), "diagnosis_date", _day(diagnosed), floor, limit
                )
        for ent, name in _date_columns():
            t = ent.table
            col = t.c[name]
            rows = conn.execute(
                select(t.c.patient_id, func.min(col), func.max(col))
                .where(t.c.patient_id.in_(part), t.c.deleted_at.is_(None), col.is_not(None))
                .group_by(t.c.patient_id)
            )
            for pid, low, high in rows:
                sid, floor = born[pid]
                if _day(low) >= floor and _day(high) <= limit:
                    continue
                bad = (
                    conn.execute(
                        select(t)
                        .where(
                            t.c.patient_id == pid,
                            t.c.deleted_at.is_(None),
                            (col < floor) | (col > limit),
                        )
                        .limit(1)
                    )
                    .mappings()
                    .first()
                )
                when = _day(bad[name]) if bad is not None else _day(low)
                key = (
                    tuple(
                        _day(bad[k]).isoformat() if isinstance(bad[k], dt.date) else bad[k]
                        for k in ent.key
                    )
                    if bad is not None
                    else ()
                )
                raise _date_refusal(ent.name, sid, key, name, when, floor, limit)


def _date_refusal(
    entity: str,
    study_id: str,
    key: Sequence[Any],
    column: str,
    when: dt.date,
    floor: dt.date,
    limit: dt.date,
) -> ImplausibleDate:
    label = (
        f"{entity} {'/'.join(map(str, key))} of {study_id}" if key else f"{entity} of {study_id}"
    )
    allowed = (
        f"a date from the birth month ({floor.strftime('%Y-%m')}) to today ({limit.isoformat()})"
    )
    if when > limit:
        message = (
            f"{label}: {column} {when.isoformat()} is after today ({limit.isoformat()}): a "
            "record cannot be dated in the future"
        )
        reason = "future_date"
    else:
        message = (
            f"{label}: {column} {when.isoformat()} is before the patient's birth month "
            f"({floor.strftime('%Y-%m')})"
        )
        reason = "before_birth"
    return ImplausibleDate(
        message, entity=entity, study_id=study_id, key=key, column=column, reason=reason,
        value=when, allowed=allowed,
    )  # fmt: skip


def _bag_uses(conn: Connection, bag_ids: set[str]) -> dict[str, list[tuple[int, Any]]]:
    """Every live infusion (patient id, date) that lists each of ``bag_ids``."""
    if not bag_ids:
        return {}
    t = s.ENTITIES["infusions"].table
    uses: dict[str, list[tuple[int, Any]]] = defaultdict(list)
    for pid, date, text in conn.execute(
        select(t.c.patient_id, t.c.date, t.c.bag_ids).where(t.c.deleted_at.is_(None))
    ):
        for b in s.decode_tuple(text):
            if b in bag_ids:
                uses[b].append((pid, date))
    return uses


def _day(v: Any) -> dt.date:
    if isinstance(v, dt.datetime):
        return v.date()
    if isinstance(v, dt.date):
        return v
    return dt.date.fromisoformat(str(v)[:10])
