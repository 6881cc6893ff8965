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
* ``icaht_max_gap_days`` — default ``7``: gaps between measurements of at most this many days
  are linearly interpolated (Liang).
* ``icaht_never_recovered`` — default ``True`` (Liang): an ANC ≤ 500/µL episode present on
  day 0–3 and still ongoing at the last ANC is early grade 4.
* ``late_icaht_single_value`` — default ``"not_gradable"`` (consensus: ≥ 2 time points);
  ``"grade"`` grades a single value as Liang does.
* ``late_icaht_last_day`` — default ``100`` (end of the late window; T-ICAHT used +100).
* ``hematotox_on_cutoff`` — default ``"higher_points"``; ``"lower_points"``: the band of a
  value exactly on a CAR-HEMATOTOX cut-off (published boundary handling UNCONFIRMED).

The early-ICAHT counting (``cumulative`` vs Liang's ``longest_joined``) is the explicit
``duration_mode`` argument of the ICAHT functions (:data:`ICAHT_DURATION_MODES`).
"""

from __future__ import annotations

from dataclasses import dataclass

from immunoreset.errors import InvalidInput, check_choice, check_range

__all__ = [
    "CAPD_AGE_RULES",
    "DEFAULT_SETTINGS",
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
