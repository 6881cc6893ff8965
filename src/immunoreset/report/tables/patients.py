"""The per-patient table of a case series: one row per infused patient, as journals print it.

Columns: age, sex, diagnosis, prior therapy lines, dose, maximum CRS / ICANS / ICAHT grade,
B-cell clearance and return day, autoantibody change at the last analysed month, response
(DORIS/LLDAS for SLE, TIS for myositis), follow-up and the first day off immunosuppressants.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from immunoreset.course import Course
from immunoreset.report.labels import label
from immunoreset.report.tables.cohort import CohortAnalysis, _as_analysis

__all__ = ["PATIENT_COLUMNS", "table_patients"]

#: Column -> what it holds (units), printed under the table.
PATIENT_COLUMNS: dict[str, str] = {
    "Patient": "pseudonymous study ID",
    "Age": "years at infusion",
    "Sex": "F female, M male, X other",
    "Diagnosis": "diagnosis (ICD-10 code as recorded)",
    "Prior lines": "number of prior therapy lines",
    "Dose": "×10⁶ CAR⁺ T cells/kg",
    "CRS": "maximum ASTCT grade (0 = none)",
    "ICANS": "maximum ASTCT grade (0 = none)",
    "ICAHT": "early / late maximum EHA/EBMT grade",
    "B-cell clearance": "study day",
    "B-cell return": "study day of reconstitution; '> d' still aplastic at the last sample",
    "Autoantibody": "change from baseline at the last analysed month (%)",
    "Response": "DORIS / LLDAS at the last SLEDAI-2K (SLE); TIS category at the last month "
    "analysed (myositis)",
    "Follow-up": "months from infusion to last contact",
    "Off therapy": "first study day free of immunosuppressants and glucocorticoids",
}


def _int(x: float) -> str:
    return "—" if x is None or not np.isfinite(x) else f"{round(x)}"


def _grade(x: float) -> str:
    return "n/a" if x is None or not np.isfinite(x) else f"{int(x)}"


def table_patients(cohort: CohortAnalysis | Sequence[Course]) -> pd.DataFrame:
    """One display row per infused patient (strings, ready to print); see
    :data:`PATIENT_COLUMNS` for what each column holds."""
    a = _as_analysis(cohort)
    s = a.settings
    rows = []
    for sid, p in a.patients[a.patients["infused"]].iterrows():
        tox = a.toxicity.loc[sid] if sid in a.toxicity.index else None
        b = a.bcells.loc[sid] if sid in a.bcells.index else None
        titre = "—"
        for analyte, df in a.titres.items():
            if sid in df.index:
                for m in reversed(s.titre_months):
                    v = df.at[sid, f"pct_m{m}"]
                    if np.isfinite(v):
                        sign = f"{v:+.0f}".replace("-", "−")
                        titre = f"{label(analyte)} {sign} % (M{m})"
                        break
        response = "—"
        if sid in a.sle_response.index:
            r = a.sle_response.loc[sid]
            if not r["note"]:
                yes = {True: "yes", False: "no"}
                response = f"DORIS {yes[bool(r['doris'])]}, LLDAS {yes[bool(r['lldas'])]}"
            else:
                response = "not assessable"
        tis = a.tis[a.tis["study_id"] == sid]
        if len(tis):
            known = tis[tis["category"].notna()]
            if len(known):
                last = known.iloc[-1]
                response = f"TIS {last['category']} (M{int(last['month'])})"
            else:
                response = f"TIS {tis.iloc[-1]['note']}"
        if b is None or not b["cleared"]:
            clear, back = "not cleared", "—"
        else:
            clear = _int(b["clearance_day"])
            rec = b["reconstitution_day"]
            back = _int(rec) if np.isfinite(rec) else f"> {_int(b['last_day'])}"
        off = p["off_from_day"]
        rows.append(
            {
                "Patient": sid,
                "Age": f"{p['age_years']:.0f}",
                "Sex": p["sex"],
                "Diagnosis": f"{p['diagnosis']} ({p['icd10']})",
                "Prior lines": _int(p["prior_therapy_lines"]),
                "Dose": f"{p['dose_cells_per_kg'] / 1e6:.2f}",
                "CRS": "—" if tox is None else _grade(tox["crs_grade"]),
                "ICANS": "—" if tox is None else _grade(tox["icans_grade"]),
                "ICAHT": "—"
                if tox is None
                else f"{_grade(tox['early_icaht_grade'])} / {_grade(tox['late_icaht_grade'])}",
                "B-cell clearance": clear,
                "B-cell return": back,
                "Autoantibody": titre,
                "Response": response,
                "Follow-up": f"{p['followup_months']:.0f}",
                "Off therapy": _int(off) if p["therapy_free"] else "on therapy",
            }
        )
    return pd.DataFrame(rows, columns=list(PATIENT_COLUMNS))
