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

from immunoreset.errors import InvalidInput, PermissionDenied
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

    def _batch_spec(self, conn: Connection, batch_id: str, site: str) -> ReleaseSpec:
        """The spec the batch was released against, else the one applying at its site."""
        row = self._decision_row(conn, batch_id)
        if row is not None:
            return _spec_from_data(json.loads(row["spec_snapshot"]))
        return self._current_spec(conn, site)

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

        Before release, a result for an attribute that already has one replaces it (the audit
        trail keeps the old value). After release the stored results are read-only: only the
        post-release-stage results the specification still awaits (final sterility, VCN …) may
        be filled in — one out of specification opens a deviation for QA review and
        quarantines the bags not yet infused — and any other entry is refused (the refusal
        audited); :meth:`add_post_release_result` adds a further result instead. The batch's
        specification is the one it was released against, else the current one.

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
        PermissionDenied
            The batch is released (its results are read-only), or the role may not write.
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
            released = self._decision_row(conn, batch_id)
            late = released is not None and self._only_new_post_release(
                conn, batch_id, owner.site, results
            )
        if released is not None and not late:
            # released GMP records are read-only: refuse (audited) before anything is written
            why = (
                f"batch {batch_id} was released on {released['decision_date'].isoformat()}: "
                "its QC results are read-only; add an out-of-specification / post-release "
                "result (`immunoreset batch qc … --post-release`), which opens a deviation "
                "for QA review"
            )
            self.registry.record_refusal(
                actor, t.name, f"{owner.study_id}/{batch_id}", why, study_id=owner.study_id
            )
            raise PermissionDenied(actor.username, f"change QC results of {batch_id}", why)
        with write_transaction(self.engine) as conn:
            owner = self._owner_of(conn, actor, "batches", batch_id)
            spec = self._batch_spec(conn, batch_id, owner.site)
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
            oos = tuple(r.attribute for r in evaluated if r.status == "fail")
            if late and oos:
                self._open_post_release_deviation(
                    conn,
                    actor,
                    owner,
                    batch_id,
                    [r.attribute for r in evaluated],
                    oos,
                    reason,
                    now,
                )
            stored = self._results(conn, batch_id)
        return evaluate_batch(
            spec, {k: v for k, v in stored.items() if k in spec.names}, batch_id=batch_id
        )

    def _only_new_post_release(
        self, conn: Connection, batch_id: str, site: str, results: Mapping[str, Any]
    ) -> bool:
        """Whether every result fills a post-release-stage attribute not yet stored (the
        results a released batch's specification still awaits, such as final sterility)."""
        spec = self._batch_spec(conn, batch_id, site)
        stored = self._results(conn, batch_id)
        return all(
            isinstance(name, str)
            and name in spec.names
            and spec.attribute(name).stage == "post_release"
            and name not in stored
            for name in results
        )

    def _open_post_release_deviation(
        self,
        conn: Connection,
        actor: Actor,
        owner: Any,
        batch_id: str,
        attributes: list[str],
        oos: tuple[str, ...],
        reason: str,
        now: Any,
    ) -> tuple[int, tuple[str, ...]]:
        """Open a post-release deviation and quarantine the bags not yet infused when a
        result is out of specification; returns (deviation id, quarantined bag IDs)."""
        from immunoreset.registry import schema as s

        flagged: list[str] = []
        before: list[str] = []  # "bag=status before the quarantine", restored when QA clears it
        bag_t = s.ENTITIES["bags"].table
        if oos:
            rows = conn.execute(
                select(bag_t).where(
                    and_(
                        bag_t.c.batch_id == batch_id,
                        bag_t.c.status.in_(("released", "stored_for_redosing")),
                        bag_t.c.deleted_at.is_(None),
                    )
                )
            ).mappings()
            for row in list(rows):
                bag = s.ENTITIES["bags"].from_row(row)
                bag_owner = self._patient_by_id(conn, row["patient_id"]) or owner
                self._change(
                    conn,
                    actor,
                    bag_owner,
                    "bags",
                    bag,
                    {"status": "quarantined"},
                    f"post-release out-of-specification result ({', '.join(oos)}): {reason}",
                    now,
                )
                flagged.append(bag.bag_id)
                before.append(f"{bag.bag_id}={bag.status}")
        dev_t = s.deviations
        dev_id = conn.execute(
            insert(dev_t).values(
                batch_id=batch_id,
                kind="post_release",
                attributes=";".join(attributes),
                reason=reason,
                raised_by=actor.username,
                raised_at=now,
                status="open",
                flagged_bags=";".join(before),
                created_at=now,
                updated_at=now,
            )
        ).inserted_primary_key[0]
        self._audit(
            conn,
            actor,
            "insert",
            dev_t.name,
            f"{owner.study_id}/{batch_id}/{dev_id}",
            study_id=owner.study_id,
            new={"kind": "post_release", "out_of_spec": list(oos), "flagged_bags": flagged},
            reason=reason,
            now=now,
        )
        return dev_id, tuple(flagged)

    def add_post_release_result(
        self,
        actor: Actor,
        batch_id: str,
        results: Mapping[str, float | str],
        reason: str,
    ) -> dict[str, Any]:
        """Add QC results to a **released** batch without changing the released ones.

        The results (e.g. a final sterility read-out, a stability test) are stored in
        ``qc_post_release``, evaluated against the specification the batch was released
        against, and open a deviation (``deviations``, kind ``post_release``, status ``open``,
        raised by ``actor``) for QA review. When any result is out of specification, every bag
        of the batch not yet infused goes back to ``quarantined`` (listed on the deviation), so
        it cannot be infused until QA has reviewed. All in one transaction, audited.

        Returns
        -------
        dict
            ``deviation_id``, ``flagged_bags`` (tuple), ``out_of_spec`` (tuple of attributes).
        """
        from immunoreset.registry import schema as s

        self._write_access(actor, "add a post-release QC result")
        _text_id("batch_id", batch_id)
        _reason(reason)
        if not isinstance(results, Mapping) or not results:
            raise InvalidInput("results", results, "a non-empty mapping of attribute to result")
        now = _now()
        with write_transaction(self.engine) as conn:
            owner = self._owner_of(conn, actor, "batches", batch_id)
            actor.require_site(owner.site, "add a post-release QC result")
            if self._decision_row(conn, batch_id) is None:
                raise InvalidInput(
                    "batch_id", batch_id, "a released batch (before release, enter QC results)"
                )
            spec = self._batch_spec(conn, batch_id, owner.site)
            evaluated = []
            for name, value in results.items():
                if not isinstance(name, str) or name not in spec.names:
                    raise InvalidInput(
                        "results", name, f"an attribute of {spec.key}: " + ", ".join(spec.names)
                    )
                if value is None:
                    raise InvalidInput(name, value, "a result (number or word), not empty")
                evaluated.append(evaluate_attribute(spec.attribute(name), value))
            oos = tuple(r.attribute for r in evaluated if r.status == "fail")
            dev_id, flagged = self._open_post_release_deviation(
                conn, actor, owner, batch_id, [r.attribute for r in evaluated], oos, reason, now
            )
            key = f"{owner.study_id}/{batch_id}"
            post_t = s.qc_post_release
            for res in evaluated:
                conn.execute(
                    insert(post_t).values(
                        batch_id=batch_id,
                        attribute=res.attribute,
                        value_number=res.value if isinstance(res.value, float) else None,
                        value_text=res.value if isinstance(res.value, str) else None,
                        unit=res.unit,
                        status=res.status,
                        deviation_id=dev_id,
                        entered_by=actor.username,
                        entered_at=now,
                        reason=reason,
                        created_at=now,
                        updated_at=now,
                    )
                )
                self._audit(
                    conn,
                    actor,
                    "insert",
                    post_t.name,
                    f"{key}/{res.attribute}",
                    study_id=owner.study_id,
                    new={"value": res.value, "unit": res.unit, "status": res.status},
                    reason=f"post-release result (deviation {dev_id}): {reason}",
                    now=now,
                )
        return {"deviation_id": dev_id, "flagged_bags": flagged, "out_of_spec": oos}

    def post_release_results(self, actor: Actor, batch_id: str) -> list[dict[str, Any]]:
        """Results added after the batch's release, oldest first (plain rows)."""
        from immunoreset.registry import schema as s

        _text_id("batch_id", batch_id)
        t = s.qc_post_release
        with self.engine.connect() as conn:
            self._owner_of(conn, actor, "batches", batch_id)
            rows = conn.execute(
                select(t)
                .where(and_(t.c.batch_id == batch_id, t.c.deleted_at.is_(None)))
                .order_by(t.c.id)
            ).mappings()
            return [
                {
                    "attribute": r["attribute"],
                    "value": _stored_value(r),
                    "unit": r["unit"],
                    "status": r["status"],
                    "deviation_id": r["deviation_id"],
                    "entered_by": r["entered_by"],
                    "entered_at": r["entered_at"],
                }
                for r in rows
            ]

    def evaluate(self, actor: Actor, batch_id: str, spec: ReleaseSpec | None = None) -> BatchQc:
        """The batch's QC against ``spec`` (default: the spec it was released against, else
        the current one). Results for attributes the specification lacks are left out."""
        _text_id("batch_id", batch_id)
        if spec is not None and not isinstance(spec, ReleaseSpec):
            raise InvalidInput("spec", spec, "a ReleaseSpec or None")
        with self.engine.connect() as conn:
            owner = self._owner_of(conn, actor, "batches", batch_id)
            use = spec if spec is not None else self._batch_spec(conn, batch_id, owner.site)
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
