"""GMP records of the registry and the audited operations over them.

Tables (on the registry's one :data:`~immunoreset.registry.schema.metadata`, so Alembic sees
them): release specifications a site loaded (``release_specs``), QC results per batch and
attribute (``qc_results``), release decisions with a snapshot of the specification they were
made against (``release_decisions``), hospital-exemption authorisations
(``he_authorisations``) and the reports they require (``he_reports``). Every row carries
``created_at``/``updated_at`` and a soft-delete stamp; nothing here is ever hard-deleted.

:class:`Gmp` wraps a :class:`~immunoreset.registry.repository.Registry`. Each operation takes an
:class:`~immunoreset.registry.access.Actor`; the site rule is applied through the patient who
owns the batch or bag (a batch of another site is "not found"), writes need a writing role, and
every change writes ``audit_log`` rows in the same transaction. Refusals — a chain-of-identity
violation at the bedside, a release refused on QC — are written to the audit trail with action
``refused`` (and the reason code) before the error is raised.

The logic itself is in :mod:`immunoreset.manufacturing` (pure functions); this module only reads
and writes records and hands them over.

Source
------
Issue 4 (point-of-care manufacturing): chain of identity, release against a versioned
specification, dose from bags, hospital-exemption authorisations, program metrics.

Settings
--------
* The **current specification** is the one loaded last (``release_specs``, newest row); before
  any is loaded it is the shipped ``default-v1``. A loaded ``(spec_id, version)`` is immutable:
  loading different content under the same pair is refused.
* A batch that has been released is evaluated against the specification it was released
  against (the snapshot stored with the decision), never a newer one.
* The infused dose, when not given, is the sum of the bags' CAR+ T cells over the weight (whole
  bags; give ``dose_cells_per_kg`` for a partial draw). The weight, when not given, is the
  patient's most recent weight on or before the infusion date.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from sqlalchemy import (
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    and_,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Connection

from immunoreset import course as c
from immunoreset.errors import InvalidInput, NotFound, check_range
from immunoreset.manufacturing.authorisation import (
    HospitalExemption,
    RequiredReport,
    overdue,
)
from immunoreset.manufacturing.bags import DosePlan, plan_dose
from immunoreset.manufacturing.chain import ChainTrace, ChainViolation, check_infusion, trace_course
from immunoreset.manufacturing.qc import (
    BatchQc,
    Deviation,
    ReleaseDecision,
    ReleaseRefused,
    evaluate_attribute,
    evaluate_batch,
    release_decision,
)
from immunoreset.manufacturing.spec import ReleaseSpec, default_spec, parse_spec, spec_to_dict
from immunoreset.registry.schema import _stamps, metadata

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from immunoreset.manufacturing.metrics import BagsPerBatch, SuccessRate, VeinToVein
    from immunoreset.registry.access import Actor
    from immunoreset.registry.repository import Registry

__all__ = [
    "DECISION_KINDS",
    "Gmp",
    "ProgramMetrics",
    "he_authorisations",
    "he_reports",
    "qc_results",
    "release_decisions",
    "release_specs",
    "seed_demo_qc",
]

# --------------------------------------------------------------------------- tables
release_specs = Table(
    "release_specs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("spec_id", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("title", Text, nullable=False),
    Column("text", Text, nullable=False),
    Column("source", String(500), nullable=False),
    Column("loaded_by", String(64), nullable=False),
    Column("loaded_at", DateTime(timezone=True), nullable=False),
    *_stamps(),
    UniqueConstraint("spec_id", "version", name="uq_release_specs_key"),
)

qc_results = Table(
    "qc_results",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("batch_id", String(200), nullable=False),
    Column("attribute", String(64), nullable=False),
    Column("value_number", Float),
    Column("value_text", String(64)),
    Column("unit", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("spec_key", String(80), nullable=False),
    Column("entered_by", String(64), nullable=False),
    Column("entered_at", DateTime(timezone=True), nullable=False),
    *_stamps(),
    UniqueConstraint("batch_id", "attribute", name="uq_qc_results_key"),
)

release_decisions = Table(
    "release_decisions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("batch_id", String(200), nullable=False),
    Column("decision", String(32), nullable=False),
    Column("released_by", String(64), nullable=False),
    Column("decision_date", Date, nullable=False),
    Column("spec_id", String(64), nullable=False),
    Column("spec_version", Integer, nullable=False),
    Column("spec_snapshot", Text, nullable=False),
    Column("qc_snapshot", Text, nullable=False),
    Column("deviation", Text),
    Column("reasons", Text, nullable=False),
    *_stamps(),
    Index("ix_release_decisions_batch", "batch_id"),
)

he_authorisations = Table(
    "he_authorisations",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("patient_id", Integer, ForeignKey("patients.id"), nullable=False),
    Column("study_id", String(32), nullable=False),
    Column("authority", String(500), nullable=False),
    Column("reference", String(500), nullable=False),
    Column("request_date", Date, nullable=False),
    Column("decision", String(16), nullable=False),
    Column("decision_date", Date),
    Column("conditions", Text, nullable=False),
    *_stamps(),
    UniqueConstraint("patient_id", "reference", name="uq_he_authorisations_key"),
)

he_reports = Table(
    "he_reports",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("patient_id", Integer, ForeignKey("patients.id"), nullable=False),
    Column("study_id", String(32), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("subject", String(500), nullable=False),
    Column("due", Date, nullable=False),
    Column("submitted", Date),
    Column("authorisation_reference", String(500)),
    *_stamps(),
    UniqueConstraint("patient_id", "kind", "subject", "due", name="uq_he_reports_key"),
)

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


@dataclass(frozen=True, slots=True)
class ProgramMetrics:
    """Program metrics of the batches and courses the actor may see.

    Attributes
    ----------
    success : SuccessRate
        Manufacturing success rate with its exact confidence interval.
    vein_to_vein : VeinToVein
        Apheresis-to-infusion days, median and range.
    bags_per_batch : BagsPerBatch
    qc : pandas.DataFrame
        Per-attribute QC distributions
        (:func:`~immunoreset.manufacturing.metrics.qc_distributions`).
    n_decisions : Mapping[str, int]
        Release decisions recorded, by decision kind.
    reasons : tuple[str, ...]
    """

    success: SuccessRate
    vein_to_vein: VeinToVein
    bags_per_batch: BagsPerBatch
    qc: pd.DataFrame
    n_decisions: Mapping[str, int]
    reasons: tuple[str, ...]


# --------------------------------------------------------------------------- operations
class Gmp:
    """Audited GMP operations over a registry (QC, release, infusion, trace, authorisations).

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

    # ------------------------------------------------------------------ specifications
    def load_spec_file(self, actor: Actor, path: str | Path) -> ReleaseSpec:
        """Load a site's release specification (YAML or JSON file) and make it current.

        Parameters
        ----------
        actor : Actor
            Needs a writing role.
        path : str | pathlib.Path
            A ``.yaml``, ``.yml`` or ``.json`` file in the layout of
            :mod:`immunoreset.manufacturing.spec`.

        Returns
        -------
        ReleaseSpec

        Raises
        ------
        InvalidInput
            Unreadable or invalid file, or a ``(spec_id, version)`` already loaded with
            different content (a version is immutable: raise the version instead).
        """
        self._write_access(actor, "load a release specification")
        if not isinstance(path, str | Path):
            raise InvalidInput("path", path, "a path to a YAML or JSON file")
        p = Path(path)
        if p.suffix.lower() not in (".yaml", ".yml", ".json"):
            raise InvalidInput("path", str(p), "a .yaml, .yml or .json file")
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as exc:
            raise InvalidInput("path", str(p), f"a readable file ({exc.strerror})") from None
        spec = _spec_from_text(text, str(p))
        return self._store_spec(actor, spec, text, source=p.name)

    def _store_spec(
        self, actor: Actor, spec: ReleaseSpec, text: str, *, source: str
    ) -> ReleaseSpec:
        now = _now()
        t = release_specs
        with self.engine.begin() as conn:
            old = (
                conn.execute(
                    select(t).where(and_(t.c.spec_id == spec.spec_id, t.c.version == spec.version))
                )
                .mappings()
                .first()
            )
            if old is not None:
                if _spec_from_text(old["text"], spec.key) != spec:
                    raise InvalidInput(
                        "version",
                        spec.version,
                        f"a new version: {spec.key} is already loaded with different content",
                    )
                # identical content: make it current again by touching loaded_at
                conn.execute(
                    update(t)
                    .where(t.c.id == old["id"])
                    .values(loaded_at=now, updated_at=now, loaded_by=actor.username)
                )
                self._audit(
                    conn,
                    actor,
                    "update",
                    t.name,
                    spec.key,
                    study_id=None,
                    field="loaded_at",
                    old=old["loaded_at"],
                    new=now,
                    reason=f"release specification {spec.key} loaded again from {source}",
                    now=now,
                )
                return spec
            conn.execute(
                insert(t).values(
                    spec_id=spec.spec_id,
                    version=spec.version,
                    title=spec.title,
                    text=text,
                    source=source[:500],
                    loaded_by=actor.username,
                    loaded_at=now,
                    created_at=now,
                    updated_at=now,
                )
            )
            self._audit(
                conn,
                actor,
                "insert",
                t.name,
                spec.key,
                study_id=None,
                new={"spec_id": spec.spec_id, "version": spec.version, "source": source},
                reason=f"release specification {spec.key} loaded from {source}",
                now=now,
            )
        return spec

    def current_spec(self) -> ReleaseSpec:
        """The specification loaded last, or the shipped ``default-v1`` before any is loaded."""
        with self.engine.connect() as conn:
            return self._current_spec(conn)

    def _current_spec(self, conn: Connection) -> ReleaseSpec:
        t = release_specs
        row = conn.execute(
            select(t.c.text, t.c.spec_id, t.c.version)
            .where(t.c.deleted_at.is_(None))
            .order_by(t.c.loaded_at.desc(), t.c.id.desc())
            .limit(1)
        ).first()
        return _default_spec() if row is None else _spec_from_text(row[0], f"{row[1]}-v{row[2]}")

    def spec(self, key: str) -> ReleaseSpec:
        """A loaded specification by key (``"site-a-v2"``), or a shipped one (``"default-v1"``)."""
        if not isinstance(key, str):
            raise InvalidInput("key", key, "a specification key such as default-v1")
        t = release_specs
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(t.c.spec_id, t.c.version, t.c.text).where(t.c.deleted_at.is_(None))
            ).all()
        loaded = {f"{r[0]}-v{r[1]}": r[2] for r in rows}
        if key in loaded:
            return _spec_from_text(loaded[key], key)
        from immunoreset.manufacturing.spec import available_specs, load_spec

        if key in available_specs():
            return load_spec(key)
        raise InvalidInput(
            "key", key, "one of: " + ", ".join(sorted({*loaded, *available_specs()}))
        )

    def list_specs(self) -> list[dict[str, Any]]:
        """Loaded specifications, newest first: key, title, loaded_by, loaded_at, current."""
        t = release_specs
        with self.engine.connect() as conn:
            rows = (
                conn.execute(
                    select(t)
                    .where(t.c.deleted_at.is_(None))
                    .order_by(t.c.loaded_at.desc(), t.c.id.desc())
                )
                .mappings()
                .all()
            )
        return [
            {
                "key": f"{r['spec_id']}-v{r['version']}",
                "title": r["title"],
                "loaded_by": r["loaded_by"],
                "loaded_at": r["loaded_at"],
                "current": i == 0,
            }
            for i, r in enumerate(rows)
        ]

    # ------------------------------------------------------------------ QC
    def _decision_row(self, conn: Connection, batch_id: str) -> Mapping[str, Any] | None:
        t = release_decisions
        return (
            conn.execute(
                select(t)
                .where(
                    and_(
                        t.c.batch_id == batch_id,
                        t.c.decision != "refused",
                        t.c.deleted_at.is_(None),
                    )
                )
                .order_by(t.c.id.desc())
                .limit(1)
            )
            .mappings()
            .first()
        )

    def _batch_spec(self, conn: Connection, batch_id: str) -> ReleaseSpec:
        row = self._decision_row(conn, batch_id)
        if row is not None:
            return _spec_from_data(json.loads(row["spec_snapshot"]))
        return self._current_spec(conn)

    def _results(self, conn: Connection, batch_id: str) -> dict[str, float | str]:
        t = qc_results
        rows = (
            conn.execute(select(t).where(and_(t.c.batch_id == batch_id, t.c.deleted_at.is_(None))))
            .mappings()
            .all()
        )
        return {r["attribute"]: _stored_value(r) for r in rows}

    def record_qc(
        self,
        actor: Actor,
        batch_id: str,
        results: Mapping[str, float | str],
        reason: str,
    ) -> BatchQc:
        """Enter QC results of a batch; each is evaluated against the batch's specification.

        A result for an attribute that already has one replaces it (the audit trail keeps the
        old value). The batch's specification is the one it was released against, else the
        current one.

        Parameters
        ----------
        actor : Actor
            Needs a writing role and membership of the site of the batch's patient.
        batch_id : str
        results : Mapping[str, float | str]
            Attribute name -> number (in the attribute's unit) or word (``negative``).
        reason : str
            Recorded in the audit trail (e.g. ``"QC lab report 2025-041"``).

        Returns
        -------
        BatchQc
            The batch's QC after the entry.

        Raises
        ------
        InvalidInput
            Unknown attribute (names listed), a value of the wrong kind or outside the plausible
            range, an empty mapping or reason.
        NotFound
            The batch does not exist or belongs to a patient of another site.
        """
        self._write_access(actor, "enter QC results")
        _text_id("batch_id", batch_id)
        _reason(reason)
        if not isinstance(results, Mapping) or not results:
            raise InvalidInput("results", results, "a non-empty mapping of attribute to result")
        now = _now()
        t = qc_results
        with self.engine.begin() as conn:
            owner = self._owner_of(conn, actor, "batches", batch_id)
            actor.require_site(owner.site, "enter QC results")
            spec = self._batch_spec(conn, batch_id)
            evaluated = []
            for name, value in results.items():
                if not isinstance(name, str) or name not in spec.names:
                    raise InvalidInput(
                        "results", name, f"an attribute of {spec.key}: " + ", ".join(spec.names)
                    )
                if value is None:
                    raise InvalidInput(name, value, "a result (number or word), not empty")
                evaluated.append(evaluate_attribute(spec.attribute(name), value))
            existing = {
                r["attribute"]: r
                for r in conn.execute(
                    select(t).where(and_(t.c.batch_id == batch_id, t.c.deleted_at.is_(None)))
                ).mappings()
            }
            for res in evaluated:
                number = res.value if isinstance(res.value, float) else None
                word = res.value if isinstance(res.value, str) else None
                key = f"{owner.study_id}/{batch_id}/{res.attribute}"
                values = {
                    "value_number": number,
                    "value_text": word,
                    "unit": res.unit,
                    "status": res.status,
                    "spec_key": spec.key,
                    "entered_by": actor.username,
                    "entered_at": now,
                    "updated_at": now,
                }
                old = existing.get(res.attribute)
                if old is None:
                    conn.execute(
                        insert(t).values(
                            batch_id=batch_id, attribute=res.attribute, created_at=now, **values
                        )
                    )
                    self._audit(
                        conn,
                        actor,
                        "insert",
                        t.name,
                        key,
                        study_id=owner.study_id,
                        new={"value": res.value, "unit": res.unit, "status": res.status},
                        reason=reason,
                        now=now,
                    )
                    continue
                if _stored_value(old) == res.value:
                    continue
                conn.execute(update(t).where(t.c.id == old["id"]).values(**values))
                self._audit(
                    conn,
                    actor,
                    "update",
                    t.name,
                    key,
                    study_id=owner.study_id,
                    field="value",
                    old=_stored_value(old),
                    new=res.value,
                    reason=reason,
                    now=now,
                )
            stored = self._results(conn, batch_id)
        return evaluate_batch(
            spec, {k: v for k, v in stored.items() if k in spec.names}, batch_id=batch_id
        )

    def evaluate(self, actor: Actor, batch_id: str, spec: ReleaseSpec | None = None) -> BatchQc:
        """The batch's QC against ``spec`` (default: the spec it was released against, else
        the current one). Results for attributes the specification lacks are left out."""
        _text_id("batch_id", batch_id)
        if spec is not None and not isinstance(spec, ReleaseSpec):
            raise InvalidInput("spec", spec, "a ReleaseSpec or None")
        with self.engine.connect() as conn:
            self._owner_of(conn, actor, "batches", batch_id)
            use = spec if spec is not None else self._batch_spec(conn, batch_id)
            stored = self._results(conn, batch_id)
        return evaluate_batch(
            use, {k: v for k, v in stored.items() if k in use.names}, batch_id=batch_id
        )

    # ------------------------------------------------------------------ release
    def decision(self, actor: Actor, batch_id: str) -> ReleaseDecision | None:
        """The batch's release decision as recorded (spec snapshot and QC of that moment)."""
        _text_id("batch_id", batch_id)
        with self.engine.connect() as conn:
            self._owner_of(conn, actor, "batches", batch_id)
            row = self._decision_row(conn, batch_id)
        return None if row is None else _decision_from_row(row)

    def release(
        self,
        actor: Actor,
        batch_id: str,
        *,
        deviation: Deviation | None = None,
        when: dt.date | None = None,
    ) -> ReleaseDecision:
        """Release a batch against the current specification, or refuse (audited either way).

        On success the decision (who, when, specification id, version and snapshot, QC snapshot,
        deviation) is stored, the batch's status becomes ``released`` and its quarantined bags
        ``released`` — all audited, in one transaction.

        Parameters
        ----------
        actor : Actor
            The person releasing (QA / qualified person); needs a writing role and the site.
        batch_id : str
        deviation : Deviation, optional
            Required when an attribute failed; must cover every failed attribute and be dated on
            or before the release.
        when : datetime.date, optional
            Release date (default: today, UTC); not before the batch's harvest.

        Returns
        -------
        ReleaseDecision

        Raises
        ------
        ReleaseRefused
            A release result is pending, an attribute failed without a covering deviation, the
            batch is ``failed`` or already released. The refusal is stored (decision
            ``refused``) and written to the audit trail first.
        InvalidInput, NotFound, PermissionDenied
        """
        self._write_access(actor, "release a batch")
        _text_id("batch_id", batch_id)
        if deviation is not None and not isinstance(deviation, Deviation):
            raise InvalidInput("deviation", deviation, "a Deviation or None")
        day = _now().date() if when is None else _calendar_date("when", when)
        now = _now()
        refusal: ReleaseRefused | None = None
        with self.engine.begin() as conn:
            owner = self._owner_of(conn, actor, "batches", batch_id)
            actor.require_site(owner.site, "release a batch")
            batch = self._record(conn, "batches", batch_id)
            start = batch.harvest_date or batch.process_start
            if day < start:
                raise InvalidInput("when", day, f"on or after the harvest ({start.isoformat()})")
            if deviation is not None and deviation.date > day:
                raise InvalidInput(
                    "deviation.date", deviation.date, f"on or before the release ({day})"
                )
            spec = self._current_spec(conn)
            stored = self._results(conn, batch_id)
            qc = evaluate_batch(
                spec, {k: v for k, v in stored.items() if k in spec.names}, batch_id=batch_id
            )
            previous = self._decision_row(conn, batch_id)
            try:
                if previous is not None:
                    raise ReleaseRefused(
                        f"batch {batch_id} was already released on "
                        f"{previous['decision_date'].isoformat()} against "
                        f"{previous['spec_id']}-v{previous['spec_version']}",
                        batch_id=batch_id,
                    )
                if batch.status == "failed":
                    raise ReleaseRefused(
                        f"batch {batch_id} is recorded as failed and cannot be released",
                        batch_id=batch_id,
                        failed=qc.failed,
                    )
                decision = release_decision(
                    qc, released_by=actor.username, when=day, deviation=deviation
                )
            except ReleaseRefused as err:
                refusal = err
            if refusal is None:
                self._store_decision(conn, actor, owner, spec, qc, decision, now)
                reason = f"batch release against {spec.key}"
                self._change(
                    conn, actor, owner, "batches", batch, {"status": "released"}, reason, now
                )
                bag_t = _entity_table("bags")
                rows = conn.execute(
                    select(bag_t).where(
                        and_(
                            bag_t.c.batch_id == batch_id,
                            bag_t.c.status == "quarantined",
                            bag_t.c.deleted_at.is_(None),
                        )
                    )
                ).mappings()
                from immunoreset.registry import schema as s

                for row in list(rows):
                    bag = s.ENTITIES["bags"].from_row(row)
                    bag_owner = self._patient_by_id(conn, row["patient_id"]) or owner
                    self._change(
                        conn, actor, bag_owner, "bags", bag, {"status": "released"}, reason, now
                    )
                return decision
        self._store_refusal(actor, owner, spec, qc, day, deviation, refusal)
        raise refusal

    def _store_decision(
        self,
        conn: Connection,
        actor: Actor,
        owner: _Owner,
        spec: ReleaseSpec,
        qc: BatchQc,
        decision: ReleaseDecision,
        now: dt.datetime,
    ) -> None:
        t = release_decisions
        dev = None if decision.deviation is None else _deviation_dict(decision.deviation)
        conn.execute(
            insert(t).values(
                batch_id=qc.batch_id,
                decision=decision.grade,
                released_by=decision.released_by,
                decision_date=decision.when,
                spec_id=spec.spec_id,
                spec_version=spec.version,
                spec_snapshot=_dumps(spec_to_dict(spec)),
                qc_snapshot=_dumps({r.attribute: r.value for r in qc.attributes}),
                deviation=None if dev is None else _dumps(dev),
                reasons=_dumps(list(decision.reasons)),
                created_at=now,
                updated_at=now,
            )
        )
        self._audit(
            conn,
            actor,
            "insert",
            t.name,
            f"{owner.study_id}/{qc.batch_id}",
            study_id=owner.study_id,
            new={
                "decision": decision.grade,
                "spec": spec.key,
                "date": decision.when,
                "deviation": dev,
            },
            reason="; ".join(decision.reasons),
            now=now,
        )

    def _store_refusal(
        self,
        actor: Actor,
        owner: _Owner,
        spec: ReleaseSpec,
        qc: BatchQc,
        day: dt.date,
        deviation: Deviation | None,
        err: ReleaseRefused,
    ) -> None:
        now = _now()
        t = release_decisions
        with self.engine.begin() as conn:
            conn.execute(
                insert(t).values(
                    batch_id=qc.batch_id,
                    decision="refused",
                    released_by=actor.username,
                    decision_date=day,
                    spec_id=spec.spec_id,
                    spec_version=spec.version,
                    spec_snapshot=_dumps(spec_to_dict(spec)),
                    qc_snapshot=_dumps({r.attribute: r.value for r in qc.attributes}),
                    deviation=None if deviation is None else _dumps(_deviation_dict(deviation)),
                    reasons=_dumps([str(err)]),
                    created_at=now,
                    updated_at=now,
                )
            )
            self._audit(
                conn,
                actor,
                "refused",
                t.name,
                f"{owner.study_id}/{qc.batch_id}",
                study_id=owner.study_id,
                reason=f"release refused: {err}",
                now=now,
            )

    def decisions(self, actor: Actor, batch_id: str) -> list[dict[str, Any]]:
        """Every recorded decision of a batch, refusals included, oldest first (plain rows)."""
        _text_id("batch_id", batch_id)
        t = release_decisions
        with self.engine.connect() as conn:
            self._owner_of(conn, actor, "batches", batch_id)
            rows = conn.execute(
                select(t)
                .where(and_(t.c.batch_id == batch_id, t.c.deleted_at.is_(None)))
                .order_by(t.c.id)
            ).mappings()
            return [
                {
                    "decision": r["decision"],
                    "released_by": r["released_by"],
                    "date": r["decision_date"],
                    "spec": f"{r['spec_id']}-v{r['spec_version']}",
                    "reasons": tuple(json.loads(r["reasons"])),
                    "deviation": _deviation_from(r["deviation"]),
                }
                for r in rows
            ]

    # ------------------------------------------------------------------ infusion
    def infuse(
        self,
        actor: Actor,
        study_id: str,
        bag_ids: Sequence[str],
        *,
        on_date: dt.date,
        weight_kg: float | None = None,
        dose_cells_per_kg: float | None = None,
        reason: str = "CAR T infusion",
    ) -> c.Infusion:
        """Record an infusion after checking the chain of identity of every bag.

        Each bag must exist, come from the apheresis of ``study_id`` through its batch, not have
        been infused, be released (or stored for re-dosing) from a released batch and not be
        past its expiry on ``on_date`` (:func:`~immunoreset.manufacturing.chain.check_infusion`).
        On success the :class:`~immunoreset.course.Infusion` is added and the bags are marked
        ``infused``, all audited, in one transaction.

        Parameters
        ----------
        actor : Actor
        study_id : str
        bag_ids : Sequence[str]
            The bags scanned at the bedside (at least one, each once).
        on_date : datetime.date
        weight_kg : float, optional
            Weight on the day, 1–250 kg (default: the latest recorded on or before ``on_date``).
        dose_cells_per_kg : float, optional
            The infused dose; default the bags' CAR+ T cells over the weight (whole bags).
        reason : str
            For the audit trail.

        Raises
        ------
        ChainViolation
            With ``.reason`` in :data:`~immunoreset.manufacturing.chain.CHAIN_REASONS`; written
            to the audit trail (action ``refused``, table ``infusions``) before it is raised.
        InvalidInput, NotFound, PermissionDenied
        """
        self._write_access(actor, "record an infusion")
        _reason(reason)
        day = _calendar_date("on_date", on_date)
        if isinstance(bag_ids, str) or not isinstance(bag_ids, Sequence) or not bag_ids:
            raise InvalidInput("bag_ids", bag_ids, "a list of at least one bag ID")
        ids = tuple(_text_id("bag_ids", b) for b in bag_ids)
        if len(set(ids)) != len(ids):
            raise InvalidInput("bag_ids", list(ids), "each bag listed once")
        check_range("weight_kg", weight_kg, 1, 250, "kg", allow_none=True)
        check_range(
            "dose_cells_per_kg", dose_cells_per_kg, 0, 1e9, "CAR+ T cells/kg", allow_none=True
        )
        now = _now()
        violation: ChainViolation | None = None
        with self.engine.begin() as conn:
            owner = self._patient(conn, actor, study_id)
            actor.require_site(owner.site, "record an infusion")
            course = self.registry._load_chunk(conn, [self._patient_mapping(conn, owner)])
            co = next(iter(course))
            if any(i.date == day for i in co.infusions):
                raise InvalidInput("on_date", day, "a date without an infusion already recorded")
            infused = self._infused_bag_ids(conn, ids)
            bags: list[tuple[_Owner, c.Bag]] = []
            try:
                for bag_id in ids:
                    bags.append(self._check_bag(conn, actor, owner, bag_id, day, infused))
            except ChainViolation as err:
                violation = err
            if violation is None:
                weight = weight_kg
                if weight is None:
                    w = co.weight_on(day)
                    if w is None:
                        raise InvalidInput(
                            "weight_kg", None, f"the weight on {day} (none recorded for {study_id})"
                        )
                    weight = w.weight_kg
                dose = dose_cells_per_kg
                if dose is None:
                    dose = sum(b.car_t_cells for _, b in bags) / float(weight)
                record = c.Infusion(date=day, bag_ids=ids, dose_cells_per_kg=float(dose))
                from immunoreset.registry import schema as s
                from immunoreset.registry.repository import SaveStats

                self.registry._upsert(
                    conn,
                    actor,
                    s.ENTITIES["infusions"],
                    [(owner.patient_id, owner.study_id, record)],
                    reason,
                    SaveStats(),
                    now,
                )
                for bag_owner, bag in bags:
                    self._change(
                        conn, actor, bag_owner, "bags", bag, {"status": "infused"}, reason, now
                    )
                return record
        self.registry.record_refusal(
            actor,
            "infusions",
            f"{owner.study_id}/{day.isoformat()}",
            f"chain of identity ({violation.reason}): {violation}",
            study_id=owner.study_id,
        )
        raise violation

    def _patient_mapping(self, conn: Connection, owner: _Owner) -> Mapping[str, Any]:
        from immunoreset.registry import schema as s

        return (
            conn.execute(select(s.patients).where(s.patients.c.id == owner.patient_id))
            .mappings()
            .one()
        )

    def _infused_bag_ids(self, conn: Connection, ids: Iterable[str]) -> frozenset[str]:
        t = _entity_table("infusions")
        wanted = set(ids)
        rows = conn.execute(
            select(t.c.bag_ids).where(
                and_(t.c.deleted_at.is_(None), or_(*(t.c.bag_ids.contains(i) for i in wanted)))
            )
        )
        found: set[str] = set()
        for (text,) in rows:
            found.update(x for x in (text or "").split(";") if x in wanted)
        return frozenset(found)

    def _check_bag(
        self,
        conn: Connection,
        actor: Actor,
        owner: _Owner,
        bag_id: str,
        day: dt.date,
        infused: frozenset[str],
    ) -> tuple[_Owner, c.Bag]:
        bag = self._record(conn, "bags", bag_id)
        batch = None if bag is None else self._record(conn, "batches", bag.batch_id)
        aph_owner: str | None = None
        bag_owner = owner
        if bag is not None:
            bag_t = _entity_table("bags")
            pid = conn.execute(
                select(bag_t.c.patient_id).where(
                    and_(bag_t.c.bag_id == bag_id, bag_t.c.deleted_at.is_(None))
                )
            ).scalar_one()
            bag_owner = self._patient_by_id(conn, pid) or owner
        if batch is not None:
            aph_t = _entity_table("apheresis")
            pid = conn.execute(
                select(aph_t.c.patient_id).where(
                    and_(aph_t.c.apheresis_id == batch.apheresis_id, aph_t.c.deleted_at.is_(None))
                )
            ).scalar()
            aph = None if pid is None else self._patient_by_id(conn, pid)
            if (
                aph is not None
                and aph.study_id != owner.study_id
                and not actor.can_see_site(aph.site)
            ):
                # Do not disclose another site's study ID at the bedside.
                raise ChainViolation(
                    "wrong_patient",
                    f"bag {bag_id} was made from another patient's apheresis, not {owner.study_id}",
                    bag_id=bag_id,
                    batch_id=batch.batch_id,
                    study_id=owner.study_id,
                )
            aph_owner = None if aph is None else aph.study_id
        check_infusion(
            patient_study_id=owner.study_id,
            bag=bag,
            batch=batch,
            apheresis_owner_study_id=aph_owner,
            on_date=day,
            already_infused_bag_ids=infused,
        )
        assert bag is not None  # check_infusion refuses an unknown bag
        return bag_owner, bag

    # ------------------------------------------------------------------ dose
    def plan_dose(
        self,
        actor: Actor,
        study_id: str,
        *,
        weight_kg: float,
        on_date: dt.date,
        target_cells_per_kg: float = 1e6,
        max_total_cells: float | None = None,
        permitted_deviation: float = 0.2,
    ) -> DosePlan:
        """Plan the dose over the patient's bags of released batches
        (:func:`~immunoreset.manufacturing.bags.plan_dose`; only released or stored, unexpired
        bags are used). Nothing is written."""
        day = _calendar_date("on_date", on_date)
        course = self.registry.load_course(actor, study_id)
        released = {b.batch_id for b in course.batches if b.status == "released"}
        return plan_dose(
            weight_kg=weight_kg,
            bags=[g for g in course.bags if g.batch_id in released],
            target_cells_per_kg=target_cells_per_kg,
            max_total_cells=max_total_cells,
            permitted_deviation=permitted_deviation,
            on_date=day,
        )

    # ------------------------------------------------------------------ trace
    def trace(self, actor: Actor, key: str) -> ChainTrace:
        """The whole chain of the patient found by a study ID, bag ID, batch ID or apheresis ID.

        Raises
        ------
        NotFound
            Nothing visible to the actor has that ID.
        """
        if not isinstance(key, str) or not key.strip():
            raise InvalidInput("key", key, "a bag ID, batch ID or study ID")
        key = key.strip()
        with self.engine.connect() as conn:
            study: str | None = None
            if c.STUDY_ID_PATTERN.match(key):
                rows = self.registry._visible_patients(conn, actor, [key])
                study = rows[0]["study_id"] if rows else None
            for kind in ("bags", "batches", "apheresis"):
                if study is not None:
                    break
                try:
                    study = self._owner_of(conn, actor, kind, key).study_id
                except NotFound:
                    continue
            if study is None:
                raise NotFound("bag, batch or patient", key)
        course = self.registry.load_course(actor, study)
        decisions = {}
        with self.engine.connect() as conn:
            for b in course.batches:
                row = self._decision_row(conn, b.batch_id)
                if row is not None:
                    decisions[b.batch_id] = _decision_from_row(row)
        return trace_course(course, decisions=decisions)

    # ------------------------------------------------------------------ authorisations
    def add_authorisation(
        self,
        actor: Actor,
        authorisation: HospitalExemption,
        *,
        reason: str = "hospital-exemption authorisation",
    ) -> HospitalExemption:
        """Record a hospital-exemption request or update it (same patient and reference),
        e.g. when the authority's decision arrives. Audited field by field."""
        if not isinstance(authorisation, HospitalExemption):
            raise InvalidInput("authorisation", authorisation, "a HospitalExemption")
        a = authorisation
        values = {
            "authority": a.authority,
            "request_date": a.request_date,
            "decision": a.decision,
            "decision_date": a.decision_date,
            "conditions": _dumps(list(a.conditions)),
        }
        self._upsert_plain(
            actor,
            he_authorisations,
            a.study_id,
            {"reference": a.reference},
            values,
            reason,
            action="record a hospital-exemption authorisation",
        )
        return a

    def add_report(
        self,
        actor: Actor,
        report: RequiredReport,
        *,
        reason: str = "required report",
    ) -> RequiredReport:
        """Record a required report, or its submission date (same patient, kind, subject, due)."""
        if not isinstance(report, RequiredReport):
            raise InvalidInput("report", report, "a RequiredReport")
        r = report
        self._upsert_plain(
            actor,
            he_reports,
            r.study_id,
            {"kind": r.kind, "subject": r.subject, "due": r.due},
            {"submitted": r.submitted, "authorisation_reference": r.authorisation_reference},
            reason,
            action="record a required report",
        )
        return r

    def _upsert_plain(
        self,
        actor: Actor,
        table: Table,
        study_id: str,
        key: Mapping[str, Any],
        values: Mapping[str, Any],
        reason: str,
        *,
        action: str,
    ) -> None:
        self._write_access(actor, action)
        _reason(reason)
        now = _now()
        with self.engine.begin() as conn:
            owner = self._patient(conn, actor, study_id)
            actor.require_site(owner.site, action)
            cond = [table.c.patient_id == owner.patient_id, table.c.deleted_at.is_(None)]
            cond += [table.c[k] == v for k, v in key.items()]
            old = conn.execute(select(table).where(and_(*cond))).mappings().first()
            key_text = "/".join([owner.study_id, *(str(_json_default_or(v)) for v in key.values())])
            if old is None:
                conn.execute(
                    insert(table).values(
                        patient_id=owner.patient_id,
                        study_id=owner.study_id,
                        created_at=now,
                        updated_at=now,
                        **key,
                        **values,
                    )
                )
                self._audit(
                    conn,
                    actor,
                    "insert",
                    table.name,
                    key_text,
                    study_id=owner.study_id,
                    new={**key, **values},
                    reason=reason,
                    now=now,
                )
                return
            changed = {k: v for k, v in values.items() if old[k] != v}
            if not changed:
                return
            conn.execute(
                update(table).where(table.c.id == old["id"]).values(updated_at=now, **changed)
            )
            for k, v in changed.items():
                self._audit(
                    conn,
                    actor,
                    "update",
                    table.name,
                    key_text,
                    study_id=owner.study_id,
                    field=k,
                    old=old[k],
                    new=v,
                    reason=reason,
                    now=now,
                )

    def authorisations(self, actor: Actor, study_id: str | None = None) -> list[HospitalExemption]:
        """Authorisations of visible patients (or of one), by study ID and request date."""
        t = he_authorisations
        return [
            HospitalExemption(
                study_id=r["study_id"],
                authority=r["authority"],
                reference=r["reference"],
                request_date=r["request_date"],
                decision=r["decision"],
                decision_date=r["decision_date"],
                conditions=tuple(json.loads(r["conditions"])),
            )
            for r in self._visible_rows(actor, t, study_id, (t.c.study_id, t.c.request_date))
        ]

    def reports(self, actor: Actor, study_id: str | None = None) -> list[RequiredReport]:
        """Required reports of visible patients (or of one), by due date."""
        t = he_reports
        return [
            RequiredReport(
                study_id=r["study_id"],
                kind=r["kind"],
                subject=r["subject"],
                due=r["due"],
                submitted=r["submitted"],
                authorisation_reference=r["authorisation_reference"],
            )
            for r in self._visible_rows(actor, t, study_id, (t.c.due, t.c.study_id, t.c.kind))
        ]

    def _visible_rows(
        self, actor: Actor, table: Table, study_id: str | None, order: Sequence[Any]
    ) -> list[Mapping[str, Any]]:
        with self.engine.connect() as conn:
            if study_id is not None:
                ids = [self._patient(conn, actor, study_id).patient_id]
            else:
                ids = [r["id"] for r in self.registry._visible_patients(conn, actor, None)]
            if not ids:
                return []
            rows = conn.execute(
                select(table)
                .where(and_(table.c.deleted_at.is_(None), table.c.patient_id.in_(ids)))
                .order_by(*order)
            ).mappings()
            return [dict(r) for r in rows]

    def overdue_reports(self, actor: Actor, today: dt.date) -> list[RequiredReport]:
        """Visible reports not submitted whose due date is before ``today``, oldest first."""
        day = _calendar_date("today", today)
        return overdue(self.reports(actor), day)

    # ------------------------------------------------------------------ metrics
    def _manufacturing_courses(self, actor: Actor) -> list[c.Course]:
        """Visible courses holding only the manufacturing records (fast at 10,000 patients)."""
        from immunoreset.registry import schema as s

        with self.engine.connect() as conn:
            prows = {r["id"]: r for r in self.registry._visible_patients(conn, actor, None)}
            parts: dict[str, dict[int, list[Any]]] = {}
            for name in ("apheresis", "batches", "bags", "infusions"):
                ent = s.ENTITIES[name]
                t = ent.table
                grouped: dict[int, list[Any]] = {}
                rows = conn.execute(
                    select(t).where(t.c.deleted_at.is_(None)).order_by(t.c.id)
                ).mappings()
                for row in rows:
                    if row["patient_id"] in prows:
                        grouped.setdefault(row["patient_id"], []).append(ent.from_row(row))
                parts[name] = grouped
        return [
            c.Course(
                patient=s.PATIENT_ENTITY.from_row(prow),
                apheresis=tuple(parts["apheresis"].get(pid, ())),
                batches=tuple(parts["batches"].get(pid, ())),
                bags=tuple(parts["bags"].get(pid, ())),
                infusions=tuple(parts["infusions"].get(pid, ())),
            )
            for pid, prow in prows.items()
        ]

    def program_metrics(self, actor: Actor) -> ProgramMetrics:
        """Success rate, vein-to-vein time, bags per batch and QC distributions of the batches
        and courses the actor may see (:mod:`immunoreset.manufacturing.metrics`)."""
        from immunoreset.manufacturing import metrics as m

        courses = self._manufacturing_courses(actor)
        batches = [b for co in courses for b in co.batches]
        bags = [g for co in courses for g in co.bags]
        ids = [b.batch_id for b in batches]
        qcs: list[BatchQc] = []
        counts = dict.fromkeys(DECISION_KINDS, 0)
        with self.engine.connect() as conn:
            current = self._current_spec(conn)
            results: dict[str, dict[str, float | str]] = {}
            snapshots: dict[str, ReleaseSpec] = {}
            for part in _chunks(ids, 500):
                for r in conn.execute(
                    select(qc_results).where(
                        and_(qc_results.c.batch_id.in_(part), qc_results.c.deleted_at.is_(None))
                    )
                ).mappings():
                    results.setdefault(r["batch_id"], {})[r["attribute"]] = _stored_value(r)
                t = release_decisions
                for r in conn.execute(
                    select(t)
                    .where(and_(t.c.batch_id.in_(part), t.c.deleted_at.is_(None)))
                    .order_by(t.c.id)
                ).mappings():
                    counts[r["decision"]] = counts.get(r["decision"], 0) + 1
                    if r["decision"] != "refused":
                        snapshots[r["batch_id"]] = _cached_spec(r["spec_snapshot"])
        for b in batches:
            if b.batch_id not in results:
                continue
            spec = snapshots.get(b.batch_id, current)
            vals = {k: v for k, v in results[b.batch_id].items() if k in spec.names}
            qcs.append(evaluate_batch(spec, vals, batch_id=b.batch_id))
        success = m.manufacturing_success(batches)
        v2v = m.vein_to_vein(courses)
        bpb = m.bags_per_batch(batches, bags)
        reasons = [
            *success.reasons,
            *(v2v.reasons[:1]),
            f"{len(qcs)} batches with QC results; decisions: "
            + ", ".join(f"{k} {v}" for k, v in counts.items()),
        ]
        return ProgramMetrics(
            success=success,
            vein_to_vein=v2v,
            bags_per_batch=bpb,
            qc=m.qc_distributions(qcs),
            n_decisions=counts,
            reasons=tuple(reasons),
        )


# --------------------------------------------------------------------------- module helpers
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


# --------------------------------------------------------------------------- demo
#: Names of the demo generator's release values -> attributes of ``default-v1``.
_DEMO_NAMES: Mapping[str, tuple[str, ...]] = {
    "viability_percent": ("cd3_viability",),
    "cd3_percent": ("cd3_purity",),
    "car_percent": ("car_transduction",),
    "vcn_copies_per_transduced_cell": ("vcn",),
    "endotoxin_eu_ml": ("endotoxin",),
    "dose_deviation_percent": ("dose_deviation",),
    "sterility": ("sterility_interim", "sterility_final"),
    "mycoplasma": ("mycoplasma_interim", "mycoplasma_final"),
}

#: Plausible passing results (uniform ranges; words fixed) used when the demo gives none.
_DEMO_PASSING: Mapping[str, tuple[float, float, int] | str] = {
    "cd3_viability": (85.0, 97.0, 1),
    "cd3_purity": (88.0, 99.0, 1),
    "car_transduction": (20.0, 55.0, 1),
    "vcn": (1.2, 3.5, 2),
    "endotoxin": (0.1, 1.0, 2),
    "dose_deviation": (-8.0, 8.0, 1),
    "sterility_interim": "negative",
    "sterility_final": "negative",
    "mycoplasma_interim": "negative",
    "mycoplasma_final": "negative",
}
#: One out-of-specification result per outcome, chosen at random.
_DEMO_OUT_OF_SPEC: Mapping[str, Mapping[str, tuple[float, float, int] | str]] = {
    "deviation": {"cd3_viability": (72.0, 79.5, 1), "car_transduction": (6.0, 9.5, 1)},
    "failed": {"endotoxin": (6.0, 20.0, 2), "sterility_interim": "positive"},
}


def _draw(rng: np.random.Generator, spec: tuple[float, float, int] | str) -> float | str:
    if isinstance(spec, str):
        return spec
    lo, hi, digits = spec
    return round(float(rng.uniform(lo, hi)), digits)


def _demo_results(
    batch: c.Batch, outcome: str, given: Any, rng: np.random.Generator
) -> dict[str, float | str]:
    if given is not None and isinstance(getattr(given, "results", None), Mapping):
        out: dict[str, float | str] = {}
        for name, value in given.results.items():
            for attr in _DEMO_NAMES.get(name, ()):
                out[attr] = value
        return out
    out = {name: _draw(rng, spec) for name, spec in _DEMO_PASSING.items()}
    pool = _DEMO_OUT_OF_SPEC.get(outcome)
    if pool:
        names = sorted(pool)
        name = names[int(rng.integers(len(names)))]
        out[name] = _draw(rng, pool[name])
    return out


def seed_demo_qc(
    registry: Registry,
    actor: Actor,
    courses: Iterable[c.Course],
    rng: np.random.Generator,
    *,
    qc: Mapping[str, Any] | None = None,
) -> dict[str, int]:
    """Record SYNTHETIC QC results and release decisions for the demo's batches.

    For each batch of ``courses`` the outcome is, in order: ``qc[batch_id].outcome`` when the
    demo's own release values are given (:class:`immunoreset.demo.BatchQC`, names translated to
    ``default-v1``); ``"failed"`` / ``"deviation"`` for IDs in ``demo.FAILED_BATCH_IDS`` /
    ``demo.DEVIATED_BATCH_IDS`` when the demo defines them; else ``"pass"`` for a released batch
    and ``"failed"`` for a failed one (other batches are left alone). Passing batches get
    plausible results and a release against the current specification (``default-v1`` in a new
    registry) on the harvest date; deviated ones one out-of-specification result and a documented
    deviation (raised by ``gmp.demo``, approved by ``qa.demo``); failed ones a failing result and
    a refused release (stored and audited).

    Parameters
    ----------
    registry : Registry
    actor : Actor
        Writes as this user (the demo's local admin).
    courses : Iterable[Course]
        Courses already saved in ``registry``.
    rng : numpy.random.Generator
        Source of the synthetic values.
    qc : Mapping[str, BatchQC], optional
        The demo's release values per batch ID (``published_cohort_with_qc`` and friends).

    Returns
    -------
    dict[str, int]
        Number of decisions per kind (``released``, ``released_with_deviation``, ``refused``).
    """
    from immunoreset import demo

    failed_ids = frozenset(getattr(demo, "FAILED_BATCH_IDS", ()))
    deviated_ids = frozenset(getattr(demo, "DEVIATED_BATCH_IDS", ()))
    if qc is not None and not isinstance(qc, Mapping):
        raise InvalidInput("qc", qc, "a mapping of batch ID to the demo's BatchQC")
    gmp = Gmp(registry)
    counts = dict.fromkeys(DECISION_KINDS, 0)
    for co in courses:
        if not isinstance(co, c.Course):
            raise InvalidInput("courses", co, "Course objects")
        for batch in co.batches:
            given = None if qc is None else qc.get(batch.batch_id)
            if given is not None:
                outcome = {"pass": "pass", "deviation": "deviation"}.get(given.outcome, "failed")
            elif batch.batch_id in failed_ids:
                outcome = "failed"
            elif batch.batch_id in deviated_ids:
                outcome = "deviation"
            else:
                outcome = {"released": "pass", "failed": "failed"}.get(batch.status, "")
            if not outcome:
                continue
            results = _demo_results(batch, outcome, given, rng)
            when = batch.harvest_date or batch.process_start
            result = gmp.record_qc(actor, batch.batch_id, results, "SYNTHETIC demo QC results")
            deviation = None
            if outcome == "deviation" and result.failed:
                deviation = Deviation(
                    attributes=result.failed,
                    raised_by="gmp.demo",
                    reason="SYNTHETIC: out-of-specification result assessed; benefit "
                    "outweighs risk for this patient (demo)",
                    approved_by="qa.demo",
                    date=when,
                    reference=f"DEV-{batch.batch_id}",
                )
            try:
                decision = gmp.release(actor, batch.batch_id, deviation=deviation, when=when)
                counts[decision.grade] += 1
            except ReleaseRefused:
                counts["refused"] += 1
    return counts
