"""SQLAlchemy tables of the registry, one per domain record type.

The clinical tables are derived from the record dataclasses of :mod:`immunoreset.course` so that
a field added to a record is one edit, not three: :data:`ENTITIES` names each record type with
its table, its natural key (what makes a row "the same" on re-import) and its parent. Alembic
migrations (``registry/migrations``) freeze each released shape of these tables.

Every clinical row carries ``created_at``/``updated_at`` and a soft-delete stamp
(``deleted_at``, ``deleted_reason``); rows are never hard-deleted. Every change is written to
``audit_log`` in the same transaction.
"""

from __future__ import annotations

import datetime as dt
import json
import operator
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from immunoreset import course as c

__all__ = [
    "ENTITIES",
    "Entity",
    "audit_log",
    "he_authorisations",
    "he_reports",
    "metadata",
    "patients",
    "qc_results",
    "release_decisions",
    "release_specs",
    "sites",
    "users",
]

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


def _stamps() -> list[Column[Any]]:
    return [
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("updated_at", DateTime(timezone=True), nullable=False),
        Column("deleted_at", DateTime(timezone=True)),
        Column("deleted_reason", Text),
    ]


sites = Table(
    "sites",
    metadata,
    Column("code", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
)

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("username", String(64), nullable=False, unique=True),
    Column("role", String(32), nullable=False),
    Column("password_hash", Text),
    Column("active", Boolean, nullable=False, default=True),
    Column("failed_logins", Integer, nullable=False, default=0),
    Column("locked_until", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

user_sites = Table(
    "user_sites",
    metadata,
    Column("user_id", Integer, ForeignKey("users.id"), primary_key=True),
    Column("site_code", String(64), ForeignKey("sites.code"), primary_key=True),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("token_hash", String(128), nullable=False, unique=True),
    Column("label", String(200)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True)),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("ts", DateTime(timezone=True), nullable=False),
    Column("username", String(64), nullable=False),
    Column("action", String(16), nullable=False),  # insert | update | delete | restore | refused
    Column("table_name", String(64), nullable=False),
    Column("record_key", Text, nullable=False),
    Column("study_id", String(32)),
    Column("field", String(64)),
    Column("old_value", Text),
    Column("new_value", Text),
    Column("reason", Text),
    # hash chain (registry/audit.py): position in the chain and the row's hash over its content
    # and the previous row's hash; set once, when the writing transaction commits
    Column("chain_seq", BigInteger),
    Column("row_hash", String(64)),
    # one index: a record's history is found through its patient (study_id), and a second
    # index on long record keys doubled the cost of writing millions of audit rows
    Index("ix_audit_study", "study_id"),
    Index("ix_audit_chain_seq", "chain_seq", unique=True),
    Index(
        "ix_audit_unsealed",
        "id",
        sqlite_where=text("chain_seq IS NULL"),
        postgresql_where=text("chain_seq IS NULL"),
    ),
)


# --------------------------------------------------------------------------- value codecs
def encode_tuple(v: tuple[str, ...]) -> str:
    return ";".join(v)


def decode_tuple(v: str | None) -> tuple[str, ...]:
    return tuple(x for x in (v or "").split(";") if x)


def encode_mapping(v: Mapping[str, float]) -> str:
    return json.dumps(dict(sorted(v.items())), separators=(",", ":"))


def decode_mapping(v: str | None) -> dict[str, float]:
    return json.loads(v) if v else {}


@dataclass(frozen=True)
class FieldSpec:
    """How one record field is stored: its column type and the codecs to and from the column."""

    name: str
    kind: str  # date | float | int | bool | str | tuple | mapping
    optional: bool
    encode: Callable[[Any], Any]
    decode: Callable[[Any], Any]


def _ident(v: Any) -> Any:
    return v


_KIND_COLUMN = {
    "date": lambda: Date(),
    "float": lambda: Float(),
    "int": lambda: Integer(),
    "bool": lambda: Boolean(),
    "str": lambda: String(200),
    "tuple": lambda: Text(),
    "mapping": lambda: Text(),
}


def _field_specs(record: type) -> tuple[FieldSpec, ...]:
    hints = typing.get_type_hints(record, vars(c))
    out = []
    for f in fields(record):
        hint = hints[f.name]
        args = typing.get_args(hint)
        is_union = typing.get_origin(hint) in (typing.Union, types.UnionType)
        optional = is_union and type(None) in args
        base = next(a for a in args if a is not type(None)) if is_union else hint
        origin = typing.get_origin(base) or base
        if base is dt.date:
            kind = "date"
        elif base is bool:
            kind = "bool"
        elif base is int:
            kind = "int"
        elif base is float:
            kind = "float"
        elif base is str:
            kind = "str"
        elif origin is tuple:
            kind = "tuple"
        elif origin in (Mapping, dict) or (
            isinstance(origin, type) and issubclass(origin, Mapping)
        ):
            kind = "mapping"
        else:  # pragma: no cover - a new field type needs a codec here
            raise TypeError(f"no column type for {record.__name__}.{f.name}: {hint}")
        enc, dec = {
            "tuple": (encode_tuple, decode_tuple),
            "mapping": (encode_mapping, decode_mapping),
        }.get(kind, (_ident, _ident))
        out.append(FieldSpec(f.name, kind, optional, enc, dec))
    return tuple(out)


@dataclass(frozen=True)
class Entity:
    """A record type stored in the registry.

    Attributes
    ----------
    name : str
        The entity's name in the CLI, the CSV file stem and the audit trail (``labs``).
    record : type
        The domain record class (:class:`~immunoreset.course.LabResult`).
    table : Table
        Its SQLAlchemy table.
    key : tuple of str
        The natural key within a patient (or globally for ``global_key`` entities): re-importing
        a row with the same key updates that row instead of adding one.
    many : bool
        Whether a course holds many of these (a tuple) or at most one (follow-up).
    course_attr : str
        The :class:`~immunoreset.course.Course` attribute that holds them.
    """

    name: str
    record: type
    table: Table
    key: tuple[str, ...]
    course_attr: str
    many: bool = True
    global_key: bool = False

    @property
    def specs(self) -> tuple[FieldSpec, ...]:
        return _SPECS[self.record]

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.specs)

    def to_row(self, record: Any) -> dict[str, Any]:
        return {s.name: s.encode(getattr(record, s.name)) for s in self.specs}

    def from_row(self, row: Mapping[str, Any]) -> Any:
        return self.record(**{s.name: s.decode(row[s.name]) for s in self.specs})

    def key_of(self, record: Any) -> tuple[Any, ...]:
        return _KEY_GETTERS[self.key](record) if self.key else ()


_SPECS: dict[type, tuple[FieldSpec, ...]] = {}


class _KeyGetters(dict):  # type: ignore[type-arg]
    """Key tuple -> getter returning a tuple, built on first use."""

    def __missing__(self, key: tuple[str, ...]) -> Any:
        get = operator.attrgetter(*key)
        fn = (lambda r: (get(r),)) if len(key) == 1 else get
        self[key] = fn
        return fn


_KEY_GETTERS = _KeyGetters()


def _record_table(
    name: str, record: type, key: tuple[str, ...], *, global_key: bool = False
) -> Table:
    specs = _field_specs(record)
    _SPECS[record] = specs
    cols: list[Any] = [Column("id", Integer, primary_key=True)]
    if record is not c.Patient:
        cols.append(
            # the unique key (patient_id, …) already indexes patient_id; global keys need their own
            Column(
                "patient_id",
                Integer,
                ForeignKey("patients.id"),
                nullable=False,
                index=global_key,
            )
        )
    for s in specs:
        col_type = _KIND_COLUMN[s.kind]()
        if s.name == "site" and record is c.Patient:
            cols.append(Column(s.name, String(64), ForeignKey("sites.code"), nullable=False))
            continue
        cols.append(Column(s.name, col_type, nullable=s.optional or s.kind == "mapping"))
    cols.extend(_stamps())
    if global_key:
        cols.append(UniqueConstraint(*key, name=f"uq_{name}_key"))
    elif record is not c.Patient:
        cols.append(UniqueConstraint("patient_id", *key, name=f"uq_{name}_key"))
    return Table(name, metadata, *cols)


patients = _record_table("patients", c.Patient, ("study_id",), global_key=True)

ENTITIES: dict[str, Entity] = {}
for _name, _record, _key, _attr, _many, _global in (
    ("anthropometrics", c.Anthropometric, ("date",), "anthropometrics", True, False),
    ("apheresis", c.Apheresis, ("apheresis_id",), "apheresis", True, True),
    ("batches", c.Batch, ("batch_id",), "batches", True, True),
    ("bags", c.Bag, ("bag_id",), "bags", True, True),
    ("lymphodepletion", c.Lymphodepletion, ("date", "drug"), "lymphodepletion", True, False),
    ("infusions", c.Infusion, ("date",), "infusions", True, False),
    ("daily_assessments", c.DailyAssessment, ("date",), "daily_assessments", True, False),
    ("labs", c.LabResult, ("date", "analyte"), "labs", True, False),
    (
        "disease_assessments",
        c.DiseaseAssessment,
        ("date", "instrument"),
        "disease_assessments",
        True,
        False,
    ),
    ("medications", c.Medication, ("drug", "start"), "medications", True, False),
    ("adverse_events", c.AdverseEvent, ("term", "onset"), "adverse_events", True, False),
    ("infections", c.Infection, ("onset", "site", "organism_class"), "infections", True, False),
    ("followup_visits", c.FollowUpVisit, ("visit",), "followup_visits", True, False),
    ("followup", c.FollowUp, (), "followup", False, False),
):
    _table = _record_table(_name, _record, _key, global_key=_global)
    ENTITIES[_name] = Entity(_name, _record, _table, _key, _attr, _many, _global)

PATIENT_ENTITY = Entity("patients", c.Patient, patients, ("study_id",), "patient", False, True)

# --------------------------------------------------------------------------- GMP records
# Release specifications, QC results, release decisions (with the spec snapshot they were made
# against), hospital-exemption authorisations and required reports; the stores of
# :mod:`immunoreset.registry.gmp` read and write them.
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

# --------------------------------------------------------------------------- security (issue 13)
# Login throttling (by client address and account together: no lockout an attacker can use
# against a ward), electronic signatures bound to a hash of the signed record, deviations with
# raiser and approver as registry users, and QC results added after a batch's release.
login_throttle = Table(
    "login_throttle",
    metadata,
    Column("key", String(400), primary_key=True),  # "pair:<client>|<user>" or "account:<user>"
    Column("username", String(200), nullable=False, index=True),
    Column("failures", Integer, nullable=False),
    Column("last_failure_at", DateTime(timezone=True), nullable=False),
    Column("wait_until", DateTime(timezone=True)),
)

signatures = Table(
    "signatures",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("username", String(64), nullable=False),
    Column("meaning", String(32), nullable=False),  # approved | released
    Column("table_name", String(64), nullable=False),
    Column("record_key", Text, nullable=False),
    Column("content_sha256", String(64), nullable=False),
    Column("signed_at", DateTime(timezone=True), nullable=False),
    # 0008: set when the signature was carried by a CSV import (a historic signature made on
    # another registry, never a fresh one); NULL when it was made here
    Column("imported_by", String(64)),
    Column("imported_at", DateTime(timezone=True)),
)

deviations = Table(
    "deviations",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("batch_id", String(200), nullable=False, index=True),
    Column("kind", String(32), nullable=False),  # release | post_release
    Column("attributes", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("reference", String(200)),
    Column("raised_by", String(64), nullable=False),
    Column("raised_at", DateTime(timezone=True), nullable=False),
    Column("status", String(16), nullable=False),  # open | approved
    Column("approved_by", String(64)),
    Column("approved_at", DateTime(timezone=True)),
    Column("signature_id", Integer, ForeignKey("signatures.id")),
    Column("flagged_bags", Text, nullable=False, default=""),
    *_stamps(),
)

qc_post_release = Table(
    "qc_post_release",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("batch_id", String(200), nullable=False, index=True),
    Column("attribute", String(64), nullable=False),
    Column("value_number", Float),
    Column("value_text", String(64)),
    Column("unit", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("deviation_id", Integer, ForeignKey("deviations.id"), nullable=False),
    Column("entered_by", String(64), nullable=False),
    Column("entered_at", DateTime(timezone=True), nullable=False),
    Column("reason", Text, nullable=False),
    *_stamps(),
)

api_tokens.append_column(Column("expires_at", DateTime(timezone=True)))
release_specs.append_column(Column("site", String(64)))  # NULL: program-wide
# 0007: a specification belongs to a site (or is program-wide): its key is unique per site (the
# program-wide uniqueness, NULL site, is checked in the writing transaction); a release decision
# names the electronic signature that released it
release_specs.append_constraint(
    UniqueConstraint("site", "spec_id", "version", name="uq_release_specs_site_key")
)
release_decisions.append_column(
    Column(
        "signature_id", Integer, ForeignKey("signatures.id", name="fk_release_decisions_signature")
    )
)
