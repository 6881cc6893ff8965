"""Program metrics of a point-of-care CAR T manufacturing program.

* Manufacturing success rate: released batches / (released + failed) batches, with the exact
  Clopper–Pearson confidence interval (Clopper CJ, Pearson ES. *Biometrika* 1934;26:404–413;
  computed by :meth:`scipy.stats.binomtest(...).proportion_ci(method="exact")`). Batches still in
  process or in quarantine are not yet an outcome and are counted apart.
* Vein-to-vein time: calendar days from the apheresis a patient's first infusion was made from
  (traced bag → batch → apheresis) to that infusion; median and range.
* Bags per batch: median and range over batches (released ones by default).
* QC attribute distributions: per attribute, number of results, pass / fail / pending counts,
  and median and range of numeric results.

Source
------
Issue 4 (point-of-care manufacturing), item 5. Becilli et al. (abstract, peer-data.md §1.2):
"Manufacturing was successful in all patients, yielding several drug product bags."
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
from scipy import stats

from immunoreset.course import BATCH_STATUS, Apheresis, Bag, Batch, Course, Infusion
from immunoreset.errors import InvalidInput, check_range
from immunoreset.manufacturing.qc import BatchQc

__all__ = [
    "BagsPerBatch",
    "SuccessRate",
    "VeinToVein",
    "bags_per_batch",
    "manufacturing_success",
    "qc_distributions",
    "vein_to_vein",
]


def _seq(field: str, value: Any, kind: type) -> tuple[Any, ...]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise InvalidInput(field, value, f"a list of {kind.__name__}")
    for item in value:
        if not isinstance(item, kind):
            raise InvalidInput(field, item, f"a {kind.__name__}")
    return tuple(value)


@dataclass(frozen=True, slots=True)
class SuccessRate:
    """Manufacturing success with its exact confidence interval.

    Attributes
    ----------
    successes, failures, unresolved : int
        Released, failed, and in-process or quarantined batches.
    attempts : int
        ``successes + failures``.
    score : float | None
        ``successes / attempts``; ``None`` when there is no outcome yet.
    ci_low, ci_high : float | None
        Clopper–Pearson interval at ``confidence``.
    confidence : float
    reasons : tuple[str, ...]
    """

    successes: int
    failures: int
    unresolved: int
    attempts: int
    score: float | None
    ci_low: float | None
    ci_high: float | None
    confidence: float
    reasons: tuple[str, ...]


def manufacturing_success(batches: Sequence[Batch], *, confidence: float = 0.95) -> SuccessRate:
    """Share of batches released, with an exact (Clopper–Pearson) confidence interval.

    Parameters
    ----------
    batches : Sequence[Batch]
    confidence : float
        Two-sided confidence level, within 0.5–0.999 (default 0.95).

    Returns
    -------
    SuccessRate

    Examples
    --------
    >>> import datetime as dt
    >>> from immunoreset.course import Batch
    >>> bs = [Batch(f"B-{i}", f"AP-{i}", "CliniMACS Prodigy", dt.date(2025, 1, 1),
    ...             None, "op", status="released") for i in range(8)]
    >>> r = manufacturing_success(bs)
    >>> r.score, round(r.ci_low, 4), r.ci_high
    (1.0, 0.6306, 1.0)
    """
    items = _seq("batches", batches, Batch)
    conf = float(check_range("confidence", confidence, 0.5, 0.999))
    ok = sum(b.status == "released" for b in items)
    failed = sum(b.status == "failed" for b in items)
    unresolved = len(items) - ok - failed
    n = ok + failed
    reasons = [f"{ok} released, {failed} failed, {unresolved} in process or quarantined"]
    if n == 0:
        reasons.append("no completed batch: success rate undefined")
        return SuccessRate(ok, failed, unresolved, 0, None, None, None, conf, tuple(reasons))
    ci = stats.binomtest(ok, n).proportion_ci(confidence_level=conf, method="exact")
    reasons.append(
        f"success {ok}/{n} = {ok / n:.1%} (exact {conf:.0%} CI {ci.low:.1%}–{ci.high:.1%})"
    )
    return SuccessRate(
        successes=ok,
        failures=failed,
        unresolved=unresolved,
        attempts=n,
        score=ok / n,
        ci_low=float(ci.low),
        ci_high=float(ci.high),
        confidence=conf,
        reasons=tuple(reasons),
    )


@dataclass(frozen=True, slots=True)
class VeinToVein:
    """Vein-to-vein time (days) per patient and its median and range.

    ``table`` columns: ``study_id``, ``apheresis_id``, ``apheresis_date``, ``infusion_date``,
    ``days``, ``traced`` (``False`` when the infused bags could not be traced to an apheresis and
    the latest apheresis on or before the infusion was used).
    """

    table: pd.DataFrame
    n: int
    median_days: float | None
    min_days: int | None
    max_days: int | None
    reasons: tuple[str, ...]


def _traced_apheresis(course: Course, inf: Infusion) -> tuple[Apheresis | None, bool]:
    bags = {b.bag_id: b for b in course.bags}
    batches = {b.batch_id: b for b in course.batches}
    aph = {a.apheresis_id: a for a in course.apheresis}
    for bag_id in inf.bag_ids:
        bag = bags.get(bag_id)
        batch = batches.get(bag.batch_id) if bag is not None else None
        if batch is not None and batch.apheresis_id in aph:
            return aph[batch.apheresis_id], True
    before = [a for a in course.apheresis if a.date <= inf.date]
    return (before[-1] if before else None), False


def vein_to_vein(courses: Sequence[Course]) -> VeinToVein:
    """Days from apheresis to first infusion for each patient with both.

    Examples
    --------
    >>> import datetime as dt
    >>> from immunoreset.course import Apheresis, Course, Infusion, Patient
    >>> p = Patient("RM-001", "OPBG", "F", 2012, 5, "SLE", "M32.1", dt.date(2020, 1, 1))
    >>> c = Course(p, apheresis=(Apheresis("AP-1", dt.date(2025, 1, 1), 1e9, 100.0),),
    ...            infusions=(Infusion(dt.date(2025, 1, 20), ("B-1-01",), 1e6),))
    >>> v = vein_to_vein([c])
    >>> v.median_days, bool(v.table["traced"][0])
    (19.0, False)
    """
    items = _seq("courses", courses, Course)
    rows = []
    reasons = []
    for c in items:
        if c.infusion is None:
            reasons.append(f"{c.study_id}: not infused, left out")
            continue
        aph, traced = _traced_apheresis(c, c.infusion)
        if aph is None:
            reasons.append(f"{c.study_id}: no apheresis on or before infusion, left out")
            continue
        if not traced:
            reasons.append(f"{c.study_id}: infused bags not traced; latest apheresis used")
        rows.append(
            {
                "study_id": c.study_id,
                "apheresis_id": aph.apheresis_id,
                "apheresis_date": aph.date,
                "infusion_date": c.infusion.date,
                "days": (c.infusion.date - aph.date).days,
                "traced": traced,
            }
        )
    cols = ["study_id", "apheresis_id", "apheresis_date", "infusion_date", "days", "traced"]
    table = pd.DataFrame(rows, columns=cols)
    days = [r["days"] for r in rows]
    if not days:
        return VeinToVein(table, 0, None, None, None, tuple(reasons))
    med = float(statistics.median(days))
    reasons.insert(
        0, f"vein-to-vein median {med:g} days (range {min(days)}–{max(days)}), n={len(days)}"
    )
    return VeinToVein(table, len(days), med, min(days), max(days), tuple(reasons))


@dataclass(frozen=True, slots=True)
class BagsPerBatch:
    """Bags per batch: ``table`` (``batch_id``, ``status``, ``n_bags``) and summary over the
    batches whose status is in ``statuses``."""

    table: pd.DataFrame
    statuses: tuple[str, ...]
    n_batches: int
    median: float | None
    min: int | None
    max: int | None


def bags_per_batch(
    batches: Sequence[Batch],
    bags: Sequence[Bag],
    *,
    statuses: Sequence[str] = ("released",),
) -> BagsPerBatch:
    """Count bags (any status) per batch; summarise over batches with a status in ``statuses``.

    Examples
    --------
    >>> import datetime as dt
    >>> from immunoreset.course import Bag, Batch
    >>> b = Batch("B-1", "AP-1", "CliniMACS Prodigy", dt.date(2025, 1, 1), None, "op",
    ...           status="released")
    >>> r = bags_per_batch([b], [Bag(f"B-1-0{i}", "B-1", 1e7, 10.0) for i in range(3)])
    >>> r.median, r.min, r.max
    (3.0, 3, 3)
    """
    bts = _seq("batches", batches, Batch)
    bgs = _seq("bags", bags, Bag)
    if isinstance(statuses, str) or not isinstance(statuses, Sequence) or not statuses:
        raise InvalidInput("statuses", statuses, "a non-empty list of batch statuses")
    for s in statuses:
        if s not in BATCH_STATUS:
            raise InvalidInput("statuses", s, "one of: " + ", ".join(BATCH_STATUS))
    counts = {b.batch_id: 0 for b in bts}
    for g in bgs:
        if g.batch_id in counts:
            counts[g.batch_id] += 1
    table = pd.DataFrame(
        [{"batch_id": b.batch_id, "status": b.status, "n_bags": counts[b.batch_id]} for b in bts],
        columns=["batch_id", "status", "n_bags"],
    )
    chosen = [counts[b.batch_id] for b in bts if b.status in statuses]
    if not chosen:
        return BagsPerBatch(table, tuple(statuses), 0, None, None, None)
    return BagsPerBatch(
        table,
        tuple(statuses),
        len(chosen),
        float(statistics.median(chosen)),
        min(chosen),
        max(chosen),
    )


def qc_distributions(qcs: Sequence[BatchQc]) -> pd.DataFrame:
    """Per attribute: counts by status and median / range of numeric results.

    Parameters
    ----------
    qcs : Sequence[BatchQc]
        One per batch (any specification version; attributes are matched by name).

    Returns
    -------
    pandas.DataFrame
        Columns ``attribute``, ``unit``, ``n_results``, ``n_pass``, ``n_fail``, ``n_pending``,
        ``median``, ``min``, ``max`` (NaN for categorical attributes or no numeric results),
        one row per attribute in order of first appearance.
    """
    items = _seq("qcs", qcs, BatchQc)
    acc: dict[str, dict[str, Any]] = {}
    for qc in items:
        for r in qc.attributes:
            row = acc.setdefault(
                r.attribute,
                {"unit": r.unit, "pass": 0, "fail": 0, "pending": 0, "values": []},
            )
            row[r.status] += 1
            if isinstance(r.value, float):
                row["values"].append(r.value)
    out = []
    for name, row in acc.items():
        vals = row["values"]
        out.append(
            {
                "attribute": name,
                "unit": row["unit"],
                "n_results": row["pass"] + row["fail"],
                "n_pass": row["pass"],
                "n_fail": row["fail"],
                "n_pending": row["pending"],
                "median": float(statistics.median(vals)) if vals else float("nan"),
                "min": min(vals) if vals else float("nan"),
                "max": max(vals) if vals else float("nan"),
            }
        )
    cols = [
        "attribute",
        "unit",
        "n_results",
        "n_pass",
        "n_fail",
        "n_pending",
        "median",
        "min",
        "max",
    ]
    return pd.DataFrame(out, columns=cols)
