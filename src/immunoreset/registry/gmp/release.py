"""Release decisions (``release_decisions``): release, deviation, audited refusal."""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, insert, select
from sqlalchemy.engine import Connection

from immunoreset.errors import InvalidInput
from immunoreset.manufacturing.qc import (
    BatchQc,
    Deviation,
    ReleaseDecision,
    ReleaseRefused,
    evaluate_batch,
    release_decision,
)
from immunoreset.manufacturing.spec import ReleaseSpec, spec_to_dict
from immunoreset.registry.db import write_transaction
from immunoreset.registry.gmp._base import (
    _calendar_date,
    _deviation_dict,
    _deviation_from,
    _dumps,
    _entity_table,
    _now,
    _Owner,
    _text_id,
)
from immunoreset.registry.gmp.qc import QcStore
from immunoreset.registry.schema import release_decisions

if TYPE_CHECKING:
    from immunoreset.registry.access import Actor


class ReleaseStore(QcStore):
    """Release decisions (``release_decisions``): release, deviation, audited refusal."""

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
        with write_transaction(self.engine) as conn:
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
        with write_transaction(self.engine) as conn:
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
