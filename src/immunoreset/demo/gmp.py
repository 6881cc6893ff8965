"""SYNTHETIC GMP records for the demo: QC results and release decisions of its batches.

:func:`seed_demo_qc` records them through :class:`immunoreset.registry.gmp.Gmp` (audited, the
same rules as every other writer), from the demo's own release values (:mod:`.qc`) when given.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from immunoreset import course as c
from immunoreset.errors import InvalidInput
from immunoreset.manufacturing.qc import Deviation, ReleaseRefused
from immunoreset.registry.gmp import DECISION_KINDS, Gmp

if TYPE_CHECKING:
    import numpy as np

    from immunoreset.registry.access import Actor
    from immunoreset.registry.repository import Registry


#: Names of the demo generator's release values -> attributes of ``default-v1``.
_DEMO_NAMES: Mapping[str, tuple[str, ...]] = {
    "viability_percent": ("cd3_viability",),
    "cd3_percent": ("cd3_purity",),
    "car_percent": ("car_transduction",),
    "vcn_copies_per_transduced_cell": ("vcn",),
    "endotoxin_eu_ml": ("endotoxin",),
    "dose_deviation_percent": ("dose_deviation",),
    "sterility": ("sterility_interim", "sterility_final"),
    "mycoplasma": ("mycoplasma_interim", "mycoplasma_final"),
}

#: Plausible passing results (uniform ranges; words fixed) used when the demo gives none.
_DEMO_PASSING: Mapping[str, tuple[float, float, int] | str] = {
    "cd3_viability": (85.0, 97.0, 1),
    "cd3_purity": (88.0, 99.0, 1),
    "car_transduction": (20.0, 55.0, 1),
    "vcn": (1.2, 3.5, 2),
    "endotoxin": (0.1, 1.0, 2),
    "dose_deviation": (-8.0, 8.0, 1),
    "sterility_interim": "negative",
    "sterility_final": "negative",
    "mycoplasma_interim": "negative",
    "mycoplasma_final": "negative",
}
#: One out-of-specification result per outcome, chosen at random.
_DEMO_OUT_OF_SPEC: Mapping[str, Mapping[str, tuple[float, float, int] | str]] = {
    "deviation": {"cd3_viability": (72.0, 79.5, 1), "car_transduction": (6.0, 9.5, 1)},
    "failed": {"endotoxin": (6.0, 20.0, 2), "sterility_interim": "positive"},
}


def _draw(rng: np.random.Generator, spec: tuple[float, float, int] | str) -> float | str:
    if isinstance(spec, str):
        return spec
    lo, hi, digits = spec
    return round(float(rng.uniform(lo, hi)), digits)


def _demo_results(
    batch: c.Batch, outcome: str, given: Any, rng: np.random.Generator
) -> dict[str, float | str]:
    if given is not None and isinstance(getattr(given, "results", None), Mapping):
        out: dict[str, float | str] = {}
        for name, value in given.results.items():
            for attr in _DEMO_NAMES.get(name, ()):
                out[attr] = value
        return out
    out = {name: _draw(rng, spec) for name, spec in _DEMO_PASSING.items()}
    pool = _DEMO_OUT_OF_SPEC.get(outcome)
    if pool:
        names = sorted(pool)
        name = names[int(rng.integers(len(names)))]
        out[name] = _draw(rng, pool[name])
    return out


def seed_demo_qc(
    registry: Registry,
    actor: Actor,
    courses: Iterable[c.Course],
    rng: np.random.Generator,
    *,
    qc: Mapping[str, Any] | None = None,
) -> dict[str, int]:
    """Record SYNTHETIC QC results and release decisions for the demo's batches.

    For each batch of ``courses`` the outcome is, in order: ``qc[batch_id].outcome`` when the
    demo's own release values are given (:class:`immunoreset.demo.BatchQC`, names translated to
    ``default-v1``); ``"failed"`` / ``"deviation"`` for IDs in ``demo.FAILED_BATCH_IDS`` /
    ``demo.DEVIATED_BATCH_IDS`` when the demo defines them; else ``"pass"`` for a released batch
    and ``"failed"`` for a failed one (other batches are left alone). Passing batches get
    plausible results and a release against the current specification (``default-v1`` in a new
    registry) on the harvest date; deviated ones one out-of-specification result and a documented
    deviation (raised by ``gmp.demo``, approved by ``qa.demo``); failed ones a failing result and
    a refused release (stored and audited).

    Parameters
    ----------
    registry : Registry
    actor : Actor
        Writes as this user (the demo's local admin).
    courses : Iterable[Course]
        Courses already saved in ``registry``.
    rng : numpy.random.Generator
        Source of the synthetic values.
    qc : Mapping[str, BatchQC], optional
        The demo's release values per batch ID (``published_cohort_with_qc`` and friends).

    Returns
    -------
    dict[str, int]
        Number of decisions per kind (``released``, ``released_with_deviation``, ``refused``).
    """
    from immunoreset import demo

    failed_ids = frozenset(getattr(demo, "FAILED_BATCH_IDS", ()))
    deviated_ids = frozenset(getattr(demo, "DEVIATED_BATCH_IDS", ()))
    if qc is not None and not isinstance(qc, Mapping):
        raise InvalidInput("qc", qc, "a mapping of batch ID to the demo's BatchQC")
    gmp = Gmp(registry)
    counts = dict.fromkeys(DECISION_KINDS, 0)
    for co in courses:
        if not isinstance(co, c.Course):
            raise InvalidInput("courses", co, "Course objects")
        for batch in co.batches:
            given = None if qc is None else qc.get(batch.batch_id)
            if given is not None:
                outcome = {"pass": "pass", "deviation": "deviation"}.get(given.outcome, "failed")
            elif batch.batch_id in failed_ids:
                outcome = "failed"
            elif batch.batch_id in deviated_ids:
                outcome = "deviation"
            else:
                outcome = {"released": "pass", "failed": "failed"}.get(batch.status, "")
            if not outcome:
                continue
            results = _demo_results(batch, outcome, given, rng)
            when = batch.harvest_date or batch.process_start
            result = gmp.record_qc(actor, batch.batch_id, results, "SYNTHETIC demo QC results")
            deviation = None
            if outcome == "deviation" and result.failed:
                deviation = Deviation(
                    attributes=result.failed,
                    raised_by="gmp.demo",
                    reason="SYNTHETIC: out-of-specification result assessed; benefit "
                    "outweighs risk for this patient (demo)",
                    approved_by="qa.demo",
                    date=when,
                    reference=f"DEV-{batch.batch_id}",
                )
            try:
                decision = gmp.release_synthetic_demo(
                    actor, batch.batch_id, deviation=deviation, when=when
                )
                counts[decision.grade] += 1
            except ReleaseRefused:
                counts["refused"] += 1
    return counts
