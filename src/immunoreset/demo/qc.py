"""SYNTHETIC release values of the demo's batches (:class:`BatchQC`).

Drawn per batch against the analog limits of peer-data §4.1 (Front Immunol 2024, PMC11461191,
Table 1; :data:`QC_LIMITS`) for the outcome the plan chose (pass, deviation, failure).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# --------------------------------------------------------------------------- manufacturing QC
#: Analog release limits (peer-data §4.1, Front Immunol 2024, PMC11461191 Table 1):
#: attribute -> (comparison, limit). Sterility and mycoplasma must read "negative".
QC_LIMITS: Mapping[str, tuple[str, float]] = {
    "viability_percent": (">=", 80.0),
    "cd3_percent": (">=", 80.0),
    "car_percent": (">=", 10.0),
    "vcn_copies_per_transduced_cell": ("<", 5.0),
    "endotoxin_eu_ml": ("<", 5.0),
    "dose_deviation_percent": ("<=", 20.0),
}
_QC_PASSES: Mapping[str, Callable[[float, float], bool]] = {
    ">=": lambda v, lim: v >= lim,
    "<": lambda v, lim: v < lim,
    "<=": lambda v, lim: v <= lim,
}


@dataclass(frozen=True, slots=True)
class BatchQC:
    """Synthetic release-test results of one batch.

    Attributes
    ----------
    batch_id : str
        The batch (see :class:`~immunoreset.course.Batch`).
    outcome : str
        ``"pass"``, ``"deviation"`` (released with a documented deviation) or ``"failed"``.
    results : Mapping[str, float | str]
        Attribute -> value (:data:`QC_LIMITS` plus ``sterility`` and ``mycoplasma``).
    out_of_spec : tuple[str, ...]
        Attributes outside their limit.
    reasons : tuple[str, ...]
        One line per out-of-spec attribute (and the deviation or failure decision).
    """

    batch_id: str
    outcome: str
    results: Mapping[str, float | str] = field(default_factory=dict)
    out_of_spec: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()


# Out-of-spec value generators: attribute -> (low, high) drawn uniformly.
_DEVIATION_VALUES: Mapping[str, tuple[float, float]] = {
    "viability_percent": (72.0, 79.5),
    "cd3_percent": (70.0, 79.5),
    "car_percent": (6.0, 9.5),
    "vcn_copies_per_transduced_cell": (5.1, 6.5),
}
_FAILURE_VALUES: Mapping[str, tuple[float, float] | str] = {
    "car_percent": (1.0, 4.0),
    "viability_percent": (40.0, 65.0),
    "endotoxin_eu_ml": (6.0, 20.0),
    "sterility": "positive",
}


def _qc(batch_id: str, outcome: str, dose_deviation: float, rng: np.random.Generator) -> BatchQC:
    u = rng.random(6)
    results: dict[str, float | str] = {
        "viability_percent": round(85 + 12 * u[0], 1),
        "cd3_percent": round(88 + 11 * u[1], 1),
        "car_percent": round(20 + 35 * u[2], 1),
        "vcn_copies_per_transduced_cell": round(1.2 + 2.3 * u[3], 2),
        "endotoxin_eu_ml": round(0.1 + 0.9 * u[4], 2),
        "dose_deviation_percent": round(abs(dose_deviation) * 100, 1),
        "sterility": "negative",
        "mycoplasma": "negative",
    }
    pool: Mapping[str, Any] = {"deviation": _DEVIATION_VALUES, "failed": _FAILURE_VALUES}.get(
        outcome, {}
    )
    if pool:
        names = sorted(pool)
        name = names[int(u[5] * len(names))]
        spec = pool[name]
        results[name] = spec if isinstance(spec, str) else round(float(rng.uniform(*spec)), 2)
    out = []
    for name, value in results.items():
        if name in QC_LIMITS:
            op, limit = QC_LIMITS[name]
            if not _QC_PASSES[op](float(value), limit):
                out.append(f"{name} {value} not {op} {limit:g}")
        elif value != "negative":
            out.append(f"{name} {value}")
    decision = {
        "pass": "released: all attributes within specification",
        "deviation": "released with a documented deviation (SYNTHETIC)",
        "failed": "not released: failed specification (SYNTHETIC)",
    }[outcome]
    return BatchQC(
        batch_id=batch_id,
        outcome=outcome,
        results=results,
        out_of_spec=tuple(o.split(" ")[0] for o in out),
        reasons=(*out, decision),
    )
