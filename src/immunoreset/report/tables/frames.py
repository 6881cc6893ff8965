"""Long-format frames of the cohort analysis: labs, scores, toxicity, NCA, B cells, SLE, TIS."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from operator import attrgetter
from typing import Any

import numpy as np
import pandas as pd

from immunoreset.course import Course
from immunoreset.errors import InvalidInput
from immunoreset.report.tables.settings import (
    _ASSAY_ANALYTE,
    _TIS_MEASURES,
    _TIS_POPULATION,
    PREDNISONE_EQUIVALENT,
    AnalysisSettings,
)


def _column(records: list[Any], name: str, dtype: Any) -> np.ndarray:
    return np.fromiter(map(attrgetter(name), records), dtype, len(records))


def _long_frames(courses: Sequence[Course]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every lab value and score of every infused patient as columns (built once, no per-row
    tuples: attribute columns via ``np.fromiter``, study days by date ordinals)."""
    infused = [co for co in courses if co.day0 is not None]
    day0 = np.array([co.day0.toordinal() for co in infused], dtype=np.int64)  # type: ignore[union-attr]
    ids = np.array([co.study_id for co in infused], dtype=object)
    frames = []
    for attr, cols in (
        ("labs", ("analyte", "value", "lloq", "below_lloq")),
        ("disease_assessments", ("instrument", "score")),
    ):
        counts = np.array([len(getattr(co, attr)) for co in infused], dtype=np.int64)
        recs = [r for co in infused for r in getattr(co, attr)]
        ordinals = np.fromiter(
            map(dt.date.toordinal, map(attrgetter("date"), recs)), np.int64, len(recs)
        )
        data: dict[str, Any] = {
            "study_id": np.repeat(ids, counts),
            "day": (ordinals - np.repeat(day0, counts)).astype(float),
        }
        for col in cols:
            if col in ("analyte", "instrument"):
                data[col] = np.array(list(map(attrgetter(col), recs)), dtype=object)
            elif col == "lloq":
                data[col] = np.array(list(map(attrgetter(col), recs)), dtype=float)
            elif col == "below_lloq":
                data[col] = _column(recs, col, bool)
            else:
                data[col] = _column(recs, col, float)
        frames.append(pd.DataFrame(data))
    labs, scores = frames
    return labs, scores


def _toxicity_frames(
    courses: Sequence[Course], s: AnalysisSettings
) -> tuple[pd.DataFrame, pd.DataFrame]:
    from immunoreset.clinical.episodes import course_toxicity

    rows, eps = [], []
    for co in courses:
        if co.day0 is None:
            continue
        t = course_toxicity(
            co,
            duration_mode=s.icaht_duration_mode,
            ctcae_version=s.ctcae_version,
            settings=s.toxicity,
        )
        row: dict[str, Any] = {"study_id": co.study_id}
        for kind, episodes, top in (
            ("crs", t.crs_episodes, t.max_crs_grade),
            ("icans", t.icans_episodes, t.max_icans_grade),
        ):
            row[f"{kind}_grade"] = np.nan if top is None else top
            row[f"{kind}_onset_day"] = episodes[0].onset_day if episodes else np.nan
            row[f"{kind}_days"] = sum(e.duration_days for e in episodes) if episodes else np.nan
            row[f"{kind}_tocilizumab"] = any(e.tocilizumab for e in episodes)
            row[f"{kind}_corticosteroids"] = any(e.corticosteroids for e in episodes)
            eps.extend((co.study_id, kind, e.onset_day, e.last_day, e.max_grade) for e in episodes)
        for phase, res in (("early_icaht", t.early_icaht), ("late_icaht", t.late_icaht)):
            row[f"{phase}_grade"] = np.nan if res.grade is None else res.grade
        infections = [a.grade for a in co.adverse_events if a.category == "infection"]
        row["infection_grade"] = max(infections) if infections else 0
        row["febrile_neutropenia"] = bool(t.febrile_neutropenia_days)
        rows.append(row)
    cols = ["study_id", "kind", "onset_day", "last_day", "max_grade"]
    tox = pd.DataFrame(rows)
    if tox.empty:
        tox = pd.DataFrame(columns=["study_id"])
    return tox.set_index("study_id"), pd.DataFrame(eps, columns=cols)


def _series(labs: pd.DataFrame, analyte: str) -> pd.DataFrame:
    return labs[labs["analyte"] == analyte]


def _nca_frames(labs: pd.DataFrame, s: AnalysisSettings) -> dict[str, pd.DataFrame]:
    from immunoreset.kinetics.nca import compute_nca_cohort

    out = {}
    for assay, analyte in _ASSAY_ANALYTE.items():
        sub = _series(labs, analyte)
        if sub.empty:
            continue
        lloq = sub["lloq"].fillna(s.default_lloq[assay]).to_numpy()
        lloq = np.where(lloq > 0, lloq, s.default_lloq[assay])
        # a result reported "< LLOQ" holds the LLOQ itself: it enters the NCA as BLQ
        values = np.where(sub["below_lloq"].to_numpy(), 0.0, sub["value"].to_numpy())
        out[assay] = compute_nca_cohort(
            sub["study_id"].to_numpy(),
            sub["day"].to_numpy(),
            values,
            lloq,
            end=s.auc_end,
            assay=assay,
            blq_rule=s.blq_rule,
            aggregate="min",
        )
    return out


def _bcell_frames(labs: pd.DataFrame, s: AnalysisSettings) -> tuple[pd.DataFrame, Any]:
    from immunoreset.kinetics.bcells import aplasia_cohort
    from immunoreset.kinetics.survival import km_reconstitution

    sub = _series(labs, "cd19_b_cells")
    cols = [
        "cleared",
        "clearance_day",
        "reconstitution_day",
        "aplasia_days",
        "censored",
        "last_day",
    ]
    if sub.empty:
        return pd.DataFrame(columns=cols, index=pd.Index([], name="patient_id")), None
    b = aplasia_cohort(
        sub["study_id"].to_numpy(),
        sub["day"].to_numpy(),
        sub["value"].to_numpy(),
        clearance_threshold=s.clearance_threshold,
        threshold=s.reconstitution_threshold,
        aggregate="min",
    )
    cleared = b[b["cleared"]]
    km = None
    if len(cleared):
        durations = np.where(
            cleared["censored"], cleared["last_day"], cleared["reconstitution_day"]
        )
        km = km_reconstitution(durations, ~cleared["censored"].to_numpy(), alpha=1 - s.confidence)
    return b, km


def _change_frames(
    long: pd.DataFrame, key: str, names: Sequence[str], value: str, months: tuple[int, ...]
) -> dict[str, pd.DataFrame]:
    from immunoreset.kinetics.titres import percent_change_cohort

    out = {}
    for name in names:
        sub = long[long[key] == name]
        if sub.empty:
            continue
        out[name] = percent_change_cohort(
            sub["study_id"].to_numpy(),
            sub["day"].to_numpy(),
            sub[value].to_numpy(),
            at_months=months,
            aggregate="mean" if key == "instrument" else "min",
        )
    return out


def _prednisone_mg_day(co: Course, when: Any) -> float | None:
    total = 0.0
    for m in co.medications:
        if m.drug_class != "glucocorticoid" or m.start > when:
            continue
        if m.stop is not None and m.stop < when:
            continue
        factor = PREDNISONE_EQUIVALENT.get(m.drug.lower())
        if factor is None:
            return None
        if m.dose_unit == "mg/day":
            total += m.dose * factor
        elif m.dose_unit == "mg/kg/day":
            w = co.weight_on(when)
            if w is None:
                return None
            total += m.dose * w.weight_kg * factor
        else:
            return None  # pulses and weekly doses are not a daily dose
    return total


def _sle_frame(courses: Sequence[Course]) -> pd.DataFrame:
    from immunoreset.clinical import lupus_remission as lr
    from immunoreset.clinical.sledai import score_clinical_sledai

    rows = []
    for co in courses:
        if co.day0 is None or co.patient.diagnosis != "SLE":
            continue
        sled = [a for a in co.disease_assessments if a.instrument == "sledai2k"]
        after = [a for a in sled if a.date > co.day0]
        row: dict[str, Any] = {
            "study_id": co.study_id,
            "day": np.nan,
            "doris": np.nan,
            "lldas": np.nan,
            "note": "",
        }
        if not after:
            row["note"] = "no SLEDAI-2K after infusion"
            rows.append(row)
            continue
        last = after[-1]
        prev = sled[sled.index(last) - 1] if sled.index(last) > 0 else None
        row["day"] = co.study_day(last.date)
        pgas = [a for a in co.disease_assessments if a.instrument == "sle_pga"]
        pga = min(pgas, key=lambda a: abs((a.date - last.date).days), default=None)
        pred = _prednisone_mg_day(co, last.date)
        words = tuple(k for k, v in last.items.items() if v > 0)
        try:
            clinical = score_clinical_sledai(words) if words or last.score == 0 else None
            major = bool(lr.major_organ_descriptors(words))
            new = prev is not None and bool(
                set(words) - {k for k, v in prev.items.items() if v > 0}
            )
        except InvalidInput:
            clinical = None
        missing = [
            what
            for what, v in (
                ("SLEDAI-2K items", clinical),
                (
                    "PGA within 30 days",
                    pga if pga and abs((pga.date - last.date).days) <= 30 else None,
                ),
                ("a daily prednisone-equivalent dose", pred),
            )
            if v is None
        ]
        if missing:
            row["note"] = "not assessable: no " + ", ".join(missing)
        else:
            assert pga is not None and pred is not None and clinical is not None
            row["doris"] = lr.is_doris_remission(
                clinical_sledai=clinical, physician_global=pga.score, prednisone_mg_day=pred
            )
            row["lldas"] = lr.is_lldas(
                sledai2k=round(last.score),
                major_organ_activity=major,
                new_activity=new,
                physician_global=pga.score,
                prednisone_mg_day=pred,
            )
        rows.append(row)
    cols = ["study_id", "day", "doris", "lldas", "note"]
    return pd.DataFrame(rows, columns=cols).set_index("study_id")


def _tis_frame(
    patients: pd.DataFrame,
    changes: Mapping[str, pd.DataFrame],
    ck: pd.DataFrame | None,
    s: AnalysisSettings,
) -> pd.DataFrame:
    from immunoreset import vocab
    from immunoreset.clinical.myositis_response import (
        enzyme_improvement,
        percent_improvement,
        score_tis,
    )

    rows = []
    myositis = patients[patients["infused"] & patients["diagnosis"].isin(list(_TIS_POPULATION))]
    for sid, diag in myositis["diagnosis"].items():
        for m in s.score_months:
            parts: dict[str, float] = {}
            for measure, (instruments, higher) in _TIS_MEASURES.items():
                for inst in instruments:
                    df = changes.get(inst)
                    if df is None or sid not in df.index:
                        continue
                    b, f = df.at[sid, "baseline_value"], df.at[sid, f"value_m{m}"]
                    if np.isfinite(b) and np.isfinite(f):
                        lo, hi, _ = vocab.INSTRUMENTS[inst]
                        parts[measure] = percent_improvement(
                            baseline=float(b),
                            followup=float(f),
                            minimum=lo,
                            maximum=hi,
                            higher_is_better=higher,
                        )
                        break
            if ck is not None and sid in ck.index:
                b, f = ck.at[sid, "baseline_value"], ck.at[sid, f"value_m{m}"]
                if np.isfinite(b) and np.isfinite(f):
                    parts["enzyme"] = enzyme_improvement(
                        baseline=float(b), followup=float(f), uln=s.ck_uln, method=s.enzyme_method
                    )
            need = (*_TIS_MEASURES, "enzyme")
            if all(k in parts for k in need):
                r = score_tis(population=_TIS_POPULATION[diag], **parts)
                rows.append((sid, m, r.score, r.category, ""))
            else:
                missing = ", ".join(k for k in need if k not in parts)
                rows.append((sid, m, np.nan, None, f"not assessable: no {missing}"))
    return pd.DataFrame(rows, columns=["study_id", "month", "score", "category", "note"])
