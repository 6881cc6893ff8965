"""Childhood Myositis Assessment Scale (CMAS): 14 items, total 0–52 (higher = better).

Source
------
Lovell DJ, Lindsley CB, Rennebohm RM, et al. Development of validated disease activity and damage
indices for the juvenile idiopathic inflammatory myopathies. II. The Childhood Myositis
Assessment Scale (CMAS). *Arthritis Rheum.* 1999;42:2213–2219 (primary, not retrieved).
Item text from the "LOVELL ET AL" scoring sheet and the UpToDate copy (clinical.md §7.1); total 52
and the 4-year-old norms per Rennebohm 2004.

Items and ranges (clinical.md §7.1; see :data:`CMAS_ITEMS`)
------------------------------------------------------------
1 head elevation 0–5 · 2 leg raise 0–2 · 3 straight-leg lift 0–5 · 4 supine to prone 0–3 ·
5 sit-ups 0–6 · 6 supine to sit 0–3 · 7 arm raise/straighten 0–3 · 8 arm raise/duration 0–4 ·
9 floor sit 0–3 · 10 all-fours 0–4 · 11 floor rise 0–4 · 12 chair rise 0–4 · 13 stool step 0–3 ·
14 pick-up 0–3.

UNCONFIRMED / conflicts
-----------------------
* Items 9–14: task definitions of 9, 11, 14 confirmed; their score descriptors and *ranges* are
  inferred so that the maxima sum to the confirmed 52 (:data:`UNCONFIRMED_ITEMS`).
* Supine to prone: 0–2 in the UpToDate/medicalalgorithms copies vs 0–3 on the Lovell sheet;
  0–3 kept (needed for a total of 52).
* Item 8 is 0–4 on both sheet copies (a third-party 0–5 version would total 53).
* Missing-data rule (spec convention, no source): a missing item (``None``) leaves the total
  uncomputed; :func:`cmas_result` returns ``score=None, incomplete=True`` and
  :func:`score_cmas` raises :class:`~immunoreset.errors.InvalidInput` (``field="items"``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from immunoreset.errors import InvalidInput, check_range

__all__ = [
    "CMAS_ITEMS",
    "CMAS_MAX",
    "SITUP_TYPES",
    "TIMED_ITEM_BANDS",
    "UNCONFIRMED_ITEMS",
    "CmasResult",
    "cmas_result",
    "cmas_situps_item",
    "cmas_time_item",
    "score_cmas",
]

#: (item number, name, maximum score) in form order; every item's minimum is 0.
CMAS_ITEMS: tuple[tuple[int, str, int], ...] = (
    (1, "head_elevation", 5),
    (2, "leg_raise", 2),
    (3, "straight_leg_lift", 5),
    (4, "supine_to_prone", 3),
    (5, "sit_ups", 6),
    (6, "supine_to_sit", 3),
    (7, "arm_raise_straighten", 3),
    (8, "arm_raise_duration", 4),
    (9, "floor_sit", 3),
    (10, "all_fours", 4),
    (11, "floor_rise", 4),
    (12, "chair_rise", 4),
    (13, "stool_step", 3),
    (14, "pick_up", 3),
)
CMAS_MAX = 52

#: Items whose range/descriptors are inferred, not read from the Lovell sheet (UNCONFIRMED).
UNCONFIRMED_ITEMS: frozenset[int] = frozenset({9, 10, 11, 12, 13, 14})

#: Timed items -> lower edges (seconds) of bands 1, 2, … ; a time below the first edge scores 0.
#: Bands are half-open, [1, 10) s -> 1 etc., reading the sheet's "1–9 s" for whole seconds.
TIMED_ITEM_BANDS: dict[int, tuple[float, ...]] = {
    1: (1, 10, 30, 60, 120),
    3: (1, 10, 30, 60, 120),
    8: (1, 10, 30, 60),
}

#: The six sit-up types of item 5 (hands on thighs / across chest / behind head, each with and
#: without counterbalance); one point per type performed.
SITUP_TYPES: tuple[str, ...] = (
    "hands_on_thighs_counterbalanced",
    "hands_on_thighs",
    "hands_across_chest_counterbalanced",
    "hands_across_chest",
    "hands_behind_head_counterbalanced",
    "hands_behind_head",
)

_MAX_SECONDS = 3600


@dataclass(frozen=True, slots=True)
class CmasResult:
    """A CMAS total with completeness.

    Attributes
    ----------
    score : int | None
        Total 0–52, ``None`` when any item is missing.
    incomplete : bool
        ``True`` when at least one item is missing.
    missing : tuple[int, ...]
        Item numbers (1–14) not scored.
    reasons : tuple[str, ...]
        Summary, missing items, and the UNCONFIRMED-range note when items 9–14 contribute.
    """

    score: int | None
    incomplete: bool
    missing: tuple[int, ...]
    reasons: tuple[str, ...]


def _validate(items: Any) -> tuple[int | None, ...]:
    allowed = "a sequence of 14 CMAS item scores"
    if isinstance(items, str | bytes) or not isinstance(items, Sequence):
        raise InvalidInput("items", items, allowed)
    if len(items) != len(CMAS_ITEMS):
        raise InvalidInput(
            "items",
            items,
            allowed,
            message=f"items must hold 14 CMAS item scores; got {len(items)}",
        )
    out: list[int | None] = []
    for (number, name, top), value in zip(CMAS_ITEMS, items, strict=True):
        if value is None:
            out.append(None)
            continue
        try:
            out.append(check_range("items", value, 0, top, integer=True))
        except InvalidInput:
            raise InvalidInput(
                "items",
                value,
                f"a whole number within 0–{top}",
                message=f"items: item {number} ({name}) must be a whole number within "
                f"0–{top}; got {value!r}",
            ) from None
    return tuple(out)


def cmas_result(items: Sequence[int | None]) -> CmasResult:
    """Score CMAS, allowing missing items (``None``) under the no-proration rule.

    Parameters
    ----------
    items : sequence of 14 int or None
        Item scores in form order (see :data:`CMAS_ITEMS`); ``None`` = not done.

    Returns
    -------
    CmasResult

    Examples
    --------
    >>> cmas_result([5, 2, 5, 3, 6, 3, 3, 4, 3, None, 4, 4, 3, 3]).score is None
    True
    """
    values = _validate(items)
    missing = tuple(n for (n, _, _), v in zip(CMAS_ITEMS, values, strict=True) if v is None)
    if missing:
        return CmasResult(
            None,
            True,
            missing,
            ("not computed (no proration): missing item(s) " + ", ".join(map(str, missing)),),
        )
    total = sum(v for v in values if v is not None)
    reasons = [f"CMAS {total}/{CMAS_MAX}"]
    inferred = sum(v for (n, _, _), v in zip(CMAS_ITEMS, values, strict=True) if n >= 9 and v)
    if inferred:
        reasons.append(f"{inferred} point(s) from items 9–14, whose ranges are UNCONFIRMED")
    return CmasResult(total, False, (), tuple(reasons))


def score_cmas(items: Sequence[int]) -> int:
    """Return the CMAS total, 0–52.

    Parameters
    ----------
    items : sequence of 14 int
        Item scores in form order, each within its range (:data:`CMAS_ITEMS`).

    Returns
    -------
    int

    Raises
    ------
    InvalidInput
        ``field="items"``: wrong length or type, an item out of range, or a missing (``None``)
        item — use :func:`cmas_result` to get ``score=None`` for incomplete forms instead.

    Examples
    --------
    >>> score_cmas([5, 2, 5, 3, 6, 3, 3, 4, 3, 4, 4, 4, 3, 3])
    52
    """
    result = cmas_result(items)
    if result.score is None:
        raise InvalidInput(
            "items",
            items,
            "14 item scores, none missing",
            message="items: CMAS is not computed with missing item(s) "
            + ", ".join(map(str, result.missing))
            + " (use cmas_result for incomplete forms)",
        )
    return result.score


def cmas_time_item(seconds: float, *, item: int = 1) -> int:
    """Score a timed CMAS item from the seconds held.

    Parameters
    ----------
    seconds : float
        Time the position was held, 0–3600 s (0 = unable).
    item : {1, 3, 8}
        1 head elevation and 3 straight-leg lift (0–5: 0 unable; 1 = 1–9 s; 2 = 10–29 s;
        3 = 30–59 s; 4 = 60–119 s; 5 = ≥ 120 s) or 8 arm raise/duration (0–4, ≥ 60 s = 4).

    Returns
    -------
    int

    Examples
    --------
    >>> [cmas_time_item(s) for s in (119, 120, 9, 0)]
    [4, 5, 1, 0]
    >>> cmas_time_item(60, item=8)
    4
    """
    if isinstance(item, bool) or not isinstance(item, int) or item not in TIMED_ITEM_BANDS:
        raise InvalidInput("item", item, "one of: 1, 3, 8")
    s = check_range("seconds", seconds, 0, _MAX_SECONDS, "s")
    return sum(1 for edge in TIMED_ITEM_BANDS[item] if s >= edge)


def cmas_situps_item(types_performed: Iterable[str]) -> int:
    """Score CMAS item 5 (sit-ups): one point per sit-up type performed, 0–6.

    Parameters
    ----------
    types_performed : iterable of str
        Distinct words from :data:`SITUP_TYPES`.

    Examples
    --------
    >>> cmas_situps_item(["hands_on_thighs_counterbalanced", "hands_on_thighs",
    ...                   "hands_across_chest_counterbalanced", "hands_across_chest"])
    4
    """
    allowed = "distinct words from: " + ", ".join(SITUP_TYPES)
    if isinstance(types_performed, str | bytes) or not isinstance(types_performed, Iterable):
        raise InvalidInput("types_performed", types_performed, allowed)
    words = tuple(types_performed)
    for w in words:
        if not isinstance(w, str) or w not in SITUP_TYPES:
            raise InvalidInput("types_performed", w, allowed)
    if len(set(words)) != len(words):
        raise InvalidInput("types_performed", words, allowed)
    return len(words)
