"""Shared low-level parts of the GMP stores: audit rows, owners, JSON and spec helpers.

Every store of :mod:`immunoreset.registry.gmp` derives from :class:`GmpStore`, which holds
the registry, writes ``audit_log`` rows in the caller's transaction and resolves the
site-scoped patient owning a batch, bag or apheresis.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import yaml
from sqlalchemy import (
    Table,
    and_,
    insert,
    select,
)
from sqlalchemy.engine import Connection

from immunoreset import course as c
from immunoreset.errors import InvalidInput, NotFound
from immunoreset.manufacturing.qc import Deviation, ReleaseDecision, evaluate_batch
from immunoreset.manufacturing.spec import ReleaseSpec, default_spec, parse_spec

if TYPE_CHECKING:
    from immunoreset.registry.access import Actor
    from immunoreset.registry.repository import Registry


#: Decisions stored in ``release_decisions``: the two grades of a release and a refusal.
DECISION_KINDS: tuple[str, ...] = ("released", "released_with_deviation", "refused")


# --------------------------------------------------------------------------- helpers
def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _json_default(v: Any) -> Any:
    if isinstance(v, dt.date | dt.datetime):
        return v.isoformat()
    if isinstance(v, tuple | frozenset | set):
        return list(v)
    raise TypeError(f"not JSON serialisable: {type(v).__name__}")


def _dumps(v: Any) -> str:
    return json.dumps(v, default=_json_default, ensure_ascii=False, sort_keys=True)


def _spec_from_data(data: Any) -> ReleaseSpec:
    """parse_spec, accepting an ISO text for ``effective`` (JSON has no date type)."""
    if isinstance(data, Mapping) and isinstance(data.get("effective"), str):
        try:
            data = {**data, "effective": dt.date.fromisoformat(data["effective"])}
        except ValueError:
            raise InvalidInput("effective", data["effective"], "a date YYYY-MM-DD") from None
    return parse_spec(data)


def _spec_from_text(text: str, origin: str) -> ReleaseSpec:
    """Parse a stored specification text (cached: a stored version never changes)."""
    spec = _TEXT_CACHE.get(text)
    if spec is None:
        spec = _parse_text(text, origin)
        if len(_TEXT_CACHE) < 64:
            _TEXT_CACHE[text] = spec
    return spec


_TEXT_CACHE: dict[str, ReleaseSpec] = {}


@functools.cache
def _default_spec() -> ReleaseSpec:
    return default_spec()


def _parse_text(text: str, origin: str) -> ReleaseSpec:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise InvalidInput("spec", origin, f"valid YAML or JSON (parse error{where})") from None
    return _spec_from_data(data)


def _text_id(field: str, value: Any) -> str:
    if not isinstance(value, str) or not c.ID_PATTERN.match(value):
        raise InvalidInput(field, value, "an ID of letters, digits, . _ / -")
    return value


def _reason(reason: Any) -> str:
    if not isinstance(reason, str) or not reason.strip():
        raise InvalidInput("reason", reason, "a non-empty reason for the change")
    return reason


def _calendar_date(field: str, value: Any) -> dt.date:
    if isinstance(value, dt.datetime) or not isinstance(value, dt.date):
        raise InvalidInput(field, value, "a calendar date (YYYY-MM-DD)")
    return value


def _stored_value(row: Mapping[str, Any]) -> float | str:
    return row["value_number"] if row["value_number"] is not None else row["value_text"]


def _deviation_dict(d: Deviation) -> dict[str, Any]:
    return {
        "attributes": list(d.attributes),
        "raised_by": d.raised_by,
        "reason": d.reason,
        "approved_by": d.approved_by,
        "date": d.date.isoformat(),
        "reference": d.reference,
    }


def _deviation_from(text: str | None) -> Deviation | None:
    if not text:
        return None
    d = json.loads(text)
    return Deviation(
        attributes=tuple(d["attributes"]),
        raised_by=d["raised_by"],
        reason=d["reason"],
        approved_by=d["approved_by"],
        date=dt.date.fromisoformat(d["date"]),
        reference=d.get("reference"),
    )


@dataclass(frozen=True, slots=True)
class _Owner:
    """The patient row that owns a batch or bag."""

    patient_id: int
    study_id: str
    site: str


class GmpStore:
    """Base of the GMP stores: the registry, its engine and the audited low-level helpers.

    Parameters
    ----------
    registry : Registry
        The registry whose database holds the GMP tables (created by its migrations).
    """

    def __init__(self, registry: Registry) -> None:
        from immunoreset.registry.repository import Registry

        if not isinstance(registry, Registry):
            raise InvalidInput("registry", registry, "a Registry")
        self.registry = registry
        self.engine = registry.engine

    # ------------------------------------------------------------------ low-level
    def _audit(
        self,
        conn: Connection,
        actor: Actor,
        action: str,
        table: str,
        key: str,
        *,
        study_id: str | None,
        field: str | None = None,
        old: Any = None,
        new: Any = None,
        reason: str,
        now: dt.datetime,
    ) -> None:
        from immunoreset.registry import schema as s

        conn.execute(
            insert(s.audit_log).values(
                ts=now,
                username=actor.username,
                action=action,
                table_name=table,
                record_key=key,
                study_id=study_id,
                field=field,
                old_value=None if old is None else _dumps(old),
                new_value=None if new is None else _dumps(new),
                reason=reason,
            )
        )

    def _owner_of(self, conn: Connection, actor: Actor, kind: str, key: str) -> _Owner:
        """The visible patient owning a batch / bag / apheresis (``NotFound`` otherwise)."""
        from immunoreset.registry import schema as s

        ent = s.ENTITIES[kind]
        t = ent.table
        row = conn.execute(
            select(t.c.patient_id).where(and_(t.c[ent.key[0]] == key, t.c.deleted_at.is_(None)))
        ).first()
        owner = None if row is None else self._patient_by_id(conn, row[0])
        if owner is None or not actor.can_see_site(owner.site):
            raise NotFound(_KIND_WORD[kind], key)
        return owner

    def _patient_by_id(self, conn: Connection, pid: int) -> _Owner | None:
        from immunoreset.registry import schema as s

        p = s.patients
        row = conn.execute(
            select(p.c.id, p.c.study_id, p.c.site).where(
                and_(p.c.id == pid, p.c.deleted_at.is_(None))
            )
        ).first()
        return None if row is None else _Owner(row[0], row[1], row[2])

    def _patient(self, conn: Connection, actor: Actor, study_id: str) -> _Owner:
        row = self.registry._patient_row(conn, actor, study_id)
        return _Owner(row["id"], row["study_id"], row["site"])

    def _record(self, conn: Connection, kind: str, key: str) -> Any | None:
        from immunoreset.registry import schema as s

        ent = s.ENTITIES[kind]
        t = ent.table
        row = (
            conn.execute(select(t).where(and_(t.c[ent.key[0]] == key, t.c.deleted_at.is_(None))))
            .mappings()
            .first()
        )
        return None if row is None else ent.from_row(row)

    def _change(
        self,
        conn: Connection,
        actor: Actor,
        owner: _Owner,
        kind: str,
        record: Any,
        changes: Mapping[str, Any],
        reason: str,
        now: dt.datetime,
    ) -> Any:
        """Update a registry record through the registry's audited upsert (same transaction)."""
        from immunoreset.registry import schema as s
        from immunoreset.registry.repository import SaveStats

        new = type(record)(**{**record.as_dict(), **changes})
        if new != record:
            self.registry._upsert(
                conn,
                actor,
                s.ENTITIES[kind],
                [(owner.patient_id, owner.study_id, new)],
                reason,
                SaveStats(),
                now,
            )
        return new

    def _write_access(self, actor: Actor, action: str) -> None:
        actor.require_write(action)


_KIND_WORD: Mapping[str, str] = {"batches": "batch", "bags": "bag", "apheresis": "apheresis"}

_SPEC_CACHE: dict[str, ReleaseSpec] = {}


def _cached_spec(snapshot: str) -> ReleaseSpec:
    spec = _SPEC_CACHE.get(snapshot)
    if spec is None:
        spec = _spec_from_data(json.loads(snapshot))
        if len(_SPEC_CACHE) < 64:
            _SPEC_CACHE[snapshot] = spec
    return spec


def _entity_table(kind: str) -> Table:
    from immunoreset.registry import schema as s

    return s.ENTITIES[kind].table


def _json_default_or(v: Any) -> Any:
    return v.isoformat() if isinstance(v, dt.date) else v


def _chunks(seq: Sequence[Any], n: int) -> Iterable[Sequence[Any]]:
    for i in range(0, len(seq), n):
        yield seq[i : i + n]


def _decision_from_row(row: Mapping[str, Any]) -> ReleaseDecision:
    spec = _cached_spec(row["spec_snapshot"])
    values = {k: v for k, v in json.loads(row["qc_snapshot"]).items() if k in spec.names}
    qc = evaluate_batch(spec, values, batch_id=row["batch_id"])
    return ReleaseDecision(
        batch_id=row["batch_id"],
        spec_id=row["spec_id"],
        spec_version=row["spec_version"],
        released_by=row["released_by"],
        when=row["decision_date"],
        qc=qc,
        deviation=_deviation_from(row["deviation"]),
        grade=row["decision"],
        reasons=tuple(json.loads(row["reasons"])),
    )
