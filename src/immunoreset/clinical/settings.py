"""Documented choices of the toxicity calculators where the sources are silent or disagree.

Every entry below is a place where the project specification (clinical.md §1.3, §2.3, §3, §4, §10)
marks a rule as UNCONFIRMED or lists a source conflict. Rather than hide the choice in code, the
calculators take a :class:`ToxicitySettings` (keyword ``settings=``) whose defaults are the
specification's recommended handling; pass another instance to reproduce a different reading.

* ``capd_age_rule`` — default ``"below_12"`` (MDedge summary of Lee 2019, "younger than 12":
  ICE from 12.0 years); ``"ncit_12_and_under"`` = NCIt C188936 ("CAPD … for children 12 and
  under": CAPD until the 13th birthday).
* ``hypotension_under_1_year`` — default ``"refuse"``; ``"use_70"`` = SBP < 70 mmHg below
  age 1. Mahadeo 2019 defines ages 1–10 and > 10 only.
* ``icaht_max_gap_days`` — default ``7``: runs of at most this many consecutive missing days
  are linearly interpolated (Liang, ``maxgap = 7``).
* ``icaht_never_recovered`` — default ``True`` (Liang): an ANC ≤ 500/µL episode present on
  day 0–3 without recovery until death or end of follow-up before day 30 is early grade 4
  (never applied to a series that merely ends early while the patient is followed).
* ``late_icaht_single_value`` — default ``"not_gradable"`` (consensus: ≥ 2 time points);
  ``"grade"`` grades a single value as Liang does.
* ``late_icaht_last_day`` — default ``100`` (end of the late window; T-ICAHT used +100).
* ``hematotox_on_cutoff`` — default ``"higher_points"``; ``"lower_points"``: the band of a
  value exactly on a CAR-HEMATOTOX cut-off (published boundary handling UNCONFIRMED).
* ``hypotension_under_1_year="use_70"`` also applies the PALS neonatal threshold: SBP < 60 mmHg
  for neonates (age 0–28 days), < 70 mmHg from day 29 to age 1 (PALS hypotension definition).
* ``fever_masking_agents`` — default :data:`FEVER_MASKING_AGENTS` (the ASTCT *class*,
  "antipyretic or anticytokine therapy": tocilizumab and corticosteroids are named by Lee 2019;
  anakinra, siltuximab, other anti-cytokines and antipyretics are members by class only,
  UNCONFIRMED as explicit). Agents left out do not mask fever.
* ``fever_masking_days`` — default ``None``: masking lasts until the CRS episode ends (ASTCT
  silent; clinical-addendum §7). A number ends masking that many days after the last dose.
* ``count_dobutamine_as_vasopressor`` — default ``False``: dobutamine is an inotrope, not a
  vasopressor, so it never makes a regimen "one" or "multiple" vasopressors.
* ``implausible_counts`` — default ``"refuse"``: a cell count given without a unit that is
  implausible in cells/µL (ANC 1.2) is refused (see :mod:`immunoreset.clinical._counts`);
  ``"allow"`` takes it as cells/µL.

The early-ICAHT counting (``cumulative`` vs Liang's ``longest_joined``) is the explicit
``duration_mode`` argument of the ICAHT functions (:data:`ICAHT_DURATION_MODES`).
"""

from __future__ import annotations

from dataclasses import dataclass

from immunoreset.errors import InvalidInput, check_choice, check_range

__all__ = [
    "ASTCT_NAMED_MASKING_AGENTS",
    "CAPD_AGE_RULES",
    "DEFAULT_SETTINGS",
    "FEVER_MASKING_AGENTS",
    "HEMATOTOX_CUTOFF_RULES",
    "HYPOTENSION_INFANT_RULES",
    "ICAHT_DURATION_MODES",
    "LATE_SINGLE_VALUE_RULES",
    "ToxicitySettings",
]

#: ``below_12``: CAPD while age < 12.0 y; ``ncit_12_and_under``: CAPD while age < 13.0 y.
CAPD_AGE_RULES: dict[str, float] = {"below_12": 12.0, "ncit_12_and_under": 13.0}
HYPOTENSION_INFANT_RULES: tuple[str, ...] = ("refuse", "use_70")
ICAHT_DURATION_MODES: tuple[str, ...] = ("cumulative", "longest_joined")
LATE_SINGLE_VALUE_RULES: tuple[str, ...] = ("not_gradable", "grade")
HEMATOTOX_CUTOFF_RULES: tuple[str, ...] = ("higher_points", "lower_points")
IMPLAUSIBLE_COUNT_RULES: tuple[str, ...] = ("refuse", "allow")
#: Agents that can mask fever (ASTCT "antipyretic or anticytokine therapy"), with their class.
FEVER_MASKING_AGENTS: dict[str, str] = {
    "tocilizumab": "anti-cytokine (IL-6 receptor)",
    "corticosteroid": "corticosteroid",
    "anakinra": "anti-cytokine (IL-1 receptor antagonist)",
    "siltuximab": "anti-cytokine (anti-IL-6)",
    "other_anticytokine": "anti-cytokine (other)",
    "antipyretic": "antipyretic (paracetamol, NSAID, metamizole …)",
}
#: The agents Lee 2019 names as examples; the others mask by class (flag class_based_masking).
ASTCT_NAMED_MASKING_AGENTS: frozenset[str] = frozenset({"tocilizumab", "corticosteroid"})


@dataclass(frozen=True, slots=True)
class ToxicitySettings:
    """The documented choices of the toxicity calculators (see the module table).

    Examples
    --------
    >>> ToxicitySettings(capd_age_rule="ncit_12_and_under").capd_age_cut
    13.0
    """

    capd_age_rule: str = "below_12"
    hypotension_under_1_year: str = "refuse"
    icaht_max_gap_days: int = 7
    icaht_never_recovered: bool = True
    late_icaht_single_value: str = "not_gradable"
    late_icaht_last_day: int = 100
    hematotox_on_cutoff: str = "higher_points"
    fever_masking_agents: tuple[str, ...] = tuple(FEVER_MASKING_AGENTS)
    fever_masking_days: int | None = None
    count_dobutamine_as_vasopressor: bool = False
    implausible_counts: str = "refuse"

    def __post_init__(self) -> None:
        check_choice("capd_age_rule", self.capd_age_rule, CAPD_AGE_RULES)
        check_choice(
            "hypotension_under_1_year", self.hypotension_under_1_year, HYPOTENSION_INFANT_RULES
        )
        check_range("icaht_max_gap_days", self.icaht_max_gap_days, 1, 60, "days", integer=True)
        if not isinstance(self.icaht_never_recovered, bool):
            raise InvalidInput("icaht_never_recovered", self.icaht_never_recovered, "true or false")
        check_choice(
            "late_icaht_single_value", self.late_icaht_single_value, LATE_SINGLE_VALUE_RULES
        )
        check_range("late_icaht_last_day", self.late_icaht_last_day, 31, 3650, "days", integer=True)
        check_choice("hematotox_on_cutoff", self.hematotox_on_cutoff, HEMATOTOX_CUTOFF_RULES)
        agents = self.fever_masking_agents
        if isinstance(agents, str) or not isinstance(agents, tuple | list | frozenset | set):
            raise InvalidInput("fever_masking_agents", agents, "a list of masking agents")
        for agent in agents:
            check_choice("fever_masking_agents", agent, FEVER_MASKING_AGENTS)
        object.__setattr__(self, "fever_masking_agents", tuple(agents))
        check_range(
            "fever_masking_days",
            self.fever_masking_days,
            0,
            60,
            "days",
            integer=True,
            allow_none=True,
        )
        if not isinstance(self.count_dobutamine_as_vasopressor, bool):
            raise InvalidInput(
                "count_dobutamine_as_vasopressor",
                self.count_dobutamine_as_vasopressor,
                "true or false",
            )
        check_choice("implausible_counts", self.implausible_counts, IMPLAUSIBLE_COUNT_RULES)

    @property
    def capd_age_cut(self) -> float:
        """Age (years) from which ICE is used instead of CAPD."""
        return CAPD_AGE_RULES[self.capd_age_rule]


#: The specification's recommended handling of every open item.
DEFAULT_SETTINGS = ToxicitySettings()


def _check_settings(settings: object) -> ToxicitySettings:
    if not isinstance(settings, ToxicitySettings):
        raise InvalidInput("settings", settings, "a ToxicitySettings")
    return settings


def _check_flag(field: str, value: object) -> bool:
    """Return ``value`` as a bool; refuse anything that is not a bool (1, "yes", None …)."""
    import numpy as np

    if not isinstance(value, bool | np.bool_):
        raise InvalidInput(field, value, "true or false")
    return bool(value)
