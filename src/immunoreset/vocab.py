"""Controlled vocabularies shared by the domain objects, the calculators and the importers.

Keeping the words in one place means a daily assessment stored in the registry is always one the
CRS/ICANS calculators accept, and an importer can list the allowed words in its error message.
"""

from __future__ import annotations

#: ASTCT 2019 oxygen support, from none to positive pressure (Lee et al. 2019, Table 1).
OXYGEN_DEVICES: tuple[str, ...] = (
    "room_air",
    "blow_by",
    "nasal_cannula",
    "high_flow_nasal_cannula",
    "face_mask",
    "non_rebreather",
    "venturi",
    "cpap",
    "bipap",
    "mechanical_ventilation",
)

#: Vasopressors a CRS grade may count. Vasopressin never makes a regimen "multiple".
VASOPRESSORS: tuple[str, ...] = (
    "norepinephrine",
    "epinephrine",
    "phenylephrine",
    "dopamine",
    "dobutamine",
    "vasopressin",
)

#: ASTCT 2019 depressed level of consciousness, ICANS domain.
CONSCIOUSNESS: tuple[str, ...] = (
    "awake",
    "awakens_spontaneously",
    "awakens_to_voice",
    "awakens_to_touch",
    "unarousable",
)
SEIZURE: tuple[str, ...] = ("none", "resolved", "prolonged_or_repetitive")
CEREBRAL_EDEMA: tuple[str, ...] = ("none", "focal", "diffuse")

SEXES: tuple[str, ...] = ("F", "M", "X")

#: Diagnoses the program treats, with the ICD-10 chapter the code must belong to.
DIAGNOSES: dict[str, str] = {
    "SLE": "systemic lupus erythematosus (M32)",
    "JDM": "juvenile dermatomyositis (M33.0)",
    "DM": "dermatomyositis (M33.1)",
    "SSc": "systemic sclerosis (M34)",
    "ASyS": "antisynthetase syndrome (M33.x / M35.8)",
    "other": "other autoimmune disease",
}

#: Lab analytes: name -> (canonical unit, plausible maximum in that unit, description).
#: Values are stored in the canonical unit; other units are converted on entry (units.py).
ANALYTES: dict[str, tuple[str, float, str]] = {
    "anc": ("cells/uL", 200_000, "absolute neutrophil count"),
    "wbc": ("cells/uL", 500_000, "white blood cells"),
    "lymphocytes": ("cells/uL", 500_000, "absolute lymphocyte count"),
    "platelets": ("cells/uL", 3_000_000, "platelet count"),
    "hemoglobin": ("g/dL", 25, "hemoglobin"),
    "cd19_b_cells": ("cells/uL", 100_000, "CD19+ B cells, absolute"),
    "cd3_t_cells": ("cells/uL", 100_000, "CD3+ T cells, absolute"),
    "car_t_flow": ("cells/uL", 100_000, "CAR+ T cells by flow cytometry"),
    "car_t_qpcr": ("copies/ug", 1e8, "CAR transgene copies per µg genomic DNA"),
    "igg": ("mg/dL", 10_000, "immunoglobulin G"),
    "anti_dsdna": ("IU/mL", 1e6, "anti-double-stranded DNA IgG"),
    "anti_scl70": ("U/mL", 1e6, "anti-topoisomerase I (Scl-70)"),
    "anti_tif1g": ("U/mL", 1e6, "anti-TIF1γ"),
    "anti_mda5": ("U/mL", 1e6, "anti-MDA5"),
    "anti_jo1": ("U/mL", 1e6, "anti-Jo-1"),
    "c3": ("mg/dL", 1_000, "complement C3"),
    "c4": ("mg/dL", 500, "complement C4"),
    "ck": ("U/L", 1e6, "creatine kinase"),
    "ferritin": ("ng/mL", 1e6, "ferritin"),
    "crp": ("mg/dL", 100, "C-reactive protein"),
    "il6": ("pg/mL", 1e6, "interleukin-6"),
    "creatinine": ("mg/dL", 30, "serum creatinine"),
    "proteinuria": ("g/day", 50, "urine protein per 24 h"),
    "alt": ("U/L", 100_000, "alanine aminotransferase"),
    "ast": ("U/L", 100_000, "aspartate aminotransferase"),
    "ldh": ("U/L", 100_000, "lactate dehydrogenase"),
    "fibrinogen": ("mg/dL", 2_000, "fibrinogen"),
    "triglycerides": ("mg/dL", 10_000, "triglycerides (fasting)"),
}

#: Disease-assessment instruments: name -> (minimum, maximum, description).
INSTRUMENTS: dict[str, tuple[float, float, str]] = {
    "sledai2k": (0, 105, "SLEDAI-2K (Gladman 2002)"),
    "sle_pga": (0, 3, "SELENA-SLEDAI physician global assessment"),
    "cmas": (0, 52, "Childhood Myositis Assessment Scale (Lovell 1999)"),
    "mmt8": (0, 80, "Manual Muscle Testing, 8 groups, unilateral (Kendall 0–10)"),
    "mrss": (0, 51, "modified Rodnan skin score (Clements 1993)"),
    "md_global": (0, 10, "physician global activity, VAS 0–10"),
    "patient_global": (0, 10, "patient/parent global activity, VAS 0–10"),
    "chaq": (0, 3, "Childhood Health Assessment Questionnaire"),
    "haq_di": (0, 3, "HAQ disability index"),
    "extramuscular": (0, 10, "extramuscular activity, VAS 0–10"),
    "fvc_percent": (0, 200, "forced vital capacity, % predicted"),
}

MEDICATION_CLASSES: tuple[str, ...] = (
    "glucocorticoid",
    "immunosuppressant",
    "antimalarial",
    "biologic",
    "ivig",
    "anticytokine",
    "antipyretic",
    "anti_infective",
    "supportive",
    "other",
)

AE_CATEGORIES: tuple[str, ...] = (
    "crs",
    "icans",
    "hematologic",
    "infection",
    "iec_hs",
    "other",
)
#: Infection organism classes (Hill 2018) and the BMT CTN 5-level severity.
ORGANISM_CLASSES: tuple[str, ...] = ("bacterial", "viral", "fungal", "parasitic", "unknown")
BMTCTN_SEVERITY: tuple[str, ...] = ("mild", "moderate", "severe", "life_threatening", "fatal")
#: What a long-term follow-up visit collects (clinical-addendum §5.2).
LTFU_ITEMS: tuple[str, ...] = (
    "cbc_differential",
    "igg",
    "lymphocyte_subsets",
    "car_transgene_qpcr",
    "rcr_rcl",
    "secondary_malignancy_screen",
    "disease_activity",
    "vaccination_status",
    "contact_questionnaire",
)
FOLLOWUP_STATUS: tuple[str, ...] = ("alive", "dead", "lost_to_follow_up", "withdrawn")
ROLES: tuple[str, ...] = ("admin", "investigator", "data_manager", "monitor", "qa")
