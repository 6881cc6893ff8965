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

Package layout
--------------
:mod:`.plan` (figures, regimens, sites, the per-patient plan), :mod:`.builder` (the one course
builder) over :mod:`.records`, :mod:`.labs` and :mod:`.scores`, :mod:`.qc` (release values),
:mod:`.cohort` (the published-shaped eight), :mod:`.synthetic` (the large cohort) and
:mod:`.gmp` (QC results and release decisions seeded into a registry).
"""

from __future__ import annotations

from typing import Any

from immunoreset.demo.cohort import published_cohort, published_cohort_with_qc
from immunoreset.demo.plan import (
    ANTI_DSDNA_ULN,
    C3_LLN,
    C4_LLN,
    CAR_T_FLOW_LLOQ,
    CAR_T_QPCR_LLOQ,
    DATA_CUTOFF,
    DAYS_PER_MONTH,
    PUBLISHED_FOLLOWUP_MONTHS,
    REGIMENS,
    SITE_NAMES,
    SITE_REGIMENS,
    SITES,
    LymphodepletionRegimen,
    month_day,
)
from immunoreset.demo.qc import QC_LIMITS, BatchQC
from immunoreset.demo.synthetic import synthetic_cohort, synthetic_cohort_with_qc, synthetic_course

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
    "SITE_NAMES",
    "SITE_REGIMENS",
    "BatchQC",
    "LymphodepletionRegimen",
    "month_day",
    "published_cohort",
    "published_cohort_with_qc",
    "seed_demo_qc",
    "synthetic_cohort",
    "synthetic_cohort_with_qc",
    "synthetic_course",
]


def __getattr__(name: str) -> Any:
    # seed_demo_qc writes through the registry (SQLAlchemy); loaded on first use so that making a
    # cohort does not import the database layer.
    if name == "seed_demo_qc":
        from immunoreset.demo.gmp import seed_demo_qc

        return seed_demo_qc
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
