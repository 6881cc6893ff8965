"""Units at the calculator door: cell counts are cells/µL unless a unit is stated.

A count typed in 10⁹/L (ANC 1.2) and passed as cells/µL would silently be graded as profound
neutropenia. Every count calculator therefore takes an optional ``unit`` (any spelling of
:data:`immunoreset.units.ALIASES`, converted with pint) and, when no unit is given, refuses
values that cannot be a reported count in cells/µL:

* ANC, lymphocytes, WBC: ``0 < value < 10`` (analysers report to 0.01 × 10⁹/L = 10/µL) or a
  non-integer value below 100 (1.2, 0.45 …: a 10⁹/L value);
* platelets: ``0 < value < 1000`` (25 means 25 × 10⁹/L = 25,000/µL).

These plausibility floors are this project's choice (no source defines them) and can be turned
off with ``ToxicitySettings(implausible_counts="allow")``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from immunoreset.errors import InvalidInput

#: analyte -> (lowest plausible non-zero value in cells/µL, non-integer refused below).
PLAUSIBLE_FLOOR: dict[str, tuple[float, float]] = {
    "anc": (10.0, 100.0),
    "lymphocytes": (10.0, 100.0),
    "wbc": (10.0, 100.0),
    "platelets": (1000.0, 1000.0),
}


def count_factor(field: str, analyte: str, unit: Any) -> float:
    """Factor from ``unit`` to cells/µL for ``analyte`` (1.0 for cells/µL spellings)."""
    from immunoreset.units import to_canonical

    try:
        return to_canonical(analyte, unit)
    except InvalidInput as err:
        raise InvalidInput(f"{field}_unit" if field else "unit", unit, err.allowed) from None


def check_plausible(field: str, analyte: str, values: Any, refuse: bool) -> None:
    """Refuse counts that are implausible in cells/µL when no unit was stated."""
    if not refuse:
        return
    floor, integer_below = PLAUSIBLE_FLOOR[analyte]
    arr = np.atleast_1d(np.asarray(values, dtype=float))
    bad = ((arr > 0) & (arr < floor)) | ((arr < integer_below) & (arr != np.round(arr)))
    if bad.any():
        v = float(arr[bad][0])
        raise InvalidInput(
            field,
            v,
            "a count in cells/µL",
            message=(
                f"{field} must be a count in cells/µL; got {v:g}, implausible in cells/µL "
                f"(is it × 10⁹/L, i.e. {v * 1000:g} cells/µL?) — pass unit='10^9/L' "
                "(or the unit it was reported in) or the value in cells/µL"
            ),
        )
