"""Infusion at the bedside with the chain-of-identity checks, dose from bags, trace."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, or_, select
from sqlalchemy.engine import Connection

from immunoreset import course as c
from immunoreset.errors import InvalidInput, NotFound, check_range
from immunoreset.manufacturing.bags import DosePlan, plan_dose
from immunoreset.manufacturing.chain import (
    ChainTrace,
    ChainViolation,
    check_infusion,
    check_infusion_plausible,
    trace_course,
)
from immunoreset.registry.db import write_transaction
from immunoreset.registry.gmp._base import (
    _calendar_date,
    _decision_from_row,
    _entity_table,
    _now,
    _Owner,
    _reason,
    _text_id,
)
from immunoreset.registry.gmp.qc import QcStore

if TYPE_CHECKING:
    from immunoreset.registry.access import Actor

#: Reason codes of an implausible infusion (the others are chain-of-identity refusals).
_PLAUSIBILITY = frozenset(
    ("future_date", "before_harvest", "before_release", "dose_exceeds_bag", "unplanned_infusion")
)


class InfusionStore(QcStore):
    """Infusion at the bedside with the chain-of-identity checks, dose from bags, trace."""

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
        today: dt.date | None = None,
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
        today : datetime.date, optional
            Today's date for the plausibility checks (default: today, UTC).

        Also refused, with the reason codes of
        :func:`~immunoreset.manufacturing.chain.check_infusion_plausible`: a date after today,
        before the batch's harvest or release, a dose the bags cannot hold, a further infusion
        without bags stored for a planned re-dose.

        Raises
        ------
        ChainViolation
            With ``.reason`` in :data:`~immunoreset.manufacturing.chain.CHAIN_REASONS`; written
            to the audit trail (action ``refused``, table ``infusions``) before it is raised.
        InvalidInput, NotFound, PermissionDenied
        """
        actor.require_write("record an infusion")  # clinical data: not monitors, not qa
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
        today = now.date() if today is None else _calendar_date("today", today)
        violation: ChainViolation | None = None
        with write_transaction(self.engine) as conn:
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
                try:
                    self._check_plausible(
                        conn,
                        owner,
                        co,
                        [b for _, b in bags],
                        day,
                        today,
                        float(dose),
                        float(weight),
                    )
                except ChainViolation as err:
                    violation = err
            if violation is None:
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
            ("implausible infusion" if violation.reason in _PLAUSIBILITY else "chain of identity")
            + f" ({violation.reason}): {violation}",
            study_id=owner.study_id,
        )
        raise violation

    def _check_plausible(
        self,
        conn: Connection,
        owner: _Owner,
        course: c.Course,
        bags: Sequence[c.Bag],
        day: dt.date,
        today: dt.date,
        dose: float,
        weight: float,
    ) -> None:
        batches = []
        release_dates: dict[str, dt.date] = {}
        for batch_id in dict.fromkeys(b.batch_id for b in bags):
            batch = self._record(conn, "batches", batch_id)
            if batch is not None:
                batches.append(batch)
            row = self._decision_row(conn, batch_id)
            if row is not None:
                release_dates[batch_id] = row["decision_date"]
        check_infusion_plausible(
            study_id=owner.study_id,
            on_date=day,
            today=today,
            bags=bags,
            batches=batches,
            release_dates=release_dates,
            dose_cells_per_kg=dose,
            weight_kg=weight,
            previous_infusions=[i.date for i in course.infusions],
        )

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
