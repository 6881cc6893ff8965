"""Deviations (``deviations``): raised by a registry user, approved by another with a signature.

The four-eyes rule of GMP (EU GMP Part I §1.4(xiv), Annex 16 §1.7): a deviation is raised by
one registry user of the batch's site (any role that writes GMP records — the actor, never a
typed name) and approved by a **different** user with the ``qa`` role of that site, who
re-enters their password to sign (:mod:`.signatures`; 21 CFR Part 11 §11.50/§11.70, EU GMP
Annex 11 §14). Two kinds:

* ``release`` — before release, for attributes that failed; a release of a batch with failed
  attributes needs an approved one covering every failed attribute (:mod:`.release`).
* ``post_release`` — opened by a result added after release (:mod:`.qc`); when a result was
  out of specification the bags not yet infused are quarantined and listed on the deviation.
  Its approval is QA **clearing the quarantine**: the listed bags still quarantined return to
  the status they had (released, or stored for re-dosing).

Every step is audited in the same transaction as the change; a refused approval stores nothing
but the audited refusal.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, insert, select, update
from sqlalchemy.engine import Connection

from immunoreset.errors import InvalidInput, NotFound
from immunoreset.manufacturing.qc import Deviation, evaluate_batch
from immunoreset.registry.access import check_reason
from immunoreset.registry.db import write_transaction
from immunoreset.registry.gmp._base import _now, _Owner, _reason, _text_id
from immunoreset.registry.gmp.qc import QcStore
from immunoreset.registry.gmp.signatures import SignatureStore, utc_text
from immunoreset.registry.schema import deviations

if TYPE_CHECKING:
    from immunoreset.registry.access import Actor

__all__ = ["DeviationStore", "parse_flagged"]


def parse_flagged(text: str | None) -> dict[str, str]:
    """``"BG-1=released;BG-2=stored_for_redosing"`` -> bag ID -> status before quarantine
    (a bare ID, as stored before statuses were kept, was ``released``)."""
    out: dict[str, str] = {}
    for part in (text or "").split(";"):
        if part:
            bag, _, status = part.partition("=")
            out[bag] = status or "released"
    return out


def deviation_content(row: Mapping[str, Any], approved_by: str) -> dict[str, Any]:
    """What an approval signs: the deviation as raised, and who approves it."""
    return {
        "record": "deviations",
        "id": row["id"],
        "batch_id": row["batch_id"],
        "kind": row["kind"],
        "attributes": row["attributes"],
        "reason": row["reason"],
        "reference": row["reference"],
        "raised_by": row["raised_by"],
        "raised_at": utc_text(row["raised_at"]),
        "flagged_bags": row["flagged_bags"],
        "approved_by": approved_by,
        "meaning": "approved",
    }


class DeviationStore(QcStore, SignatureStore):
    """Deviations raised by one registry user and approved, signed, by another (qa)."""

    def raise_deviation(
        self,
        actor: Actor,
        batch_id: str,
        reason: str,
        *,
        attributes: Iterable[str] | None = None,
        reference: str | None = None,
    ) -> int:
        """Raise a release deviation for failed attributes of a batch not yet released.

        Parameters
        ----------
        actor : Actor
            The raiser: a registry user of the batch's site with a GMP-writing role.
        batch_id : str
        reason : str
            Why release would be justified (the risk assessment in words).
        attributes : iterable of str, optional
            The failed attributes it covers (default: every attribute failing now).
        reference : str, optional
            The deviation report's number in the site's quality system.

        Returns
        -------
        int
            The deviation's number (``open`` until a qa user approves it).
        """
        self._write_access(actor, "raise a deviation")
        _text_id("batch_id", batch_id)
        _reason(reason)
        if reference is not None:
            if not isinstance(reference, str) or not reference.strip() or len(reference) > 200:
                raise InvalidInput("reference", reference, "a report number of 1–200 characters")
            check_reason(reference, "reference")
        now = _now()
        with write_transaction(self.engine) as conn:
            owner = self._owner_of(conn, actor, "batches", batch_id)
            actor.require_site(owner.site, "raise a deviation")
            if self._decision_row(conn, batch_id) is not None:
                raise InvalidInput(
                    "batch_id",
                    batch_id,
                    "a batch not yet released (after release, a post-release result opens "
                    "its own deviation)",
                )
            spec = self._batch_spec(conn, batch_id, owner.site)
            stored = self._results(conn, batch_id)
            qc = evaluate_batch(
                spec, {k: v for k, v in stored.items() if k in spec.names}, batch_id=batch_id
            )
            if attributes is None:
                attrs = qc.failed
            elif isinstance(attributes, str):
                raise InvalidInput("attributes", attributes, "a list of attribute names")
            else:
                attrs = tuple(dict.fromkeys(attributes))
            if not attrs:
                raise InvalidInput(
                    "attributes", (), "failed attributes: none failed, so no deviation is needed"
                )
            for name in attrs:
                if name not in qc.failed:
                    raise InvalidInput(
                        "attributes",
                        name,
                        "an attribute that failed: " + (", ".join(qc.failed) or "none failed"),
                    )
            dev_id = conn.execute(
                insert(deviations).values(
                    batch_id=batch_id,
                    kind="release",
                    attributes=";".join(attrs),
                    reason=reason,
                    reference=reference,
                    raised_by=actor.username,
                    raised_at=now,
                    status="open",
                    flagged_bags="",
                    created_at=now,
                    updated_at=now,
                )
            ).inserted_primary_key[0]
            self._audit(
                conn,
                actor,
                "insert",
                deviations.name,
                f"{owner.study_id}/{batch_id}/{dev_id}",
                study_id=owner.study_id,
                new={"kind": "release", "attributes": list(attrs), "reference": reference},
                reason=reason,
                now=now,
            )
        return int(dev_id)

    def _deviation_row(
        self, conn: Connection, actor: Actor, deviation_id: Any
    ) -> tuple[Mapping[str, Any], _Owner]:
        if isinstance(deviation_id, bool) or not isinstance(deviation_id, int):
            raise InvalidInput("deviation", deviation_id, "a deviation number")
        row = (
            conn.execute(
                select(deviations).where(
                    and_(deviations.c.id == deviation_id, deviations.c.deleted_at.is_(None))
                )
            )
            .mappings()
            .first()
        )
        if row is None:
            raise NotFound("deviation", str(deviation_id))
        try:
            owner = self._owner_of(conn, actor, "batches", row["batch_id"])
        except NotFound:
            raise NotFound("deviation", str(deviation_id)) from None
        return row, owner

    def approve_deviation(
        self, actor: Actor, deviation_id: int, password: str, *, reason: str | None = None
    ) -> dict[str, Any]:
        """Approve an open deviation with an electronic signature (qa, not the raiser).

        A ``post_release`` deviation's approval clears its quarantine: the bags it lists that
        are still quarantined return to the status they had before.

        Parameters
        ----------
        actor : Actor
            A ``qa`` user of the batch's site other than the raiser.
        deviation_id : int
        password : str
            The approver's password, re-entered (21 CFR Part 11 §11.200(a)).
        reason : str, optional
            Added to the audit rows (default: "deviation N approved").

        Returns
        -------
        dict
            ``deviation_id``, ``signature_id``, ``cleared_bags`` (tuple of bag IDs).

        Raises
        ------
        PermissionDenied
            Not qa, another site's qa, the raiser, or a wrong password (audited; nothing
            else stored).
        NotFound, InvalidInput
            No such deviation (or another site's), or it is not open.
        """
        why = f"deviation {deviation_id} approved" if reason is None else _reason(reason)
        with self.engine.connect() as conn:
            row, owner = self._deviation_row(conn, actor, deviation_id)
        key = f"{owner.study_id}/{row['batch_id']}/{row['id']}"
        if row["status"] != "open":
            raise InvalidInput(
                "deviation", deviation_id, f"an open deviation (it is {row['status']})"
            )
        self._check_signer(
            actor,
            password,
            site=owner.site,
            action=f"approve deviation {deviation_id}",
            table=deviations.name,
            key=key,
            study_id=owner.study_id,
            not_by=row["raised_by"],
        )
        now = _now()
        cleared: list[str] = []
        with write_transaction(self.engine) as conn:
            row, owner = self._deviation_row(conn, actor, deviation_id)
            if row["status"] != "open":
                raise InvalidInput(
                    "deviation", deviation_id, f"an open deviation (it is {row['status']})"
                )
            sig_id = self._sign(
                conn,
                actor,
                meaning="approved",
                table=deviations.name,
                key=key,
                content=deviation_content(row, actor.username),
                study_id=owner.study_id,
                now=now,
            )
            conn.execute(
                update(deviations)
                .where(deviations.c.id == row["id"])
                .values(
                    status="approved",
                    approved_by=actor.username,
                    approved_at=now,
                    signature_id=sig_id,
                    updated_at=now,
                )
            )
            self._audit(
                conn,
                actor,
                "update",
                deviations.name,
                key,
                study_id=owner.study_id,
                field="status",
                old="open",
                new="approved",
                reason=f"{why} (electronic signature {sig_id})",
                now=now,
            )
            if row["kind"] == "post_release":
                cleared = self._clear_quarantine(conn, actor, owner, row, sig_id, why, now)
        return {"deviation_id": row["id"], "signature_id": sig_id, "cleared_bags": tuple(cleared)}

    def _clear_quarantine(
        self,
        conn: Connection,
        actor: Actor,
        owner: _Owner,
        row: Mapping[str, Any],
        sig_id: int,
        why: str,
        now: dt.datetime,
    ) -> list[str]:
        from immunoreset.registry import schema as s

        flagged = parse_flagged(row["flagged_bags"])
        if not flagged:
            return []
        bag_t = s.ENTITIES["bags"].table
        rows = conn.execute(
            select(bag_t).where(
                and_(
                    bag_t.c.bag_id.in_(sorted(flagged)),
                    bag_t.c.status == "quarantined",
                    bag_t.c.deleted_at.is_(None),
                )
            )
        ).mappings()
        cleared = []
        for bag_row in list(rows):
            bag = s.ENTITIES["bags"].from_row(bag_row)
            bag_owner = self._patient_by_id(conn, bag_row["patient_id"]) or owner
            self._change(
                conn,
                actor,
                bag_owner,
                "bags",
                bag,
                {"status": flagged[bag.bag_id]},
                f"quarantine cleared by QA: {why} (electronic signature {sig_id})",
                now,
            )
            cleared.append(bag.bag_id)
        return cleared

    def deviations(self, actor: Actor, batch_id: str) -> list[dict[str, Any]]:
        """The batch's deviations, oldest first, with the approval's signature (plain rows)."""
        _text_id("batch_id", batch_id)
        with self.engine.connect() as conn:
            self._owner_of(conn, actor, "batches", batch_id)
            rows = list(
                conn.execute(
                    select(deviations)
                    .where(
                        and_(deviations.c.batch_id == batch_id, deviations.c.deleted_at.is_(None))
                    )
                    .order_by(deviations.c.id)
                ).mappings()
            )
            return [
                {
                    "id": r["id"],
                    "kind": r["kind"],
                    "attributes": tuple(a for a in r["attributes"].split(";") if a),
                    "reason": r["reason"],
                    "reference": r["reference"],
                    "raised_by": r["raised_by"],
                    "raised_at": r["raised_at"],
                    "status": r["status"],
                    "approved_by": r["approved_by"],
                    "approved_at": r["approved_at"],
                    "signature": self._signature(conn, r["signature_id"]),
                    "flagged_bags": tuple(parse_flagged(r["flagged_bags"])),
                }
                for r in rows
            ]

    def _approved_release_deviation(
        self, conn: Connection, batch_id: str
    ) -> tuple[Deviation | None, list[int]]:
        """The approved release deviations of a batch as one :class:`Deviation` (attributes
        united), and their numbers; (None, []) when there is none."""
        rows = list(
            conn.execute(
                select(deviations)
                .where(
                    and_(
                        deviations.c.batch_id == batch_id,
                        deviations.c.kind == "release",
                        deviations.c.status == "approved",
                        deviations.c.deleted_at.is_(None),
                    )
                )
                .order_by(deviations.c.id)
            ).mappings()
        )
        if not rows:
            return None, []
        attrs = tuple(dict.fromkeys(a for r in rows for a in r["attributes"].split(";") if a))
        approved = max(r["approved_at"] for r in rows)
        return (
            Deviation(
                attributes=attrs,
                raised_by=", ".join(dict.fromkeys(r["raised_by"] for r in rows)),
                reason=" | ".join(r["reason"] for r in rows),
                approved_by=", ".join(dict.fromkeys(r["approved_by"] for r in rows)),
                date=approved.date(),
                reference="; ".join(r["reference"] for r in rows if r["reference"]) or None,
            ),
            [int(r["id"]) for r in rows],
        )
