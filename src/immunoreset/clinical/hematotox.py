"""CAR-HEMATOTOX score: risk of CAR T-cell–related hematotoxicity before lymphodepletion.

Source
------
Rejeski K, Perez A, Sesques P, et al. CAR-HEMATOTOX: a model for CAR T-cell–related hematologic
toxicity in relapsed/refractory large B-cell lymphoma. *Blood.* 2021;138(24):2499–2513.
doi:10.1182/blood.2020010543 (PMC8893508). Five variables measured before lymphodepletion
(≈ day −5) with extra weight on platelets and ferritin; risk low = 0–1, high = ≥ 2 (confirmed by
european-mcl.net, Rejeski et al. *J Hematol Oncol* 2023 and de Boer et al. *Blood Adv* 2025;
project specification clinical.md §4). Validated in adult LBCL (later MM, MCL) only, not in
children or autoimmune disease.

Point table (UNCONFIRMED — as commonly reproduced from Figure 2, figure text not found)
---------------------------------------------------------------------------------------
=============  ============  ===================  ============
variable       0 points      1 point              2 points
=============  ============  ===================  ============
platelets /µL  > 175,000     75,000–175,000       < 75,000
ANC /µL        > 1200        < 1200               —
Hb g/dL        > 9.0         < 9.0                —
CRP mg/dL      < 3.0         > 3.0                —
ferritin ng/mL < 650         650–2000             > 2000
=============  ============  ===================  ============

A value exactly on a cut-off (PLT 75,000/175,000, ANC 1200, Hb 9.0, CRP 3.0, ferritin
650/2000) has no confirmed band: ``ToxicitySettings.hematotox_on_cutoff`` puts it in the band
with more points (``"higher_points"``, default — a borderline patient is not called low risk) or
fewer (``"lower_points"``), and the result carries the flag ``on_cutoff:<variable>``. Verify the
cut-offs against the published figure before clinical use. CRP is in **mg/dL** (30 mg/L = 3.0).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from immunoreset.clinical._counts import check_plausible, count_factor
from immunoreset.clinical.settings import DEFAULT_SETTINGS, ToxicitySettings, _check_settings
from immunoreset.errors import InvalidInput, check_range

__all__ = [
    "HEMATOTOX_VARIABLES",
    "HIGH_RISK_FROM",
    "HematotoxResult",
    "score_hematotox",
    "score_hematotox_partial",
]

#: variable -> (unit, plausible maximum, worse direction, ((cut-off, points beyond it), …)).
HEMATOTOX_VARIABLES: Mapping[str, tuple[str, float, str, tuple[tuple[float, int], ...]]] = {
    "platelets_per_ul": ("cells/µL", 3_000_000, "low", ((175_000, 1), (75_000, 2))),
    "anc_per_ul": ("cells/µL", 200_000, "low", ((1200, 1),)),
    "hemoglobin_g_dl": ("g/dL", 25, "low", ((9.0, 1),)),
    "crp_mg_dl": ("mg/dL", 100, "high", ((3.0, 1),)),
    "ferritin_ng_ml": ("ng/mL", 1_000_000, "high", ((650, 1), (2000, 2))),
}
#: variable -> registry analyte, for ``units=`` conversion.
VARIABLE_ANALYTES: Mapping[str, str] = {
    "platelets_per_ul": "platelets",
    "anc_per_ul": "anc",
    "hemoglobin_g_dl": "hemoglobin",
    "crp_mg_dl": "crp",
    "ferritin_ng_ml": "ferritin",
}
#: Flag carried by every result: the score's validation population (european-mcl.net).
NOT_VALIDATED_FLAG = "not_validated_in_children_or_autoimmune_disease"
#: Score from which the risk is "high" (0–1 low, ≥ 2 high).
HIGH_RISK_FROM = 2
_MAX_POINTS = {name: max(p for _, p in spec[3]) for name, spec in HEMATOTOX_VARIABLES.items()}


@dataclass(frozen=True, slots=True)
class HematotoxResult:
    """A CAR-HEMATOTOX score.

    Attributes
    ----------
    score : int or None
        0–7; None when a variable is missing.
    risk : str or None
        ``"low"`` (0–1) or ``"high"`` (≥ 2); None when missing values leave it open.
    reasons : tuple of str
        The variables that scored points.
    flags : tuple of str
        ``on_cutoff:<variable>``, ``incomplete``, ``missing:<variable>``, ``cutoffs_unconfirmed``,
        and always ``not_validated_in_children_or_autoimmune_disease`` (validated in adult
        LBCL, later MM and MCL only).
    points : tuple of (str, int)
        Points per variable that was given.
    min_score, max_score : int
        Range of the total given the missing variables (equal when complete).
    """

    score: int | None
    risk: str | None
    reasons: tuple[str, ...]
    flags: tuple[str, ...]
    points: tuple[tuple[str, int], ...]
    min_score: int
    max_score: int


def _points(name: str, value: float, higher_on_cut: bool) -> tuple[int, bool]:
    _, _, worse, cuts = HEMATOTOX_VARIABLES[name]
    points, on_cut = 0, False
    for cut, pts in cuts:
        on_cut = on_cut or value == cut
        beyond = value < cut if worse == "low" else value > cut
        if beyond or (value == cut and higher_on_cut):
            points = max(points, pts)
    return points, on_cut


def score_hematotox_partial(
    *,
    platelets_per_ul: float | None,
    anc_per_ul: float | None,
    hemoglobin_g_dl: float | None,
    crp_mg_dl: float | None,
    ferritin_ng_ml: float | None,
    units: Mapping[str, str] | None = None,
    settings: ToxicitySettings = DEFAULT_SETTINGS,
) -> HematotoxResult:
    """CAR-HEMATOTOX allowing missing variables (``None``): the result is then ``incomplete``.

    ``units`` maps a variable name to the unit its value is in (``{"anc_per_ul": "10^9/L",
    "crp_mg_dl": "mg/L"}``); unnamed variables are in the unit of their name, and counts
    implausible in cells/µL are then refused.

    With missing variables the total is not computed (``score=None``); ``min_score`` and
    ``max_score`` bound it and ``risk`` is given only when both bounds agree (spec §4.1 case 6).

    Examples
    --------
    >>> r = score_hematotox_partial(platelets_per_ul=200_000, anc_per_ul=3000,
    ...     hemoglobin_g_dl=12.0, crp_mg_dl=0.5, ferritin_ng_ml=None)
    >>> r.score, r.risk, r.min_score, r.max_score
    (None, None, 0, 2)
    """
    values = {
        "platelets_per_ul": platelets_per_ul,
        "anc_per_ul": anc_per_ul,
        "hemoglobin_g_dl": hemoglobin_g_dl,
        "crp_mg_dl": crp_mg_dl,
        "ferritin_ng_ml": ferritin_ng_ml,
    }
    settings = _check_settings(settings)
    values = _convert(values, units, settings)
    for name, value in values.items():
        unit, maximum, _, _ = HEMATOTOX_VARIABLES[name]
        check_range(name, value, 0, maximum, unit, allow_none=True)
    higher = settings.hematotox_on_cutoff == "higher_points"
    flags: list[str] = ["cutoffs_unconfirmed", NOT_VALIDATED_FLAG]
    reasons: list[str] = []
    points: list[tuple[str, int]] = []
    missing_max = 0
    for name, value in values.items():
        if value is None:
            flags.append(f"missing:{name}")
            missing_max += _MAX_POINTS[name]
            continue
        pts, on_cut = _points(name, value, higher)
        points.append((name, pts))
        if on_cut:
            flags.append(f"on_cutoff:{name}")
        if pts:
            reasons.append(f"{name} {value:g} {HEMATOTOX_VARIABLES[name][0]} → {pts}")
    low = sum(p for _, p in points)
    high = low + missing_max
    complete = missing_max == 0 and len(points) == len(values)
    if not complete:
        flags.append("incomplete")
    risk: str | None
    if low >= HIGH_RISK_FROM:
        risk = "high"
    elif high < HIGH_RISK_FROM:
        risk = "low"
    else:
        risk = None
    if not reasons:
        reasons.append("no variable scored points")
    reasons.append("not validated in children or autoimmune disease (adult LBCL, MM, MCL only)")
    return HematotoxResult(
        low if complete else None, risk, tuple(reasons), tuple(flags), tuple(points), low, high
    )


def score_hematotox(
    *,
    platelets_per_ul: float,
    anc_per_ul: float,
    hemoglobin_g_dl: float,
    crp_mg_dl: float,
    ferritin_ng_ml: float,
    units: Mapping[str, str] | None = None,
    settings: ToxicitySettings = DEFAULT_SETTINGS,
) -> HematotoxResult:
    """CAR-HEMATOTOX score (0–7) and risk group from the five pre-lymphodepletion values.

    Parameters
    ----------
    platelets_per_ul : float
        Platelets, cells/µL, 0–3,000,000.
    anc_per_ul : float
        ANC, cells/µL, 0–200,000.
    hemoglobin_g_dl : float
        Hemoglobin, g/dL, 0–25.
    crp_mg_dl : float
        CRP, **mg/dL**, 0–100.
    ferritin_ng_ml : float
        Ferritin, ng/mL, 0–1,000,000.
    units : mapping of str to str, optional
        Unit of a variable given in another unit (``{"platelets_per_ul": "10^9/L"}``); without
        it counts implausible in cells/µL are refused.
    settings : ToxicitySettings
        ``hematotox_on_cutoff``: band of a value exactly on a cut-off (UNCONFIRMED).

    Returns
    -------
    HematotoxResult
        ``.score`` 0–7, ``.risk`` ``"low"`` (0–1) or ``"high"`` (≥ 2).

    Raises
    ------
    InvalidInput
        Missing, out-of-range or wrong-type value (use :func:`score_hematotox_partial` for
        missing values).

    Examples
    --------
    >>> r = score_hematotox(platelets_per_ul=60_000, anc_per_ul=3000, hemoglobin_g_dl=12.0,
    ...                     crp_mg_dl=0.5, ferritin_ng_ml=300)
    >>> r.score, r.risk
    (2, 'high')
    """
    values = {
        "platelets_per_ul": platelets_per_ul,
        "anc_per_ul": anc_per_ul,
        "hemoglobin_g_dl": hemoglobin_g_dl,
        "crp_mg_dl": crp_mg_dl,
        "ferritin_ng_ml": ferritin_ng_ml,
    }
    if units is not None and not isinstance(units, Mapping):
        raise InvalidInput("units", units, "a mapping of variable name to unit")
    for name, value in values.items():
        check_range(name, value, 0, None, (units or {}).get(name, HEMATOTOX_VARIABLES[name][0]))
    return score_hematotox_partial(**values, units=units, settings=settings)


def _convert(
    values: dict[str, float | None], units: Mapping[str, str] | None, settings: ToxicitySettings
) -> dict[str, float | None]:
    if units is not None and not isinstance(units, Mapping):
        raise InvalidInput("units", units, "a mapping of variable name to unit")
    units = dict(units or {})
    for name in units:
        if name not in HEMATOTOX_VARIABLES:
            raise InvalidInput("units", name, "keys among: " + ", ".join(HEMATOTOX_VARIABLES))
    out: dict[str, float | None] = {}
    refuse = settings.implausible_counts == "refuse"
    for name, value in values.items():
        analyte = VARIABLE_ANALYTES[name]
        if name in units:
            check_range(name, value, 0, None, units[name], allow_none=True)
            factor = count_factor(name.rsplit("_", 2)[0], analyte, units[name])
            out[name] = None if value is None else value * factor
        else:
            if value is not None and analyte in ("platelets", "anc"):
                check_range(name, value, 0, HEMATOTOX_VARIABLES[name][1], "cells/µL")
                check_plausible(name, analyte, value, refuse)
            out[name] = value
    return out
