"""IgG after CAR T: age-specific lower limits, time below the LLN, IVIG episodes, replacement.

Sources
-------
* Age-specific reference ranges (fallback when the performing lab's LLN is not given): Mayo
  Clinic Laboratories total IgG (turbidimetry) paediatric table, as printed identically in two
  hospital test catalogues (UPH Quad Cities LAB1001 / Mayo IGGS; Augusta Health IgG) —
  :data:`MAYO_IGG_RANGES`. It is a laboratory table, not a peer-reviewed reference-interval study;
  results using it carry ``lln_source = "fallback_mayo"``.
* Replacement triggers (decision flags, not grades; CTCAE v5 has no IgG term): Hill JA, Giralt S,
  Torgerson TR, Lazarus HM. *Blood Rev* 2019;38:100596 (``hill_2019``: IgG ≤ 400 mg/dL; 400–600
  with serious recurrent infections) and the 2022 AAAAI Work Group report (``aaaai_2022``: < 400
  with recurrent infections; < 150 regardless) — table at PMC11272770 Tab1. The common trigger
  ``IgG < 400 mg/dL`` is the default setting (:class:`IggSettings`).
* Monitoring: IgG monthly from day 30 until > 400 mg/dL (*Transplant Cell Ther* 2021;27(3):
  222–229, Table II). Project specification clinical-addendum.md §4.

Time below the LLN (platform convention; no source defines it)
--------------------------------------------------------------
The LLN is looked up from the age **at each sample**. Between consecutive samples, ``locf``
counts the whole interval as below when its first sample is below; ``linear`` interpolates the
value and counts the time below the first sample's LLN (crossing interpolated). Counting starts
at the first sample; ``fraction_below`` = days below / observed days. Intervals that start within
``exclusion_days`` (default 56 = 8 weeks, UNCONFIRMED) after an IgG replacement dose are left out
(the level then reflects the infusion); their samples are flagged ``on_replacement``.
``recovery_day`` = first sample ≥ LLN outside an exclusion interval after the first sample below.

IVIG episodes: doses (study days) separated by at most ``episode_gap_days`` (default 42,
UNCONFIRMED; monthly replacement) form one episode.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from immunoreset.clinical.settings import _check_flag
from immunoreset.errors import InvalidInput, check_choice, check_range

__all__ = [
    "MAYO_IGG_RANGES",
    "TRIGGER_RULES",
    "IggSettings",
    "IggSummary",
    "IvigEpisode",
    "ReplacementDecision",
    "igg_lln",
    "ivig_episodes",
    "replacement_trigger",
    "summarise_igg",
]

#: Mayo Clinic Laboratories total IgG, mg/dL: (age from, age below, in years) -> (low, high).
MAYO_IGG_RANGES: tuple[tuple[float, float, float, float], ...] = (
    (0.0, 5 / 12, 100.0, 334.0),
    (5 / 12, 9 / 12, 164.0, 588.0),
    (9 / 12, 15 / 12, 246.0, 904.0),
    (15 / 12, 2.0, 313.0, 1170.0),
    (2.0, 4.0, 295.0, 1156.0),
    (4.0, 7.0, 386.0, 1470.0),
    (7.0, 10.0, 462.0, 1682.0),
    (10.0, 13.0, 503.0, 1719.0),
    (13.0, 16.0, 509.0, 1580.0),
    (16.0, 18.0, 487.0, 1327.0),
    (18.0, 200.0, 767.0, 1590.0),
)
TRIGGER_RULES: tuple[str, ...] = ("threshold", "hill_2019", "aaaai_2022")
METHODS: tuple[str, ...] = ("locf", "linear")
IGG_MAX = 10_000.0


@dataclass(frozen=True, slots=True)
class IggSettings:
    """Settings of the IgG analyses (defaults: common practice; UNCONFIRMED where marked).

    Attributes
    ----------
    trigger_rule : str
        ``threshold`` (default: IgG < ``trigger_below_mg_dl``), ``hill_2019`` or ``aaaai_2022``.
    trigger_below_mg_dl : float
        The common replacement trigger, 400 mg/dL (strict ``<``).
    exclusion_days : int
        Days after an IgG dose whose samples reflect the infusion (56, UNCONFIRMED).
    episode_gap_days : int
        Largest gap between doses within one IVIG episode (42, UNCONFIRMED).
    method : str
        ``locf`` or ``linear`` (time below the LLN).
    """

    trigger_rule: str = "threshold"
    trigger_below_mg_dl: float = 400.0
    exclusion_days: int = 56
    episode_gap_days: int = 42
    method: str = "locf"

    def __post_init__(self) -> None:
        check_choice("trigger_rule", self.trigger_rule, TRIGGER_RULES)
        check_range("trigger_below_mg_dl", self.trigger_below_mg_dl, 50, 2000, "mg/dL")
        check_range("exclusion_days", self.exclusion_days, 0, 365, "days", integer=True)
        check_range("episode_gap_days", self.episode_gap_days, 1, 365, "days", integer=True)
        check_choice("method", self.method, METHODS)


DEFAULT_IGG_SETTINGS = IggSettings()


def igg_lln(age_years: float) -> tuple[float, str]:
    """Fallback age-specific IgG lower limit (mg/dL) and its source (Mayo table).

    Examples
    --------
    >>> igg_lln(3.0), igg_lln(6.99), igg_lln(7.0)
    ((295.0, 'fallback_mayo'), (386.0, 'fallback_mayo'), (462.0, 'fallback_mayo'))
    """
    check_range("age_years", age_years, 0, 130, "years")
    for lo, hi, low, _ in MAYO_IGG_RANGES:
        if lo <= age_years < hi:
            return low, "fallback_mayo"
    raise AssertionError("age outside the table")  # pragma: no cover


@dataclass(frozen=True, slots=True)
class ReplacementDecision:
    """Whether an IgG value meets the replacement trigger of a rule set (a flag, not a grade)."""

    triggered: bool
    rule: str
    reasons: tuple[str, ...]


def replacement_trigger(
    igg_mg_dl: float,
    *,
    recurrent_infections: bool = False,
    serious_infections: bool = False,
    settings: IggSettings = DEFAULT_IGG_SETTINGS,
) -> ReplacementDecision:
    """Whether IgG replacement is indicated by the configured rule set.

    Parameters
    ----------
    igg_mg_dl : float
        Serum IgG, mg/dL (1 g/L = 100 mg/dL).
    recurrent_infections, serious_infections : bool
        Recurrent infections; serious recurrent infections (``hill_2019`` 400–600 band).
    settings : IggSettings

    Examples
    --------
    >>> replacement_trigger(399).triggered, replacement_trigger(400).triggered
    (True, False)
    >>> replacement_trigger(400, settings=IggSettings(trigger_rule="hill_2019")).triggered
    True
    """
    v = check_range("igg_mg_dl", igg_mg_dl, 0, IGG_MAX, "mg/dL")
    recurrent = _check_flag("recurrent_infections", recurrent_infections)
    serious = _check_flag("serious_infections", serious_infections)
    if not isinstance(settings, IggSettings):
        raise InvalidInput("settings", settings, "an IggSettings")
    rule = settings.trigger_rule
    if rule == "threshold":
        t = settings.trigger_below_mg_dl
        hit = v < t
        why = f"IgG {v:g} mg/dL {'<' if hit else '≥'} {t:g} (setting trigger_below_mg_dl)"
    elif rule == "hill_2019":
        if v <= 400:
            hit, why = True, f"IgG {v:g} ≤ 400 mg/dL (Hill 2019)"
        elif v <= 600 and serious:
            hit, why = True, f"IgG {v:g} in 400–600 mg/dL with serious recurrent infections"
        else:
            hit, why = False, f"IgG {v:g} mg/dL: no Hill 2019 trigger"
    else:
        if v < 150:
            hit, why = True, f"IgG {v:g} < 150 mg/dL (AAAAI 2022)"
        elif v < 400 and recurrent:
            hit, why = True, f"IgG {v:g} < 400 mg/dL with recurrent infections (AAAAI 2022)"
        else:
            hit, why = False, f"IgG {v:g} mg/dL: no AAAAI 2022 trigger"
    return ReplacementDecision(hit, rule, (why,))


@dataclass(frozen=True, slots=True)
class IvigEpisode:
    """Consecutive IgG replacement doses (study days)."""

    first_day: int
    last_day: int
    doses: int


def ivig_episodes(
    dose_days: Sequence[int], *, settings: IggSettings = DEFAULT_IGG_SETTINGS
) -> tuple[IvigEpisode, ...]:
    """Group IgG replacement dose days into episodes (gap ≤ ``episode_gap_days``).

    Examples
    --------
    >>> [(e.first_day, e.last_day, e.doses) for e in ivig_episodes([30, 60, 90, 200])]
    [(30, 90, 3), (200, 200, 1)]
    """
    if isinstance(dose_days, str) or not isinstance(dose_days, Sequence):
        raise InvalidInput("dose_days", dose_days, "a list of study days")
    days = sorted(
        check_range("dose_days", d, -3650, 36500, "study day", integer=True) for d in dose_days
    )
    if not isinstance(settings, IggSettings):
        raise InvalidInput("settings", settings, "an IggSettings")
    out: list[IvigEpisode] = []
    for d in days:
        if out and d - out[-1].last_day <= settings.episode_gap_days:
            e = out[-1]
            out[-1] = IvigEpisode(e.first_day, d, e.doses + 1)
        else:
            out.append(IvigEpisode(d, d, 1))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class IggSummary:
    """An IgG series against age-specific lower limits.

    Attributes
    ----------
    lln_mg_dl : tuple of float
        The LLN used for each sample.
    lln_source : str
        ``lab`` or ``fallback_mayo``.
    below_lln : tuple of bool
        Per sample.
    on_replacement : tuple of bool
        Per sample: within ``exclusion_days`` after an IgG dose.
    days_below_lln, observed_days : float
    fraction_below : float or None
    nadir_mg_dl : float or None
    recovery_day : int or None
    trigger_days : tuple of int
        Samples meeting the replacement trigger (outside exclusion intervals).
    ivig : tuple of IvigEpisode
    method : str
    reasons, flags : tuple of str
    """

    lln_mg_dl: tuple[float, ...]
    lln_source: str
    below_lln: tuple[bool, ...]
    on_replacement: tuple[bool, ...]
    days_below_lln: float
    observed_days: float
    fraction_below: float | None
    nadir_mg_dl: float | None
    recovery_day: int | None
    trigger_days: tuple[int, ...]
    ivig: tuple[IvigEpisode, ...]
    method: str
    reasons: tuple[str, ...]
    flags: tuple[str, ...]


def summarise_igg(
    days: Sequence[int],
    igg_mg_dl: Sequence[float],
    *,
    age_years: Sequence[float],
    lln_mg_dl: Sequence[float] | None = None,
    ivig_days: Sequence[int] = (),
    settings: IggSettings = DEFAULT_IGG_SETTINGS,
) -> IggSummary:
    """IgG series: LLN per sample, time below it, recovery, triggers and IVIG episodes.

    Parameters
    ----------
    days : sequence of int
        Study days of the samples, strictly increasing.
    igg_mg_dl : sequence of float
        IgG, mg/dL, 0–10,000.
    age_years : sequence of float
        Age at each sample (the LLN follows the age at the sample).
    lln_mg_dl : sequence of float, optional
        The performing lab's LLN per sample; else the Mayo fallback table.
    ivig_days : sequence of int
        IgG replacement dose days.
    settings : IggSettings

    Returns
    -------
    IggSummary

    Examples
    --------
    >>> s = summarise_igg([30, 60, 90], [350, 250, 500], age_years=[5.0, 5.1, 5.2])
    >>> s.days_below_lln, s.recovery_day
    (60.0, 90)
    >>> s = summarise_igg([30, 60, 90], [350, 250, 500], age_years=[5.0, 5.1, 5.2],
    ...                   settings=IggSettings(method="linear"))
    >>> round(s.days_below_lln, 2)
    46.32
    """
    if not isinstance(settings, IggSettings):
        raise InvalidInput("settings", settings, "an IggSettings")
    d = _ints("days", days)
    n = len(d)
    v = _floats("igg_mg_dl", igg_mg_dl, 0, IGG_MAX, n)
    ages = _floats("age_years", age_years, 0, 130, n)
    if any(b <= a for a, b in itertools.pairwise(d)):
        raise InvalidInput("days", list(d), "strictly increasing study days")
    if lln_mg_dl is not None:
        lln = _floats("lln_mg_dl", lln_mg_dl, 1, IGG_MAX, n)
        source = "lab"
    else:
        lln = tuple(igg_lln(a)[0] for a in ages)
        source = "fallback_mayo"
    doses = sorted(_ints("ivig_days", ivig_days))
    excl = settings.exclusion_days

    def on_rep(day: int) -> bool:
        return any(0 <= day - x < excl for x in doses) if excl else False

    below = tuple(val < lim for val, lim in zip(v, lln, strict=True))
    rep = tuple(on_rep(x) for x in d)
    flags: list[str] = []
    reasons: list[str] = []
    if source == "fallback_mayo":
        flags.append("lln_fallback")
        reasons.append("LLN from the Mayo Clinic Laboratories age table (lab LLN not given)")
    if any(rep):
        flags.append("on_replacement")
    total = observed = 0.0
    for i in range(n - 1):
        span = d[i + 1] - d[i]
        if rep[i]:
            continue  # interval reflects an infusion
        observed += span
        if settings.method == "locf":
            total += span if below[i] else 0.0
        else:
            total += _linear_below(v[i], v[i + 1], lln[i], span)
    recovery = None
    seen_below = False
    for i in range(n):
        seen_below = seen_below or (below[i] and not rep[i])
        if seen_below and not below[i] and not rep[i]:
            recovery = d[i]
            break
    triggers = tuple(
        d[i]
        for i in range(n)
        if not rep[i] and replacement_trigger(v[i], settings=settings).triggered
    )
    episodes = ivig_episodes(doses, settings=settings)
    if triggers:
        reasons.append(
            f"replacement trigger ({settings.trigger_rule}) met on day(s) "
            + ", ".join(map(str, triggers))
        )
    reasons.append(
        f"{total:g} of {observed:g} observed days below the age-specific LLN ({settings.method})"
    )
    if n < 2:
        flags.append("incomplete")
    return IggSummary(
        lln,
        source,
        below,
        rep,
        total,
        observed,
        total / observed if observed else None,
        min(v) if v else None,
        recovery,
        triggers,
        episodes,
        settings.method,
        tuple(reasons),
        tuple(flags),
    )


def _linear_below(a: float, b: float, lln: float, span: float) -> float:
    if a < lln and b < lln:
        return span
    if a >= lln and b >= lln:
        return 0.0
    cross = (lln - a) / (b - a) * span  # time from the first sample to the crossing
    return cross if a < lln else span - cross


def _ints(field: str, values: object) -> tuple[int, ...]:
    if isinstance(values, str) or not isinstance(values, Sequence):
        raise InvalidInput(field, values, "a list of study days")
    return tuple(check_range(field, x, -3650, 36500, "study day", integer=True) for x in values)


def _floats(field: str, values: object, lo: float, hi: float, n: int) -> tuple[float, ...]:
    if isinstance(values, str) or not isinstance(values, Sequence):
        raise InvalidInput(field, values, "a list of numbers")
    if len(values) != n:
        raise InvalidInput(field, f"length {len(values)}", f"the same length as days ({n})")
    return tuple(float(check_range(field, x, lo, hi)) for x in values)
