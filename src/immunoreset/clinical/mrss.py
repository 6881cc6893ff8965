"""Modified Rodnan skin score (mRSS): 17 sites, each 0–3, total 0–51.

Source
------
Clements PJ, Lachenbruch PA, Seibold JR, et al. Skin thickness score in systemic sclerosis: an
assessment of interobserver variability in 3 independent studies. *J Rheumatol.*
1993;20(11):1892–1896; range 0–51 as in the CRISS core set (Khanna et al. 2016).

Definition
----------
Sites: face, anterior chest, abdomen, and right and left fingers, dorsum of hands, forearms,
upper arms, thighs, lower legs, dorsum of feet (3 + 7 × 2 = 17). Palpation score per site:
0 normal, 1 mild, 2 moderate, 3 severe thickening (cannot pinch into a fold). Not the 22-site
Kahaleh score (0–66) nor the 10-site score (0–30).

Missing-data rule (spec convention, no source): all 17 sites are required by :func:`score_mrss`;
:func:`mrss_result` returns ``score=None`` when any site is missing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from immunoreset.errors import InvalidInput, check_range

__all__ = ["MRSS_MAX", "MRSS_SITES", "MrssResult", "mrss_result", "score_mrss"]

#: The 17 sites in form order.
MRSS_SITES: tuple[str, ...] = (
    "face",
    "anterior_chest",
    "abdomen",
    *(
        f"{side}_{part}"
        for part in ("fingers", "hands", "forearms", "upper_arms", "thighs", "lower_legs", "feet")
        for side in ("right", "left")
    ),
)
MRSS_MAX = 51
_SITE_MAX = 3


@dataclass(frozen=True, slots=True)
class MrssResult:
    """An mRSS total with completeness.

    Attributes
    ----------
    score : int | None
        0–51, ``None`` when a site is missing.
    incomplete : bool
    missing : tuple[str, ...]
    reasons : tuple[str, ...]
    """

    score: int | None
    incomplete: bool
    missing: tuple[str, ...]
    reasons: tuple[str, ...]


def _validate(sites: Any) -> dict[str, int | None]:
    if not isinstance(sites, Mapping):
        raise InvalidInput("sites", sites, "a mapping of skin site -> 0–3")
    for key in sites:
        if not isinstance(key, str) or key not in MRSS_SITES:
            raise InvalidInput(
                "sites",
                key,
                "keys from: " + ", ".join(MRSS_SITES),
                message=f"sites has unknown site {key!r}; allowed: {', '.join(MRSS_SITES)}",
            )
    out: dict[str, int | None] = {}
    for key in MRSS_SITES:
        value = sites.get(key)
        if value is None:
            out[key] = None
            continue
        try:
            out[key] = check_range("sites", value, 0, _SITE_MAX, integer=True)
        except InvalidInput:
            raise InvalidInput(
                "sites",
                value,
                "a whole number within 0–3",
                message=f"sites[{key!r}] must be a whole number within 0–3; got {value!r}",
            ) from None
    return out


def mrss_result(sites: Mapping[str, int | None]) -> MrssResult:
    """Score mRSS allowing missing sites (then ``score=None``, no proration).

    Parameters
    ----------
    sites : mapping of str to int or None
        Site (:data:`MRSS_SITES`) -> 0–3.

    Examples
    --------
    >>> mrss_result({"face": 1}).incomplete
    True
    """
    values = _validate(sites)
    missing = tuple(k for k, v in values.items() if v is None)
    if missing:
        return MrssResult(
            None,
            True,
            missing,
            ("mRSS not computed (no proration): missing " + ", ".join(missing),),
        )
    total = sum(v for v in values.values() if v is not None)
    return MrssResult(total, False, (), (f"mRSS {total}/{MRSS_MAX} (17 sites)",))


def score_mrss(sites: Mapping[str, int]) -> int:
    """Return the modified Rodnan skin score, 0–51.

    Parameters
    ----------
    sites : mapping of str to int
        All 17 sites of :data:`MRSS_SITES` -> 0 (normal) … 3 (severe).

    Raises
    ------
    InvalidInput
        ``field="sites"``: not a mapping, unknown or missing site, value not a whole 0–3.

    Examples
    --------
    >>> score_mrss(dict.fromkeys(MRSS_SITES, 3))
    51
    """
    result = mrss_result(sites)
    if result.score is None:
        raise InvalidInput(
            "sites",
            sites,
            "all 17 sites scored",
            message="sites is missing " + ", ".join(result.missing),
        )
    return result.score
