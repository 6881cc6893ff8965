"""Shared figures of the SYNTHETIC demo and the per-patient plan the course builder follows.

Constants (follow-up, LLOQs, reference limits), lymphodepletion regimens and sites, body size,
diagnoses, medications, disease-score trajectories, lab schedules and :class:`_Plan`; the
shaping figures and their sources are listed in :mod:`immunoreset.demo`.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from immunoreset.clinical.cmas import CMAS_ITEMS
from immunoreset.clinical.mmt8 import MMT8_GROUPS
from immunoreset.clinical.mrss import MRSS_SITES
from immunoreset.errors import check_range

# --------------------------------------------------------------------------- constants
#: Days per month used for every month ↔ day conversion (365.25 / 12).
DAYS_PER_MONTH = 30.4375
#: Data cut-off of the published cohort: every follow-up ends on this date.
DATA_CUTOFF = dt.date(2025, 10, 31)
#: Per-patient follow-up of the published cohort (months); median 16.5, range 9–24 (§1.2).
PUBLISHED_FOLLOWUP_MONTHS: tuple[int, ...] = (24, 17, 19, 16, 12, 22, 14, 9)
#: Lower limits of quantification of the demo CAR T assays.
CAR_T_FLOW_LLOQ = 0.1  # cells/µL
CAR_T_QPCR_LLOQ = 50.0  # copies/µg DNA
#: Demo reference limits used to derive SLEDAI-2K serologic items (assay-specific, UNCONFIRMED).
ANTI_DSDNA_ULN = 10.0  # IU/mL
C3_LLN = 90.0  # mg/dL
C4_LLN = 10.0  # mg/dL
_MAX_INDEX = 999_999  # study IDs carry at most 6 digits


def month_day(month: float) -> int:
    """Study day of follow-up month ``month``: ``round(month × 30.4375)``, halves rounded up.

    Examples
    --------
    >>> month_day(9), month_day(16.5), month_day(24)
    (274, 502, 731)
    """
    check_range("month", month, 0, 1200, "months")
    return int(month * DAYS_PER_MONTH + 0.5)


# --------------------------------------------------------------------------- lymphodepletion
@dataclass(frozen=True, slots=True)
class LymphodepletionRegimen:
    """A lymphodepletion regimen as data: ``(drug, mg/m² per day, study days)`` per agent.

    ``confirmed`` says whether a primary source confirms the dose totals; ``note`` says which
    part is UNCONFIRMED.
    """

    name: str
    doses: tuple[tuple[str, float, tuple[int, ...]], ...]
    source: str
    confirmed: bool
    note: str


REGIMENS: Mapping[str, LymphodepletionRegimen] = {
    "opbg_nicolai_2024": LymphodepletionRegimen(
        name="opbg_nicolai_2024",
        doses=(("fludarabine", 30.0, (-5, -4, -3)), ("cyclophosphamide", 500.0, (-4, -3))),
        source="Nicolai R, et al. Arthritis Rheumatol 2024;76(10):1560–1565 (clinical.md §11.1)",
        confirmed=True,
        note="totals Flu 90 + Cy 1000 mg/m² confirmed; per-day split and days UNCONFIRMED",
    ),
    "erlangen_reported": LymphodepletionRegimen(
        name="erlangen_reported",
        doses=(("fludarabine", 25.0, (-5, -4, -3)), ("cyclophosphamide", 1000.0, (-3,))),
        source="Mackensen A, et al. Nat Med 2022; Müller F, et al. N Engl J Med 2024 "
        "(clinical.md §11.1)",
        confirmed=False,
        note="commonly reported Erlangen regimen; doses and days UNCONFIRMED",
    ),
}

#: Large-cohort sites: (site, study-ID prefix, default regimen).
SITES: tuple[tuple[str, str, str], ...] = (
    ("ROME", "RM", "opbg_nicolai_2024"),
    ("ERLANGEN", "ER", "erlangen_reported"),
    ("MILAN", "MI", "opbg_nicolai_2024"),
    ("BARCELONA", "BCN", "opbg_nicolai_2024"),
    ("PARIS", "PA", "opbg_nicolai_2024"),
    ("LONDON", "LDN", "opbg_nicolai_2024"),
    ("TUBINGEN", "TU", "erlangen_reported"),
    ("HEIDELBERG", "HD", "erlangen_reported"),
    ("AMSTERDAM", "AMS", "opbg_nicolai_2024"),
    ("VIENNA", "VIE", "erlangen_reported"),
    ("MUNICH", "MUC", "erlangen_reported"),
    ("COLOGNE", "CGN", "erlangen_reported"),
)
#: Display names of the SYNTHETIC sites (the two published ones are the real treating centres).
SITE_NAMES: Mapping[str, str] = {
    "ROME": "Ospedale Pediatrico Bambino Gesù, Rome",
    "ERLANGEN": "Universitätsklinikum Erlangen",
    **{site: f"Synthetic site {site.title()}" for site, _, _ in SITES[2:]},
}
#: Default regimen of each site (override with ``site_regimens=``).
SITE_REGIMENS: Mapping[str, str] = {site: regimen for site, _, regimen in SITES}

# --------------------------------------------------------------------------- body size
# CDC 2000 weight-for-age P50 (model-physiology.md §1.1): ages 5, 10, 15, 18 (boys) and 5, 10,
# 15 (girls) from the spec; 3 y, girls' 18 y, 20 y and adult (25 y) anchors are demo
# approximations (not in the spec). Heights are demo approximations of CDC stature P50.
_AGE_ANCHORS = np.array([3.0, 5.0, 10.0, 15.0, 18.0, 20.0, 25.0])
_WEIGHT_P50: Mapping[str, np.ndarray] = {
    "M": np.array([14.3, 18.49, 32.09, 56.49, 67.29, 72.0, 78.0]),
    "F": np.array([13.9, 18.02, 33.06, 52.14, 56.6, 58.5, 65.0]),
}
_HEIGHT_P50: Mapping[str, np.ndarray] = {
    "M": np.array([96.0, 110.0, 138.0, 170.0, 176.0, 177.0, 177.0]),
    "F": np.array([95.0, 108.0, 138.0, 162.0, 163.5, 164.0, 164.0]),
}
# Baseline CD19 B cells (cells/µL) by age band: (upper age, typical, reference low, high)
# (model-physiology.md §2.1 LHSC reference ranges; typical values §11; adults: SLE, §2.2).
_B0_BY_AGE = (
    (6.0, 600.0, 390.0, 1400.0),
    (12.0, 500.0, 270.0, 860.0),
    (18.0, 350.0, 110.0, 570.0),
    (200.0, 200.0, 67.0, 597.0),
)


def _b0_for_age(age: float, z: float) -> float:
    """Typical baseline × log-normal 20 % (``z`` standard normal), kept in the band."""
    _, typical, lo, hi = next(row for row in _B0_BY_AGE if age < row[0])
    return min(max(typical * math.exp(0.2 * z), lo), hi)


# --------------------------------------------------------------------------- diagnoses
_ICD10: Mapping[str, tuple[str, ...]] = {
    "SLE": ("M32.10", "M32.14", "M32.19"),
    "JDM": ("M33.01", "M33.02", "M33.09"),
    "DM": ("M33.10", "M33.11", "M33.19"),
    "ASyS": ("M35.8",),
    "SSc": ("M34.0", "M34.81"),
}
_FEMALE_FRACTION: Mapping[str, float] = {
    "SLE": 0.9,
    "JDM": 0.65,
    "DM": 0.65,
    "ASyS": 0.7,
    "SSc": 0.8,
}
_DX_CHILD = (("SLE", 0.5), ("JDM", 0.38), ("SSc", 0.12))
_DX_ADULT = (("SLE", 0.5), ("SSc", 0.25), ("DM", 0.1), ("ASyS", 0.15))
#: Disease-specific labs besides IgG/C3/C4/IL-6.
_DX_LABS: Mapping[str, tuple[str, ...]] = {
    "SLE": ("anti_dsdna",),
    "JDM": ("ck",),
    "DM": ("ck",),
    "ASyS": ("ck", "anti_jo1"),
    "SSc": ("anti_scl70",),
}
# Autoantibody/enzyme course: analyte -> (baseline lo, hi, t½ or τ days, residual lo, hi
# (complete response), residual lo, hi (partial), normal floor lo, hi).
_TITRES: Mapping[str, tuple[float, float, float, float, float, float, float, float, float]] = {
    "anti_dsdna": (80, 400, 21, 0.0, 0.02, 0.2, 0.5, 0.0, 0.0),
    "anti_scl70": (150, 400, 30, 0.05, 0.15, 0.2, 0.5, 0.0, 0.0),
    "anti_jo1": (80, 300, 21, 0.0, 0.03, 0.2, 0.5, 0.0, 0.0),
    "ck": (250, 2500, 14 * math.log(2), 0.0, 0.0, 0.1, 0.3, 60, 150),
}

# Medication templates: (drug, class, dose lo, hi, unit, stop anchor) — anchor "apheresis" =
# stopped 7–21 days before apheresis, "lymphodepletion" = stopped 1–3 days before day −5.
_MEDS: Mapping[str, tuple[tuple[str, str, float, float, str, str], ...]] = {
    "SLE": (
        ("prednisone", "glucocorticoid", 5, 20, "mg/day", "lymphodepletion"),
        ("mycophenolate mofetil", "immunosuppressant", 1000, 2000, "mg/day", "apheresis"),
        ("hydroxychloroquine", "antimalarial", 200, 400, "mg/day", "apheresis"),
    ),
    "JDM": (
        ("prednisone", "glucocorticoid", 5, 20, "mg/day", "lymphodepletion"),
        ("methotrexate", "immunosuppressant", 10, 20, "mg/week", "apheresis"),
        ("intravenous immunoglobulin", "ivig", 1, 2, "g/kg", "apheresis"),
    ),
    "DM": (
        ("prednisone", "glucocorticoid", 5, 20, "mg/day", "lymphodepletion"),
        ("methotrexate", "immunosuppressant", 15, 25, "mg/week", "apheresis"),
    ),
    "ASyS": (
        ("prednisone", "glucocorticoid", 5, 20, "mg/day", "lymphodepletion"),
        ("tacrolimus", "immunosuppressant", 2, 6, "mg/day", "apheresis"),
    ),
    "SSc": (
        ("mycophenolate mofetil", "immunosuppressant", 1000, 2000, "mg/day", "apheresis"),
        ("prednisone", "glucocorticoid", 2.5, 7.5, "mg/day", "lymphodepletion"),
    ),
}
# Dose rounding: (below this dose, round to this step).
_DOSE_STEPS = ((3.0, 0.5), (30.0, 2.5), (math.inf, 100.0))
_RESTART: Mapping[str, tuple[str, str, float, str]] = {
    "SLE": ("hydroxychloroquine", "antimalarial", 200, "mg/day"),
    "JDM": ("methotrexate", "immunosuppressant", 15, "mg/week"),
    "DM": ("methotrexate", "immunosuppressant", 15, "mg/week"),
    "ASyS": ("prednisone", "glucocorticoid", 5, "mg/day"),
    "SSc": ("mycophenolate mofetil", "immunosuppressant", 1000, "mg/day"),
}

# Continuous instruments per diagnosis: (instrument, baseline lo, hi, complete target lo, hi,
# partial target lo, hi, step). Items-based totals (CMAS, MMT8, mRSS) get items below.
_Traj = tuple[str, float, float, float, float, float, float, float]
_INSTRUMENTS: Mapping[str, tuple[_Traj, ...]] = {
    "SLE": (("sle_pga", 1.5, 2.5, 0.0, 0.3, 0.8, 1.5, 0.1),),
    "JDM": (
        ("cmas", 15, 35, 45, 52, 35, 44, 1),
        ("mmt8", 50, 65, 75, 80, 66, 74, 1),
        ("md_global", 5, 8, 0, 1, 2, 4, 0.1),
        ("patient_global", 5, 8, 0, 2, 2, 5, 0.1),
        ("chaq", 1.0, 2.0, 0, 0.25, 0.5, 1.0, 0.125),
        ("extramuscular", 3, 6, 0, 1, 1, 3, 0.1),
    ),
    "DM": (
        ("mmt8", 50, 65, 74, 80, 64, 73, 1),
        ("md_global", 5, 8, 0, 1.5, 2, 4, 0.1),
        ("patient_global", 5, 8, 0, 2, 2, 5, 0.1),
        ("haq_di", 1.0, 2.0, 0, 0.5, 0.75, 1.25, 0.125),
        ("extramuscular", 3, 6, 0, 1, 1, 3, 0.1),
    ),
    "ASyS": (
        ("mmt8", 55, 68, 74, 80, 66, 73, 1),
        ("md_global", 5, 8, 0, 1.5, 2, 4, 0.1),
        ("patient_global", 5, 8, 0, 2, 2, 5, 0.1),
        ("haq_di", 1.0, 2.0, 0, 0.5, 0.75, 1.25, 0.125),
        ("extramuscular", 3, 6, 0, 1, 1, 3, 0.1),
        ("fvc_percent", 55, 70, 70, 90, 58, 72, 0.1),
    ),
    "SSc": (
        ("mrss", 20, 30, 10, 14, 15, 20, 1),
        ("md_global", 5, 7, 2, 4, 3, 5, 0.1),
        ("patient_global", 5, 7, 2, 4, 3, 6, 0.1),
        ("haq_di", 1.0, 1.8, 0.5, 1.0, 0.9, 1.4, 0.125),
        ("fvc_percent", 60, 75, 70, 85, 62, 75, 0.1),
    ),
}
_ITEM_MAXIMA: Mapping[str, tuple[tuple[str, int], ...]] = {
    "cmas": tuple((name, top) for _, name, top in CMAS_ITEMS),
    "mmt8": tuple((g, 10) for g in MMT8_GROUPS),
    "mrss": tuple((s, 3) for s in MRSS_SITES),
}
# SLEDAI-2K clinical descriptors the generator may place at baseline (lab-defined ones such as
# leukopenia are left out: the demo has no WBC series).
_SLEDAI_POOL = (
    "arthritis",
    "rash",
    "proteinuria",
    "alopecia",
    "mucosal_ulcers",
    "hematuria",
    "pleurisy",
    "urinary_casts",
)
_DISEASE_MONTHS = (1, 3, 6, 9, 12, 18, 24, 30, 36)

# --------------------------------------------------------------------------- lab schedules
_ANC_EARLY = tuple(range(-7, 31))
_CBC_EARLY = (-7, -5, -3, -1, 0, 1, 3, 5, 7, 9, 11, 14, 17, 21, 24, 28)
_INFLAM_EARLY = (-7, -3, *range(0, 11), 12, 14, 17, 21, 24, 28)
_IL6_EARLY = (-7, 1, 3, 5, 7)
_CD19_EARLY = (-7, 0, 1, 2, 3, 5, 7, 10, 14, 21, 28)
_CART_EARLY = (1, 3, 5, 7, 9, 10, 14, 21, 28)
_WEEKLY = tuple(range(35, 99, 7))
_LATE_WINDOW = (31, 100)


# --------------------------------------------------------------------------- the plan
@dataclass(slots=True)
class _Plan:
    """Every decision about one patient; the builder turns it into records."""

    study_id: str
    site: str
    sex: str
    diagnosis: str
    icd10: str
    age: float
    day0: dt.date
    followup_months: int
    years_since_dx: float
    prior_lines: int
    regimen: LymphodepletionRegimen
    manufacturing: str = "pass"
    crs_grade: int = 0
    crs_onset: int = 1
    crs_days: int = 1
    icans_grade: int = 0
    icans_onset: int = 4
    icans_days: int = 1
    early_icaht: int = 0
    late_icaht: int = 0
    cmax: float = 30.0
    tmax: int = 7
    exact_peak: bool = False
    b_return_day: float = 110.0
    response: str = "complete"
    restart: bool = False
    status: str = "alive"
    infections: tuple[tuple[int, int, str], ...] = ()
    operator: str = "OP-1"
    anc_nadir: float = 900.0
    peak_range: tuple[float, float] = (0.5, 1000.0)


def _choice(rng: np.random.Generator, table: tuple[tuple[Any, float], ...]) -> Any:
    u = rng.random()
    acc = 0.0
    for value, p in table:
        acc += p
        if u < acc:
            return value
    return table[-1][0]
