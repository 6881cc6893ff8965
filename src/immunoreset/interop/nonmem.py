"""NONMEM-style population data sets: read, validate, write, and build one from the registry.

The format is the one NONMEM, Monolix, nlmixr2 and Pumas all read: one row per event, columns
``ID, TIME, DV, AMT, EVID, MDV, CMT`` plus censoring (``LLOQ``, ``BLQ``) and covariates. A
missing DV is written ``.``. Below-LLOQ observations keep ``MDV = 0``, carry ``BLQ = 1`` and
hold the LLOQ in ``DV`` (the Monolix ``CENS`` convention), so an M3 likelihood can use them
(Beal SL. *J Pharmacokinet Pharmacodyn* 2001;28:481–504).

Validation is all-or-nothing: the first problem raises :class:`~immunoreset.errors.InvalidInput`
naming the file line (header = line 1) and the column. Rules: ``ID`` and ``TIME`` present;
``TIME`` finite and non-decreasing within an individual, whose records are contiguous; ``EVID``
0 (observation), 1 (dose) or 2 (other); ``AMT`` ≥ 0 and > 0 on doses; ``MDV`` 0/1, derived when
absent; ``DV`` a number on every observation with ``MDV = 0``; ``CMT`` a positive whole number;
``BLQ`` 0/1 (``CENS`` accepted as its alias) with a positive LLOQ; and no observation before
the individual's first dose unless ``allow_predose=True`` (pre-infusion baselines in the
registry export are such observations).

Registry export (:func:`dataset_from_courses`): TIME in days from the first infusion; the
infusion is a dose of ``AMT`` = 10⁶ CAR+ T cells/kg into CMT 1; observation compartments are
:data:`OBSERVATION_CMTS`; covariates AGE, WT, BSA, SEX, DIAG, SITE, FLU, CY, BENDA, LD,
LDSTART, LDEND (first/last lymphodepletion day). The
codes are in :func:`data_definition`, written next to the data set by :func:`write_nonmem`.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd

from immunoreset import vocab
from immunoreset.course import Course
from immunoreset.errors import InvalidInput

__all__ = [
    "DOSE_CMT",
    "OBSERVATION_CMTS",
    "REQUIRED_COLUMNS",
    "NonmemExport",
    "apply_default_lloq",
    "data_definition",
    "dataset_from_courses",
    "export_nonmem",
    "parse_lloq_options",
    "patient_frame",
    "read_nonmem",
    "validate_nonmem",
    "write_nonmem",
]

#: Columns every data set must have.
REQUIRED_COLUMNS: tuple[str, ...] = ("ID", "TIME")
#: Dose compartment of the CAR T infusion (AMT in 10⁶ CAR+ T cells/kg).
DOSE_CMT = 1
#: Observation compartments of the registry export: CMT -> (source, name, unit).
OBSERVATION_CMTS: MappingProxyType[int, tuple[str, str, str]] = MappingProxyType(
    {
        2: ("lab", "car_t_flow", "cells/uL"),
        3: ("lab", "car_t_qpcr", "copies/ug"),
        4: ("lab", "cd19_b_cells", "cells/uL"),
        5: ("lab", "anti_dsdna", "IU/mL"),
        6: ("lab", "anti_scl70", "U/mL"),
        7: ("lab", "anti_tif1g", "U/mL"),
        8: ("lab", "anti_mda5", "U/mL"),
        9: ("lab", "anti_jo1", "U/mL"),
        10: ("disease", "sledai2k", "points"),
        11: ("disease", "cmas", "points"),
        12: ("disease", "mmt8", "points"),
        13: ("disease", "mrss", "points"),
    }
)
#: Sex codes (NONMEM needs numbers).
SEX_CODES: MappingProxyType[str, int] = MappingProxyType({"M": 0, "F": 1, "X": 2})
#: Diagnosis codes, in :data:`immunoreset.vocab.DIAGNOSES` order from 1.
DIAG_CODES: MappingProxyType[str, int] = MappingProxyType(
    {dx: i for i, dx in enumerate(vocab.DIAGNOSES, start=1)}
)
_EVIDS = (0, 1, 2)
_NUMERIC = ("TIME", "AMT", "EVID", "MDV", "CMT", "LLOQ", "BLQ")


# --------------------------------------------------------------------------- reading
def read_nonmem(source: str | Path | io.TextIOBase, *, allow_predose: bool = False) -> pd.DataFrame:
    """Read and validate a NONMEM-style CSV (``#`` lines are comments, ``.`` = missing).

    Parameters
    ----------
    source : path or text stream
    allow_predose : bool
        Accept observations before an individual's first dose (baselines).

    Returns
    -------
    DataFrame
        Validated columns (see :func:`validate_nonmem`), with a ``LINE`` column giving each
        record's line in the file.

    Raises
    ------
    InvalidInput
        Naming file, line and column of the first problem.
    """
    name = Path(source).name if isinstance(source, str | Path) else None
    try:
        text = (
            Path(source).read_text(encoding="utf-8-sig")
            if isinstance(source, str | Path)
            else source.read()
        )
    except (OSError, UnicodeDecodeError) as err:
        raise InvalidInput("data", str(source), f"a readable UTF-8 CSV file ({err})") from None
    lines = text.splitlines()
    kept = [
        (i + 1, ln) for i, ln in enumerate(lines) if ln.strip() and not ln.lstrip().startswith("#")
    ]
    if not kept:
        raise InvalidInput("data", name or "input", "a header line and data rows", file=name)
    header = kept[0][1]
    sep = "\t" if "\t" in header and "," not in header else ","
    cols = [c.strip() for c in header.split(sep)]
    rows = []
    line_no = []
    for lineno, ln in kept[1:]:
        cells = [c.strip() for c in ln.split(sep)]
        if len(cells) != len(cols):
            raise InvalidInput(
                "row", len(cells), f"{len(cols)} cells like the header", row=lineno, file=name
            )
        rows.append(cells)
        line_no.append(lineno)
    frame = pd.DataFrame(rows, columns=cols, dtype=object)
    frame["LINE"] = np.asarray(line_no, dtype=np.int64)
    try:
        return validate_nonmem(frame, allow_predose=allow_predose)
    except InvalidInput as err:
        raise err.located(file=name) if name else err from None


def _number(frame: pd.DataFrame, col: str, lines: np.ndarray) -> np.ndarray:
    """Column as float (NaN for '.' or empty); InvalidInput at the first non-number."""
    raw = frame[col].to_numpy(dtype=object)
    out = np.empty(len(raw), dtype=np.float64)
    for i, v in enumerate(raw):
        if v is None or (isinstance(v, float) and math.isnan(v)):
            out[i] = math.nan
            continue
        if isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool):
            out[i] = float(v)
            continue
        s = str(v).strip()
        if s in ("", "."):
            out[i] = math.nan
            continue
        try:
            out[i] = float(s)
        except ValueError:
            raise InvalidInput(
                col, v, "a number ('.' for missing)", row=int(lines[i]), column=col
            ) from None
        if not math.isfinite(out[i]):
            raise InvalidInput(col, v, "a finite number", row=int(lines[i]), column=col)
    return out


def validate_nonmem(frame: pd.DataFrame, *, allow_predose: bool = False) -> pd.DataFrame:
    """Check a NONMEM-style table and return it with numeric, completed standard columns.

    ``AMT`` (0), ``EVID`` (0), ``CMT`` (1), ``BLQ`` (0), ``LLOQ`` (NaN) are added when absent;
    ``MDV`` is derived (1 for non-observations and missing DV). Covariate columns that hold
    only numbers become floats; other columns are kept as text. The module docstring lists the
    rules.
    """
    frame = frame.copy()
    frame.columns = [str(c).strip().upper() for c in frame.columns]
    if "LINE" not in frame:
        frame["LINE"] = np.arange(2, len(frame) + 2, dtype=np.int64)
    lines = frame["LINE"].to_numpy(dtype=np.int64)
    for col in REQUIRED_COLUMNS:
        if col not in frame:
            raise InvalidInput(
                col,
                None,
                f"a column {col} (required columns: {', '.join(REQUIRED_COLUMNS)})",
                row=1,
                column=col,
                message=f"missing required column {col}",
            )
    if len(frame) == 0:
        raise InvalidInput("data", 0, "at least one data row")
    if "CENS" in frame and "BLQ" not in frame:
        frame["BLQ"] = frame.pop("CENS")
    ids = frame["ID"].astype(str).str.strip().to_numpy(dtype=object)
    for i, v in enumerate(ids):
        if v in ("", ".", "nan", "None"):
            raise InvalidInput("ID", v, "a non-empty subject ID", row=int(lines[i]), column="ID")
    frame["ID"] = ids
    num = {c: _number(frame, c, lines) for c in _NUMERIC if c in frame}
    time = num["TIME"]
    bad = np.flatnonzero(np.isnan(time))
    if bad.size:
        i = bad[0]
        raise InvalidInput("TIME", ".", "a number", row=int(lines[i]), column="TIME")
    n = len(frame)
    evid = num.get("EVID", np.zeros(n))
    amt = np.nan_to_num(num.get("AMT", np.zeros(n)), nan=0.0)
    cmt = num.get("CMT", np.ones(n))
    blq = np.nan_to_num(num.get("BLQ", np.zeros(n)), nan=0.0)
    lloq = num.get("LLOQ", np.full(n, math.nan))
    dv = _number(frame, "DV", lines) if "DV" in frame else np.full(n, math.nan)

    def fail(i: int, col: str, value: Any, allowed: str, message: str | None = None) -> None:
        raise InvalidInput(col, value, allowed, row=int(lines[i]), column=col, message=message)

    for i in range(n):
        if evid[i] not in _EVIDS:
            fail(i, "EVID", evid[i], "0 (observation), 1 (dose) or 2 (other event)")
        if amt[i] < 0:
            fail(i, "AMT", amt[i], "a dose amount ≥ 0")
        if evid[i] == 1 and not amt[i] > 0:
            fail(i, "AMT", amt[i], "> 0 on a dose record (EVID 1)")
        if not (cmt[i] >= 1 and float(cmt[i]).is_integer()):
            fail(i, "CMT", cmt[i], "a compartment number ≥ 1")
        if blq[i] not in (0.0, 1.0):
            fail(i, "BLQ", blq[i], "0 or 1")
        if not math.isnan(lloq[i]) and lloq[i] <= 0:
            fail(i, "LLOQ", lloq[i], "a limit of quantification > 0 ('.' if none)")
    if "MDV" in num:
        mdv = np.nan_to_num(num["MDV"], nan=0.0)
        for i in range(n):
            if mdv[i] not in (0.0, 1.0):
                fail(i, "MDV", mdv[i], "0 or 1")
            if mdv[i] == 0 and evid[i] != 0:
                fail(i, "MDV", 0, "1 on a dose or other-event record (EVID ≠ 0)")
    else:
        mdv = np.where((evid != 0) | np.isnan(dv), 1.0, 0.0)
    for i in range(n):
        if mdv[i] == 0 and blq[i] == 1 and math.isnan(lloq[i]):
            if math.isnan(dv[i]) or dv[i] <= 0:
                fail(i, "LLOQ", ".", "the LLOQ (> 0) of a BLQ observation, in LLOQ or DV")
            lloq[i] = dv[i]
        if mdv[i] == 0 and math.isnan(dv[i]):
            fail(i, "DV", ".", "a number on an observation with MDV 0")
    # contiguous individuals, non-decreasing time, no observation before the first dose
    seen: set[str] = set()
    prev = None
    first_dose: dict[str, float] = {}
    for i in range(n):
        pid = ids[i]
        if pid != prev:
            if pid in seen:
                fail(i, "ID", pid, "contiguous records per individual (sort by ID, TIME)")
            seen.add(pid)
            prev = pid
        elif time[i] < time[i - 1]:
            fail(i, "TIME", time[i], f"≥ {time[i - 1]:g} (time must not decrease within ID {pid})")
        if evid[i] == 1 and pid not in first_dose:
            first_dose[pid] = time[i]
    if not allow_predose:
        for i in range(n):
            if mdv[i] == 0:
                t_dose = first_dose.get(ids[i])
                if t_dose is None or time[i] < t_dose:
                    where = "no dose" if t_dose is None else f"the first dose at TIME {t_dose:g}"
                    fail(
                        i,
                        "TIME",
                        time[i],
                        "a time at or after the individual's first dose",
                        message=f"observation at TIME {time[i]:g} of ID {ids[i]} comes before "
                        f"any dose ({where}); add the dose record or allow pre-dose baselines",
                    )
    frame["TIME"] = time
    frame["DV"] = dv
    frame["AMT"] = amt
    frame["EVID"] = evid.astype(np.int64)
    frame["MDV"] = mdv.astype(np.int64)
    frame["CMT"] = cmt.astype(np.int64)
    frame["BLQ"] = blq.astype(np.int64)
    frame["LLOQ"] = lloq
    for col in frame.columns:
        if col in ("ID", "LINE", "DV", *_NUMERIC):
            continue
        values = frame[col]
        try:
            frame[col] = _number(frame, col, lines)
        except InvalidInput:
            frame[col] = values.astype(str)
    return frame.reset_index(drop=True)


# --------------------------------------------------------------------------- writing
def _fmt(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "."
    if isinstance(v, float | np.floating):
        return f"{float(v):.6g}"
    return str(v)


def write_nonmem(
    frame: pd.DataFrame, path: str | Path, *, definition: pd.DataFrame | None = None
) -> tuple[Path, Path | None]:
    """Write ``frame`` as CSV ('.' for missing) and, if given, its data definition beside it.

    Returns the data path and the definition path (``<stem>.define.csv``) or None.
    """
    path = Path(path)
    cols = [c for c in frame.columns if c != "LINE"]
    with path.open("w", encoding="utf-8", newline="") as fh:
        fh.write(",".join(cols) + "\n")
        for row in frame[cols].itertuples(index=False, name=None):
            fh.write(",".join(_fmt(v) for v in row) + "\n")
    define_path = None
    if definition is not None:
        define_path = path.with_name(path.stem + ".define.csv")
        definition.to_csv(define_path, index=False)
    return path, define_path


# --------------------------------------------------------------------------- registry export
@dataclass(frozen=True)
class NonmemExport:
    """A data set built from registry courses: the table, the site codes and who was left out."""

    frame: pd.DataFrame
    site_codes: Mapping[str, int]
    skipped: tuple[str, ...]  #: study IDs without an infusion (no day 0, no TIME)

    def definition(self) -> pd.DataFrame:
        """The data-definition table of this export (see :func:`data_definition`)."""
        return data_definition(self.site_codes)


def _bsa_mosteller(weight_kg: float, height_cm: float | None) -> float:
    """Body-surface area, m² (Mosteller RD. *N Engl J Med* 1987;317:1098)."""
    if height_cm is None:
        return math.nan
    return math.sqrt(weight_kg * height_cm / 3600.0)


def _ld_totals(course: Course) -> dict[str, float]:
    tot = {"FLU": 0.0, "CY": 0.0, "BENDA": 0.0}
    key = {"fludarabine": "FLU", "cyclophosphamide": "CY", "bendamustine": "BENDA"}
    for ld in course.lymphodepletion:
        tot[key[ld.drug]] += ld.dose_mg_m2
    return tot


def _ld_days(course: Course, day0) -> tuple[float, float]:
    """First and last lymphodepletion day relative to the infusion (NaN without any)."""
    days = [float((ld.date - day0).days) for ld in course.lymphodepletion]
    return (min(days), max(days)) if days else (math.nan, math.nan)


def dataset_from_courses(courses: Iterable[Course]) -> NonmemExport:
    """Build the NONMEM-style data set of the given courses (pure; no database access).

    One dose record (EVID 1, CMT 1, AMT = 10⁶ CAR+ T cells/kg) at TIME 0 per course, then
    every lab and disease assessment of :data:`OBSERVATION_CMTS` as an observation on its
    study day (pre-infusion baselines have negative TIME; read back with
    ``allow_predose=True``). Below-LLOQ results carry ``BLQ = 1`` and DV = LLOQ. Covariates
    are taken at infusion: AGE (y), WT (kg, nearest measurement on or before), BSA (m²,
    Mosteller; '.' without height), SEX, DIAG, SITE (codes in the definition), total
    lymphodepletion doses FLU, CY, BENDA (mg/m²), LD (1 if any) and the first/last
    lymphodepletion day LDSTART/LDEND (d from infusion; the fit places the model's
    lymphodepletion there).
    """
    lab_cmt = {name: cmt for cmt, (src, name, _u) in OBSERVATION_CMTS.items() if src == "lab"}
    dis_cmt = {name: cmt for cmt, (src, name, _u) in OBSERVATION_CMTS.items() if src == "disease"}
    courses = sorted(courses, key=lambda c: c.study_id)
    sites = sorted({c.patient.site for c in courses})
    site_codes = {s: i for i, s in enumerate(sites, start=1)}
    records: list[tuple[Any, ...]] = []
    skipped: list[str] = []
    next_id = 0
    for course in courses:
        if course.day0 is None:
            skipped.append(course.study_id)
            continue
        next_id += 1
        day0 = course.day0
        anth = course.weight_on(day0)
        wt = anth.weight_kg if anth is not None else math.nan
        bsa = _bsa_mosteller(wt, anth.height_cm) if anth is not None else math.nan
        ld = _ld_totals(course)
        cov = (
            round(course.patient.age_on(day0), 2),
            wt,
            round(bsa, 3) if math.isfinite(bsa) else math.nan,
            SEX_CODES[course.patient.sex],
            DIAG_CODES[course.patient.diagnosis],
            site_codes[course.patient.site],
            ld["FLU"],
            ld["CY"],
            ld["BENDA"],
            1 if course.lymphodepletion else 0,
            *_ld_days(course, day0),
        )
        sid = course.study_id
        rows: list[tuple[Any, ...]] = []
        dose = course.infusion.dose_cells_per_kg / 1e6  # type: ignore[union-attr]
        # sort key (TIME, kind): labs on the infusion day are pre-infusion samples in the
        # registry, so observations (kind 0) come before the dose (kind 1) at the same TIME
        rows.append((0.0, 1, next_id, sid, 0.0, math.nan, dose, 1, 1, DOSE_CMT, math.nan, 0))
        for r in course.labs:
            cmt = lab_cmt.get(r.analyte)
            if cmt is None:
                continue
            t = float((r.date - day0).days)
            lloq = r.lloq if r.lloq is not None else math.nan
            rows.append((t, 0, next_id, sid, t, r.value, 0.0, 0, 0, cmt, lloq, int(r.below_lloq)))
        for d in course.disease_assessments:
            cmt = dis_cmt.get(d.instrument)
            if cmt is None:
                continue
            t = float((d.date - day0).days)
            rows.append((t, 0, next_id, sid, t, d.score, 0.0, 0, 0, cmt, math.nan, 0))
        rows.sort(key=lambda r: (r[0], r[1], r[9]))
        records.extend(r[2:] + cov for r in rows)
    cols = [
        "ID",
        "USUBJID",
        "TIME",
        "DV",
        "AMT",
        "EVID",
        "MDV",
        "CMT",
        "LLOQ",
        "BLQ",
        "AGE",
        "WT",
        "BSA",
        "SEX",
        "DIAG",
        "SITE",
        "FLU",
        "CY",
        "BENDA",
        "LD",
        "LDSTART",
        "LDEND",
    ]
    frame = pd.DataFrame.from_records(records, columns=cols)
    if len(frame):
        frame = frame.astype({"ID": np.int64, "EVID": np.int64, "MDV": np.int64, "CMT": np.int64})
    return NonmemExport(
        frame=frame, site_codes=MappingProxyType(site_codes), skipped=tuple(skipped)
    )


def data_definition(site_codes: Mapping[str, int] | None = None) -> pd.DataFrame:
    """The data-definition table (column, label, unit, codes) of the registry export."""
    cmts = "; ".join(f"{k}={name} ({unit})" for k, (_s, name, unit) in OBSERVATION_CMTS.items())
    sites = "; ".join(f"{v}={k}" for k, v in (site_codes or {}).items())
    rows = [
        ("ID", "individual, sequential integer", "", "1..N"),
        ("USUBJID", "pseudonymous study ID (text: DROP in NONMEM $INPUT)", "", ""),
        ("TIME", "time from the first CAR T infusion", "d", "negative = before infusion"),
        ("DV", "observed value ('.' = missing); for BLQ=1 the LLOQ", "unit of the CMT", ""),
        ("AMT", "CAR T dose on EVID=1 records", "10^6 CAR+ T cells/kg", ""),
        ("EVID", "event type", "", "0=observation; 1=dose; 2=other"),
        ("MDV", "missing dependent variable", "", "0=DV used; 1=no DV"),
        ("CMT", "compartment", "", f"{DOSE_CMT}=CAR T dose; {cmts}"),
        ("LLOQ", "assay lower limit of quantification ('.' if none)", "unit of the CMT", ""),
        ("BLQ", "below LLOQ (M3 censoring; Monolix CENS)", "", "0=quantified; 1=below LLOQ"),
        ("AGE", "age at infusion", "y", ""),
        ("WT", "body weight at infusion (latest on or before)", "kg", ""),
        ("BSA", "body-surface area at infusion, Mosteller", "m2", "'.' = no height"),
        ("SEX", "sex", "", "; ".join(f"{v}={k}" for k, v in SEX_CODES.items())),
        ("DIAG", "diagnosis", "", "; ".join(f"{v}={k}" for k, v in DIAG_CODES.items())),
        ("SITE", "treating site", "", sites),
        ("FLU", "total fludarabine of lymphodepletion", "mg/m2", ""),
        ("CY", "total cyclophosphamide of lymphodepletion", "mg/m2", ""),
        ("BENDA", "total bendamustine of lymphodepletion", "mg/m2", ""),
        ("LD", "any lymphodepletion", "", "0=no; 1=yes"),
        ("LDSTART", "first lymphodepletion day relative to infusion", "d", "'.' = none"),
        ("LDEND", "last lymphodepletion day relative to infusion", "d", "'.' = none"),
    ]
    return pd.DataFrame(rows, columns=["column", "label", "unit", "codes"])


# --------------------------------------------------------------------------- registry wrappers
def export_nonmem(
    registry: Any,
    actor: Any,
    out: str | Path,
    *,
    study_ids: list[str] | None = None,
    progress: Any = None,
) -> NonmemExport:
    """Write the actor's visible courses as a NONMEM-style data set plus its definition file;
    recorded in the audit trail as an export (pseudonymous: study IDs only)."""
    from immunoreset.errors import NotFound

    visible = [p.study_id for p in registry.list_patients(actor)]
    if study_ids:
        missing = sorted(set(study_ids) - set(visible))
        if missing:
            raise NotFound("patient", missing[0])
        visible = [s for s in visible if s in set(study_ids)]
    export = dataset_from_courses(
        registry.iter_courses(actor, study_ids=visible, progress=progress)
    )
    out = Path(out)
    if out.parent and not out.parent.exists():
        raise InvalidInput("out", str(out), "a file in an existing folder")
    write_nonmem(export.frame, out, definition=export.definition())
    done = sorted(set(export.frame["USUBJID"])) if len(export.frame) else []
    registry.record_export(
        actor, "nonmem", str(out), done, detail={"skipped": list(export.skipped)}
    )
    return export


def patient_frame(registry: Any, actor: Any, study_id: str) -> pd.DataFrame:
    """One patient's records as a validated NONMEM-style table (baselines allowed)."""
    course = registry.load_course(actor, study_id)
    export = dataset_from_courses([course])
    if not len(export.frame):
        raise InvalidInput("study_id", study_id, "a patient with a CAR T infusion recorded")
    return validate_nonmem(export.frame, allow_predose=True)


def apply_default_lloq(frame: pd.DataFrame, lloq: Mapping[int, float]) -> pd.DataFrame:
    """Give observations of the listed compartments that have no LLOQ the stated one
    (an explicit user setting, e.g. the flow assay's limit) and censor those below it
    (``BLQ = 1``, ``DV = LLOQ``). Returns a new table."""
    out = frame.copy()
    for cmt, value in lloq.items():
        if not (isinstance(value, int | float) and value > 0):
            raise InvalidInput("lloq", value, f"a limit > 0 for CMT {cmt}")
        sel = (out["EVID"] == 0) & (out["CMT"] == int(cmt)) & out["LLOQ"].isna()
        out.loc[sel, "LLOQ"] = float(value)
        below = sel & (out["MDV"] == 0) & (out["DV"] < value)
        out.loc[below, "BLQ"] = 1
        out.loc[below, "DV"] = float(value)
    return out


def parse_lloq_options(items: list[str] | None) -> dict[int, float]:
    """``["4=1.0", "2=0.05"]`` → ``{4: 1.0, 2: 0.05}`` (CLI ``--lloq CMT=VALUE``)."""
    out: dict[int, float] = {}
    for item in items or []:
        cmt, sep, value = item.partition("=")
        try:
            out[int(cmt)] = float(value)
        except ValueError:
            raise InvalidInput("lloq", item, "CMT=VALUE, e.g. 4=1.0") from None
        if not sep or out[int(cmt)] <= 0:
            raise InvalidInput("lloq", item, "CMT=VALUE with a value > 0, e.g. 4=1.0")
    return out
