"""Chain of identity: patient → apheresis → batch → bags → infusion.

A point-of-care product is made for one named patient. :func:`check_infusion` refuses every link
that must not be made — a bag that is unknown, belongs to another patient's apheresis, was
already infused, is not released (or its batch is not), or is past its expiry — with a
:class:`ChainViolation` (a :class:`~immunoreset.errors.ChainOfIdentityError`) whose ``reason``
is a machine-readable code from :data:`CHAIN_REASONS`. :func:`trace` assembles the whole chain
of one patient from domain objects and :func:`format_trace` prints it.

Source
------
Issue 4 (point-of-care manufacturing): "a bag can be infused only into the patient whose
apheresis it came from, only once, only when released and unexpired".

Settings
--------
* :data:`INFUSABLE_BAG_STATUS`: ``released`` and ``stored_for_redosing`` (a released bag kept in
  inventory for a second dose) may be infused.
* Expiry: a bag is usable up to and including its expiry date. A bag without an expiry date is
  refused (``no_expiry``) unless ``require_expiry=False`` (project choice, no source: a
  cryopreserved product without a recorded expiry cannot be shown to be unexpired).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from immunoreset.course import STUDY_ID_PATTERN, Apheresis, Bag, Batch, Course, Infusion
from immunoreset.errors import ChainOfIdentityError, InvalidInput

if TYPE_CHECKING:
    from rich.tree import Tree

    from immunoreset.manufacturing.qc import ReleaseDecision

__all__ = [
    "CHAIN_REASONS",
    "DOSE_ROUNDING_TOLERANCE",
    "INFUSABLE_BAG_STATUS",
    "ApheresisNode",
    "BagNode",
    "BatchNode",
    "ChainTrace",
    "ChainViolation",
    "check_infusion",
    "check_infusion_plausible",
    "format_trace",
    "trace",
    "trace_course",
]

#: Machine-readable reasons a bag must not be infused -> what they mean.
CHAIN_REASONS: Mapping[str, str] = {
    "unknown_bag": "the bag is not in the registry",
    "unknown_batch": "the bag's batch is not in the registry",
    "batch_mismatch": "the bag does not belong to the batch given",
    "wrong_patient": "the bag was made from another patient's apheresis",
    "already_infused": "the bag has already been infused",
    "not_released": "the bag is not released (quarantined)",
    "discarded": "the bag was discarded",
    "expired": "the bag is past its expiry date",
    "no_expiry": "the bag has no expiry date recorded",
    "batch_not_released": "the bag's batch is not released",
    # plausibility of the infusion itself (:func:`check_infusion_plausible`)
    "future_date": "the infusion date is after today",
    "before_harvest": "the infusion date is before the batch's harvest",
    "before_release": "the infusion date is before the batch's release decision",
    "dose_exceeds_bag": "the dose per kg is more than the bags hold for this weight",
    "unplanned_infusion": "a further infusion without bags stored for a planned re-dose",
}

#: Relative allowance on the bags' cell content when checking a recorded dose: rounding of
#: the dose as written on the infusion record only (project choice, no source).
DOSE_ROUNDING_TOLERANCE = 0.01

#: Bag statuses that allow infusion.
INFUSABLE_BAG_STATUS: tuple[str, ...] = ("released", "stored_for_redosing")

# Bag status -> violation code for statuses that forbid infusion.
_STATUS_REASON: Mapping[str, str] = {
    "quarantined": "not_released",
    "infused": "already_infused",
    "discarded": "discarded",
    "expired": "expired",
}


class ChainViolation(ChainOfIdentityError):
    """A refused link in the chain of identity, with a machine-readable ``reason``.

    Attributes
    ----------
    reason : str
        One of :data:`CHAIN_REASONS`.
    bag_id, batch_id, study_id : str | None
    """

    def __init__(
        self,
        reason: str,
        message: str,
        *,
        bag_id: str | None = None,
        batch_id: str | None = None,
        study_id: str | None = None,
    ) -> None:
        super().__init__(message, bag_id=bag_id, study_id=study_id)
        self.reason = reason
        self.batch_id = batch_id


def _study(field: str, value: Any) -> str:
    if not isinstance(value, str) or not STUDY_ID_PATTERN.match(value):
        raise InvalidInput(field, value, "a study ID such as RM-003")
    return value


def _date(field: str, value: Any) -> dt.date:
    if isinstance(value, dt.datetime) or not isinstance(value, dt.date):
        raise InvalidInput(field, value, "a calendar date (YYYY-MM-DD)")
    return value


def _ids(field: str, value: Any) -> frozenset[str]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise InvalidInput(field, value, "a collection of bag IDs")
    items = tuple(value)
    for item in items:
        if not isinstance(item, str):
            raise InvalidInput(field, item, "bag IDs as text")
    return frozenset(items)


def check_infusion_plausible(
    *,
    study_id: str,
    on_date: dt.date,
    today: dt.date,
    bags: Sequence[Bag],
    batches: Sequence[Batch],
    release_dates: Mapping[str, dt.date],
    dose_cells_per_kg: float,
    weight_kg: float,
    previous_infusions: Sequence[dt.date] = (),
) -> None:
    """Refuse an infusion that cannot have happened as recorded (issue 13 item 5).

    Checks, in order: not after ``today`` (``future_date``); not before any batch's harvest
    (``before_harvest``) or release decision (``before_release``); the dose per kg not more than
    the bags' CAR+ T cells over the weight (``dose_exceeds_bag``, allowing
    :data:`DOSE_ROUNDING_TOLERANCE` for rounding); and, when the patient was infused before, every
    bag stored for a planned re-dose (``unplanned_infusion``: a bag's status
    ``stored_for_redosing`` is the GMP unit's record that the protocol plans that dose).

    Parameters
    ----------
    study_id : str
    on_date, today : datetime.date
        The infusion date and today's date (the caller's clock: this function reads none).
    bags, batches : Sequence
        The scanned bags and their batches.
    release_dates : Mapping[str, datetime.date]
        Batch ID -> date of its release decision (batches without a stored decision absent).
    dose_cells_per_kg : float
        The recorded dose, CAR+ T cells/kg.
    weight_kg : float
        The weight the dose refers to, kg.
    previous_infusions : Sequence[datetime.date]
        Dates of the patient's earlier infusions.

    Raises
    ------
    ChainViolation
        ``.reason`` one of ``future_date``, ``before_harvest``, ``before_release``,
        ``dose_exceeds_bag``, ``unplanned_infusion``.

    Examples
    --------
    >>> import datetime as dt
    >>> from immunoreset.course import Bag, Batch
    >>> batch = Batch("B-1", "AP-1", "CliniMACS Prodigy", dt.date(2025, 1, 2),
    ...               dt.date(2025, 1, 14), "op1", status="released")
    >>> bag = Bag("B-1-01", "B-1", 1.04e8, 20.0, status="released", expiry=dt.date(2025, 12, 31))
    >>> check_infusion_plausible(study_id="RM-001", on_date=dt.date(2025, 2, 1),
    ...     today=dt.date(2025, 2, 1), bags=[bag], batches=[batch], release_dates={},
    ...     dose_cells_per_kg=5e6, weight_kg=40.0)
    Traceback (most recent call last):
    ...
    immunoreset.manufacturing.chain.ChainViolation: a dose of 5e+06 CAR+ T cells/kg for 40 kg needs 2e+08 cells; the bags hold 1.04e+08 (2.6e+06/kg)
    """  # noqa: E501
    study = _study("study_id", study_id)
    day = _date("on_date", on_date)
    now = _date("today", today)
    if day > now:
        raise ChainViolation(
            "future_date",
            f"infusion date {day.isoformat()} is after today ({now.isoformat()})",
            study_id=study,
        )
    for batch in batches:
        harvest = batch.harvest_date or batch.process_start
        if day < harvest:
            raise ChainViolation(
                "before_harvest",
                f"infusion date {day.isoformat()} is before batch {batch.batch_id}'s harvest "
                f"({harvest.isoformat()})",
                batch_id=batch.batch_id,
                study_id=study,
            )
        released = release_dates.get(batch.batch_id)
        if released is not None and day < released:
            raise ChainViolation(
                "before_release",
                f"infusion date {day.isoformat()} is before batch {batch.batch_id}'s release "
                f"({released.isoformat()})",
                batch_id=batch.batch_id,
                study_id=study,
            )
    held = sum(b.car_t_cells for b in bags)
    needed = float(dose_cells_per_kg) * float(weight_kg)
    if needed > held * (1 + DOSE_ROUNDING_TOLERANCE):
        raise ChainViolation(
            "dose_exceeds_bag",
            f"a dose of {dose_cells_per_kg:.3g} CAR+ T cells/kg for {weight_kg:g} kg needs "
            f"{needed:.3g} cells; the bags hold {held:.3g} ({held / weight_kg:.3g}/kg)",
            study_id=study,
        )
    if previous_infusions:
        unplanned = [b.bag_id for b in bags if b.status != "stored_for_redosing"]
        if unplanned:
            raise ChainViolation(
                "unplanned_infusion",
                f"{study} was infused on {max(previous_infusions).isoformat()}; a further "
                f"infusion needs bags stored for a planned re-dose (status "
                f"stored_for_redosing), not {', '.join(unplanned)}",
                bag_id=unplanned[0],
                study_id=study,
            )


def check_infusion(
    *,
    patient_study_id: str,
    bag: Bag | None,
    batch: Batch | None,
    apheresis_owner_study_id: str | None,
    on_date: dt.date,
    already_infused_bag_ids: Iterable[str] = (),
    require_expiry: bool = True,
) -> None:
    """Refuse an infusion that breaks the chain of identity; return ``None`` when it may proceed.

    Checks, in order: the bag exists; its batch exists and is the bag's; the batch's apheresis
    belongs to ``patient_study_id``; the bag was not infused before; the bag is released (or
    stored for re-dosing); the batch is released; the bag is not expired on ``on_date``.

    Parameters
    ----------
    patient_study_id : str
        The patient about to be infused (study ID, e.g. ``RM-003``).
    bag : Bag | None
        The bag scanned at the bedside; ``None`` when the scanned ID is not in the registry.
    batch : Batch | None
        The batch the registry holds for ``bag.batch_id``; ``None`` if none.
    apheresis_owner_study_id : str | None
        Study ID of the patient whose apheresis ``batch`` was made from; ``None`` if unknown.
    on_date : datetime.date
        Infusion date.
    already_infused_bag_ids : Iterable[str]
        IDs of bags already recorded as infused (in any patient).
    require_expiry : bool
        Refuse a bag without an expiry date (default ``True``).

    Raises
    ------
    ChainViolation
        A :class:`~immunoreset.errors.ChainOfIdentityError` with ``.reason`` in
        :data:`CHAIN_REASONS`.
    InvalidInput
        Malformed inputs (not a study ID, not a date, wrong types).

    Examples
    --------
    >>> import datetime as dt
    >>> from immunoreset.course import Bag, Batch
    >>> batch = Batch("B-1", "AP-1", "CliniMACS Prodigy", dt.date(2025, 1, 2),
    ...               dt.date(2025, 1, 14), "op1", status="released")
    >>> bag = Bag("B-1-01", "B-1", 5e7, 20.0, status="released", expiry=dt.date(2025, 12, 31))
    >>> check_infusion(patient_study_id="RM-001", bag=bag, batch=batch,
    ...                apheresis_owner_study_id="RM-002", on_date=dt.date(2025, 2, 1),
    ...                already_infused_bag_ids=())
    Traceback (most recent call last):
    ...
    immunoreset.manufacturing.chain.ChainViolation: bag B-1-01 was made from the apheresis of RM-002, not RM-001
    """  # noqa: E501
    study = _study("patient_study_id", patient_study_id)
    if bag is not None and not isinstance(bag, Bag):
        raise InvalidInput("bag", bag, "a Bag or None")
    if batch is not None and not isinstance(batch, Batch):
        raise InvalidInput("batch", batch, "a Batch or None")
    if apheresis_owner_study_id is not None:
        _study("apheresis_owner_study_id", apheresis_owner_study_id)
    _date("on_date", on_date)
    infused = _ids("already_infused_bag_ids", already_infused_bag_ids)
    if not isinstance(require_expiry, bool):
        raise InvalidInput("require_expiry", require_expiry, "true or false")

    def refuse(reason: str, message: str) -> ChainViolation:
        return ChainViolation(
            reason,
            message,
            bag_id=None if bag is None else bag.bag_id,
            batch_id=None if batch is None else batch.batch_id,
            study_id=study,
        )

    if bag is None:
        raise refuse("unknown_bag", f"unknown bag: no such bag in the registry for {study}")
    if batch is None:
        raise refuse("unknown_batch", f"bag {bag.bag_id}: batch {bag.batch_id} is not recorded")
    if batch.batch_id != bag.batch_id:
        raise refuse(
            "batch_mismatch",
            f"bag {bag.bag_id} belongs to batch {bag.batch_id}, not {batch.batch_id}",
        )
    if apheresis_owner_study_id is None:
        raise refuse(
            "wrong_patient",
            f"bag {bag.bag_id}: the owner of apheresis {batch.apheresis_id} is unknown, "
            f"so it cannot be shown to be {study}'s",
        )
    if apheresis_owner_study_id != study:
        raise refuse(
            "wrong_patient",
            f"bag {bag.bag_id} was made from the apheresis of {apheresis_owner_study_id}, "
            f"not {study}",
        )
    if bag.bag_id in infused:
        raise refuse("already_infused", f"bag {bag.bag_id} has already been infused")
    if bag.status not in INFUSABLE_BAG_STATUS:
        code = _STATUS_REASON[bag.status]
        raise refuse(code, f"bag {bag.bag_id} is {bag.status}: {CHAIN_REASONS[code]}")
    if batch.status != "released":
        raise refuse(
            "batch_not_released",
            f"bag {bag.bag_id}: batch {batch.batch_id} is {batch.status}, not released",
        )
    if bag.expiry is None:
        if require_expiry:
            raise refuse("no_expiry", f"bag {bag.bag_id} has no expiry date recorded")
    elif on_date > bag.expiry:
        raise refuse(
            "expired",
            f"bag {bag.bag_id} expired on {bag.expiry.isoformat()} "
            f"(infusion date {on_date.isoformat()})",
        )


# --------------------------------------------------------------------------- trace
@dataclass(frozen=True, slots=True)
class BagNode:
    """A bag and the dates it was infused (empty if never)."""

    bag: Bag
    infused_on: tuple[dt.date, ...]


@dataclass(frozen=True, slots=True)
class BatchNode:
    """A batch, its release decision (if known) and its bags."""

    batch: Batch
    bags: tuple[BagNode, ...]
    decision: ReleaseDecision | None = None


@dataclass(frozen=True, slots=True)
class ApheresisNode:
    """An apheresis collection and the batches made from it."""

    apheresis: Apheresis
    batches: tuple[BatchNode, ...]


@dataclass(frozen=True, slots=True)
class ChainTrace:
    """One patient's chain of identity.

    Attributes
    ----------
    study_id : str
    apheresis : tuple[ApheresisNode, ...]
    infusions : tuple[Infusion, ...]
    reasons : tuple[str, ...]
        Broken links found while tracing (a batch whose apheresis is not the patient's, a bag
        whose batch is missing, an infused bag ID that is not among the bags); empty when whole.
    """

    study_id: str
    apheresis: tuple[ApheresisNode, ...]
    infusions: tuple[Infusion, ...]
    reasons: tuple[str, ...]

    @property
    def complete(self) -> bool:
        """``True`` when every link resolves."""
        return not self.reasons


def _seq(field: str, value: Any, kind: type) -> tuple[Any, ...]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise InvalidInput(field, value, f"a list of {kind.__name__}")
    for item in value:
        if not isinstance(item, kind):
            raise InvalidInput(field, item, f"a {kind.__name__}")
    return tuple(value)


def trace(
    *,
    study_id: str,
    apheresis: Sequence[Apheresis],
    batches: Sequence[Batch],
    bags: Sequence[Bag],
    infusions: Sequence[Infusion] = (),
    decisions: Mapping[str, ReleaseDecision] | None = None,
) -> ChainTrace:
    """Assemble one patient's chain from domain objects.

    Parameters
    ----------
    study_id : str
    apheresis, batches, bags, infusions : sequences of domain objects of this patient
    decisions : Mapping[str, ReleaseDecision], optional
        Release decision per batch ID, shown beside the batch.

    Returns
    -------
    ChainTrace
        Broken links are listed in ``reasons`` rather than raised, so a broken chain can still be
        printed and inspected.

    Examples
    --------
    >>> import datetime as dt
    >>> from immunoreset.course import Apheresis, Bag, Batch, Infusion
    >>> t = trace(study_id="RM-001",
    ...           apheresis=[Apheresis("AP-1", dt.date(2025, 1, 2), 2e9, 150.0)],
    ...           batches=[Batch("B-1", "AP-1", "CliniMACS Prodigy", dt.date(2025, 1, 3),
    ...                          dt.date(2025, 1, 15), "op1", status="released")],
    ...           bags=[Bag("B-1-01", "B-1", 3e7, 10.0, status="infused")],
    ...           infusions=[Infusion(dt.date(2025, 2, 1), ("B-1-01",), 1e6)])
    >>> print("\\n".join(format_trace(t, plain=True)))
    RM-001
      apheresis AP-1 on 2025-01-02 (2e+09 CD3+ cells, 150 mL)
        batch B-1 CliniMACS Prodigy, 2025-01-03 → 2025-01-15, operator op1 [released]
          bag B-1-01 3e+07 CAR+ T cells in 10 mL [infused] infused 2025-02-01
      infusion 2025-02-01: bags B-1-01, 1e+06 CAR+ T cells/kg
    """
    study = _study("study_id", study_id)
    aph = _seq("apheresis", apheresis, Apheresis)
    bts = _seq("batches", batches, Batch)
    bgs = _seq("bags", bags, Bag)
    infs = _seq("infusions", infusions, Infusion)
    if decisions is not None and not isinstance(decisions, Mapping):
        raise InvalidInput("decisions", decisions, "a mapping of batch ID to ReleaseDecision")
    decs = dict(decisions or {})
    reasons: list[str] = []
    infused_on: dict[str, list[dt.date]] = {}
    for inf in infs:
        for bag_id in inf.bag_ids:
            infused_on.setdefault(bag_id, []).append(inf.date)
    known_bags = {b.bag_id for b in bgs}
    for bag_id in sorted(set(infused_on) - known_bags):
        reasons.append(f"infused bag {bag_id} is not among {study}'s bags")
    known_aph = {a.apheresis_id for a in aph}
    known_batches = {b.batch_id for b in bts}
    for b in bts:
        if b.apheresis_id not in known_aph:
            reasons.append(f"batch {b.batch_id}: apheresis {b.apheresis_id} is not {study}'s")
    for bag in bgs:
        if bag.batch_id not in known_batches:
            reasons.append(f"bag {bag.bag_id}: batch {bag.batch_id} is not {study}'s")
    nodes = tuple(
        ApheresisNode(
            apheresis=a,
            batches=tuple(
                BatchNode(
                    batch=b,
                    decision=decs.get(b.batch_id),
                    bags=tuple(
                        BagNode(bag=g, infused_on=tuple(sorted(infused_on.get(g.bag_id, ()))))
                        for g in sorted(bgs, key=lambda g: g.bag_id)
                        if g.batch_id == b.batch_id
                    ),
                )
                for b in sorted(bts, key=lambda b: (b.process_start, b.batch_id))
                if b.apheresis_id == a.apheresis_id
            ),
        )
        for a in sorted(aph, key=lambda a: (a.date, a.apheresis_id))
    )
    return ChainTrace(
        study_id=study,
        apheresis=nodes,
        infusions=tuple(sorted(infs, key=lambda i: i.date)),
        reasons=tuple(reasons),
    )


def trace_course(
    course: Course, *, decisions: Mapping[str, ReleaseDecision] | None = None
) -> ChainTrace:
    """:func:`trace` over a :class:`~immunoreset.course.Course`."""
    if not isinstance(course, Course):
        raise InvalidInput("course", course, "a Course")
    return trace(
        study_id=course.study_id,
        apheresis=course.apheresis,
        batches=course.batches,
        bags=course.bags,
        infusions=course.infusions,
        decisions=decisions,
    )


def _aph_line(a: Apheresis) -> str:
    return (
        f"apheresis {a.apheresis_id} on {a.date.isoformat()} "
        f"({a.cd3_cells:.3g} CD3+ cells, {a.volume_ml:g} mL)"
    )


def _batch_line(node: BatchNode) -> str:
    b = node.batch
    harvest = b.harvest_date.isoformat() if b.harvest_date else "…"
    line = (
        f"batch {b.batch_id} {b.platform}, {b.process_start.isoformat()} → {harvest}, "
        f"operator {b.operator} [{b.status}]"
    )
    if node.decision is not None:
        d = node.decision
        line += f" {d.grade} by {d.released_by} on {d.when.isoformat()} against {d.spec_key}"
    return line


def _bag_line(node: BagNode) -> str:
    g = node.bag
    line = f"bag {g.bag_id} {g.car_t_cells:.3g} CAR+ T cells in {g.volume_ml:g} mL [{g.status}]"
    if g.location:
        line += f" at {g.location}"
    if g.expiry:
        line += f" expires {g.expiry.isoformat()}"
    if node.infused_on:
        line += " infused " + ", ".join(d.isoformat() for d in node.infused_on)
    return line


def _lines(t: ChainTrace) -> list[tuple[int, str, str]]:
    """(depth, kind, text) rows in print order."""
    rows: list[tuple[int, str, str]] = [(0, "patient", t.study_id)]
    for a in t.apheresis:
        rows.append((1, "apheresis", _aph_line(a.apheresis)))
        for b in a.batches:
            rows.append((2, "batch", _batch_line(b)))
            rows.extend((3, "bag", _bag_line(g)) for g in b.bags)
    for inf in t.infusions:
        rows.append(
            (
                1,
                "infusion",
                f"infusion {inf.date.isoformat()}: bags {', '.join(inf.bag_ids)}, "
                f"{inf.dose_cells_per_kg:.3g} CAR+ T cells/kg",
            )
        )
    rows.extend((1, "problem", f"BROKEN LINK: {r}") for r in t.reasons)
    return rows


_STYLE: Mapping[str, str] = {
    "patient": "bold",
    "apheresis": "cyan",
    "batch": "magenta",
    "bag": "green",
    "infusion": "bold blue",
    "problem": "bold red",
}


def format_trace(t: ChainTrace, *, plain: bool = False) -> Tree | list[str]:
    """Render a trace as a Rich :class:`~rich.tree.Tree` (default) or plain text lines.

    Parameters
    ----------
    t : ChainTrace
    plain : bool
        ``True`` for a list of lines indented two spaces per level (no markup).
    """
    if not isinstance(t, ChainTrace):
        raise InvalidInput("t", t, "a ChainTrace from trace()")
    if not isinstance(plain, bool):
        raise InvalidInput("plain", plain, "true or false")
    rows = _lines(t)
    if plain:
        return ["  " * depth + text for depth, _, text in rows]
    from rich.markup import escape
    from rich.tree import Tree

    root = Tree(f"[{_STYLE['patient']}]{escape(t.study_id)}[/]")
    stack: list[Tree] = [root]
    for depth, kind, text in rows[1:]:
        del stack[depth:]
        stack.append(stack[-1].add(f"[{_STYLE[kind]}]{escape(text)}[/]"))
    return root
