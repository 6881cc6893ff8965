"""SYNTHETIC demonstration cohorts of CD19 CAR T courses in autoimmune disease.

Everything this module makes is **SYNTHETIC**: invented patients whose records are shaped on
published cohort-level figures. Every :class:`~immunoreset.course.Patient` it builds carries
``synthetic=True`` and reports must label it so. No record describes a real person.

Two generators share one course builder:

* :func:`published_cohort` — the 8 children of the Becilli, Metzler, Bracaglia et al. series
  (Locatelli senior author; *Nature Medicine* per press coverage, 2026; peer-data.md §1).
* :func:`synthetic_cohort` — any number of courses for tests and benchmarks (10,000 patients),
  patient ``k`` depending only on ``(seed, k)`` (``numpy.random.default_rng([seed, k])``).

Shaping figures and where each comes from
-----------------------------------------
Cohort (published, peer-data.md §1.2–1.4)
    8 children aged 5–17 at infusion, 7 F / 1 M (press, §1.3); 4 SLE, 3 (juvenile)
    dermatomyositis, 1 systemic sclerosis (abstract, §1.2); 5 at Ospedale Pediatrico Bambino
    Gesù (site ``ROME``, RM-001…RM-005) and 3 at University Hospital Erlangen (``ERLANGEN``,
    ER-001…ER-003) (§1.3). The boy is a 12-year-old with JDM at ROME, like Nicolai et al.,
    *Arthritis Rheumatol* 2024;76(10):1560–1565 (§2.4); ER-001 is a 15-year-old girl with lupus
    nephritis, like Krickau et al., *Lancet* 2024;403:1627–1630 (§2.3). Follow-up to last
    contact 9, 12, 14, 16, 17, 19, 22, 24 months (months = days / 30.4375), median 16.5, range
    9–24 (abstract, §1.2), ending at :data:`DATA_CUTOFF`; all alive. Individual ages, sexes per
    diagnosis, weights and all per-patient values are UNCONFIRMED (§1.4) and invented here.
Dose and product
    One infusion of 1 × 10^6 CAR+ T cells/kg (± 5 %) on day 0 (§1.2), one bag of 3–5 made on
    the CliniMACS Prodigy (Krickau 2024, Nicolai 2024; peer-data §4.4); apheresis ≈ day −35,
    process start the next day, harvest 12 days later (12-day point-of-care process, peer-data
    §4.1); total yield 5–40 × the dose; expiry harvest + 1 year (demo choice). Release values
    (:class:`BatchQC`) against the analog limits of peer-data §4.1 (Front Immunol 2024,
    PMC11461191, Table 1); zorpo-cel's own specification is UNCONFIRMED.
Lymphodepletion (clinical.md §11.1; :data:`REGIMENS`, chosen per site by :data:`SITE_REGIMENS`)
    ROME: fludarabine 30 mg/m²/day on days −5, −4, −3 and cyclophosphamide 500 mg/m²/day on
    days −4, −3 (Nicolai 2024 totals Flu 90 + Cy 1000 mg/m²; the per-day split and the days are
    UNCONFIRMED). ERLANGEN: fludarabine 25 mg/m² on days −5…−3 + cyclophosphamide 1000 mg/m²
    on day −3, the commonly reported Erlangen regimen, **UNCONFIRMED** (``confirmed=False``);
    pass ``site_regimens=`` to use another.
Toxicity of the published cohort (abstract, peer-data §1.2; grading clinical.md §1–3)
    CRS grade 1 in exactly 6 (fever 38.0–39.2 °C on 1–3 consecutive days starting on day 1–6;
    no hypotension, room air; no tocilizumab); the other 2 never above 37.5 °C. ICANS grade 1
    in exactly 1 (RM-004, 16 y: ICE 8 on 1–2 days starting on day 4–7, awake); everybody else
    ICE 10 (age ≥ 12) or CAPD 0 (age < 12) every day. **Early ICAHT: none** — the ANC nadir
    after lymphodepletion is 600–1300 cells/µL (day 5–9) in all 8, never ≤ 500 (the abstract
    reports no early hematotoxicity; this is a demo choice). **Late ICAHT grade 1 in exactly 2**
    (RM-002, ER-001): 2–3 consecutive ANC values in 1050–1480 cells/µL between day 31 and 100,
    none ≤ 1000; all other ANC values in that window ≥ 1600. No severe infections (§1.2): one
    grade 1 upper respiratory and one grade 2 urinary tract infection.
CAR T kinetics (model-physiology.md §1.3, §7, §11)
    Flow (cells/µL, LLOQ :data:`CAR_T_FLOW_LLOQ`): log-linear rise from ≈ 0.3–1 on day 1 to a
    peak of 12–60 on day 7, 9 or 10 (Nicolai 32.69 cells/µL at day 7 — RM-001 has exactly
    that), then bi-exponential contraction: 97 % with t½ 4.3 d (Stein 2019) and 3 % with a slow
    t½ of 30–60 d (autoimmune persistence shorter than oncology's, Müller 2025; value
    UNCONFIRMED). qPCR (copies/µg DNA, LLOQ :data:`CAR_T_QPCR_LLOQ`) = flow × 150–300
    copies per cell/µL with a 90-day slow phase. Below the LLOQ a result is stored as
    ``value = lloq, below_lloq=True``.
B cells (model-physiology.md §2.1, §2.5, §11)
    Baseline by age (LHSC reference): < 6 y 600, 6–12 y 500, 12–18 y 350, adults 200 cells/µL
    (× log-normal 20 %, kept within the reference band); halved by lymphodepletion at day 0,
    then cleared at 1.2–1.8 /day (Nicolai: depleted by day 5), exactly 0.0 from day 7 while
    aplastic; naive recovery from
    day 80–115 (published) or ~ N(110, 35) d (Mackensen 110 ± 32 d; Müller 112 ± 47 d) towards
    1.0–1.6 × baseline with τ 45 d, so the first value ≥ 10/µL falls at 3–5 months.
Autoantibodies, complement, IgG (model-physiology.md §5, §6, §10)
    anti-dsDNA 80–400 IU/mL falling with t½ 21 d to a residual 0–2 % (≥ 90 % fall by month 3,
    below :data:`ANTI_DSDNA_ULN` by month 6); anti-Scl-70 150–400 U/mL to a residual 5–15 %
    (t½ 30 d); CK 250–2500 U/L normalising with τ 14 d; C3 45–80 → 100–140 mg/dL and C4 3–8 →
    15–30 mg/dL (τ 25 d) in SLE; IgG dipping 15–30 % around month 2 (Walti/Hill −17.5 %,
    oncology). Partial responders (large cohort only, 15 %) keep 20–50 % of their titre.
Disease activity (clinical.md §6–9; peer-data §2.1–2.2; model-physiology §10)
    SLE: SLEDAI-2K items (all 24 descriptors, 1 = present) with baseline 8–20, serologic items
    derived from the same day's C3/C4/anti-dsDNA, clinical items gone by month 3 (score 0 by
    month 3–6); SLE PGA 1.5–2.5 → ≤ 0.3. JDM: CMAS 15–35 → 45–52 (14 items), MMT8 50–65 →
    75–80 (8 groups), physician / patient global, CHAQ, extramuscular. SSc: mRSS 20–30 → 10–15
    (17 sites; improving, not remission, press §1.3), globals, HAQ-DI, FVC %. Scores equal the
    item sums. Visits: day −7 and months 1, 3, 6, 9, 12, 18, 24 within follow-up.
Adverse events (as an investigator would record them)
    "cytokine release syndrome" (category crs) and "immune effector cell-associated
    neurotoxicity syndrome" (icans) with the ASTCT grade; hematotoxicity as "immune effector
    cell-associated hematotoxicity, late" (or ", early"; category hematologic) with the
    EHA/EBMT ICAHT grade — not as CTCAE "neutrophil count decreased", whose grade for an ANC of
    1000–1499 is 2 (clinical.md §5), so it would not read "grade 1" as the abstract does.
Body size (model-physiology.md §1.1)
    Weight = CDC 2000 P50 for age and sex × 0.85–1.15 (anchors at 5/10/15/18 y from the spec;
    the 3-year, girls' 18-year and adult anchors and all heights are demo approximations,
    not from the spec), linearly interpolated.
Large cohort (:func:`synthetic_cohort`; rates are demo choices, UNCONFIRMED as epidemiology)
    Age 3–70 (25 % children), 12 sites (:data:`SITES`), SLE/JDM/SSc in children and
    SLE/SSc/DM/ASyS in adults; CRS G0/1/2/3 29/60/10/1 %; ICANS G1 5 %, G2 1 %; early ICAHT
    G1/2/3 17/6/2 %; late ICAHT G1/2 14/4 %; manufacturing 92 % pass, 5 % released with a
    documented deviation, 3 % failed (two thirds re-collected and made again, one third never
    infused — no infusion, daily data or labs); 10 % restart an immunosuppressant at 6–12
    months; follow-up 3–36 months; 0.3 infections per patient (3 % of them grade 3).

Records
    Lab results and disease assessments are built through a fast path: each series is checked
    in bulk with :class:`~immunoreset.course.LabResult`'s rules (canonical unit, 0 ≤ value ≤
    the analyte maximum) and each score against its instrument range, and the per-record
    constructor checks are skipped (5× faster; the tests rebuild every record through its
    validating constructor). All other records go through their constructors.

Lab schedule (study days; canonical units of :data:`immunoreset.vocab.ANALYTES`)
    ANC daily −7…+30; platelets, hemoglobin, lymphocytes on −7, −5, −3, −1, 0, 1, 3, 5, 7, 9,
    11, 14, 17, 21, 24, 28; CRP and ferritin on −7, −3, 0…10, 12, 14, 17, 21, 24, 28; IL-6 on
    −7, 1, 3, 5, 7; CD19 on −7, 0, 1, 2, 3, 5, 7, 10, 14, 21, 28; CAR T (flow and qPCR) on 1, 3, 5,
    7, 9, 10, 14, 21, 28; blood count weekly on days 35–98; then monthly (month m = day
    round(30.4375 m)): blood count, CRP, CD19, CAR T from month 2; IgG, C3, C4, IL-6 and the
    disease autoantibody/CK from month 1 (and at day −7) to the end of follow-up.

Examples
--------
>>> cohort = published_cohort()
>>> len(cohort), sum(c.patient.sex == "F" for c in cohort)
(8, 7)
>>> all(c.patient.synthetic for c in cohort)
True
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from immunoreset import vocab
from immunoreset.clinical.cmas import CMAS_ITEMS
from immunoreset.clinical.mmt8 import MMT8_GROUPS
from immunoreset.clinical.mrss import MRSS_SITES
from immunoreset.clinical.sledai import SLEDAI2K_WEIGHTS
from immunoreset.course import (
    AdverseEvent,
    Anthropometric,
    Apheresis,
    Bag,
    Batch,
    Course,
    DailyAssessment,
    DiseaseAssessment,
    FollowUp,
    Infusion,
    LabResult,
    Lymphodepletion,
    Medication,
    Patient,
)
from immunoreset.errors import InvalidInput, check_range

__all__ = [
    "ANTI_DSDNA_ULN",
    "C3_LLN",
    "C4_LLN",
    "CAR_T_FLOW_LLOQ",
    "CAR_T_QPCR_LLOQ",
    "DATA_CUTOFF",
    "DAYS_PER_MONTH",
    "PUBLISHED_FOLLOWUP_MONTHS",
    "QC_LIMITS",
    "REGIMENS",
    "SITES",
    "SITE_REGIMENS",
    "BatchQC",
    "LymphodepletionRegimen",
    "month_day",
    "published_cohort",
    "published_cohort_with_qc",
    "synthetic_cohort",
    "synthetic_cohort_with_qc",
    "synthetic_course",
]

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

# --------------------------------------------------------------------------- manufacturing QC
#: Analog release limits (peer-data §4.1, Front Immunol 2024, PMC11461191 Table 1):
#: attribute -> (comparison, limit). Sterility and mycoplasma must read "negative".
QC_LIMITS: Mapping[str, tuple[str, float]] = {
    "viability_percent": (">=", 80.0),
    "cd3_percent": (">=", 80.0),
    "car_percent": (">=", 10.0),
    "vcn_copies_per_transduced_cell": ("<", 5.0),
    "endotoxin_eu_ml": ("<", 5.0),
    "dose_deviation_percent": ("<=", 20.0),
}
_QC_PASSES: Mapping[str, Callable[[float, float], bool]] = {
    ">=": lambda v, lim: v >= lim,
    "<": lambda v, lim: v < lim,
    "<=": lambda v, lim: v <= lim,
}


@dataclass(frozen=True, slots=True)
class BatchQC:
    """Synthetic release-test results of one batch.

    Attributes
    ----------
    batch_id : str
        The batch (see :class:`~immunoreset.course.Batch`).
    outcome : str
        ``"pass"``, ``"deviation"`` (released with a documented deviation) or ``"failed"``.
    results : Mapping[str, float | str]
        Attribute -> value (:data:`QC_LIMITS` plus ``sterility`` and ``mycoplasma``).
    out_of_spec : tuple[str, ...]
        Attributes outside their limit.
    reasons : tuple[str, ...]
        One line per out-of-spec attribute (and the deviation or failure decision).
    """

    batch_id: str
    outcome: str
    results: Mapping[str, float | str] = field(default_factory=dict)
    out_of_spec: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()


# Out-of-spec value generators: attribute -> (low, high) drawn uniformly.
_DEVIATION_VALUES: Mapping[str, tuple[float, float]] = {
    "viability_percent": (72.0, 79.5),
    "cd3_percent": (70.0, 79.5),
    "car_percent": (6.0, 9.5),
    "vcn_copies_per_transduced_cell": (5.1, 6.5),
}
_FAILURE_VALUES: Mapping[str, tuple[float, float] | str] = {
    "car_percent": (1.0, 4.0),
    "viability_percent": (40.0, 65.0),
    "endotoxin_eu_ml": (6.0, 20.0),
    "sterility": "positive",
}


def _qc(batch_id: str, outcome: str, dose_deviation: float, rng: np.random.Generator) -> BatchQC:
    u = rng.random(6)
    results: dict[str, float | str] = {
        "viability_percent": round(85 + 12 * u[0], 1),
        "cd3_percent": round(88 + 11 * u[1], 1),
        "car_percent": round(20 + 35 * u[2], 1),
        "vcn_copies_per_transduced_cell": round(1.2 + 2.3 * u[3], 2),
        "endotoxin_eu_ml": round(0.1 + 0.9 * u[4], 2),
        "dose_deviation_percent": round(abs(dose_deviation) * 100, 1),
        "sterility": "negative",
        "mycoplasma": "negative",
    }
    pool: Mapping[str, Any] = {"deviation": _DEVIATION_VALUES, "failed": _FAILURE_VALUES}.get(
        outcome, {}
    )
    if pool:
        names = sorted(pool)
        name = names[int(u[5] * len(names))]
        spec = pool[name]
        results[name] = spec if isinstance(spec, str) else round(float(rng.uniform(*spec)), 2)
    out = []
    for name, value in results.items():
        if name in QC_LIMITS:
            op, limit = QC_LIMITS[name]
            if not _QC_PASSES[op](float(value), limit):
                out.append(f"{name} {value} not {op} {limit:g}")
        elif value != "negative":
            out.append(f"{name} {value}")
    decision = {
        "pass": "released: all attributes within specification",
        "deviation": "released with a documented deviation (SYNTHETIC)",
        "failed": "not released: failed specification (SYNTHETIC)",
    }[outcome]
    return BatchQC(
        batch_id=batch_id,
        outcome=outcome,
        results=results,
        out_of_spec=tuple(o.split(" ")[0] for o in out),
        reasons=(*out, decision),
    )


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


# --------------------------------------------------------------------------- published plans
# (study_id, site, sex, diagnosis, ICD-10, age, follow-up months, CRS, ICANS, late ICAHT,
#  years since diagnosis, prior lines)
_PUBLISHED: tuple[tuple[str, str, str, str, str, float, int, int, int, int, float, int], ...] = (
    ("RM-001", "ROME", "M", "JDM", "M33.02", 12.4, 24, 1, 0, 0, 4.5, 8),
    ("RM-002", "ROME", "F", "SLE", "M32.14", 14.1, 17, 1, 0, 1, 3.2, 6),
    ("RM-003", "ROME", "F", "JDM", "M33.09", 9.3, 19, 1, 0, 0, 3.0, 5),
    ("RM-004", "ROME", "F", "SLE", "M32.19", 16.2, 16, 1, 1, 0, 5.1, 7),
    ("RM-005", "ROME", "F", "SSc", "M34.81", 17.5, 12, 0, 0, 0, 5.8, 4),
    ("ER-001", "ERLANGEN", "F", "SLE", "M32.14", 15.3, 22, 1, 0, 1, 2.1, 6),
    ("ER-002", "ERLANGEN", "F", "SLE", "M32.10", 11.2, 14, 1, 0, 0, 2.8, 5),
    ("ER-003", "ERLANGEN", "F", "JDM", "M33.01", 5.7, 9, 0, 0, 0, 2.2, 3),
)
_PUBLISHED_INFECTIONS: Mapping[str, tuple[tuple[int, int, str], ...]] = {
    "RM-003": ((140, 1, "upper respiratory tract infection"),),
    "ER-002": ((200, 2, "urinary tract infection"),),
}


def _published_plan(
    row: tuple[str, str, str, str, str, float, int, int, int, int, float, int],
    rng: np.random.Generator,
    regimens: Mapping[str, str],
) -> _Plan:
    sid, site, sex, dx, icd, age, months, crs, icans, late, ydx, lines = row
    day0 = DATA_CUTOFF - dt.timedelta(days=month_day(months))
    return _Plan(
        study_id=sid,
        site=site,
        sex=sex,
        diagnosis=dx,
        icd10=icd,
        age=age,
        day0=day0,
        followup_months=months,
        years_since_dx=ydx,
        prior_lines=lines,
        regimen=REGIMENS[regimens[site]],
        crs_grade=crs,
        crs_onset=int(rng.integers(1, 7)),
        crs_days=int(rng.integers(1, 4)),
        icans_grade=icans,
        icans_onset=int(rng.integers(4, 8)),
        icans_days=int(rng.integers(1, 3)),
        late_icaht=late,
        cmax=32.69 if sid == "RM-001" else float(rng.uniform(12, 60)),
        tmax=7 if sid == "RM-001" else int(rng.choice((7, 9, 10))),
        exact_peak=sid == "RM-001",
        b_return_day=float(rng.uniform(80, 115)),
        infections=_PUBLISHED_INFECTIONS.get(sid, ()),
        operator=f"OP-{site[:2]}{int(rng.integers(1, 5))}",
        anc_nadir=float(rng.uniform(600, 1300)),
        peak_range=(10.0, 60.0),
    )


def _synthetic_plan(k: int, rng: np.random.Generator) -> _Plan:
    site, prefix, regimen = SITES[int(rng.integers(0, len(SITES)))]
    child = rng.random() < 0.25
    age = float(rng.uniform(3, 18) if child else rng.uniform(18, 70))
    dx = _choice(rng, _DX_CHILD if child else _DX_ADULT)
    sex = "F" if rng.random() < _FEMALE_FRACTION[dx] else "M"
    codes = _ICD10[dx]
    months = int(rng.integers(3, 37))
    day0 = DATA_CUTOFF - dt.timedelta(days=month_day(months) + int(rng.integers(0, 3 * 365)))
    manufacturing = _choice(
        rng,
        (("pass", 0.92), ("deviation", 0.05), ("failed_retry", 0.02), ("failed_stop", 0.01)),
    )
    partial = rng.random() < 0.15
    n_inf = int(rng.poisson(0.3))
    infections = tuple(
        (
            int(rng.integers(31, month_day(months) + 1)),
            _choice(rng, ((1, 0.77), (2, 0.20), (3, 0.03))),
            str(
                rng.choice(
                    (
                        "upper respiratory tract infection",
                        "urinary tract infection",
                        "herpes zoster",
                        "gastroenteritis",
                        "lung infection",
                    )
                )
            ),
        )
        for _ in range(n_inf)
    )
    return _Plan(
        study_id=f"{prefix}-{k:06d}",
        site=site,
        sex=sex,
        diagnosis=dx,
        icd10=codes[int(rng.integers(0, len(codes)))],
        age=age,
        day0=day0,
        followup_months=months,
        years_since_dx=float(min(rng.uniform(2, 6), age - 1.0)),
        prior_lines=int(rng.integers(3, 9)),
        regimen=REGIMENS[regimen],
        manufacturing=manufacturing,
        crs_grade=_choice(rng, ((0, 0.29), (1, 0.60), (2, 0.10), (3, 0.01))),
        crs_onset=int(rng.integers(1, 7)),
        crs_days=int(rng.integers(1, 5)),
        icans_grade=_choice(rng, ((0, 0.94), (1, 0.05), (2, 0.01))),
        icans_onset=int(rng.integers(3, 9)),
        icans_days=int(rng.integers(1, 4)),
        early_icaht=_choice(rng, ((0, 0.75), (1, 0.17), (2, 0.06), (3, 0.02))),
        late_icaht=_choice(rng, ((0, 0.82), (1, 0.14), (2, 0.04))),
        cmax=float(np.clip(30 * math.exp(0.6 * rng.standard_normal()), 3, 300)),
        tmax=_choice(rng, ((5, 0.1), (7, 0.35), (9, 0.25), (10, 0.2), (14, 0.1))),
        b_return_day=float(np.clip(rng.normal(110, 35), 40, 400)),
        response="partial" if partial else "complete",
        restart=rng.random() < (0.4 if partial else 0.05),
        status=_choice(rng, (("alive", 0.96), ("lost_to_follow_up", 0.03), ("withdrawn", 0.01))),
        infections=infections,
        operator=f"OP-{prefix}{int(rng.integers(1, 5))}",
        anc_nadir=float(rng.uniform(550, 1800)),
    )


# --------------------------------------------------------------------------- helpers
_TIMEDELTAS = {d: dt.timedelta(days=d) for d in range(-800, 1500)}


class _Calendar:
    """Dates of study days for one course."""

    __slots__ = ("day0",)

    def __init__(self, day0: dt.date) -> None:
        self.day0 = day0

    def __call__(self, day: int) -> dt.date:
        td = _TIMEDELTAS.get(day)
        return self.day0 + (td if td is not None else dt.timedelta(days=day))

    def many(self, days: Any) -> list[dt.date]:
        day0, tds = self.day0, _TIMEDELTAS
        return [day0 + tds[d] for d in days]


def _noise(rng: np.random.Generator, n: int, sd: float) -> np.ndarray:
    return np.exp(sd * rng.standard_normal(n))


_new = object.__new__
_setattr = object.__setattr__


def _check_bulk(analyte: str, values: np.ndarray) -> str:
    """Apply :class:`LabResult`'s value checks to a whole series; return the canonical unit.

    The records are then built without re-running the per-record checks (5× faster; the test
    suite re-validates generated records through the real constructor).
    """
    unit, maximum, _ = vocab.ANALYTES[analyte]
    if values.size and not (np.isfinite(values).all() and 0 <= values.min() <= values.max()):
        raise InvalidInput("value", float(values.min()), f"finite and ≥ 0 {unit} ({analyte})")
    if values.size and values.max() > maximum:
        raise InvalidInput("value", float(values.max()), f"≤ {maximum:g} {unit} ({analyte})")
    return unit


def _lab(day: dt.date, analyte: str, value: float, unit: str, lloq: Any, below: bool) -> Any:
    r = _new(LabResult)
    _setattr(r, "date", day)
    _setattr(r, "analyte", analyte)
    _setattr(r, "value", value)
    _setattr(r, "unit", unit)
    _setattr(r, "lloq", lloq)
    _setattr(r, "below_lloq", below)
    return r


def _assessment(
    day: dt.date, instrument: str, score: float, items: dict[str, float]
) -> DiseaseAssessment:
    """A :class:`DiseaseAssessment` whose score is checked here; items are in range by
    construction (integers within each item's maximum), re-validated by the test suite."""
    lo, hi, _ = vocab.INSTRUMENTS[instrument]
    if not lo <= score <= hi:
        raise InvalidInput("score", score, f"within {lo:g}–{hi:g} ({instrument})")
    r = _new(DiseaseAssessment)
    _setattr(r, "date", day)
    _setattr(r, "instrument", instrument)
    _setattr(r, "score", score)
    _setattr(r, "items", items)
    return r


def _emit(
    out: list[LabResult],
    cal: _Calendar,
    analyte: str,
    days: Any,
    values: np.ndarray,
    decimals: int,
    lloq: float | None = None,
) -> None:
    """Append one analyte's results (canonical unit); below ``lloq`` store the LLOQ, flagged."""
    vals = np.round(values, decimals)
    if lloq is not None:
        vals = np.maximum(vals, lloq)
    unit = _check_bulk(analyte, vals)
    dates = cal.many(days)
    if lloq is None:
        out.extend(
            _lab(d, analyte, v, unit, None, False)
            for d, v in zip(dates, vals.tolist(), strict=True)
        )
        return
    below = (np.round(values, decimals) < lloq).tolist()
    out.extend(
        _lab(d, analyte, v, unit, lloq, b)
        for d, v, b in zip(dates, vals.tolist(), below, strict=True)
    )


def _spread(total: int, maxima: tuple[tuple[str, int], ...]) -> dict[str, float]:
    """Integer item scores (each ≤ its maximum) that sum to ``total``."""
    cap = sum(m for _, m in maxima)
    frac = total / cap
    items = [int(frac * m) for _, m in maxima]
    rest = total - sum(items)
    i = 0
    while rest > 0:
        if items[i] < maxima[i][1]:
            items[i] += 1
            rest -= 1
        i = (i + 1) % len(items)
    return {name: float(v) for (name, _), v in zip(maxima, items, strict=True)}


def _bump(t: np.ndarray, centre: float, width: float) -> np.ndarray:
    return np.exp(-(((t - centre) / width) ** 2))


def _crs_shape(t: np.ndarray, peak: float, decay: float) -> np.ndarray:
    rise = np.exp(-(((t - peak) / 1.5) ** 2))
    fall = np.exp(-np.maximum(t - peak, 0) / decay)
    return np.where(t < peak, rise, fall)


# --------------------------------------------------------------------------- ANC
def _anc_early(plan: _Plan, base: float, rng: np.random.Generator) -> tuple[np.ndarray, int, int]:
    """Daily ANC on days −7…30; returns values and the ≤ 500 run (start, length)."""
    t = np.arange(-7, 31, dtype=float)
    run = {0: 0, 1: int(rng.integers(1, 7)), 2: int(rng.integers(7, 14))}.get(
        plan.early_icaht, int(rng.integers(14, 21))
    )
    if run == 0:
        nadir_day = float(rng.integers(5, 10))
        kx = [-7.0, -3.0, nadir_day, nadir_day + 9, 60.0]
        ky = [base, base * 0.95, plan.anc_nadir, 0.8 * base, base]
        v = np.exp(np.interp(t, kx, np.log(ky))) * _noise(rng, t.size, 0.05)
        return np.maximum(v, 560.0), 0, 0
    start = int(rng.integers(1, 6))
    end = start + run - 1
    low = float(rng.uniform(120, 300) if plan.early_icaht >= 3 else rng.uniform(150, 400))
    kx = [-7.0, -3.0, start - 1.0]
    ky = [base, base, 650.0]
    if run >= 3:
        kx += [float(start), (start + end) // 2 + 0.0, float(end)]
        ky += [480.0, low, 480.0]
    else:
        kx += [float(d) for d in range(start, end + 1)]
        ky += [low] * run
    kx += [end + 1.0, end + 10.0, end + 40.0]
    ky += [650.0, 0.8 * base, base]
    v = np.exp(np.interp(t, kx, np.log(ky))) * _noise(rng, t.size, 0.05)
    inside = (t >= start) & (t <= end)
    v = np.where(inside, np.clip(v, 110.0, 490.0), np.maximum(v, 520.0))
    return v, start, run


def _anc_late(
    plan: _Plan, base: float, days: list[int], rng: np.random.Generator
) -> tuple[np.ndarray, list[int]]:
    """ANC after day 30 on ``days``; returns values and the days of the late dip."""
    t = np.asarray(days, dtype=float)
    v = np.maximum(base * rng.uniform(0.85, 1.1, t.size), 1600.0)
    lo, hi = _LATE_WINDOW
    window = [i for i, d in enumerate(days) if lo <= d <= hi]
    dip: list[int] = []
    if plan.late_icaht and len(window) >= 2:
        k = int(rng.integers(2, 4))
        first = int(rng.integers(0, max(1, len(window) - k + 1)))
        idx = window[first : first + k]
        band = (1050.0, 1480.0) if plan.late_icaht == 1 else (620.0, 980.0)
        v[idx] = rng.uniform(*band, len(idx))
        dip = [days[i] for i in idx]
    return v, dip


# --------------------------------------------------------------------------- the builder
def _build(plan: _Plan, rng: np.random.Generator) -> tuple[Course, tuple[BatchQC, ...]]:
    cal = _Calendar(plan.day0)
    fu_days = month_day(plan.followup_months)
    ydays = 365.25

    # ---- patient
    born = plan.day0 - dt.timedelta(days=round(plan.age * ydays))
    dx_date = plan.day0 - dt.timedelta(days=round(plan.years_since_dx * ydays))
    patient = Patient(
        study_id=plan.study_id,
        site=plan.site,
        sex=plan.sex,
        birth_year=born.year,
        birth_month=born.month,
        diagnosis=plan.diagnosis,
        icd10=plan.icd10,
        diagnosis_date=dx_date,
        prior_therapy_lines=plan.prior_lines,
        synthetic=True,
    )
    age0 = patient.age_on(plan.day0)

    # ---- body size
    wf = float(rng.uniform(0.85, 1.15))
    hf = float(rng.uniform(0.96, 1.04))
    wsex, hsex = _WEIGHT_P50[plan.sex], _HEIGHT_P50[plan.sex]

    def bodies(days: list[int]) -> list[Anthropometric]:
        a = age0 + np.asarray(days, dtype=float) / ydays
        w = np.round(np.interp(a, _AGE_ANCHORS, wsex) * wf, 1).tolist()
        h = (np.round(np.interp(a, _AGE_ANCHORS, hsex) * hf * 2) / 2).tolist()
        return [Anthropometric(d, wi, hi) for d, wi, hi in zip(cal.many(days), w, h, strict=True)]

    # ---- manufacturing
    aph_day = -35 + int(rng.integers(-4, 5))
    infused = plan.manufacturing != "failed_stop"
    attempts = (
        [(aph_day - 35, "failed"), (aph_day, "pass")]
        if plan.manufacturing == "failed_retry"
        else [(aph_day, {"failed_stop": "failed"}.get(plan.manufacturing, plan.manufacturing))]
    )
    weight_m7 = bodies([-7])[0]
    dose_per_kg = 1e6 * float(rng.uniform(0.95, 1.05))
    dose_cells = dose_per_kg * weight_m7.weight_kg
    anthro = [weight_m7]
    apheresis: list[Apheresis] = []
    batches: list[Batch] = []
    bags: list[Bag] = []
    qcs: list[BatchQC] = []
    infused_bag = ""
    for n, (day, outcome) in enumerate(attempts, start=1):
        anthro += bodies([day])
        aph_id = f"{plan.study_id}-A{n}"
        batch_id = f"{plan.study_id}-B{n}"
        apheresis.append(
            Apheresis(
                aph_id,
                cal(day),
                round(3e9 * math.sqrt(weight_m7.weight_kg / 40) * float(rng.uniform(0.5, 2))),
                round(float(rng.uniform(60, 250)), 0),
            )
        )
        harvest = day + 13
        released = outcome != "failed"
        batches.append(
            Batch(
                batch_id,
                aph_id,
                "CliniMACS Prodigy",
                cal(day + 1),
                cal(harvest),
                plan.operator,
                "released" if released else "failed",
            )
        )
        n_bags = int(rng.integers(3, 6)) if released else int(rng.integers(1, 3))
        total = dose_cells * float(rng.uniform(5, 40))
        shares = rng.dirichlet(np.full(n_bags - 1, 4.0)) if n_bags > 1 else np.ones(0)
        rest = total - dose_cells
        contents = (
            [dose_cells, *(rest * shares).tolist()] if released else [total / n_bags] * n_bags
        )
        rack = int(rng.integers(1, 13))
        for b, cells in enumerate(contents, start=1):
            bag_id = f"{batch_id}-{b:02d}"
            status = "discarded"
            if released:
                status = "infused" if b == 1 and infused else "stored_for_redosing"
            if status == "infused":
                infused_bag = bag_id
            bags.append(
                Bag(
                    bag_id,
                    batch_id,
                    float(round(cells, -3)),
                    round(float(rng.uniform(10, 50)), 1),
                    status,
                    f"LN2 tank A / rack {rack}",
                    cal(harvest + 365),
                )
            )
        qcs.append(_qc(batch_id, outcome, dose_per_kg / 1e6 - 1, rng))

    meds = _medications(plan, patient, cal, aph_day, rng, infused)
    if not infused:
        last = attempts[-1][0] + int(rng.integers(60, 200))
        course = Course(
            patient=patient,
            anthropometrics=tuple(anthro),
            apheresis=tuple(apheresis),
            batches=tuple(batches),
            bags=tuple(bags),
            medications=tuple(meds),
            followup=FollowUp(cal(last), plan.status),
        )
        return course, tuple(qcs)

    months = range(1, plan.followup_months + 1)
    month_days = [month_day(m) for m in months]
    anthro += bodies(month_days)
    lymphodepletion = [
        Lymphodepletion(cal(d), drug, dose) for drug, dose, days in plan.regimen.doses for d in days
    ]
    infusion = Infusion(cal(0), (infused_bag,), round(dose_cells / weight_m7.weight_kg, -2))

    daily, aes = _daily(plan, age0, cal, rng)
    labs, lab_at, anc_events = _labs(plan, age0, cal, month_days, rng)
    disease = _disease(plan, cal, fu_days, lab_at, rng)

    aes += anc_events
    for day, grade, term in plan.infections:
        if day <= fu_days:
            aes.append(
                AdverseEvent(
                    term,
                    "infection",
                    grade,
                    cal(day),
                    cal(day + int(rng.integers(5, 15))),
                    serious=grade >= 3,
                    related=False,
                )
            )
    course = Course(
        patient=patient,
        anthropometrics=tuple(anthro),
        apheresis=tuple(apheresis),
        batches=tuple(batches),
        bags=tuple(bags),
        lymphodepletion=tuple(lymphodepletion),
        infusions=(infusion,),
        daily_assessments=tuple(daily),
        labs=tuple(labs),
        disease_assessments=tuple(disease),
        medications=tuple(meds),
        adverse_events=tuple(aes),
        followup=FollowUp(cal(fu_days), plan.status),
    )
    return course, tuple(qcs)


def _medications(
    plan: _Plan,
    patient: Patient,
    cal: _Calendar,
    aph_day: int,
    rng: np.random.Generator,
    infused: bool,
) -> list[Medication]:
    dx_day = (patient.diagnosis_date - plan.day0).days
    first_aph = aph_day - (35 if plan.manufacturing == "failed_retry" else 0)
    stops = {
        "apheresis": first_aph - int(rng.integers(7, 22)),
        "lymphodepletion": -5 - int(rng.integers(1, 4)),
    }
    meds = []
    for drug, klass, lo, hi, unit, anchor in _MEDS[plan.diagnosis]:
        stop = stops[anchor]
        start = min(dx_day + int(rng.integers(0, 365)), stop - 30)
        start = max(start, dx_day)
        dose = float(rng.uniform(lo, hi))
        step = next(s for top, s in _DOSE_STEPS if dose < top)
        dose = max(step, round(dose / step) * step)
        meds.append(Medication(drug, klass, dose, unit, cal(start), cal(stop) if infused else None))
    if plan.restart and infused:
        drug, klass, dose, unit = _RESTART[plan.diagnosis]
        day = month_day(float(rng.uniform(6, 12)))
        if day < month_day(plan.followup_months):
            meds.append(Medication(drug, klass, dose, unit, cal(day)))
    return meds


def _daily(
    plan: _Plan, age0: float, cal: _Calendar, rng: np.random.Generator
) -> tuple[list[DailyAssessment], list[AdverseEvent]]:
    days = range(-7, 31)
    temps = np.round(rng.uniform(36.3, 37.4, len(days)), 1)
    fever = set(range(plan.crs_onset, plan.crs_onset + plan.crs_days)) if plan.crs_grade else set()
    severe_day = plan.crs_onset + int(rng.integers(0, plan.crs_days))
    neuro = (
        set(range(plan.icans_onset, plan.icans_onset + plan.icans_days))
        if plan.icans_grade
        else set()
    )
    hypo_route = rng.random() < 0.5
    out = []
    for i, d in enumerate(days):
        temp = float(temps[i])
        kw: dict[str, Any] = {}
        if d in fever:
            temp = round(float(rng.uniform(38.0, 39.2)), 1)
            if d == severe_day and plan.crs_grade >= 2:
                kw["tocilizumab"] = True
                if plan.crs_grade == 2 and hypo_route:
                    kw["hypotension"] = True
                elif plan.crs_grade == 2:
                    kw.update(oxygen_device="nasal_cannula", oxygen_flow_l_min=2.0)
                elif hypo_route:
                    kw.update(hypotension=True, vasopressors=("norepinephrine",))
                    kw["corticosteroids"] = True
                else:
                    kw.update(oxygen_device="high_flow_nasal_cannula", oxygen_flow_l_min=20.0)
                    kw["corticosteroids"] = True
        ice = age0 + d / 365.25 >= 12
        if d in neuro:
            if ice:
                kw["ice_score"] = 8 if plan.icans_grade == 1 else int(rng.integers(3, 7))
            else:
                kw["capd_score"] = int(rng.integers(3, 7))
                if plan.icans_grade >= 2:
                    kw["consciousness"] = "awakens_to_voice"
            if plan.icans_grade >= 2:
                kw["corticosteroids"] = True
        elif ice:
            kw["ice_score"] = 10
        else:
            kw["capd_score"] = 0
        out.append(DailyAssessment(cal(d), temp, **kw))
    aes = []
    if plan.crs_grade:
        aes.append(
            AdverseEvent(
                "cytokine release syndrome",
                "crs",
                plan.crs_grade,
                cal(plan.crs_onset),
                cal(plan.crs_onset + plan.crs_days),
                serious=plan.crs_grade >= 3,
                related=True,
            )
        )
    if plan.icans_grade:
        aes.append(
            AdverseEvent(
                "immune effector cell-associated neurotoxicity syndrome",
                "icans",
                plan.icans_grade,
                cal(plan.icans_onset),
                cal(plan.icans_onset + plan.icans_days),
                serious=False,
                related=True,
            )
        )
    return out, aes


def _labs(
    plan: _Plan,
    age0: float,
    cal: _Calendar,
    month_days: list[int],
    rng: np.random.Generator,
) -> tuple[list[LabResult], dict[tuple[str, int], float], list[AdverseEvent]]:
    out: list[LabResult] = []
    child = age0 < 18
    m1 = month_days  # months 1..M
    m2 = month_days[1:]  # months 2..M
    cbc_late = sorted(set(_WEEKLY) | set(m2))
    cbc_late = [d for d in cbc_late if d <= m1[-1]]
    cbc_days = list(_CBC_EARLY) + cbc_late
    crs_peak = float(plan.crs_onset + plan.crs_days - 1)
    crs_size = {0: 0.0, 1: 1.0, 2: 2.0, 3: 3.0}[plan.crs_grade]
    aes: list[AdverseEvent] = []

    # ANC
    base = float(rng.uniform(2500, 5000) if child else rng.uniform(2000, 4500))
    early, run_start, run_len = _anc_early(plan, base, rng)
    late, dip = _anc_late(plan, base, cbc_late, rng)
    _emit(out, cal, "anc", _ANC_EARLY, early, -1)
    _emit(out, cal, "anc", cbc_late, late, -1)
    if run_len:
        aes.append(
            AdverseEvent(
                "immune effector cell-associated hematotoxicity, early",
                "hematologic",
                plan.early_icaht,
                cal(run_start),
                cal(run_start + run_len),
                related=True,
            )
        )
    if dip:
        aes.append(
            AdverseEvent(
                "immune effector cell-associated hematotoxicity, late",
                "hematologic",
                plan.late_icaht,
                cal(dip[0]),
                cal(dip[-1] + 7),
                related=True,
            )
        )

    # platelets, hemoglobin, lymphocytes (with the CAR T contribution)
    t = np.asarray(cbc_days, dtype=float)
    p0 = float(rng.uniform(220e3, 380e3))
    q = float(rng.uniform(0.5, 0.8))
    plt = p0 * (1 - (1 - q) * _bump(t, 9, 5)) * _noise(rng, t.size, 0.05)
    _emit(out, cal, "platelets", cbc_days, plt, -3)
    h0 = float(rng.uniform(11.5, 13.5) if (child or plan.sex == "F") else rng.uniform(12.5, 15))
    hgb = (h0 - 1.2 * _bump(t, 12, 8)) * _noise(rng, t.size, 0.03)
    _emit(out, cal, "hemoglobin", cbc_days, hgb, 1)
    l0 = float(rng.uniform(1200, 2800) if child else rng.uniform(800, 1800))
    depl = np.where(t <= 3, np.clip((t + 5) / 5, 0, 1), np.exp(-(t - 3) / 30))
    lym = l0 * (1 - 0.88 * depl) * _noise(rng, t.size, 0.08)
    _emit(out, cal, "lymphocytes", cbc_days, lym, -1)

    # CRP, ferritin, IL-6
    crp_days = list(_INFLAM_EARLY) + m2
    t = np.asarray(crp_days, dtype=float)
    crp = (
        float(rng.uniform(0.05, 0.6))
        + crs_size * float(rng.uniform(2, 6)) * _crs_shape(t, crs_peak + 1, 2)
    ) * _noise(rng, t.size, 0.1)
    _emit(out, cal, "crp", crp_days, np.maximum(crp, 0.01), 2)
    t = np.asarray(_INFLAM_EARLY, dtype=float)
    f0 = float(rng.uniform(40, 250))
    fer = f0 * (1 + crs_size * float(rng.uniform(1, 3)) * _crs_shape(t, crs_peak + 1, 5))
    _emit(out, cal, "ferritin", _INFLAM_EARLY, fer * _noise(rng, t.size, 0.08), 0)
    il6_days = list(_IL6_EARLY) + m1
    t = np.asarray(il6_days, dtype=float)
    il6 = float(rng.uniform(2, 8)) + crs_size * float(rng.uniform(20, 150)) * _crs_shape(
        t, float(plan.crs_onset), 1.5
    )
    _emit(out, cal, "il6", il6_days, il6 * _noise(rng, t.size, 0.1), 1)

    # CD19 B cells
    cd19_days = list(_CD19_EARLY) + m2
    t = np.asarray(cd19_days, dtype=float)
    b0 = _b0_for_age(age0, float(rng.standard_normal()))
    k_dep = float(rng.uniform(1.2, 1.8))
    bmax = b0 * float(rng.uniform(1.0, 1.6))
    t_ret = plan.b_return_day
    pre = b0 * np.exp(math.log(0.5) * np.clip((t + 5) / 5, 0, 1))
    bc = np.where(t <= 0, pre, b0 * 0.5 * np.exp(-k_dep * np.maximum(t, 0)))
    bc = bc * _noise(rng, t.size, 0.1)
    bc = np.where((t >= 7) & (t < t_ret), 0.0, bc)
    bc = np.where(t >= t_ret, bmax * (1 - np.exp(-(t - t_ret) / 45)) * _noise(rng, t.size, 0.1), bc)
    bc = np.where(bc < 0.05, 0.0, bc)
    _emit(out, cal, "cd19_b_cells", cd19_days, bc, 1)

    # CAR T cells: flow and qPCR
    cart_days = list(_CART_EARLY) + m2
    t = np.asarray(cart_days, dtype=float)
    c1 = float(rng.uniform(0.3, 1.0))
    tmax = float(plan.tmax)
    g = math.log(plan.cmax / c1) / (tmax - 1)
    slow = math.log(2) / float(rng.uniform(30, 60))
    alpha = math.log(2) / 4.3
    after = np.maximum(t - tmax, 0)
    rise = plan.cmax * np.exp(-g * np.maximum(tmax - t, 0))
    flow = np.where(
        t <= tmax, rise, plan.cmax * (0.97 * np.exp(-alpha * after) + 0.03 * np.exp(-slow * after))
    )
    flow = flow * _noise(rng, t.size, 0.1)
    peak_i = cart_days.index(plan.tmax)
    peak = plan.cmax if plan.exact_peak else float(np.clip(flow[peak_i], *plan.peak_range))
    flow = np.minimum(flow, 0.97 * peak)
    flow[peak_i] = peak
    _emit(out, cal, "car_t_flow", cart_days, flow, 2, CAR_T_FLOW_LLOQ)
    kq = float(rng.uniform(150, 300))
    slow_q = math.log(2) / 90
    qpcr = np.where(
        t <= tmax,
        kq * rise,
        kq * plan.cmax * (0.97 * np.exp(-alpha * after) + 0.03 * np.exp(-slow_q * after)),
    ) * _noise(rng, t.size, 0.15)
    _emit(out, cal, "car_t_qpcr", cart_days, qpcr, 0, CAR_T_QPCR_LLOQ)

    # IgG, complement, disease titres: baseline (day −7) and monthly from month 1
    ser_days = [-7, *m1]
    t = np.asarray(ser_days, dtype=float)
    tp = np.maximum(t, 0)
    lab_at: dict[tuple[str, int], float] = {}
    g0 = float(rng.uniform(900, 1400) if child else rng.uniform(900, 1500))
    dip_igg = float(rng.uniform(0.15, 0.3))
    igg = g0 * (1 - dip_igg * (tp / 60) * np.exp(1 - tp / 60)) * _noise(rng, t.size, 0.03)
    _emit(out, cal, "igg", ser_days, igg, 0)
    sle = plan.diagnosis == "SLE"
    c3n, c4n = float(rng.uniform(100, 140)), float(rng.uniform(15, 30))
    c30 = float(rng.uniform(45, 80)) if sle else c3n
    c40 = float(rng.uniform(3, 8)) if sle else c4n
    partial = plan.response == "partial"
    keep = float(rng.uniform(0.3, 0.6)) if partial else 0.0
    recov = (1 - keep) * (1 - np.exp(-tp / 25))
    c3 = (c30 + (c3n - c30) * recov) * _noise(rng, t.size, 0.03)
    c4 = (c40 + (c4n - c40) * recov) * _noise(rng, t.size, 0.03)
    _emit(out, cal, "c3", ser_days, c3, 0)
    _emit(out, cal, "c4", ser_days, c4, 1)
    for d, a, b in zip(ser_days, np.round(c3, 0).tolist(), np.round(c4, 1).tolist(), strict=True):
        lab_at[("c3", d)] = a
        lab_at[("c4", d)] = b
    for analyte in _DX_LABS[plan.diagnosis]:
        a_lo, a_hi, half, r_lo, r_hi, p_lo, p_hi, n_lo, n_hi = _TITRES[analyte]
        a0 = float(rng.uniform(a_lo, a_hi))
        resid = float(rng.uniform(p_lo, p_hi) if partial else rng.uniform(r_lo, r_hi))
        floor = float(rng.uniform(n_lo, n_hi))
        frac = resid + (1 - resid) * np.exp(-math.log(2) * tp / half)
        vals = (floor + (a0 - floor) * frac) * _noise(rng, t.size, 0.08)
        vals = np.round(vals, 1)
        _emit(out, cal, analyte, ser_days, vals, 1)
        for d, v in zip(ser_days, vals.tolist(), strict=True):
            lab_at[(analyte, d)] = v
    return out, lab_at, aes


def _disease(
    plan: _Plan,
    cal: _Calendar,
    fu_days: int,
    lab_at: Mapping[tuple[str, int], float],
    rng: np.random.Generator,
) -> list[DiseaseAssessment]:
    days = [-7, *(month_day(m) for m in _DISEASE_MONTHS if month_day(m) <= fu_days)]
    t = np.asarray(days, dtype=float)
    partial = plan.response == "partial"
    slow = plan.diagnosis == "SSc"
    tau = float(rng.uniform(50, 90) if slow else rng.uniform(30, 60))
    f = np.where(t > 0, 1 - np.exp(-np.maximum(t, 0) / tau), 0.0)
    out = []
    for inst, b_lo, b_hi, c_lo, c_hi, p_lo, p_hi, step in _INSTRUMENTS[plan.diagnosis]:
        base = round(float(rng.uniform(b_lo, b_hi)) / step) * step
        target = float(rng.uniform(p_lo, p_hi) if partial else rng.uniform(c_lo, c_hi))
        target = round(target / step) * step
        span = abs(target - base)
        vals = base + (target - base) * f + 0.02 * span * rng.standard_normal(t.size) * (t > 0)
        vals = np.clip(np.round(vals / step) * step, min(base, target), max(base, target))
        maxima = _ITEM_MAXIMA.get(inst)
        for d, v in zip(days, vals.tolist(), strict=True):
            v = round(v, 3)
            items = _spread(int(v), maxima) if maxima else {}
            out.append(_assessment(cal(d), inst, float(v), items))
    if plan.diagnosis == "SLE":
        out += _sledai(plan, cal, days, lab_at, rng)
    return out


def _sledai(
    plan: _Plan,
    cal: _Calendar,
    days: list[int],
    lab_at: Mapping[tuple[str, int], float],
    rng: np.random.Generator,
) -> list[DiseaseAssessment]:
    target = int(rng.integers(8, 21)) - 4  # the serologic items give 4 at baseline
    chosen: list[str] = []
    total = 0
    for name in rng.permutation(_SLEDAI_POOL).tolist():
        w = SLEDAI2K_WEIGHTS[name]
        if total + w <= target:
            chosen.append(name)
            total += w
    persistent = set(chosen[:1]) if plan.response == "partial" else set()
    out = []
    for d in days:
        present: set[str] = set()
        if d < 0:
            present.update(chosen)
        elif d <= 31:
            present.update(c for c in chosen if rng.random() < 0.4)
        present.update(c for c in persistent if rng.random() < 0.7)
        if lab_at[("c3", d)] < C3_LLN or lab_at[("c4", d)] < C4_LLN:
            present.add("low_complement")
        if lab_at[("anti_dsdna", d)] > ANTI_DSDNA_ULN:
            present.add("increased_dna_binding")
        items = {name: float(name in present) for name in SLEDAI2K_WEIGHTS}
        score = sum(SLEDAI2K_WEIGHTS[name] for name in present)
        out.append(_assessment(cal(d), "sledai2k", float(score), items))
    return out


# --------------------------------------------------------------------------- public API
def _check_seed(seed: Any) -> int:
    return int(check_range("seed", seed, 0, 2**63 - 1, integer=True))


def _check_regimens(site_regimens: Any) -> Mapping[str, str]:
    merged = dict(SITE_REGIMENS)
    if site_regimens is None:
        return merged
    if not isinstance(site_regimens, Mapping):
        raise InvalidInput("site_regimens", site_regimens, "a mapping of site to regimen name")
    for site, name in site_regimens.items():
        if site not in merged:
            raise InvalidInput("site_regimens", site, "a site among: " + ", ".join(merged))
        if name not in REGIMENS:
            raise InvalidInput("site_regimens", name, "one of: " + ", ".join(REGIMENS))
        merged[site] = name
    return merged


def published_cohort_with_qc(
    seed: int = 2026, *, site_regimens: Mapping[str, str] | None = None
) -> list[tuple[Course, tuple[BatchQC, ...]]]:
    """The 8 SYNTHETIC published-series courses with the release-test results of their batches.

    Parameters and behaviour as :func:`published_cohort`; every batch passes (the abstract:
    "Manufacturing was successful in all patients").
    """
    seed = _check_seed(seed)
    regimens = _check_regimens(site_regimens)
    out = []
    for i, row in enumerate(_PUBLISHED, start=1):
        rng = np.random.default_rng([seed, 0, i])
        out.append(_build(_published_plan(row, rng, regimens), rng))
    return out


def published_cohort(
    seed: int = 2026, *, site_regimens: Mapping[str, str] | None = None
) -> list[Course]:
    """Return the 8 SYNTHETIC courses shaped on the Becilli et al. paediatric series.

    Parameters
    ----------
    seed : int, default 2026
        Seed (≥ 0) of the within-range noise. The cohort-level figures (ages, sexes,
        diagnoses, sites, follow-up, who has CRS/ICANS/late ICAHT) hold for every seed.
    site_regimens : mapping of str to str, optional
        Lymphodepletion regimen per site (names in :data:`REGIMENS`), overriding
        :data:`SITE_REGIMENS`; the ERLANGEN default ``"erlangen_reported"`` is UNCONFIRMED.

    Returns
    -------
    list of Course
        RM-001…RM-005 (ROME) and ER-001…ER-003 (ERLANGEN), ``synthetic=True``.

    Raises
    ------
    InvalidInput
        ``seed`` negative or not an integer; unknown site or regimen in ``site_regimens``.

    Examples
    --------
    >>> [c.study_id for c in published_cohort()][:3]
    ['RM-001', 'RM-002', 'RM-003']
    """
    return [c for c, _ in published_cohort_with_qc(seed, site_regimens=site_regimens)]


def _check_cohort_args(n: Any, seed: Any, start_index: Any) -> tuple[int, int, int]:
    n = int(check_range("n", n, 0, _MAX_INDEX, integer=True))
    seed = _check_seed(seed)
    start_index = int(check_range("start_index", start_index, 1, _MAX_INDEX, integer=True))
    if start_index + n - 1 > _MAX_INDEX:
        raise InvalidInput(
            "n", n, f"at most {_MAX_INDEX - start_index + 1} from start_index {start_index}"
        )
    return n, seed, start_index


def _synthetic(seed: int, k: int) -> tuple[Course, tuple[BatchQC, ...]]:
    rng = np.random.default_rng([seed, k])
    return _build(_synthetic_plan(k, rng), rng)


def synthetic_course(k: int, seed: int = 0) -> Course:
    """Return SYNTHETIC course number ``k`` (1–999,999) of the large cohort of ``seed``.

    The course depends only on ``(seed, k)``: ``synthetic_course(k, seed)`` equals the
    ``k``-th course of ``synthetic_cohort(n, seed)`` for every ``n ≥ k``.

    Raises
    ------
    InvalidInput
        ``k`` outside 1–999,999 or ``seed`` negative / not an integer.

    Examples
    --------
    >>> synthetic_course(7).patient.synthetic
    True
    """
    k = int(check_range("k", k, 1, _MAX_INDEX, integer=True))
    return _synthetic(_check_seed(seed), k)[0]


def synthetic_cohort_with_qc(
    n: int, seed: int = 0, *, start_index: int = 1
) -> Iterator[tuple[Course, tuple[BatchQC, ...]]]:
    """Yield ``(course, batch QC results)`` for courses ``start_index … start_index + n − 1``.

    Failed batches have ``Batch.status == "failed"`` and ``BatchQC.outcome == "failed"``;
    batches released with a documented deviation have ``Batch.status == "released"`` and
    ``BatchQC.outcome == "deviation"`` (the out-of-spec attribute in ``out_of_spec``).
    Arguments as :func:`synthetic_cohort`.
    """
    n, seed, start_index = _check_cohort_args(n, seed, start_index)
    return (_synthetic(seed, k) for k in range(start_index, start_index + n))


def synthetic_cohort(n: int, seed: int = 0, *, start_index: int = 1) -> Iterator[Course]:
    """Yield ``n`` SYNTHETIC courses for tests and benchmarks.

    Parameters
    ----------
    n : int
        Number of courses, 0–999,999.
    seed : int, default 0
        Cohort seed (≥ 0). Course ``k`` uses ``numpy.random.default_rng([seed, k])`` only, so
        it does not depend on ``n`` or on how many courses were drawn before it.
    start_index : int, default 1
        Index ``k`` of the first course (study IDs are ``<site prefix>-<k:06d>``).

    Returns
    -------
    Iterator of Course
        Lazily built courses; the rates of each event are in the module docstring.

    Raises
    ------
    InvalidInput
        ``n``, ``seed`` or ``start_index`` out of range or not integers (raised on the call,
        before iteration).

    Examples
    --------
    >>> [c.study_id for c in synthetic_cohort(2, seed=1)]
    ['TU-000001', 'HD-000002']
    """
    return (course for course, _ in synthetic_cohort_with_qc(n, seed, start_index=start_index))
