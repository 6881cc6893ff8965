"""Kinetics and outcome analyses: pure functions over plain arrays (study days, canonical units).

* :mod:`~immunoreset.kinetics.nca` — CAR T NCA (Cmax, Tmax, AUC0–28/0–84, Clast/Tlast,
  persistence, λz) following PKNCA conventions (Denney W, et al. *J Pharmacokinet Pharmacodyn*
  2015;42(1):11–107).
* :mod:`~immunoreset.kinetics.bcells` — B-cell clearance, reconstitution, aplasia duration.
* :mod:`~immunoreset.kinetics.titres` — autoantibody percent change, seroconversion, time off
  immunosuppressants and glucocorticoids.
* :mod:`~immunoreset.kinetics.survival` — Kaplan–Meier time to B-cell reconstitution (median by R
  survfit's convention).

Every analysis has a per-patient form and a cohort form over long-format arrays (one compiled
pass over all patients).
"""

from __future__ import annotations

from immunoreset.kinetics.bcells import (
    BcellResult,
    aplasia_cohort,
    aplasia_duration,
    clearance_day,
    reconstitution_day,
)
from immunoreset.kinetics.nca import (
    NcaResult,
    TerminalSlope,
    compute_nca,
    compute_nca_cohort,
    terminal_slope,
)
from immunoreset.kinetics.survival import KMResult, km_reconstitution
from immunoreset.kinetics.titres import (
    MonthChange,
    Seroconversion,
    TherapyFree,
    TitreChange,
    percent_change_cohort,
    percent_change_from_baseline,
    seroconversion_day,
    time_off_therapy,
)

__all__ = [
    "BcellResult",
    "KMResult",
    "MonthChange",
    "NcaResult",
    "Seroconversion",
    "TerminalSlope",
    "TherapyFree",
    "TitreChange",
    "aplasia_cohort",
    "aplasia_duration",
    "clearance_day",
    "compute_nca",
    "compute_nca_cohort",
    "km_reconstitution",
    "percent_change_cohort",
    "percent_change_from_baseline",
    "reconstitution_day",
    "seroconversion_day",
    "terminal_slope",
    "time_off_therapy",
]
