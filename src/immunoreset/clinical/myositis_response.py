"""2016 ACR/EULAR myositis response criteria: Total Improvement Score (TIS), JDM and adult.

Sources
-------
* JDM: Rider LG, Aggarwal R, et al. 2016 American College of Rheumatology/European League
  Against Rheumatism criteria for minimal, moderate, and major clinical response in juvenile
  dermatomyositis. *Arthritis Rheumatol.* 2017;69(5):911–923 / *Ann Rheum Dis.* 2017;76:782–791
  (scoring table: PMC5577002, Table 3).
* Adult DM/PM: Aggarwal R, et al. *Arthritis Rheumatol.* 2017;69(5):898–910 /
  *Ann Rheum Dis.* 2017;76:792–801.

Definition
----------
Points per core-set measure by **absolute percent improvement** (percent of the measure's full
range, :func:`percent_improvement`); band edges are exclusive on the lower side
(``> 5–15 %`` etc.), so exactly 5 % (2 % for strength) scores 0:

=========================  ========  =======  =======  =======  =====
measure                    ≤ 5 %     >5–15    >15–25   >25–40   >40
=========================  ========  =======  =======  =======  =====
physician global           0         7.5      15       17.5     20
patient/parent global      0         2.5      5        7.5      10
function (HAQ/CHAQ)        0         5        7.5      7.5      10
enzyme (or CHQ-PhS)        0         2.5      5        7.5      7.5
extramuscular (or DAS)     0         7.5      12.5     15       20
=========================  ========  =======  =======  =======  =====

Strength (MMT or CMAS): ≤ 2 % → 0; > 2–10 → 10; > 10–20 → 20; > 20–30 → 27.5; > 30 → 32.5.
TIS = sum (0–100). Response thresholds: JDM minimal ≥ 30, moderate ≥ 45, major ≥ 70; adult
DM/PM ≥ 20, ≥ 40, ≥ 60. The point table is the same for both populations.

UNCONFIRMED
-----------
The muscle-enzyme improvement formula (how the ULN enters; enzymes normal at baseline) was not
retrieved. :func:`enzyme_improvement` offers named methods (:data:`ENZYME_METHODS`) and its
default, ``"relative_to_baseline"``, is a flagged choice; the caller may compute the enzyme
improvement any other way and pass it to :func:`score_tis`.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from immunoreset.errors import InvalidInput, check_choice, check_range

__all__ = [
    "ENZYME_METHODS",
    "ENZYME_METHOD_CONFIRMED",
    "TIS_POINTS",
    "TIS_THRESHOLDS",
    "TisResult",
    "enzyme_improvement",
    "percent_improvement",
    "score_tis",
    "tis_category",
]

_GENERAL_EDGES = (5.0, 15.0, 25.0, 40.0)
_STRENGTH_EDGES = (2.0, 10.0, 20.0, 30.0)

#: Measure -> (upper band edges in %, points per band) (Rider 2017, Table 3).
TIS_POINTS: Mapping[str, tuple[tuple[float, ...], tuple[float, ...]]] = MappingProxyType(
    {
        "physician_global": (_GENERAL_EDGES, (0.0, 7.5, 15.0, 17.5, 20.0)),
        "patient_global": (_GENERAL_EDGES, (0.0, 2.5, 5.0, 7.5, 10.0)),
        "strength": (_STRENGTH_EDGES, (0.0, 10.0, 20.0, 27.5, 32.5)),
        "function": (_GENERAL_EDGES, (0.0, 5.0, 7.5, 7.5, 10.0)),
        "enzyme": (_GENERAL_EDGES, (0.0, 2.5, 5.0, 7.5, 7.5)),
        "extramuscular": (_GENERAL_EDGES, (0.0, 7.5, 12.5, 15.0, 20.0)),
    }
)

#: Population -> (minimal, moderate, major) TIS thresholds, inclusive.
TIS_THRESHOLDS: Mapping[str, tuple[float, float, float]] = MappingProxyType(
    {"jdm": (30.0, 45.0, 70.0), "adult": (20.0, 40.0, 60.0)}
)
_CATEGORIES = ("none", "minimal", "moderate", "major")

#: Improvement inputs are percent; worsening below −1000 % is refused as implausible.
_IMPROVEMENT_MIN = -1000.0
_IMPROVEMENT_MAX = 100.0
#: Rounding (decimals of a percent) that removes binary floating-point noise at band edges.
_PERCENT_DECIMALS = 9


@dataclass(frozen=True, slots=True)
class TisResult:
    """Total Improvement Score with its parts.

    Attributes
    ----------
    score : float
        TIS, 0–100.
    category : str
        ``none``, ``minimal``, ``moderate`` or ``major`` for the population.
    population : str
        ``jdm`` or ``adult``.
    points : Mapping[str, float]
        Points per measure (read-only).
    reasons : tuple[str, ...]
    """

    score: float
    category: str
    population: str
    points: Mapping[str, float]
    reasons: tuple[str, ...]


def percent_improvement(
    *,
    baseline: float,
    followup: float,
    minimum: float,
    maximum: float,
    higher_is_better: bool,
) -> float:
    """Absolute percent improvement: change as a percentage of the measure's full range.

    ``100 × (baseline − followup) / (maximum − minimum)`` when lower is better (globals, HAQ/CHAQ,
    extramuscular), and ``100 × (followup − baseline) / (maximum − minimum)`` when higher is
    better (MMT, CMAS). Negative = worsening. Rounded to 1e-9 % so that, e.g., a 0.5-point
    change on a 0–10 scale is exactly 5 %.

    Parameters
    ----------
    baseline, followup : float
        Values within [minimum, maximum].
    minimum, maximum : float
        Range of the instrument (maximum > minimum), e.g. 0 and 52 for CMAS.
    higher_is_better : bool

    Returns
    -------
    float
        −100 … 100 %.

    Examples
    --------
    >>> percent_improvement(baseline=8, followup=3, minimum=0, maximum=10, higher_is_better=False)
    50.0
    >>> round(percent_improvement(baseline=30, followup=40, minimum=0, maximum=52,
    ...                           higher_is_better=True), 1)
    19.2
    """
    lo = check_range("minimum", minimum, -1e9, 1e9)
    hi = check_range("maximum", maximum, lo, 1e9, lo_open=True)
    b = check_range("baseline", baseline, lo, hi)
    f = check_range("followup", followup, lo, hi)
    if not isinstance(higher_is_better, bool):
        raise InvalidInput("higher_is_better", higher_is_better, "true or false")
    change = (f - b) if higher_is_better else (b - f)
    return round(100.0 * change / (hi - lo), _PERCENT_DECIMALS) + 0.0


def _relative_to_baseline(baseline: float, followup: float, uln: float) -> float:
    return 100.0 * (baseline - followup) / baseline if baseline > 0 else 0.0


def _excess_over_uln(baseline: float, followup: float, uln: float) -> float:
    # Improvement of the excess above ULN; an enzyme normal at baseline can only worsen.
    if baseline <= uln:
        return 0.0 if followup <= uln else -100.0 * (followup - uln) / uln
    return 100.0 * (baseline - max(followup, uln)) / (baseline - uln)


#: Named enzyme-improvement formulas (all UNCONFIRMED), each ``f(baseline, followup, uln) -> %``.
ENZYME_METHODS: Mapping[str, Callable[[float, float, float], float]] = MappingProxyType(
    {"relative_to_baseline": _relative_to_baseline, "excess_over_uln": _excess_over_uln}
)
#: No enzyme formula has been confirmed against Rider 2017 / the IMACS calculator.
ENZYME_METHOD_CONFIRMED = False


def enzyme_improvement(
    *,
    baseline: float,
    followup: float,
    uln: float,
    method: str = "relative_to_baseline",
) -> float:
    """Percent improvement of the most abnormal muscle enzyme (UNCONFIRMED formula).

    Parameters
    ----------
    baseline, followup : float
        Enzyme activity (CK, aldolase, ALT/AST or LDH), 0–1,000,000 U/L.
    uln : float
        Laboratory upper limit of normal, > 0 U/L.
    method : str
        ``"relative_to_baseline"`` (default): ``100 × (baseline − followup) / baseline``;
        ``"excess_over_uln"``: improvement of the excess above ULN, ``100 × (baseline −
        max(followup, ULN)) / (baseline − ULN)`` (a baseline within normal can only worsen).
        Both are UNCONFIRMED (:data:`ENZYME_METHOD_CONFIRMED`).

    Returns
    -------
    float
        Percent improvement, clipped to −1000 … 100.

    Examples
    --------
    >>> enzyme_improvement(baseline=1000, followup=700, uln=200)
    30.0
    >>> enzyme_improvement(baseline=1000, followup=700, uln=200, method="excess_over_uln")
    37.5
    """
    b = check_range("baseline", baseline, 0, 1e6, "U/L")
    f = check_range("followup", followup, 0, 1e6, "U/L")
    u = check_range("uln", uln, 0, 1e6, "U/L", lo_open=True)
    formula = ENZYME_METHODS[check_choice("method", method, ENZYME_METHODS)]
    value = round(formula(b, f, u), _PERCENT_DECIMALS) + 0.0
    return min(max(value, _IMPROVEMENT_MIN), _IMPROVEMENT_MAX)


def tis_category(score: float, *, population: str = "jdm") -> str:
    """Response category of a TIS: ``none``, ``minimal``, ``moderate`` or ``major``.

    Parameters
    ----------
    score : float
        TIS, 0–100.
    population : {"jdm", "adult"}
        JDM thresholds 30/45/70, adult DM/PM 20/40/60 (inclusive).

    Examples
    --------
    >>> tis_category(30.0), tis_category(29.5), tis_category(20, population="adult")
    ('minimal', 'none', 'minimal')
    """
    s = check_range("score", score, 0, 100)
    thresholds = TIS_THRESHOLDS[check_choice("population", population, TIS_THRESHOLDS)]
    return _CATEGORIES[sum(1 for t in thresholds if s >= t)]


def score_tis(
    *,
    physician_global: float,
    patient_global: float,
    strength: float,
    function: float,
    enzyme: float,
    extramuscular: float,
    population: str = "jdm",
) -> TisResult:
    """Total Improvement Score (0–100) and response category.

    Parameters
    ----------
    physician_global, patient_global, strength, function, enzyme, extramuscular : float
        Absolute percent improvement of each core-set measure, −1000 … 100 % (negative =
        worsening; see :func:`percent_improvement` and :func:`enzyme_improvement`). PRINTO
        alternatives go in the same slots (CHQ-PhS for ``enzyme``, DAS for ``extramuscular``).
    population : {"jdm", "adult"}
        Chooses the response thresholds; the point table is shared.

    Returns
    -------
    TisResult

    Examples
    --------
    >>> r = score_tis(physician_global=50, patient_global=30, strength=19.2, function=16.7,
    ...               enzyme=30, extramuscular=20)
    >>> r.score, r.category
    (75.0, 'major')
    """
    values = {
        "physician_global": physician_global,
        "patient_global": patient_global,
        "strength": strength,
        "function": function,
        "enzyme": enzyme,
        "extramuscular": extramuscular,
    }
    checked = {
        name: check_range(name, v, _IMPROVEMENT_MIN, _IMPROVEMENT_MAX, "%")
        for name, v in values.items()
    }
    pop = check_choice("population", population, TIS_THRESHOLDS)
    points: dict[str, float] = {}
    reasons: list[str] = []
    for name, (edges, band_points) in TIS_POINTS.items():
        pct = checked[name]
        points[name] = band_points[bisect_left(edges, pct)]
        reasons.append(f"{name}: {pct:g} % improvement -> {points[name]:g} points")
    total = sum(points.values())
    category = tis_category(total, population=pop)
    reasons.append(f"TIS {total:g} -> {category} ({pop} thresholds)")
    return TisResult(total, category, pop, MappingProxyType(points), tuple(reasons))
