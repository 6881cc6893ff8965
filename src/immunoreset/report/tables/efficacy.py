"""Efficacy table of the case series: kinetics, B cells, autoantibodies, remission, TIS."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from immunoreset.course import Course
from immunoreset.report.tables.cohort import CohortAnalysis, _as_analysis
from immunoreset.report.tables.settings import DAYS_PER_MONTH
from immunoreset.report.tables.stats import _count, _frame, _row, _summary


def table_efficacy(cohort: CohortAnalysis | Sequence[Course]) -> pd.DataFrame:
    """Efficacy: B-cell clearance and reconstitution (KM), CAR T NCA by assay, autoantibody %
    change at months 1/3/6/12, disease scores baseline vs months 6/12, DORIS/LLDAS (SLE), TIS
    category (myositis), immunosuppressant-free.
    """
    a = _as_analysis(cohort)
    s = a.settings
    conf = s.confidence
    n = a.n
    rows = []
    sec = "B cells"
    b = a.bcells
    rows.append(
        _count(
            sec,
            f"Cleared (< {s.clearance_threshold:g} cells/µL)",
            "",
            int(b["cleared"].sum()),
            len(b),
            ci=True,
            confidence=conf,
        )
    )
    rows.append(_summary(sec, "Clearance day", b["clearance_day"], "days"))
    rec = b["reconstitution_day"]
    rows.append(
        _count(
            sec,
            f"Reconstituted (≥ {s.reconstitution_threshold:g} cells/µL)",
            "",
            int(np.isfinite(rec).sum()),
            int(b["cleared"].sum()),
        )
    )
    rows.append(_summary(sec, "Reconstitution day (observed)", rec, "days"))
    if a.km is not None:
        lo, hi = a.km.median_ci
        rows.append(
            _row(
                sec,
                "Reconstitution day, Kaplan–Meier median",
                kind="km",
                n=a.km.n,
                median=np.nan if a.km.median is None else a.km.median,
                ci_low=np.nan if lo is None else lo,
                ci_high=np.nan if hi is None else hi,
                unit="days",
                note=a.km.reasons[0],
            )
        )
    sec = "CAR T kinetics"
    for assay, df in a.nca.items():
        unit = df.attrs["unit"]
        label = {"flow": "flow cytometry", "qpcr": "qPCR"}[assay]
        rows.append(_summary(sec, f"Cmax ({label})", df["cmax"], unit))
        rows.append(_summary(sec, f"Tmax ({label})", df["tmax"], "days"))
        end = f"{s.auc_end:g}"
        rows.append(_summary(sec, f"AUC0–{end} ({label})", df["auc"], f"{unit}·day"))
        rows.append(
            _summary(sec, f"Persistence, last detectable ({label})", df["persistence_day"], "days")
        )
    sec = "Autoantibodies"
    for analyte, df in a.titres.items():
        for m in s.titre_months:
            rows.append(
                _summary(
                    sec, f"{analyte}: % change from baseline", df[f"pct_m{m}"], "%", f"month {m}"
                )
            )
    sec = "Disease activity"
    for inst, df in a.score_changes.items():
        rows.append(_summary(sec, inst, df["baseline_value"], "points", "baseline"))
        for m in s.score_months:
            rows.append(_summary(sec, inst, df[f"value_m{m}"], "points", f"month {m}"))
    sle = a.sle_response
    if len(sle):
        for col, label in (("doris", "DORIS 2021 remission"), ("lldas", "LLDAS")):
            known = sle[col].notna()
            k = int((sle[col][known] == True).sum())  # noqa: E712 - object column
            rows.append(
                _count(
                    sec,
                    f"SLE: {label} at last SLEDAI-2K",
                    "",
                    k,
                    int(known.sum()),
                    ci=True,
                    confidence=conf,
                    note=f"{int((~known).sum())} not assessable" if (~known).any() else "",
                )
            )
    tis = a.tis
    for m in s.score_months:
        sub = tis[tis["month"] == m]
        if sub.empty:
            continue
        known = sub["category"].notna()
        for cat in ("major", "moderate", "minimal", "none"):
            rows.append(
                _count(
                    sec,
                    f"Myositis: TIS at month {m}",
                    cat,
                    int((sub["category"] == cat).sum()),
                    int(known.sum()),
                )
            )
        if (~known).any():
            rows.append(
                _row(
                    sec,
                    f"Myositis: TIS at month {m}",
                    "not assessable",
                    kind="n",
                    n=int((~known).sum()),
                )
            )
    sec = "Therapy"
    inf = a.patients[a.patients["infused"] & a.patients["followup_days"].notna()]
    rows.append(
        _count(
            sec,
            "Free of immunosuppressants and glucocorticoids at last contact",
            "",
            int(inf["therapy_free"].sum()),
            len(inf),
            ci=True,
            confidence=conf,
        )
    )
    rows.append(_summary(sec, "Time off therapy", inf["time_off_days"] / DAYS_PER_MONTH, "months"))
    del n
    return _frame(rows)
