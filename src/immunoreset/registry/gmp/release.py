"""Release decisions (``release_decisions``): signed release, deviation, audited refusal."""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, insert, select
from sqlalchemy.engine import Connection

from immunoreset.errors import InvalidInput, NotFound, PermissionDenied
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
from immunoreset.registry.gmp.deviations import DeviationStore, deviation_content
from immunoreset.registry.gmp.signatures import Signature, content_sha256
from immunoreset.registry.schema import release_decisions

if TYPE_CHECKING:
    from immunoreset.registry.access import Actor


def release_content(row: Any) -> dict[str, Any]:
    """What a release signs: the decision as stored (specification and QC snapshots,
    deviation, reasons), from the values inserted or the row read back."""
    date = row["decision_date"]
    return {
        "record": "release_decisions",
        "batch_id": row["batch_id"],
        "decision": row["decision"],
        "released_by": row["released_by"],
        "decision_date": date.isoformat() if isinstance(date, dt.date) else str(date),
        "spec_id": row["spec_id"],
        "spec_version": row["spec_version"],
        "spec_snapshot": row["spec_snapshot"],
        "qc_snapshot": row["qc_snapshot"],
        "deviation": row["deviation"],
        "reasons": row["reasons"],
        "meaning": "released",
    }


class ReleaseStore(DeviationStore):
    """Release decisions (``release_decisions``): release, deviation, audited refusal."""

    def release(
        self,
        actor: Actor,
        batch_id: str,
        *,
        password: str,
        when: dt.date | None = None,
    ) -> ReleaseDecision:
        """Release a batch against its site's specification with the releaser's electronic
        signature, or refuse (audited either way).

        Release is the qualified person's act (EU GMP Annex 16 §1.7): ``actor`` must have the
        ``qa`` role at the batch's site and re-enter their ``password``; the signature
        (meaning ``released``; 21 CFR Part 11 §11.50/§11.70, EU GMP Annex 11 §14) is stored
        with the SHA-256 of the decision's content and named by the decision. A batch with
        failed attributes needs approved release deviations covering them
        (:meth:`raise_deviation`, :meth:`approve_deviation`) — no typed names.

        On success the decision (who, when, specification id, version and snapshot, QC snapshot,
        deviation, signature) is stored, the batch's status becomes ``released`` and its
        quarantined bags ``released`` — all audited, in one transaction.

        Parameters
        ----------
        actor : Actor
            A ``qa`` user of the batch's site.
        batch_id : str
        password : str
            The releaser's password, re-entered to sign.
        when : datetime.date, optional
            Release date (default: today, UTC); not before the batch's harvest, not after
            today.

        Returns
        -------
        ReleaseDecision

        Raises
        ------
        ReleaseRefused
            A release result is pending, an attribute failed without an approved deviation
            covering it, the batch is ``failed`` or already released. The refusal is stored
            (decision ``refused``) and written to the audit trail first.
        PermissionDenied
            Not qa, another site's qa, or a wrong password (audited; nothing else stored).
        InvalidInput, NotFound
        """
        _text_id("batch_id", batch_id)
        day = self._release_day(when)
        with self.engine.connect() as conn:
            owner = self._owner_of(conn, actor, "batches", batch_id)
        self._check_signer(
            actor,
            password,
            site=owner.site,
            action=f"release batch {batch_id}",
            table=release_decisions.name,
            key=f"{owner.study_id}/{batch_id}",
            study_id=owner.study_id,
        )
        return self._release(actor, batch_id, day, deviation=None, signed=True)

    def _release_day(self, when: dt.date | None) -> dt.date:
        today = _now().date()
        day = today if when is None else _calendar_date("when", when)
        if day > today:
            raise InvalidInput("when", day, f"a release date on or before today ({today})")
        return day

    def release_synthetic_demo(
        self,
        actor: Actor,
        batch_id: str,
        *,
        deviation: Deviation | None = None,
        when: dt.date | None = None,
    ) -> ReleaseDecision:
        """Release a batch of a SYNTHETIC demo registry without an electronic signature.

        Only for the demo generator: refused unless every patient of the registry is marked
        synthetic and it has no user accounts (:func:`~immunoreset.registry.repository.
        real_data_in`), so no registry with real data or real users can be released this
        way. The decision has no signature and the audit row says so.
        """
        from immunoreset.registry.repository import real_data_in

        actor.require_gmp_write("release a SYNTHETIC demo batch")
        _text_id("batch_id", batch_id)
        if deviation is not None and not isinstance(deviation, Deviation):
            raise InvalidInput("deviation", deviation, "a Deviation or None")
        real = real_data_in(self.engine)
        if real is not None:
            raise PermissionDenied(
                actor.username,
                f"release batch {batch_id} without a signature",
                f"only a SYNTHETIC demo registry may (this one holds {real}); a qa user "
                "releases with their password",
            )
        return self._release(actor, batch_id, self._release_day(when), deviation, signed=False)

    def _release(
        self,
        actor: Actor,
        batch_id: str,
        day: dt.date,
        deviation: Deviation | None,
        *,
        signed: bool,
    ) -> ReleaseDecision:
        now = _now()
        refusal: ReleaseRefused | None = None
        with write_transaction(self.engine) as conn:
            owner = self._owner_of(conn, actor, "batches", batch_id)
            actor.require_site(owner.site, "release a batch")
            batch = self._record(conn, "batches", batch_id)
            start = batch.harvest_date or batch.process_start
            if day < start:
                raise InvalidInput("when", day, f"on or after the harvest ({start.isoformat()})")
            if signed:
                # the approval exists before the release that needs it: the order of the two
                # signatures is the workflow's, so a release recorded with an earlier date
                # (entered afterwards from the paper batch record) is not refused for it
                deviation, _ids = self._approved_release_deviation(conn, batch_id)
            elif deviation is not None and deviation.date > day:
                raise InvalidInput(
                    "deviation.date",
                    deviation.date,
                    f"a deviation approved on or before the release ({day})",
                )
            spec = self._current_spec(conn, owner.site)
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
                self._store_decision(conn, actor, owner, spec, qc, decision, now, signed=signed)
                reason = f"batch release against {spec.key}"
                if not signed:
                    reason += " (SYNTHETIC demo, unsigned)"
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
        *,
        signed: bool,
    ) -> None:
        t = release_decisions
        dev = None if decision.deviation is None else _deviation_dict(decision.deviation)
        values = {
            "batch_id": qc.batch_id,
            "decision": decision.grade,
            "released_by": decision.released_by,
            "decision_date": decision.when,
            "spec_id": spec.spec_id,
            "spec_version": spec.version,
            "spec_snapshot": _dumps(spec_to_dict(spec)),
            "qc_snapshot": _dumps({r.attribute: r.value for r in qc.attributes}),
            "deviation": None if dev is None else _dumps(dev),
            "reasons": _dumps(list(decision.reasons)),
        }
        key = f"{owner.study_id}/{qc.batch_id}"
        sig_id = None
        if signed:
            sig_id = self._sign(
                conn,
                actor,
                meaning="released",
                table=t.name,
                key=key,
                content=release_content(values),
                study_id=owner.study_id,
                now=now,
            )
        conn.execute(
            insert(t).values(**values, signature_id=sig_id, created_at=now, updated_at=now)
        )
        self._audit(
            conn,
            actor,
            "insert",
            t.name,
            key,
            study_id=owner.study_id,
            new={
                "decision": decision.grade,
                "spec": spec.key,
                "date": decision.when,
                "deviation": dev,
                "signature": sig_id,
            },
            reason="; ".join(decision.reasons)
            + ("" if signed else " (SYNTHETIC demo release, no electronic signature)"),
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
        """Every recorded decision of a batch, refusals included, oldest first (plain rows,
        with the release's electronic signature or None)."""
        _text_id("batch_id", batch_id)
        t = release_decisions
        with self.engine.connect() as conn:
            self._owner_of(conn, actor, "batches", batch_id)
            rows = list(
                conn.execute(
                    select(t)
                    .where(and_(t.c.batch_id == batch_id, t.c.deleted_at.is_(None)))
                    .order_by(t.c.id)
                ).mappings()
            )
            return [
                {
                    "decision": r["decision"],
                    "released_by": r["released_by"],
                    "date": r["decision_date"],
                    "spec": f"{r['spec_id']}-v{r['spec_version']}",
                    "reasons": tuple(json.loads(r["reasons"])),
                    "deviation": _deviation_from(r["deviation"]),
                    "signature": self._signature(conn, r["signature_id"]),
                }
                for r in rows
            ]

    # ------------------------------------------------------------------ signatures
    def signature(self, actor: Actor, sig_id: int) -> Signature:
        """A stored electronic signature of a batch the actor may see."""
        with self.engine.connect() as conn:
            sig, _ = self._signed(conn, actor, sig_id)
        return sig

    def verify_signature(self, actor: Actor, sig_id: int) -> bool:
        """Whether the signed record still has the content it had when it was signed: the
        SHA-256 stored with the signature equals that of the record now (§11.70)."""
        with self.engine.connect() as conn:
            sig, content = self._signed(conn, actor, sig_id)
        return content is not None and content_sha256(content) == sig.content_sha256

    def _signed(
        self, conn: Connection, actor: Actor, sig_id: Any
    ) -> tuple[Signature, dict[str, Any] | None]:
        """The signature and its record's content now (NotFound for another site's)."""
        from immunoreset.registry.schema import deviations

        if isinstance(sig_id, bool) or not isinstance(sig_id, int):
            raise InvalidInput("signature", sig_id, "a signature number")
        sig = self._signature(conn, sig_id)
        if sig is None:
            raise NotFound("signature", str(sig_id))
        if sig.table_name == release_decisions.name:
            t = release_decisions
            row = conn.execute(select(t).where(t.c.signature_id == sig_id)).mappings().first()
            content = None if row is None else release_content(row)
        else:
            t = deviations
            row = conn.execute(select(t).where(t.c.signature_id == sig_id)).mappings().first()
            content = None if row is None else deviation_content(row, row["approved_by"])
        if row is None:
            raise NotFound("signature", str(sig_id))
        try:
            self._owner_of(conn, actor, "batches", row["batch_id"])
        except NotFound:
            raise NotFound("signature", str(sig_id)) from None
        return sig, content

    # ------------------------------------------------------------------ infusion
