"""Column-wise SDTM domains built from registry tables (the export's fast path).

The courses are loaded without the record types read here (``iter_courses(skip=…)``); these
tables are read as coded columns (:func:`immunoreset.interop._columns.read_coded`: per field
the codes of each row into its distinct stored values) and each domain's rows are made with
array operations, in blocks that :func:`_assemble` orders exactly as
:func:`immunoreset.interop.sdtm._course_rows` adds them — per patient, then block (e.g. VS:
the daily vital signs before the body measurements), record, and position within the record —
before numbering ``--SEQ``. Tested equal to the object path, domain by domain.

Text stays coded from the read to the writers: a text column is (codes, distinct texts),
each distinct value formatted once (ISO dates, numbers as SDTM text, controlled terms), and
the CSV / XPT / Define-XML writers take those codes as they are (see
:func:`immunoreset.interop.sdtm.factorize`) — hashing ten million Python strings again cost
more than building the domains.

Domains: LB (labs), CM (medications, then each daily assessment's drugs), VS (daily
temperature and oxygen flow, then weight and height), QS (daily ICE / CAPD, then
disease-activity totals and items), FA (daily CRS/ICANS findings), and ZP (manufacturing, from
the courses' apheresis, batch and bag records: :func:`zp_columns`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import fields
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from immunoreset import course as c
from immunoreset.interop import sdtm
from immunoreset.interop._codes import codes
from immunoreset.interop._columns import Coded, read_coded

__all__ = [
    "COLUMN_ENTITIES",
    "DomainColumns",
    "Ref",
    "domain_columns",
    "lab_columns",
    "parallel_columns",
    "zp_columns",
]

#: Entities read column-wise (skipped when loading the courses).
COLUMN_ENTITIES = ("labs", "daily_assessments", "disease_assessments", "anthropometrics",
                   "medications")  # fmt: skip

_DAILY_FIELDS = tuple(f.name for f in fields(c.DailyAssessment))
_FLAGS = {f.name for f in fields(c.DailyAssessment) if f.default is False}
_ISO = dt.date.isoformat

#: A text column: (codes per row, the distinct texts they index).
Text = tuple[np.ndarray, list[str]]


class Ref(NamedTuple):
    """What the column-wise domains need of a course: its study ID and infusion day."""

    study_id: str
    day0: dt.date | None


class DomainColumns(dict[str, Any]):
    """One domain's columns (variable -> float array, or :class:`pandas.Categorical` for
    text: no ten million Python string references) and, in :attr:`coded`, each text variable
    as (codes, distinct texts) — every text used by some row, none twice — for the writers."""

    coded: dict[str, Text]


class _Blocks:
    """Rows of one domain as blocks of columns with their sort keys."""

    def __init__(self, domain: str) -> None:
        self.domain = domain
        self.parts: list[tuple[dict[str, Any], np.ndarray, int, np.ndarray, np.ndarray]] = []

    def add(self, pidx: Any, block: int, rec: Any, sub: Any, mask: Any = None, **cols: Any) -> None:
        """Rows ``pidx`` (patient position), ``rec`` (record order) and ``sub`` (position in
        the record) of ``block``; ``cols``: float arrays, text as (codes, texts) or object
        arrays, or scalars; ``mask`` keeps some rows."""
        pidx = np.asarray(pidx, dtype=np.int64)
        n = len(pidx)
        rec = np.broadcast_to(np.asarray(rec), (n,))
        sub = np.broadcast_to(np.asarray(sub), (n,))
        arrays = {k: _column(n, v) for k, v in cols.items()}
        if mask is not None:
            pidx, rec, sub = pidx[mask], rec[mask], sub[mask]
            arrays = {k: v[mask] if isinstance(v, np.ndarray) else (v[0][mask], v[1])
                      for k, v in arrays.items()}  # fmt: skip
        self.parts.append((arrays, pidx, block, rec, sub))


def _column(n: int, value: Any) -> np.ndarray | Text:
    """A block's column: float array, or text as (codes, texts)."""
    if isinstance(value, tuple):
        return np.asarray(value[0], dtype=np.int64), list(value[1])
    if isinstance(value, str):
        return np.zeros(n, dtype=np.int64), [value]
    if isinstance(value, float):
        return np.full(n, value, dtype=float)
    if value.dtype.kind == "f":
        return value
    codes, uniques = pd.factorize(value, use_na_sentinel=True)
    return np.where(codes < 0, len(uniques), codes), [*(str(u) for u in uniques), ""]


def _compact(codes: np.ndarray, texts: list[str]) -> Text:
    """(codes, texts) keeping only the texts some row uses (the writers size text columns
    by their longest text), each once."""
    if not len(codes):
        return codes.astype(np.int64), []
    if len(texts) == 1:  # a constant
        return codes, texts
    index: dict[str, int] = {}
    remap = np.array([index.setdefault(t, len(index)) for t in texts], dtype=np.int64)
    unique = list(index)
    if len(unique) < len(texts):
        codes = remap[codes]
    used = np.bincount(codes, minlength=len(unique)) > 0
    if used.all():
        return codes, unique
    new = np.cumsum(used) - 1
    return new[codes], [t for t, u in zip(unique, used.tolist(), strict=True) if u]


def _objects(values: Sequence[Any]) -> np.ndarray:
    """An object array of ``values`` (kept as they are, also tuples)."""
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def _finish(columns: dict[str, Any], n: int) -> DomainColumns:
    """A domain's columns (float arrays or (codes, texts)) as :class:`DomainColumns`."""
    out = DomainColumns()
    out.coded = {}
    for name, col in columns.items():
        if isinstance(col, tuple):
            codes, texts = _compact(*col)
            out[name] = pd.Categorical.from_codes(codes, categories=texts, validate=False)
            out.coded[name] = (codes, texts)
        else:
            out[name] = col
    return out


def _seq(pidx: np.ndarray) -> np.ndarray:
    """--SEQ: 1, 2, … within each patient (rows grouped by patient)."""
    n = len(pidx)
    if not n:
        return np.zeros(0, dtype=float)
    starts = np.r_[0, np.flatnonzero(np.diff(pidx)) + 1]
    first = np.repeat(starts, np.diff(np.r_[starts, n]))
    return (np.arange(n) - first + 1).astype(float)


def _assemble(b: _Blocks, study: str, usubjid: list[str]) -> DomainColumns:
    dom = sdtm.DOMAINS[b.domain]
    parts = b.parts
    pidx = np.concatenate([p[1] for p in parts]) if parts else np.zeros(0, np.int64)
    n = len(pidx)
    block = np.concatenate([np.full(len(p[1]), p[2]) for p in parts]) if parts else pidx
    rec = np.concatenate([p[3] for p in parts]) if parts else pidx
    sub = np.concatenate([p[4] for p in parts]) if parts else pidx
    order = np.lexsort([sub, rec, block, pidx])
    pidx = pidx[order]
    out: dict[str, Any] = {}
    for v in dom.variables:
        if v.name == "STUDYID":
            out[v.name] = (np.zeros(n, dtype=np.int64), [study])
        elif v.name == "DOMAIN":
            out[v.name] = (np.zeros(n, dtype=np.int64), [b.domain])
        elif v.name == "USUBJID":
            out[v.name] = (pidx, usubjid)
        elif v.name == f"{b.domain}SEQ":
            out[v.name] = _seq(pidx)
        elif v.type == "Num":
            pieces = [p[0].get(v.name, _nan(len(p[1]))) for p in parts]
            out[v.name] = np.concatenate(pieces)[order] if pieces else _nan(0)
        else:
            texts: list[str] = []
            pieces = []
            for p in parts:
                codes, part_texts = p[0].get(v.name, (np.zeros(len(p[1]), np.int64), [""]))
                pieces.append(codes + len(texts))
                texts.extend(part_texts)
            codes = np.concatenate(pieces)[order] if pieces else np.zeros(0, np.int64)
            out[v.name] = (codes, texts)
    return _finish(out, n)


def _nan(n: int) -> np.ndarray:
    return np.full(n, np.nan, dtype=float)


# --------------------------------------------------------------------------- coded values
def _text(col: Coded, fmt: Callable[[Any], str] = str) -> Text:
    """A coded field as text: ``fmt`` of each distinct value, NULL as empty."""
    values = col.values
    return col.codes, [*(fmt(x) for x in values[:-1]), ""]


def _nums(col: Coded) -> np.ndarray:
    """A coded field as floats (NULL → NaN)."""
    table = np.array([np.nan if x is None else float(x) for x in col.values], dtype=float)
    return table[col.codes]


def _flags(col: Coded) -> np.ndarray:
    return np.array([bool(x) for x in col.values], dtype=bool)[col.codes]


def _days(col: Coded) -> np.ndarray:
    """A coded date field as day numbers (float, NULL → NaN)."""
    table = np.array(
        [np.nan if x is None else float(x.toordinal()) for x in col.values], dtype=float
    )
    return table[col.codes]


def _study_days(day0: np.ndarray, days: np.ndarray) -> np.ndarray:
    """SDTM study days (no day 0; NaN without a date or an infusion) of day numbers."""
    diff = days - day0
    return np.where(diff >= 0, diff + 1, diff)


def _take(text: Text, rows: np.ndarray) -> Text:
    return text[0][rows], text[1]


def _float_text(values: np.ndarray, fmt: Callable[[float], str]) -> Text:
    """Float values as text (``fmt`` of each distinct value, NaN as empty)."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    return np.where(codes < 0, len(uniques), codes), [*(fmt(u) for u in uniques), ""]


def _expand(col: Coded, entries: list[list[Any]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows of a field holding several entries per row (a tuple, a mapping): ``entries`` of
    each distinct value; returns per entry row: (row, position in the row, index into the
    flattened ``entries``)."""
    lens = np.array([len(e) for e in entries], dtype=np.int64)
    per_row = lens[col.codes]
    rows = np.repeat(np.arange(len(col.codes)), per_row)
    starts = np.cumsum(per_row) - per_row
    j = np.arange(len(rows)) - np.repeat(starts, per_row)
    offsets = np.cumsum(lens) - lens
    return rows, j, offsets[col.codes[rows]] + j


def _reference(courses: Sequence[Any], study: str) -> tuple[list[str], list[str], np.ndarray]:
    sids = [co.study_id for co in courses]
    usubjid = [f"{study}-{sid}" for sid in sids]
    day0 = np.array(
        [np.nan if co.day0 is None else float(co.day0.toordinal()) for co in courses],
        dtype=float,
    )
    return sids, usubjid, day0


def domain_columns(
    registry: Any, courses: Sequence[c.Course], *, study: str = "IMMUNORESET"
) -> tuple[dict[str, DomainColumns], list[dt.date | None]]:
    """LB, CM, VS, QS and FA as columns for ``courses`` (loaded for the actor, so in scope,
    without :data:`COLUMN_ENTITIES`), and each course's latest lab / daily date (for
    RFENDTC when there is no follow-up record)."""
    sids, usubjid, day0 = _reference(courses, study)
    C = codes()
    cm, vs, qs, fa = (_Blocks(d) for d in ("CM", "VS", "QS", "FA"))

    # ---- medications: CM block 0
    pidx, m = read_coded(
        registry, "medications", sids, ("drug", "drug_class", "dose", "dose_unit", "start", "stop")
    )
    rec = np.arange(len(pidx))
    has_stop = ~np.isnan(_days(m["stop"]))
    cm.add(
        pidx,
        0,
        rec,
        0,
        CMTRT=_text(m["drug"], str.upper),
        CMCAT=_text(m["drug_class"], str.upper),
        CMDOSE=_nums(m["dose"]),
        CMDOSU=_text(m["dose_unit"]),
        CMSTDTC=_text(m["start"], _ISO),
        CMENDTC=_text(m["stop"], _ISO),
        CMENRF=(has_stop.astype(np.int64), ["ONGOING", ""]),
        CMSTDY=_study_days(day0[pidx], _days(m["start"])),
        CMENDY=_study_days(day0[pidx], _days(m["stop"])),
    )

    # ---- daily assessments: CM block 1, VS block 0, QS block 0, FA
    dpidx, d = read_coded(registry, "daily_assessments", sids, _DAILY_FIELDS)
    rec = np.arange(len(dpidx))
    when = _text(d["date"], _ISO)
    ddays = _days(d["date"])
    dy = _study_days(day0[dpidx], ddays)
    for k, (name, drug) in enumerate(sdtm._DAILY_DRUGS.items()):
        cm.add(dpidx, 1, rec, k, _flags(d[name]), CMTRT=drug, CMCAT="CRS_ICANS_TREATMENT",
               CMSTDTC=when, CMENDTC=when, CMSTDY=dy, CMENDY=dy)  # fmt: skip
    drugs = [[v.upper() for v in t] for t in d["vasopressors"].values]
    rows, j, flat = _expand(d["vasopressors"], drugs)
    if len(rows):
        cm.add(
            dpidx[rows],
            1,
            rows,
            len(sdtm._DAILY_DRUGS) + j,
            CMTRT=(flat, [v for t in drugs for v in t]),
            CMCAT="CRS_ICANS_TREATMENT",
            CMSTDTC=_take(when, rows),
            CMENDTC=_take(when, rows),
            CMSTDY=dy[rows],
            CMENDY=dy[rows],
        )
    for k, name in enumerate(("temperature_max_c", "oxygen_flow_l_min")):
        v = C["vitals"][name]
        unit = "C" if v["ucum"] == "Cel" else v["ucum"]
        values = _nums(d[name])
        text = _text(d[name], sdtm._fmt)
        vs.add(dpidx, 0, rec, k, ~np.isnan(values), VSTESTCD=v["vstestcd"],
               VSTEST=v["display"], VSORRES=text, VSORRESU=unit, VSSTRESC=text,
               VSSTRESN=values, VSSTRESU=unit, VSDTC=when, VSDY=dy)  # fmt: skip
    for k, name in enumerate(("ice_score", "capd_score")):
        n = C["neuro"][name]
        values = _nums(d[name])
        text = _text(d[name], lambda x: str(int(x)))
        qs.add(dpidx, 0, rec, k, ~np.isnan(values), QSTESTCD=n["qstestcd"],
               QSTEST=n["display"][:40], QSCAT=n["qscat"], QSORRES=text, QSSTRESC=text,
               QSSTRESN=values, QSDTC=when, QSDY=dy)  # fmt: skip
    for k, (name, (code, test, cat, obj)) in enumerate(sdtm._FA_META.items()):
        if name in _FLAGS:
            text = _text(d[name], lambda x: "Y" if x else "N")
        else:
            text = _text(d[name], sdtm._finding_text)
        fa.add(dpidx, 0, rec, k, FATESTCD=code, FATEST=test, FAOBJ=obj, FACAT=cat,
               FAORRES=text, FASTRESC=text, FADTC=when, FADY=dy)  # fmt: skip

    # ---- body measurements: VS block 1
    apidx, a = read_coded(registry, "anthropometrics", sids, ("date", "weight_kg", "height_cm"))
    rec = np.arange(len(apidx))
    awhen = _text(a["date"], _ISO)
    ady = _study_days(day0[apidx], _days(a["date"]))
    for k, name in enumerate(("weight_kg", "height_cm")):
        v = C["vitals"][name]
        values = _nums(a[name])
        text = _text(a[name], sdtm._fmt)
        vs.add(apidx, 1, rec, k, ~np.isnan(values), VSTESTCD=v["vstestcd"],
               VSTEST=v["display"], VSORRES=text, VSORRESU=v["ucum"], VSSTRESC=text,
               VSSTRESN=values, VSSTRESU=v["ucum"], VSDTC=awhen, VSDY=ady)  # fmt: skip

    # ---- disease assessments: QS block 1 (total, then items in name order)
    gpidx, g = read_coded(
        registry, "disease_assessments", sids, ("date", "instrument", "score", "items")
    )
    rec = np.arange(len(gpidx))
    gwhen = _text(g["date"], _ISO)
    gdy = _study_days(day0[gpidx], _days(g["date"]))
    inst = C["instruments"]
    instrument = g["instrument"]
    cat = _text(instrument, lambda i: inst[i]["qscat"])
    text = _text(g["score"], sdtm._fmt)
    qs.add(gpidx, 1, rec, 0, QSTESTCD=_text(instrument, _total_code),
           QSTEST=_text(instrument, lambda i: f"{inst[i]['qscat']} total score"[:40]),
           QSCAT=cat, QSORRES=text, QSSTRESC=text, QSSTRESN=_nums(g["score"]),
           QSDTC=gwhen, QSDY=gdy)  # fmt: skip
    entries = [sorted(mp.items()) for mp in g["items"].values]
    rows, j, flat = _expand(g["items"], entries)
    if len(rows):
        names, name_of = pd.factorize(_objects([k for e in entries for k, _ in e]))
        values = np.array([float(x) for e in entries for _, x in e], dtype=float)[flat]
        text = _float_text(values, sdtm._fmt)
        # QSTESTCD depends on the instrument and the item
        nn = max(1, len(name_of))
        pair, pairs = pd.factorize(instrument.codes[rows] * nn + names[flat])
        testcd = [sdtm.item_testcd(instrument.values[p // nn], name_of[p % nn]) for p in pairs]
        qs.add(
            gpidx[rows],
            1,
            rows,
            j + 1,
            QSTESTCD=(pair, testcd),
            QSTEST=(names[flat], [x.replace("_", " ")[:40] for x in name_of]),
            QSCAT=_take(cat, rows),
            QSORRES=text,
            QSSTRESC=text,
            QSSTRESN=values,
            QSDTC=_take(gwhen, rows),
            QSDY=gdy[rows],
        )
    out = {b.domain: _assemble(b, study, usubjid) for b in (cm, vs, qs, fa)}
    lpidx, lab = read_coded(
        registry, "labs", sids, ("date", "analyte", "value", "unit", "lloq", "below_lloq")
    )
    out["LB"] = _labs(lpidx, lab, study, usubjid, day0)
    last = _last_dates(len(sids), [(lpidx, _days(lab["date"])), (dpidx, ddays)])
    return out, last


def lab_columns(
    registry: Any, courses: Sequence[Any], *, study: str = "IMMUNORESET"
) -> DomainColumns:
    """The LB domain as columns, read column-wise from the registry's lab table for
    ``courses`` (loaded for the actor, so in scope) — the same rows
    :func:`immunoreset.interop.sdtm._lab_rows` gives from the courses' lab records (tested)."""
    sids, usubjid, day0 = _reference(courses, study)
    pidx, lab = read_coded(
        registry, "labs", sids, ("date", "analyte", "value", "unit", "lloq", "below_lloq")
    )
    return _labs(pidx, lab, study, usubjid, day0)


def _labs(
    pidx: np.ndarray, lab: dict[str, Coded], study: str, usubjid: list[str], day0: np.ndarray
) -> DomainColumns:
    n = len(pidx)
    analyte = lab["analyte"]
    meta = [sdtm._LAB_META[a] for a in analyte.values[:-1]]
    below = _flags(lab["below_lloq"])
    value = lab["value"]
    values = _nums(value)
    # LBORRES: the value's text, "<" before it when below the limit of quantitation
    shown = [sdtm._fmt(x) for x in value.values[:-1]]
    result = (value.codes * 2 + below, [t for x in [*shown, ""] for t in (x, f"<{x}")])
    unit = _text(lab["unit"])
    zeros = np.zeros(n, dtype=np.int64)
    return _finish(
        {
            "STUDYID": (zeros, [study]),
            "DOMAIN": (zeros, ["LB"]),
            "USUBJID": (pidx, usubjid),
            "LBSEQ": _seq(pidx),
            "LBTESTCD": (analyte.codes, [m[0] for m in meta] + [""]),
            "LBTEST": (analyte.codes, [m[1] for m in meta] + [""]),
            "LBORRES": result,
            "LBORRESU": unit,
            "LBSTRESC": result,
            "LBSTRESN": np.where(below, np.nan, values),
            "LBSTRESU": unit,
            "LBSPEC": (analyte.codes, [m[2] for m in meta] + [""]),
            "LBLLOQ": _nums(lab["lloq"]),
            "LBDTC": _text(lab["date"], _ISO),
            "LBDY": _study_days(day0[pidx], _days(lab["date"])),
        },
        n,
    )


def _last_dates(n: int, tables: Sequence[tuple[np.ndarray, np.ndarray]]) -> list[dt.date | None]:
    """Per patient position: the latest date of the rows of ``tables`` ((patient positions,
    day numbers) each; None without any) — what :attr:`Course.last_contact` takes from labs
    and daily assessments."""
    last = np.full(n, -1, dtype=np.int64)
    for pidx, days in tables:
        if len(pidx):
            np.maximum.at(last, pidx, days.astype(np.int64))
    return [None if x < 0 else dt.date.fromordinal(int(x)) for x in last.tolist()]


# --------------------------------------------------------------------------- two processes
Packed = dict[str, dict[str, tuple[Any, ...]]]


def _pack(domains: dict[str, DomainColumns]) -> Packed:
    """Domains with text columns as (codes, distinct texts): cheap to send between processes."""
    out: Packed = {}
    for name, cols in domains.items():
        out[name] = {}
        for var, col in cols.items():
            if col.dtype.kind == "f":
                out[name][var] = ("f", col)
            else:
                codes, texts = cols.coded[var]
                out[name][var] = ("t", codes.astype(np.int32), texts)
    return out


def _merge(parts: Sequence[Packed]) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Concatenate packed parts (patients in part order): the domains' columns (text as
    :class:`pandas.Categorical`) and, per domain, the text columns' (codes, texts) for the
    writers (see ``sdtm.factorize``)."""
    domains: dict[str, dict[str, Any]] = {}
    factorized: dict[str, dict[str, Any]] = {}
    for name in parts[0]:
        domains[name], factorized[name] = {}, {}
        for var, first in parts[0][name].items():
            if first[0] == "f":
                domains[name][var] = np.concatenate([p[name][var][1] for p in parts])
                continue
            texts: list[str] = []
            index: dict[str, int] = {}
            pieces = []
            for p in parts:
                _, codes, part_texts = p[name][var]
                remap = np.array([index.setdefault(t, len(index)) for t in part_texts] or [0])
                pieces.append(remap[codes] if len(codes) else codes)
            texts = list(index)
            codes = np.concatenate(pieces).astype(np.int64)
            codes, texts = _compact(codes, texts)
            domains[name][var] = pd.Categorical.from_codes(codes, categories=texts, validate=False)
            factorized[name][var] = (codes, texts)
    return domains, factorized


def _part(url: str, refs: list[Ref], study: str) -> tuple[Packed, list[dt.date | None]]:
    """One process: the column-wise domains of its share of the patients."""
    from immunoreset.registry import Registry
    from immunoreset.registry.repository import gc_paused

    with Registry(url) as reg, gc_paused():
        domains, last = domain_columns(reg, refs, study=study)
        return _pack(domains), last


def parallel_columns(
    registry: Any, courses: Sequence[Any], *, study: str = "IMMUNORESET", workers: int = 2
) -> Any:
    """:func:`domain_columns` split over ``workers`` processes by patients (contiguous
    shares, so ``--SEQ`` per patient is unchanged), started at once; returns a function that
    waits for them and gives (domains, writers' factorization, last dates). The caller builds
    the other domains meanwhile."""
    from immunoreset.interop._workers import start

    refs = [Ref(co.study_id, co.day0) for co in courses]
    size = max(1, -(-len(refs) // workers))
    shares = [refs[i : i + size] for i in range(0, len(refs), size)] or [[]]
    url = registry.engine.url.render_as_string(hide_password=False)
    wait = start(_part, [(url, share, study) for share in shares], what="SDTM export")

    def collect() -> tuple[dict[str, dict[str, Any]], dict[str, Any], list[dt.date | None]]:
        results = wait()
        domains, factorized = _merge([r[0] for r in results])
        last = [d for r in results for d in r[1]]
        return domains, factorized, last

    return collect


def _total_code(instrument: str) -> str:
    return sdtm.item_testcd(instrument, None)


# --------------------------------------------------------------------------- ZP
def zp_columns(
    courses: Sequence[c.Course],
    *,
    study: str = "IMMUNORESET",
    qc: Any = None,
) -> DomainColumns:
    """The ZP domain (manufacturing attributes) as columns, from the courses' apheresis,
    batch and bag records and ``qc`` (batch ID -> release-QC results, see
    :func:`immunoreset.interop.sdtm.load_qc`): the rows :func:`immunoreset.interop.sdtm._zp_rows`
    adds one by one, in its order — per patient the apheresis products (cells, volume), then
    each batch (source, platform, harvest, status, its QC results), then each bag (batch,
    cells, volume, status, expiry and location when recorded) — tested equal."""
    _, usubjid, day0 = _reference(courses, study)
    zp = _Blocks("ZP")

    def add(
        pidx: np.ndarray,
        block: int,
        rec: np.ndarray,
        sub: Any,
        ref: Sequence[str],
        cat: str,
        code: Any,
        test: Any,
        values: Sequence[Any],
        unit: Any,
        when: Sequence[dt.date | None],
        mask: Any = None,
        **extra: Any,
    ) -> None:
        pairs = [sdtm._zp_value(v) for v in values]
        text = _objects(["" if t is None else t for t, _ in pairs])
        number = np.array([np.nan if x is None else x for _, x in pairs], dtype=float)
        dates = _coded(when)
        zp.add(pidx, block, rec, sub, mask, ZPREFID=_objects(ref), ZPCAT=cat, ZPTESTCD=code,
               ZPTEST=test, ZPORRES=text, ZPORRESU=unit, ZPSTRESC=text, ZPSTRESN=number,
               ZPSTRESU=unit, ZPDTC=_text(dates, _ISO),
               ZPDY=_study_days(day0[pidx], _days(dates)), **extra)  # fmt: skip

    # apheresis products: block 0
    aph = [(i, a) for i, co in enumerate(courses) for a in co.apheresis]
    pidx = np.array([i for i, _ in aph], dtype=np.int64)
    rec = np.arange(len(aph))
    ids = [a.apheresis_id for _, a in aph]
    dates = [a.date for _, a in aph]
    for k, (code, test, field, unit) in enumerate(
        (
            ("CD3CELLS", "CD3+ cells collected", "cd3_cells", "cells"),
            ("APHVOL", "Apheresis product volume", "volume_ml", "mL"),
        )
    ):
        add(pidx, 0, rec, k, ids, "APHERESIS", code, test,
            [getattr(a, field) for _, a in aph], unit, dates)  # fmt: skip

    # batches and their release QC: block 1
    bat = [(i, b) for i, co in enumerate(courses) for b in co.batches]
    pidx = np.array([i for i, _ in bat], dtype=np.int64)
    rec = np.arange(len(bat))
    ids = [b.batch_id for _, b in bat]
    start = [b.process_start for _, b in bat]
    iso = dt.date.isoformat
    for k, (code, test, values) in enumerate(
        (
            ("APHID", "Source apheresis ID", [b.apheresis_id for _, b in bat]),
            ("PLATFORM", "Manufacturing platform", [b.platform for _, b in bat]),
            ("HARVEST", "Harvest date", [b.harvest_date and iso(b.harvest_date) for _, b in bat]),
            ("BATSTAT", "Batch status", [b.status.upper() for _, b in bat]),
        )
    ):
        add(pidx, 1, rec, k, ids, "BATCH", code, test, values, "", start)
    res = [
        (r, j, b, x)
        for r, (_, b) in enumerate(bat)
        for j, x in enumerate((qc or {}).get(b.batch_id, ()))
    ]
    if res:
        rows = np.array([r for r, _, _, _ in res], dtype=np.int64)
        codes_of = {a: sdtm.qc_testcd(a) for a in {x.attribute for *_, x in res}}
        add(
            pidx[rows],
            1,
            rows,
            np.array([4 + j for _, j, _, _ in res]),
            [b.batch_id for _, _, b, _ in res],
            "RELEASE QC",
            _objects([codes_of[x.attribute] for *_, x in res]),
            _objects([x.attribute[:40] for *_, x in res]),
            [x.value for *_, x in res],
            _objects([x.unit or "" for *_, x in res]),
            [b.harvest_date or b.process_start for _, _, b, _ in res],
            ZPNRIND=_objects([x.status.upper() for *_, x in res]),
            ZPORNRLO=_objects(["" if x.limit is None else x.limit for *_, x in res]),
        )

    # bags: block 2 (made on their batch's harvest date)
    bag = []
    for i, co in enumerate(courses):
        if co.bags:
            harvest = {b.batch_id: b.harvest_date for b in co.batches}
            bag.extend((i, g, harvest.get(g.batch_id)) for g in co.bags)
    pidx = np.array([i for i, _, _ in bag], dtype=np.int64)
    rec = np.arange(len(bag))
    ids = [g.bag_id for _, g, _ in bag]
    made = [m for _, _, m in bag]
    for k, (code, test, values, unit) in enumerate(
        (
            ("BATCHID", "Batch ID", [g.batch_id for _, g, _ in bag], ""),
            ("CARTCELL", "CAR+ T cells in bag", [g.car_t_cells for _, g, _ in bag], "cells"),
            ("BAGVOL", "Bag volume", [g.volume_ml for _, g, _ in bag], "mL"),
            ("BAGSTAT", "Bag status", [g.status.upper() for _, g, _ in bag], ""),
            ("EXPIRY", "Bag expiry date", [g.expiry and iso(g.expiry) for _, g, _ in bag], ""),
            ("LOCATION", "Storage location", [g.location for _, g, _ in bag], ""),
        )
    ):
        keep = None if k < 4 else np.array([v is not None for v in values], dtype=bool)
        add(pidx, 2, rec, k, ids, "BAG", code, test, values, unit, made, keep)
    return _assemble(zp, study, usubjid)


def _coded(values: Sequence[Any]) -> Coded:
    """A list of values (``None`` = missing) as :class:`Coded`: codes into its distinct
    values, the last of them ``None``."""
    codes, uniques = pd.factorize(_objects(values), use_na_sentinel=True)
    return Coded(np.where(codes < 0, len(uniques), codes), [*uniques, None])
