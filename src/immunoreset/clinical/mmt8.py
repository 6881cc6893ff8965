"""Manual Muscle Testing of 8 muscle groups (MMT8), Kendall 0–10 per group.

Sources
-------
IMACS Form 04 (Manual Muscle Testing scoring sheet and Kendall grading key) and the MMT8 testing
procedures (IMACS, June 2007), as summarised in clinical.md §7.2.

Definition
----------
Groups: neck flexors (axial), middle deltoid, biceps brachii, wrist extensors, gluteus maximus,
gluteus medius, quadriceps, ankle dorsiflexors, each graded on the Kendall 0–10 scale.
**Unilateral MMT8 = 0–80** (8 × 10, usually the right side; IMACS).
**Bilateral MMT8 = 0–150**: neck flexors once + 7 groups × 2 sides. This total is derived
arithmetic, not seen in a retrieved source (UNCONFIRMED; :data:`BILATERAL_CONFIRMED` is False).

UNCONFIRMED
-----------
* The numeric Kendall value recorded for "trace" (MRC 1) is not confirmed; only whole numbers
  0–10 are accepted here, so the caller decides how to record trace.
* Missing-data rule (spec convention): :func:`mmt8_result` returns ``score=None`` when a group is
  missing or ``None``; :func:`score_mmt8` raises.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from immunoreset.errors import InvalidInput, check_range

__all__ = [
    "BILATERAL_CONFIRMED",
    "BILATERAL_KEYS",
    "MMT8_GROUPS",
    "Mmt8Result",
    "mmt8_result",
    "score_mmt8",
    "score_mmt8_bilateral",
]

#: The eight MMT8 muscle groups in form order.
MMT8_GROUPS: tuple[str, ...] = (
    "neck_flexors",
    "deltoid",
    "biceps",
    "wrist_extensors",
    "gluteus_maximus",
    "gluteus_medius",
    "quadriceps",
    "ankle_dorsiflexors",
)

#: Keys of the bilateral form: neck flexors once, then right_/left_ for the 7 limb groups.
BILATERAL_KEYS: tuple[str, ...] = (
    "neck_flexors",
    *(f"{side}_{g}" for g in MMT8_GROUPS[1:] for side in ("right", "left")),
)

#: The 0–150 bilateral total is derived arithmetic only (clinical.md §7.2).
BILATERAL_CONFIRMED = False

_KENDALL_MAX = 10


@dataclass(frozen=True, slots=True)
class Mmt8Result:
    """An MMT8 total with completeness.

    Attributes
    ----------
    score : int | None
        Total (0–80 unilateral, 0–150 bilateral); ``None`` when incomplete.
    maximum : int
        80 or 150.
    bilateral : bool
        Which form was scored.
    incomplete : bool
        ``True`` when a group is missing.
    missing : tuple[str, ...]
        Groups not graded.
    reasons : tuple[str, ...]
    """

    score: int | None
    maximum: int
    bilateral: bool
    incomplete: bool
    missing: tuple[str, ...]
    reasons: tuple[str, ...]


def _validate(scores: Any, keys: tuple[str, ...]) -> dict[str, int | None]:
    if not isinstance(scores, Mapping):
        raise InvalidInput("scores", scores, "a mapping of muscle group -> Kendall 0–10")
    for key in scores:
        if not isinstance(key, str) or key not in keys:
            raise InvalidInput(
                "scores",
                key,
                "keys from: " + ", ".join(keys),
                message=f"scores has unknown muscle group {key!r}; allowed: {', '.join(keys)}",
            )
    out: dict[str, int | None] = {}
    for key in keys:
        value = scores.get(key)
        if value is None:
            out[key] = None
            continue
        try:
            out[key] = check_range("scores", value, 0, _KENDALL_MAX, integer=True)
        except InvalidInput:
            raise InvalidInput(
                "scores",
                value,
                "a whole number within 0–10 (Kendall)",
                message=f"scores[{key!r}] must be a whole number within 0–10; got {value!r}",
            ) from None
    return out


def mmt8_result(scores: Mapping[str, int | None], *, bilateral: bool = False) -> Mmt8Result:
    """Score MMT8 allowing missing groups (then ``score=None``).

    Parameters
    ----------
    scores : mapping of str to int or None
        Group -> Kendall 0–10. Keys from :data:`MMT8_GROUPS` (unilateral) or
        :data:`BILATERAL_KEYS` (bilateral).
    bilateral : bool
        Score the bilateral 0–150 form (UNCONFIRMED total).

    Examples
    --------
    >>> mmt8_result({"neck_flexors": 10}).missing[:2]
    ('deltoid', 'biceps')
    """
    if not isinstance(bilateral, bool):
        raise InvalidInput("bilateral", bilateral, "true or false")
    keys = BILATERAL_KEYS if bilateral else MMT8_GROUPS
    maximum = _KENDALL_MAX * len(keys)
    values = _validate(scores, keys)
    missing = tuple(k for k, v in values.items() if v is None)
    form = "bilateral (0–150, UNCONFIRMED total)" if bilateral else "unilateral (0–80)"
    if missing:
        return Mmt8Result(
            None,
            maximum,
            bilateral,
            True,
            missing,
            (f"MMT8 {form} not computed (no proration): missing " + ", ".join(missing),),
        )
    total = sum(v for v in values.values() if v is not None)
    return Mmt8Result(total, maximum, bilateral, False, (), (f"MMT8 {form}: {total}/{maximum}",))


def score_mmt8(scores: Mapping[str, int]) -> int:
    """Return the unilateral MMT8 total, 0–80.

    Parameters
    ----------
    scores : mapping of str to int
        All eight groups of :data:`MMT8_GROUPS` -> Kendall 0–10.

    Raises
    ------
    InvalidInput
        ``field="scores"``: not a mapping, unknown group, missing group, value not 0–10.

    Examples
    --------
    >>> score_mmt8({"neck_flexors": 8, "deltoid": 9, "biceps": 10, "wrist_extensors": 10,
    ...             "gluteus_maximus": 7, "gluteus_medius": 8, "quadriceps": 9,
    ...             "ankle_dorsiflexors": 10})
    71
    """
    return _complete(mmt8_result(scores), scores)


def score_mmt8_bilateral(scores: Mapping[str, int]) -> int:
    """Return the bilateral MMT8 total, 0–150 (derived total, UNCONFIRMED).

    Parameters
    ----------
    scores : mapping of str to int
        ``neck_flexors`` plus ``right_<group>`` and ``left_<group>`` for the 7 limb groups
        (:data:`BILATERAL_KEYS`) -> Kendall 0–10.

    Raises
    ------
    InvalidInput
        ``field="scores"`` as for :func:`score_mmt8`.

    Examples
    --------
    >>> score_mmt8_bilateral(dict.fromkeys(BILATERAL_KEYS, 10))
    150
    """
    return _complete(mmt8_result(scores, bilateral=True), scores)


def _complete(result: Mmt8Result, scores: Any) -> int:
    if result.score is None:
        raise InvalidInput(
            "scores",
            scores,
            "every muscle group graded",
            message="scores is missing " + ", ".join(result.missing),
        )
    return result.score
