"""Units: conversion of lab values to each analyte's canonical unit, with pint.

Cell counts are cells/µL throughout (ANC too); 1 × 10⁹/L = 1000 cells/µL. Hemoglobin g/dL,
CRP mg/dL (30 mg/L = 3.0 mg/dL, the unit CAR-HEMATOTOX uses), IgG/C3/C4 mg/dL, ferritin ng/mL
(= µg/L). Conversion factors are computed once per (analyte, unit) by pint and cached, so bulk
imports of millions of rows pay a dictionary lookup per row.

Spellings accepted: pint's syntax plus the lab spellings in :data:`ALIASES` (``10^9/L``,
``/uL``, ``cells/µL``, ``x10^9/L``, ``IU/mL`` …). An unknown or dimensionally wrong unit raises
:class:`~immunoreset.errors.InvalidInput`.
"""

from __future__ import annotations

from functools import cache

import pint

from immunoreset import vocab
from immunoreset.errors import InvalidInput

__all__ = ["ALIASES", "UCUM", "to_canonical", "ureg"]

ureg = pint.UnitRegistry()
ureg.define("cells = [cell_count]")
ureg.define("copies = [copy_count]")
ureg.define("IU = [arbitrary_activity]")
ureg.define("arbitrary_unit = [arbitrary_unit_] = AU")
# Enzyme units (U/L) are activity; kept apart from the antibody "U" of ELISA kits.
ureg.define("enzyme_unit = [enzyme_activity] = EU_activity")

#: Lab spellings -> pint expressions.
ALIASES: dict[str, str] = {
    "cells/uL": "cells/microliter",
    "cells/µL": "cells/microliter",
    "/uL": "cells/microliter",
    "/µL": "cells/microliter",
    "cells/mm3": "cells/millimeter**3",
    "/mm3": "cells/millimeter**3",
    "10^9/L": "1e9 cells/liter",
    "x10^9/L": "1e9 cells/liter",
    "10*9/L": "1e9 cells/liter",
    "G/L": "1e9 cells/liter",
    "10^3/uL": "1e3 cells/microliter",
    "10^3/µL": "1e3 cells/microliter",
    "10*3/uL": "1e3 cells/microliter",
    "copies/ug": "copies/microgram",
    "copies/µg": "copies/microgram",
    "g/dL": "gram/deciliter",
    "g/L": "gram/liter",
    "mg/dL": "milligram/deciliter",
    "mg/L": "milligram/liter",
    "mmol/L": None,  # needs a molar mass: refused with a clear message
    "ng/mL": "nanogram/milliliter",
    "ug/L": "microgram/liter",
    "µg/L": "microgram/liter",
    "pg/mL": "picogram/milliliter",
    "ng/L": "nanogram/liter",
    "IU/mL": "IU/milliliter",
    "U/mL": "arbitrary_unit/milliliter",
    "U/L": "enzyme_unit/liter",
    "IU/L": "enzyme_unit/liter",
    "g/day": "gram/day",
    "g/24h": "gram/day",
    "mg/day": "milligram/day",
}

#: Canonical unit -> UCUM code (for FHIR and other exports).
UCUM: dict[str, str] = {
    "cells/uL": "/uL",
    "copies/ug": "{copies}/ug",
    "g/dL": "g/dL",
    "mg/dL": "mg/dL",
    "IU/mL": "[IU]/mL",
    "U/mL": "[U]/mL",
    "U/L": "U/L",
    "ng/mL": "ng/mL",
    "pg/mL": "pg/mL",
    "g/day": "g/(24.h)",
}


@cache
def to_canonical(analyte: str, unit: str) -> float:
    """Factor that converts a value of ``analyte`` in ``unit`` to its canonical unit.

    >>> to_canonical("anc", "10^9/L")
    1000.0
    >>> to_canonical("crp", "mg/L")
    0.1
    """
    if analyte not in vocab.ANALYTES:
        raise InvalidInput("analyte", analyte, "one of: " + ", ".join(vocab.ANALYTES))
    canonical = vocab.ANALYTES[analyte][0]
    known = ", ".join(sorted(k for k, v in ALIASES.items() if v is not None))
    if not isinstance(unit, str) or unit not in ALIASES or ALIASES[unit] is None:
        raise InvalidInput("unit", unit, f"a known unit ({known})")
    if unit == canonical:
        return 1.0
    try:
        ratio = ureg.parse_expression(ALIASES[unit]) / ureg.parse_expression(ALIASES[canonical])
        q = ratio.to("dimensionless")
    except pint.DimensionalityError:
        raise InvalidInput(
            "unit", unit, f"a unit convertible to {canonical} for {analyte}"
        ) from None
    return float(round(q.magnitude, 12))
