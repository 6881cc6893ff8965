"""Manufacturing and dosing table of the case series."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from immunoreset.course import Course
from immunoreset.report.tables.cohort import CohortAnalysis, _as_analysis
from immunoreset.report.tables.stats import _count, _frame, _row, _summary


def table_manufacturing(cohort: CohortAnalysis | Sequence[Course]) -> pd.DataFrame:
    """Manufacturing and dosing: success rate (exact CI), bags per batch, vein-to-vein time,
    dose per kg, lymphodepletion regimens (from :mod:`immunoreset.manufacturing.metrics`).
    """
    from immunoreset.manufacturing.metrics import (
        bags_per_batch,
        manufacturing_success,
        vein_to_vein,
    )

    a = _as_analysis(cohort)
    sec = "Manufacturing and dosing"
    conf = a.settings.confidence
    batches = [b for co in a.courses for b in co.batches]
    bags = [g for co in a.courses for g in co.bags]
    rows = []
    ok = manufacturing_success(batches, confidence=conf)
    if ok.attempts:
        rows.append(
            _count(
                sec,
                "Manufacturing success",
                "released batches",
                ok.successes,
                ok.attempts,
                ci=True,
                confidence=conf,
                note=ok.reasons[0],
            )
        )
    else:
        rows.append(_row(sec, "Manufacturing success", note="no completed batch"))
    bpb = bags_per_batch(batches, bags)
    rows.append(
        _row(
            sec,
            "Bags per released batch",
            kind="median",
            n=bpb.n_batches,
            median=bpb.median if bpb.median is not None else np.nan,
            min=np.nan if bpb.min is None else bpb.min,
            max=np.nan if bpb.max is None else bpb.max,
            unit="bags",
        )
    )
    infused = [co for co in a.courses if co.day0 is not None]
    v2v = vein_to_vein(infused) if infused else None
    days = v2v.table["days"].to_numpy(dtype=float) if v2v is not None else []
    rows.append(_summary(sec, "Vein-to-vein time (apheresis to infusion)", days, "days"))
    inf = a.patients[a.patients["infused"]]
    rows.append(_summary(sec, "Dose", inf["dose_cells_per_kg"] / 1e6, "×10⁶ CAR+ T cells/kg"))
    rows.append(_summary(sec, "Weight at infusion", inf["weight_kg"], "kg"))
    for level, k in inf["regimen"].value_counts().items():
        rows.append(_count(sec, "Lymphodepletion", str(level), int(k), len(inf)))
    return _frame(rows)
