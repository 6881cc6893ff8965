"""Column-wise SDTM domains built from registry tables (the export's fast path).

The courses are loaded without the record types read here (``iter_courses(skip=…)``); these
tables are read as columns (:mod:`immunoreset.interop._columns`) and each domain's rows are
made with array operations, in blocks that :func:`_assemble` orders exactly as
:func:`immunoreset.interop.sdtm._course_rows` adds them — per patient, then block (e.g. VS:
the daily vital signs before the body measurements), record, and position within the record —
before numbering ``--SEQ``. Tested equal to the object path, domain by domain.

Domains: CM (medications, then each daily assessment's drugs), VS (daily temperature and
oxygen flow, then weight and height), QS (daily ICE / CAPD, then disease-activity totals and
items), FA (daily CRS/ICANS findings).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import fields
from typing import Any, NamedTuple

import numpy as np

from immunoreset import course as c
from immunoreset.interop import sdtm
from immunoreset.interop._codes import codes
from immunoreset.interop._columns import read_columns

__all__ = ["COLUMN_ENTITIES", "Ref", "domain_columns", "parallel_columns", "zp_columns"]

#: Entities read column-wise (skipped when loading the courses).
COLUMN_ENTITIES = ("labs", "daily_assessments", "disease_assessments", "anthropometrics",
                   "medications")  # fmt: skip

_DAILY_FIELDS = tuple(f.name for f in fields(c.DailyAssessment))
_FLAGS = {f.name for f in fields(c.DailyAssessment) if f.default is False}


class Ref(NamedTuple):
    """What the column-wise domains need of a course: its study ID and infusion day."""

    study_id: str
    day0: dt.date | None


class _Blocks:
    """Rows of one domain as blocks of columns with their sort keys."""

    def __init__(self, domain: str) -> None:
        self.domain = domain
        self.parts: list[tuple[dict[str, Any], np.ndarray, int, np.ndarray, np.ndarray]] = []

    def add(self, pidx: Any, block: int, rec: Any, sub: Any, mask: Any = None, **cols: Any) -> None:
        """Rows ``pidx`` (patient position), ``rec`` (record order) and ``sub`` (position in
        the record) of ``block``; ``cols`` arrays or scalars; ``mask`` keeps some rows."""
        pidx = np.asarray(pidx)
        n = len(pidx)
        rec = np.broadcast_to(np.asarray(rec), (n,))
        sub = np.broadcast_to(np.asarray(sub), (n,))
        arrays = {k: (v if isinstance(v, np.ndarray) else _full(n, v)) for k, v in cols.items()}
        if mask is not None:
            pidx, rec, sub = pidx[mask], rec[mask], sub[mask]
            arrays = {k: v[mask] for k, v in arrays.items()}
        self.parts.append((arrays, pidx, block, rec, sub))


def _full(n: int, value: Any) -> np.ndarray:
    if isinstance(value, float):
        return np.full(n, value, dtype=float)
    out = np.empty(n, dtype=object)
    out[:] = [value] * n if n else []
    return out


def _assemble(b: _Blocks, study: str, usubjid: np.ndarray) -> dict[str, np.ndarray]:
    dom = sdtm.DOMAINS[b.domain]
    pidx = np.concatenate([p[1] for p in b.parts]) if b.parts else np.zeros(0, int)
    n = len(pidx)
    block = np.concatenate([np.full(len(p[1]), p[2]) for p in b.parts]) if b.parts else pidx
    rec = np.concatenate([p[3] for p in b.parts]) if b.parts else pidx
    sub = np.concatenate([p[4] for p in b.parts]) if b.parts else pidx
    order = np.lexsort([sub, rec, block, pidx])
    pidx = pidx[order]
    starts = np.r_[0, np.flatnonzero(np.diff(pidx)) + 1] if n else np.zeros(0, int)
    first = np.repeat(starts, np.diff(np.r_[starts, n])) if n else np.zeros(0, int)
    out: dict[str, np.ndarray] = {}
    for v in dom.variables:
        if v.name == "STUDYID":
            col = _full(n, study)
        elif v.name == "DOMAIN":
            col = _full(n, b.domain)
        elif v.name == "USUBJID":
            col = usubjid[pidx]
        elif v.name == f"{b.domain}SEQ":
            col = (np.arange(n) - first + 1).astype(float)
        else:
            num = v.type == "Num"
            pieces = [
                p[0][v.name] if v.name in p[0] else _full(len(p[1]), np.nan if num else "")
                for p in b.parts
            ]
            col = np.concatenate(pieces) if pieces else _full(0, np.nan if num else "")
            col = col.astype(float) if num else col.astype(object)
            col = col[order]
        out[v.name] = col
    return out


def _iso(dates: np.ndarray) -> np.ndarray:
    return sdtm._texts(dates, dt.date.isoformat)


def _num(values: np.ndarray) -> np.ndarray:
    """Floats of an object array (None → NaN)."""
    return np.array([np.nan if x is None else float(x) for x in values.tolist()], dtype=float)


def domain_columns(
    registry: Any, courses: Sequence[c.Course], *, study: str = "IMMUNORESET"
) -> tuple[dict[str, dict[str, Any]], list[dt.date | None]]:
    """LB, CM, VS, QS and FA as columns for ``courses`` (loaded for the actor, so in scope,
    without :data:`COLUMN_ENTITIES`), and each course's latest lab / daily date (for
    RFENDTC when there is no follow-up record)."""
    sids = [co.study_id for co in courses]
    usubjid = np.array([f"{study}-{sid}" for sid in sids], dtype=object)
    day0 = np.array(
        [np.datetime64(co.day0, "D") if co.day0 else np.datetime64("NaT") for co in courses],
        dtype="datetime64[D]",
    )
    C = codes()
    cm, vs, qs, fa = (_Blocks(d) for d in ("CM", "VS", "QS", "FA"))

    # ---- medications: CM block 0
    m = read_columns(
        registry, "medications", sids, ("drug", "drug_class", "dose", "dose_unit", "start", "stop")
    )
    rec = np.arange(len(m))
    stop = m["stop"]
    has_stop = np.array([x is not None for x in stop.tolist()], dtype=bool)
    cm.add(
        m.pidx,
        0,
        rec,
        0,
        CMTRT=sdtm._texts(m["drug"], str.upper),
        CMCAT=sdtm._texts(m["drug_class"], str.upper),
        CMDOSE=_num(m["dose"]),
        CMDOSU=m["dose_unit"],
        CMSTDTC=_iso(m["start"]),
        CMENDTC=np.where(has_stop, _iso(stop), ""),
        CMENRF=np.where(has_stop, "", "ONGOING").astype(object),
        CMSTDY=sdtm._study_days(day0[m.pidx], m["start"]),
        CMENDY=np.where(has_stop, sdtm._study_days(day0[m.pidx], stop), np.nan),
    )

    # ---- daily assessments: CM block 1, VS block 0, QS block 0, FA
    d = read_columns(registry, "daily_assessments", sids, tuple(f for f in _DAILY_FIELDS))
    rec = np.arange(len(d))
    when = _iso(d["date"])
    dy = sdtm._study_days(day0[d.pidx], d["date"])
    for k, (name, drug) in enumerate(sdtm._DAILY_DRUGS.items()):
        given = d[name].astype(bool)
        cm.add(d.pidx, 1, rec, k, given, CMTRT=drug, CMCAT="CRS_ICANS_TREATMENT",
               CMSTDTC=when, CMENDTC=when, CMSTDY=dy, CMENDY=dy)  # fmt: skip
    vaso = [(i, j, v) for i, t in enumerate(d["vasopressors"].tolist()) for j, v in enumerate(t)]
    if vaso:
        rows = np.array([i for i, _, _ in vaso])
        cm.add(
            d.pidx[rows],
            1,
            rows,
            np.array([len(sdtm._DAILY_DRUGS) + j for _, j, _ in vaso]),
            CMTRT=np.array([v.upper() for _, _, v in vaso], dtype=object),
            CMCAT="CRS_ICANS_TREATMENT",
            CMSTDTC=when[rows],
            CMENDTC=when[rows],
            CMSTDY=dy[rows],
            CMENDY=dy[rows],
        )
    for k, name in enumerate(("temperature_max_c", "oxygen_flow_l_min")):
        v = C["vitals"][name]
        unit = "C" if v["ucum"] == "Cel" else v["ucum"]
        values = _num(d[name])
        text = sdtm._texts(values, sdtm._fmt)
        vs.add(d.pidx, 0, rec, k, ~np.isnan(values), VSTESTCD=v["vstestcd"],
               VSTEST=v["display"], VSORRES=text, VSORRESU=unit, VSSTRESC=text,
               VSSTRESN=values, VSSTRESU=unit, VSDTC=when, VSDY=dy)  # fmt: skip
    for k, name in enumerate(("ice_score", "capd_score")):
        n = C["neuro"][name]
        values = _num(d[name])
        text = sdtm._texts(values, lambda x: str(int(x)))
        qs.add(d.pidx, 0, rec, k, ~np.isnan(values), QSTESTCD=n["qstestcd"],
               QSTEST=n["display"][:40], QSCAT=n["qscat"], QSORRES=text, QSSTRESC=text,
               QSSTRESN=values, QSDTC=when, QSDY=dy)  # fmt: skip
    for k, (name, (code, test, cat, obj)) in enumerate(sdtm._FA_META.items()):
        if name in _FLAGS:
            text = np.where(d[name].astype(bool), "Y", "N").astype(object)
        else:
            text = sdtm._texts(d[name], sdtm._finding_text)
        fa.add(d.pidx, 0, rec, k, FATESTCD=code, FATEST=test, FAOBJ=obj, FACAT=cat,
               FAORRES=text, FASTRESC=text, FADTC=when, FADY=dy)  # fmt: skip

    # ---- body measurements: VS block 1
    a = read_columns(registry, "anthropometrics", sids, ("date", "weight_kg", "height_cm"))
    rec = np.arange(len(a))
    when = _iso(a["date"])
    dy = sdtm._study_days(day0[a.pidx], a["date"])
    for k, name in enumerate(("weight_kg", "height_cm")):
        v = C["vitals"][name]
        values = _num(a[name])
        text = sdtm._texts(values, sdtm._fmt)
        vs.add(a.pidx, 1, rec, k, ~np.isnan(values), VSTESTCD=v["vstestcd"],
               VSTEST=v["display"], VSORRES=text, VSORRESU=v["ucum"], VSSTRESC=text,
               VSSTRESN=values, VSSTRESU=v["ucum"], VSDTC=when, VSDY=dy)  # fmt: skip

    # ---- disease assessments: QS block 1 (total, then items in name order)
    g = read_columns(
        registry, "disease_assessments", sids, ("date", "instrument", "score", "items")
    )
    rec = np.arange(len(g))
    when = _iso(g["date"])
    dy = sdtm._study_days(day0[g.pidx], g["date"])
    inst = C["instruments"]
    cat = sdtm._texts(g["instrument"], lambda i: inst[i]["qscat"])
    score = _num(g["score"])
    text = sdtm._texts(score, sdtm._fmt)
    qs.add(g.pidx, 1, rec, 0, QSTESTCD=sdtm._texts(g["instrument"], _total_code),
           QSTEST=sdtm._texts(cat, lambda x: f"{x} total score"[:40]), QSCAT=cat,
           QSORRES=text, QSSTRESC=text, QSSTRESN=score, QSDTC=when, QSDY=dy)  # fmt: skip
    items = [
        (i, j, name, value)
        for i, mapping in enumerate(g["items"].tolist())
        for j, (name, value) in enumerate(sorted(mapping.items()))
    ]
    if items:
        rows = np.array([x[0] for x in items])
        pairs = np.empty(len(items), dtype=object)
        pairs[:] = [(g["instrument"][x[0]], x[2]) for x in items]
        values = np.array([float(x[3]) for x in items], dtype=float)
        text = sdtm._texts(values, sdtm._fmt)
        qs.add(
            g.pidx[rows],
            1,
            rows,
            np.array([x[1] + 1 for x in items]),
            QSTESTCD=sdtm._texts(pairs, lambda p: sdtm.item_testcd(*p)),
            QSTEST=sdtm._texts(pairs, lambda p: p[1].replace("_", " ")[:40]),
            QSCAT=cat[rows],
            QSORRES=text,
            QSSTRESC=text,
            QSSTRESN=values,
            QSDTC=when[rows],
            QSDY=dy[rows],
        )
    out = {b.domain: _assemble(b, study, usubjid) for b in (cm, vs, qs, fa)}
    lab = read_columns(
        registry, "labs", sids, ("date", "analyte", "value", "unit", "lloq", "below_lloq")
    )
    out["LB"] = sdtm.lab_columns(registry, courses, study=study, lab=lab)
    return out, _last_dates(len(sids), (lab, d))


def _last_dates(n: int, tables: Sequence[Any]) -> list[dt.date | None]:
    """Per patient position: the latest date of the rows of ``tables`` (None without any) —
    what :attr:`Course.last_contact` takes from labs and daily assessments."""
    import pandas as pd

    last = np.full(n, -1, dtype=np.int64)
    for t in tables:
        if not len(t):
            continue
        codes, uniques = pd.factorize(t["date"])
        days = np.array([u.toordinal() for u in uniques], dtype=np.int64)[codes]
        np.maximum.at(last, t.pidx, days)
    return [None if x < 0 else dt.date.fromordinal(int(x)) for x in last.tolist()]


# --------------------------------------------------------------------------- two processes
Packed = dict[str, dict[str, tuple[Any, ...]]]


def _pack(domains: dict[str, dict[str, Any]]) -> Packed:
    """Domains with text columns as (codes, distinct texts): cheap to send between processes."""
    import pandas as pd

    out: Packed = {}
    for name, cols in domains.items():
        out[name] = {}
        for var, col in cols.items():
            if col.dtype.kind == "f":
                out[name][var] = ("f", col)
            else:
                codes, uniques = pd.factorize(col, use_na_sentinel=False)
                out[name][var] = ("t", codes.astype(np.int32), [str(u) for u in uniques])
    return out


def _merge(parts: Sequence[Packed]) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Concatenate packed parts (patients in part order): the domains' columns and, per
    domain, the text columns' (codes, texts) for the writers (see ``sdtm.factorize``)."""
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
            table = np.empty(len(texts), dtype=object)
            table[:] = texts
            domains[name][var] = table[codes] if len(codes) else np.empty(0, dtype=object)
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
    import multiprocessing

    refs = [Ref(co.study_id, co.day0) for co in courses]
    size = max(1, -(-len(refs) // workers))
    shares = [refs[i : i + size] for i in range(0, len(refs), size)] or [[]]
    url = registry.engine.url.render_as_string(hide_password=False)
    pool = multiprocessing.get_context("spawn").Pool(len(shares))
    pending = [pool.apply_async(_part, (url, share, study)) for share in shares]
    pool.close()

    def collect() -> tuple[dict[str, dict[str, Any]], dict[str, Any], list[dt.date | None]]:
        try:
            results = [r.get() for r in pending]
        finally:
            pool.terminate()
            pool.join()
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
) -> dict[str, np.ndarray]:
    """The ZP domain (manufacturing attributes) as columns, from the courses' apheresis,
    batch and bag records and ``qc`` (batch ID -> release-QC results, see
    :func:`immunoreset.interop.sdtm.load_qc`): the rows :func:`immunoreset.interop.sdtm._zp_rows`
    adds one by one, in its order — per patient the apheresis products (cells, volume), then
    each batch (source, platform, harvest, status, its QC results), then each bag (batch,
    cells, volume, status, expiry and location when recorded) — tested equal."""
    usubjid = np.array([f"{study}-{co.study_id}" for co in courses], dtype=object)
    day0 = np.array(
        [np.datetime64(co.day0, "D") if co.day0 else np.datetime64("NaT") for co in courses],
        dtype="datetime64[D]",
    )
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
        dates = _objects(when)
        zp.add(pidx, block, rec, sub, mask, ZPREFID=_objects(ref), ZPCAT=cat, ZPTESTCD=code,
               ZPTEST=test, ZPORRES=text, ZPORRESU=unit, ZPSTRESC=text, ZPSTRESN=number,
               ZPSTRESU=unit, ZPDTC=_iso(dates), ZPDY=sdtm._study_days(day0[pidx], dates),
               **extra)  # fmt: skip

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


def _objects(values: Sequence[Any]) -> np.ndarray:
    """An object array of ``values`` (kept as they are, also tuples)."""
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out
