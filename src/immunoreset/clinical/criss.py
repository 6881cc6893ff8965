"""ACR Composite Response Index in diffuse cutaneous Systemic Sclerosis (CRISS), provisional 2016.

Source
------
Khanna D, Berrocal VJ, Giannini EH, et al. The American College of Rheumatology Provisional
Composite Response Index for Clinical Trials in Early Diffuse Cutaneous Systemic Sclerosis.
*Arthritis Rheumatol.* 2016;68(2):299–311, Table 4 "Application of CRISS" (PMC4818571, T11).
Not the revised CRISS (Khanna 2021, ≥ 20 % improvement in ≥ 3 of 5 measures).

Definition
----------
Step 1: probability 0.0 (not improved) if, attributable to SSc, there is new scleroderma renal
crisis; a confirmed ≥ 15 % relative FVC decline with ILD on HRCT and FVC < 80 % predicted; new
left-ventricular failure (LVEF ≤ 45 %) needing treatment; or new PAH on right-heart
catheterisation needing treatment.

Step 2, otherwise, with Δ = follow-up − baseline over one year::

    L = −5.54 − 0.81·ΔmRSS + 0.21·ΔFVC%pred − 0.40·ΔPtGlobal − 0.44·ΔMDGlobal − 3.41·ΔHAQ-DI
    P(improved) = exp(L) / (1 + exp(L))

Improver if P ≥ 0.60 (CRISS validation: "CRISS improvers (score ≥ 0.6)").

UNCONFIRMED
-----------
* Coefficient signs were stripped in the retrieved PMC rendering; the published signs above are
  confirmed by consistency only.
* Patient and physician global assessments on a 0–10 scale (not seen in the retrieved text);
  the deltas are therefore accepted within −10 … 10.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from immunoreset.errors import InvalidInput, check_range

__all__ = [
    "CRISS_COEFFICIENTS",
    "CRISS_IMPROVED_AT",
    "CRISS_INTERCEPT",
    "CrissResult",
    "criss_result",
    "probability_improved",
]

CRISS_INTERCEPT = -5.54
#: Delta name -> (coefficient, allowed range of the delta) (Khanna 2016, Table 4).
CRISS_COEFFICIENTS: dict[str, tuple[float, tuple[float, float]]] = {
    "delta_mrss": (-0.81, (-51.0, 51.0)),
    "delta_fvc_percent": (0.21, (-200.0, 200.0)),
    "delta_patient_global": (-0.40, (-10.0, 10.0)),
    "delta_physician_global": (-0.44, (-10.0, 10.0)),
    "delta_haq_di": (-3.41, (-3.0, 3.0)),
}
#: Probability at or above which a patient is a CRISS improver.
CRISS_IMPROVED_AT = 0.60


@dataclass(frozen=True, slots=True)
class CrissResult:
    """CRISS probability of improvement.

    Attributes
    ----------
    probability : float
        0–1; exactly 0.0 after a step-1 event.
    improved : bool
        ``probability >= 0.60``.
    linear_predictor : float | None
        L of step 2; ``None`` when step 1 decided.
    reasons : tuple[str, ...]
    """

    probability: float
    improved: bool
    linear_predictor: float | None
    reasons: tuple[str, ...]


def criss_result(
    *,
    delta_mrss: float,
    delta_fvc_percent: float,
    delta_patient_global: float,
    delta_physician_global: float,
    delta_haq_di: float,
    step1_event: bool = False,
) -> CrissResult:
    """CRISS probability of improvement with reasons.

    Parameters
    ----------
    delta_mrss : float
        Change in mRSS (follow-up − baseline), −51 … 51.
    delta_fvc_percent : float
        Change in FVC % predicted, −200 … 200 percentage points.
    delta_patient_global, delta_physician_global : float
        Change in the global assessments (0–10 scale, UNCONFIRMED), −10 … 10.
    delta_haq_di : float
        Change in HAQ-DI, −3 … 3.
    step1_event : bool
        A step-1 event attributable to SSc (renal crisis, confirmed FVC decline with ILD,
        new LV failure, new PAH); then P = 0.0.

    Returns
    -------
    CrissResult

    Examples
    --------
    >>> r = criss_result(delta_mrss=-10, delta_fvc_percent=5, delta_patient_global=-2,
    ...                  delta_physician_global=-2, delta_haq_di=-0.5)
    >>> round(r.linear_predictor, 3), round(r.probability, 4), r.improved
    (6.995, 0.9991, True)
    """
    given: dict[str, Any] = {
        "delta_mrss": delta_mrss,
        "delta_fvc_percent": delta_fvc_percent,
        "delta_patient_global": delta_patient_global,
        "delta_physician_global": delta_physician_global,
        "delta_haq_di": delta_haq_di,
    }
    deltas = {
        name: check_range(name, given[name], lo, hi)
        for name, (_, (lo, hi)) in CRISS_COEFFICIENTS.items()
    }
    if not isinstance(step1_event, bool):
        raise InvalidInput("step1_event", step1_event, "true or false")
    if step1_event:
        return CrissResult(0.0, False, None, ("step 1 event attributable to SSc: P = 0.0",))
    linear = CRISS_INTERCEPT + sum(
        coef * deltas[name] for name, (coef, _) in CRISS_COEFFICIENTS.items()
    )
    probability = _logistic(linear)
    improved = probability >= CRISS_IMPROVED_AT
    verdict = "improved" if improved else "not improved"
    return CrissResult(
        probability,
        improved,
        linear,
        (f"L = {linear:.3f}, P = {probability:.4f} -> {verdict} (threshold 0.60)",),
    )


def probability_improved(
    *,
    delta_mrss: float,
    delta_fvc_percent: float,
    delta_patient_global: float,
    delta_physician_global: float,
    delta_haq_di: float,
    step1_event: bool = False,
) -> float:
    """Return the CRISS probability of improvement, 0–1 (see :func:`criss_result`).

    Examples
    --------
    >>> round(probability_improved(delta_mrss=0, delta_fvc_percent=0, delta_patient_global=0,
    ...                            delta_physician_global=0, delta_haq_di=0), 4)
    0.0039
    """
    return criss_result(
        delta_mrss=delta_mrss,
        delta_fvc_percent=delta_fvc_percent,
        delta_patient_global=delta_patient_global,
        delta_physician_global=delta_physician_global,
        delta_haq_di=delta_haq_di,
        step1_event=step1_event,
    ).probability


def _logistic(x: float) -> float:
    # Numerically stable exp(x) / (1 + exp(x)).
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)
