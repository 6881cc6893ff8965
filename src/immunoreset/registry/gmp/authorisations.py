"""Hospital-exemption authorisations and their required reports (``he_*`` tables)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Table,
    and_,
    insert,
    select,
    update,
)

from immunoreset.errors import InvalidInput
from immunoreset.manufacturing.authorisation import HospitalExemption, RequiredReport, overdue
from immunoreset.registry.db import write_transaction
from immunoreset.registry.gmp._base import (
    GmpStore,
    _calendar_date,
    _dumps,
    _json_default_or,
    _now,
    _reason,
)
from immunoreset.registry.schema import he_authorisations, he_reports

if TYPE_CHECKING:
    from immunoreset.registry.access import Actor


class AuthorisationStore(GmpStore):
    """Hospital-exemption authorisations and their required reports (``he_*`` tables)."""

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
        with write_transaction(self.engine) as conn:
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
