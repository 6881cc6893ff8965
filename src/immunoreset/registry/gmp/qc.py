"""QC results per batch and attribute (``qc_results``), evaluated against the batch's spec."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    and_,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Connection

from immunoreset.errors import InvalidInput
from immunoreset.manufacturing.qc import (
    BatchQc,
    ReleaseDecision,
    evaluate_attribute,
    evaluate_batch,
)
from immunoreset.manufacturing.spec import ReleaseSpec
from immunoreset.registry.db import write_transaction
from immunoreset.registry.gmp._base import (
    _decision_from_row,
    _now,
    _reason,
    _spec_from_data,
    _stored_value,
    _text_id,
)
from immunoreset.registry.gmp.specs import SpecStore
from immunoreset.registry.schema import qc_results, release_decisions

if TYPE_CHECKING:
    from immunoreset.registry.access import Actor


class QcStore(SpecStore):
    """QC results per batch and attribute (``qc_results``), evaluated against the batch's spec."""

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
        with write_transaction(self.engine) as conn:
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
