"""Dose planning from drug-product bags: which bag(s) and what volume to infuse.

The target dose is ``weight_kg × target_cells_per_kg`` CAR+ T cells (1 × 10^6/kg by default,
Becilli et al. abstract, peer-data.md §1.2), capped at ``max_total_cells`` for heavy patients when
a cap is set. The delivered dose may deviate from the (capped) target by ``permitted_deviation``
either way (±20 % by default, *Front Immunol* 2024;15:1328368, Table 1, via peer-data.md §4.1);
both bounds are inclusive, so exactly +20 % is accepted and +20.1 % is not.

Choice of bags, in order (issue 4):

1. **One whole bag** whose content lies within the window (the one closest to target; ties go to
   the smaller bag, then the lower bag ID).
2. Otherwise a **partial volume from the smallest sufficient bag** — the bag with the fewest
   cells that still holds the whole target; the volume drawn is
   ``target / concentration`` with ``concentration = cells / volume`` (cells/mL).
3. Otherwise (no bag holds the target on its own) **several bags**: the fewest whole bags whose
   sum lies within the window (at most :data:`MAX_WHOLE_BAG_COMBINATION` bags are combined),
   else whole bags from the largest down while they fit under the target, topped up with a
   partial volume from the smallest remaining sufficient bag.

Only bags with status in :data:`~immunoreset.manufacturing.chain.INFUSABLE_BAG_STATUS` are used
(and, when ``on_date`` is given, only bags not past their expiry). Bags left untouched stay in
inventory for re-dosing.

Settings
--------
* ``keep_partial_remainder`` (default ``False``): a thawed cryopreserved bag cannot be refrozen,
  so the rest of a partially drawn bag is reported as discarded, not as re-dosing stock (project
  choice, no source; set ``True`` for fresh products kept under validated conditions).
* Floating-point: window bounds are compared with a relative tolerance of 1e-9
  (:data:`REL_TOL`) so that a dose of exactly +20 % is not refused by rounding.
* Volumes are exact (not rounded to syringe graduations).
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from immunoreset.course import Bag
from immunoreset.errors import InvalidInput, check_range
from immunoreset.manufacturing.chain import INFUSABLE_BAG_STATUS

__all__ = [
    "MAX_WHOLE_BAG_COMBINATION",
    "REL_TOL",
    "BagDraw",
    "DosePlan",
    "RemainingBag",
    "plan_dose",
]

#: Relative tolerance of the dose-window comparison.
REL_TOL = 1e-9
#: Largest number of whole bags combined when searching for a whole-bag dose.
MAX_WHOLE_BAG_COMBINATION = 4


@dataclass(frozen=True, slots=True)
class BagDraw:
    """Cells and volume to draw from one bag.

    Attributes
    ----------
    bag_id : str
    cells : float
        CAR+ T cells drawn.
    volume_ml : float
        Volume drawn, mL.
    whole : bool
        ``True`` when the whole bag is infused.
    concentration_cells_per_ml : float
        The bag's CAR+ T cells per mL.
    """

    bag_id: str
    cells: float
    volume_ml: float
    whole: bool
    concentration_cells_per_ml: float


@dataclass(frozen=True, slots=True)
class RemainingBag:
    """A bag (or the rest of one) left after the draw."""

    bag_id: str
    cells: float
    volume_ml: float


@dataclass(frozen=True, slots=True)
class DosePlan:
    """A dose plan: target, window, draws, achieved dose and what is left.

    Attributes
    ----------
    weight_kg, target_cells_per_kg : float
    uncapped_total_cells : float
        ``weight_kg × target_cells_per_kg``.
    target_total_cells : float
        Target after the cap.
    capped : bool
    permitted_deviation : float
        Fraction, e.g. 0.20.
    window_low_cells, window_high_cells : float
        Acceptable total dose (inclusive).
    draws : tuple[BagDraw, ...]
    total_cells : float
        CAR+ T cells to infuse.
    total_volume_ml : float
    dose_cells_per_kg : float
        ``total_cells / weight_kg``.
    deviation : float
        ``total_cells / target_total_cells − 1`` (fraction; 0.2 = +20 %).
    remaining : tuple[RemainingBag, ...]
        Untouched bags (and, with ``keep_partial_remainder``, the rest of a partial bag) for
        re-dosing.
    discarded : tuple[RemainingBag, ...]
        Rest of a partially drawn bag that is not kept.
    grade : str
        ``"whole_bag"``, ``"partial_bag"``, ``"whole_bags"`` or ``"bags_with_partial"``.
    reasons : tuple[str, ...]
    """

    weight_kg: float
    target_cells_per_kg: float
    uncapped_total_cells: float
    target_total_cells: float
    capped: bool
    permitted_deviation: float
    window_low_cells: float
    window_high_cells: float
    draws: tuple[BagDraw, ...]
    total_cells: float
    total_volume_ml: float
    dose_cells_per_kg: float
    deviation: float
    remaining: tuple[RemainingBag, ...]
    discarded: tuple[RemainingBag, ...]
    grade: str
    reasons: tuple[str, ...]

    @property
    def remaining_cells(self) -> float:
        return sum(r.cells for r in self.remaining)

    @property
    def remaining_volume_ml(self) -> float:
        return sum(r.volume_ml for r in self.remaining)


def _in_window(x: float, lo: float, hi: float) -> bool:
    return lo * (1 - REL_TOL) <= x <= hi * (1 + REL_TOL)


def _whole(bag: Bag) -> BagDraw:
    return BagDraw(
        bag.bag_id, bag.car_t_cells, bag.volume_ml, True, bag.car_t_cells / bag.volume_ml
    )


def _partial(bag: Bag, cells: float) -> BagDraw:
    conc = bag.car_t_cells / bag.volume_ml
    return BagDraw(bag.bag_id, cells, cells / conc, False, conc)


def _size_key(bag: Bag) -> tuple[float, str]:
    return (bag.car_t_cells, bag.bag_id)


def _best_whole_combination(
    usable: Sequence[Bag], k: int, target: float, lo: float, hi: float
) -> tuple[Bag, ...] | None:
    ordered = sorted(usable, key=_size_key)
    if sum(b.car_t_cells for b in ordered[:k]) > hi * (1 + REL_TOL):
        return None
    if sum(b.car_t_cells for b in ordered[-k:]) < lo * (1 - REL_TOL):
        return None
    best: tuple[Bag, ...] | None = None
    best_key: tuple[float, float, tuple[str, ...]] | None = None
    for combo in itertools.combinations(ordered, k):
        total = sum(b.car_t_cells for b in combo)
        if not _in_window(total, lo, hi):
            continue
        key = (abs(total - target), total, tuple(b.bag_id for b in combo))
        if best_key is None or key < best_key:
            best, best_key = combo, key
    return best


def _choose(
    usable: Sequence[Bag], target: float, lo: float, hi: float
) -> tuple[list[BagDraw], str]:
    by_size = sorted(usable, key=_size_key)
    single = _best_whole_combination(by_size, 1, target, lo, hi)
    if single is not None:
        return [_whole(single[0])], "whole_bag"
    sufficient = [b for b in by_size if b.car_t_cells >= target]
    if sufficient:
        return [_partial(sufficient[0], target)], "partial_bag"
    for k in range(2, min(len(by_size), MAX_WHOLE_BAG_COMBINATION) + 1):
        combo = _best_whole_combination(by_size, k, target, lo, hi)
        if combo is not None:
            return [_whole(b) for b in combo], "whole_bags"
    draws: list[BagDraw] = []
    skipped: list[Bag] = []
    acc = 0.0
    for bag in sorted(by_size, key=lambda b: (-b.car_t_cells, b.bag_id)):
        if acc + bag.car_t_cells <= target:
            draws.append(_whole(bag))
            acc += bag.car_t_cells
        else:
            skipped.append(bag)
    rest = target - acc
    if rest > target * REL_TOL:
        topping = [b for b in skipped if b.car_t_cells >= rest]
        if topping:
            draws.append(_partial(min(topping, key=_size_key), rest))
            return draws, "bags_with_partial"
    return draws, "whole_bags"


def _bags(value: Any) -> tuple[Bag, ...]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise InvalidInput("bags", value, "a list of Bag")
    for bag in value:
        if not isinstance(bag, Bag):
            raise InvalidInput("bags", bag, "a Bag")
    ids = [b.bag_id for b in value]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise InvalidInput("bags", dupes[0], "each bag listed once")
    return tuple(value)


def plan_dose(
    *,
    weight_kg: float,
    bags: Sequence[Bag],
    target_cells_per_kg: float = 1e6,
    max_total_cells: float | None = None,
    permitted_deviation: float = 0.20,
    on_date: dt.date | None = None,
    keep_partial_remainder: bool = False,
) -> DosePlan:
    """Plan the infused dose and the volume to draw from which bag(s).

    Parameters
    ----------
    weight_kg : float
        Weight on the day of infusion, 1–250 kg.
    bags : Sequence[Bag]
        The patient's bags (any status; only infusable, unexpired bags with cells are used).
    target_cells_per_kg : float
        CAR+ T cells per kg, > 0 and ≤ 1e9 (default 1e6).
    max_total_cells : float, optional
        Cap on the total dose, > 0 and ≤ 1e11 CAR+ T cells.
    permitted_deviation : float
        Allowed deviation from target either way, fraction within 0–0.5 (default 0.20).
    on_date : datetime.date, optional
        Infusion date; bags whose expiry is before it are not used.
    keep_partial_remainder : bool
        Count the rest of a partially drawn bag as re-dosing stock (default ``False``).

    Returns
    -------
    DosePlan

    Raises
    ------
    InvalidInput
        Bad inputs, or not enough cells in all usable bags to reach the lower end of the window
        (field ``bags``).

    Examples
    --------
    >>> from immunoreset.course import Bag
    >>> bags = [Bag("B-1-01", "B-1", 5e7, 20.0, status="released"),
    ...         Bag("B-1-02", "B-1", 5e7, 20.0, status="released")]
    >>> p = plan_dose(weight_kg=30, bags=bags)
    >>> p.grade, p.draws[0].bag_id, round(p.draws[0].volume_ml, 3), p.dose_cells_per_kg
    ('partial_bag', 'B-1-01', 12.0, 1000000.0)
    >>> [r.bag_id for r in p.remaining]
    ['B-1-02']
    """
    weight = float(check_range("weight_kg", weight_kg, 1, 250, "kg"))
    all_bags = _bags(bags)
    per_kg = float(
        check_range("target_cells_per_kg", target_cells_per_kg, 0, 1e9, "cells/kg", lo_open=True)
    )
    cap = check_range(
        "max_total_cells", max_total_cells, 0, 1e11, "cells", lo_open=True, allow_none=True
    )
    dev = float(check_range("permitted_deviation", permitted_deviation, 0, 0.5))
    if on_date is not None and (
        isinstance(on_date, dt.datetime) or not isinstance(on_date, dt.date)
    ):
        raise InvalidInput("on_date", on_date, "a calendar date (YYYY-MM-DD) or None")
    if not isinstance(keep_partial_remainder, bool):
        raise InvalidInput("keep_partial_remainder", keep_partial_remainder, "true or false")

    uncapped = weight * per_kg
    capped = cap is not None and uncapped > cap
    target = float(cap) if capped else uncapped
    lo, hi = target * (1 - dev), target * (1 + dev)
    reasons = [
        f"target {per_kg:.3g} cells/kg × {weight:g} kg = {uncapped:.4g} cells"
        + (f", capped at {cap:.4g}" if capped else "")
    ]
    reasons.append(
        f"acceptable {lo:.4g}–{hi:.4g} cells (±{dev * 100:g} % of {target:.4g}, inclusive)"
    )
    usable = []
    for bag in all_bags:
        if bag.status not in INFUSABLE_BAG_STATUS:
            reasons.append(f"bag {bag.bag_id} not used: {bag.status}")
        elif on_date is not None and bag.expiry is not None and bag.expiry < on_date:
            reasons.append(f"bag {bag.bag_id} not used: expired {bag.expiry.isoformat()}")
        elif bag.car_t_cells <= 0:
            reasons.append(f"bag {bag.bag_id} not used: no CAR+ T cells")
        else:
            usable.append(bag)
    available = sum(b.car_t_cells for b in usable)
    if available < lo * (1 - REL_TOL):
        raise InvalidInput(
            "bags",
            f"{available:.4g} CAR+ T cells in {len(usable)} usable bag(s)",
            f"at least {lo:.4g} CAR+ T cells in released, unexpired bags "
            f"(target {target:.4g} − {dev * 100:g} %)",
        )
    draws, grade = _choose(usable, target, lo, hi)
    total = sum(d.cells for d in draws)
    drawn = {d.bag_id: d for d in draws}
    remaining: list[RemainingBag] = []
    discarded: list[RemainingBag] = []
    for bag in usable:
        d = drawn.get(bag.bag_id)
        if d is None:
            remaining.append(RemainingBag(bag.bag_id, bag.car_t_cells, bag.volume_ml))
        elif not d.whole:
            rest = RemainingBag(bag.bag_id, bag.car_t_cells - d.cells, bag.volume_ml - d.volume_ml)
            (remaining if keep_partial_remainder else discarded).append(rest)
    for d in draws:
        how = "whole bag" if d.whole else "partial"
        reasons.append(
            f"{how} {d.bag_id}: {d.volume_ml:.4g} mL of {d.concentration_cells_per_ml:.4g} "
            f"cells/mL = {d.cells:.4g} cells"
        )
    deviation = total / target - 1
    reasons.append(
        f"dose {total / weight:.4g} cells/kg ({total:.4g} cells), "
        f"deviation {deviation * 100:+.2f} %"
    )
    return DosePlan(
        weight_kg=weight,
        target_cells_per_kg=per_kg,
        uncapped_total_cells=uncapped,
        target_total_cells=target,
        capped=capped,
        permitted_deviation=dev,
        window_low_cells=lo,
        window_high_cells=hi,
        draws=tuple(draws),
        total_cells=total,
        total_volume_ml=sum(d.volume_ml for d in draws),
        dose_cells_per_kg=total / weight,
        deviation=deviation,
        remaining=tuple(sorted(remaining, key=lambda r: r.bag_id)),
        discarded=tuple(discarded),
        grade=grade,
        reasons=tuple(reasons),
    )
