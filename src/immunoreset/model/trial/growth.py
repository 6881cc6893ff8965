"""Height and weight of virtual children for age and sex from a published growth reference.

The references are those carried by the RCPCH ``rcpchgrowth`` package (no table is copied
here): ``"uk-who"`` (UK-WHO: WHO 2006 below 4 y, UK90 from 4 to 20 y; Cole TJ, Freeman JV,
Preece MA. *Stat Med* 1998;17:407–429; Wright CM, et al. *BMJ* 2010;340:c1140) and ``"cdc"``
(CDC 2000 growth charts, 2–20 y; Kuczmarski RJ, et al. *Vital Health Stat 11* 2002;(246)).
Both are LMS references: a measurement for z-score ``z`` is ``M·(1 + L·S·z)^(1/L)``
(``M·exp(S·z)`` when L = 0; Cole TJ, Green PJ. *Stat Med* 1992;11:1305–1319).

For speed, the L, M and S of each (reference, measurement, sex) are read from ``rcpchgrowth``
once on a grid of :data:`GRID_STEP_Y` (rcpchgrowth's own cubic interpolation between its
table ages) and interpolated linearly in age between grid points; the test checks the medians
against ``rcpchgrowth.measurement_from_sds`` itself.

Height and weight z-scores are drawn bivariate normal with correlation
:data:`HEIGHT_WEIGHT_Z_CORRELATION` (UNCONFIRMED setting) and truncated at ±:data:`Z_CLIP`
so that no virtual child is outside the plotted centile range of the charts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from types import MappingProxyType

import numpy as np

from immunoreset.errors import InvalidInput, check_choice, check_range

__all__ = [
    "AGE_RANGE_Y",
    "GRID_STEP_Y",
    "HEIGHT_WEIGHT_Z_CORRELATION",
    "REFERENCES",
    "Z_CLIP",
    "GrowthReference",
    "lms_table",
    "load_growth_reference",
]

#: Growth references offered: design name -> description.
REFERENCES: MappingProxyType[str, str] = MappingProxyType(
    {
        "uk-who": "UK-WHO (WHO 2006 < 4 y, UK90 4–20 y), via rcpchgrowth",
        "cdc": "CDC 2000 growth charts (2–20 y), via rcpchgrowth",
    }
)
#: Ages (y) covered for virtual patients: both references end at 20 y; the model's baseline
#: B-cell and blood-volume tables start at 2 y.
AGE_RANGE_Y: tuple[float, float] = (2.0, 20.0)
#: Spacing of the LMS grid read from rcpchgrowth, years (1/48 y ≈ 1 week).
GRID_STEP_Y = 1.0 / 48.0
#: Correlation of height and weight z-scores; UNCONFIRMED setting.
HEIGHT_WEIGHT_Z_CORRELATION = 0.7
#: z-scores are clipped to ±Z_CLIP (the 0.1st–99.9th centile range of the charts).
Z_CLIP = 3.09

_SEX = MappingProxyType({"F": "female", "M": "male"})


@lru_cache(maxsize=16)
def lms_table(reference: str, measurement: str, sex: str) -> np.ndarray:
    """Return an array (n, 4) of (age_y, L, M, S) on the grid, read from ``rcpchgrowth``.

    ``measurement`` is ``"height"`` (cm) or ``"weight"`` (kg); ``sex`` is ``"F"`` or ``"M"``.
    """
    from rcpchgrowth.global_functions import (
        fetch_lms,
        lms_value_array_for_measurement_for_reference,
    )

    check_choice("reference", reference, tuple(REFERENCES))
    check_choice("measurement", measurement, ("height", "weight"))
    check_choice("sex", sex, tuple(_SEX))
    lo, hi = AGE_RANGE_Y
    ages = np.linspace(lo, hi, round((hi - lo) / GRID_STEP_Y) + 1)
    rows = []
    for age in ages:
        arr = lms_value_array_for_measurement_for_reference(
            reference=reference, age=float(age), measurement_method=measurement, sex=_SEX[sex]
        )
        # rcpchgrowth's own boundary rule (_age_for_lms_lookup): at exactly 2 y the UK-WHO
        # table selected starts a day later, so the age is moved onto the table's first row
        at = min(max(float(age), arr[0]["decimal_age"]), arr[-1]["decimal_age"])
        lms = fetch_lms(age=at, lms_value_array_for_measurement=arr)
        rows.append((float(age), float(lms["l"]), float(lms["m"]), float(lms["s"])))
    out = np.array(rows, dtype=np.float64)
    out.setflags(write=False)
    return out


@dataclass(frozen=True, slots=True, eq=False)
class GrowthReference:
    """The LMS grids of one reference for height and weight of both sexes (picklable, small).

    Built once by :func:`load_growth_reference` (importing ``rcpchgrowth`` takes seconds) and
    shipped to Dask workers with the job, so workers never import the package.
    """

    name: str
    tables: Mapping[tuple[str, str], np.ndarray]

    def measurement_for_z(
        self, measurement: str, age_y: np.ndarray, sex: np.ndarray, z: np.ndarray
    ) -> np.ndarray:
        """Height (cm) or weight (kg) at z-score ``z`` for each age (y, 2–20) and sex ('F'/'M').

        Examples
        --------
        >>> ref = load_growth_reference("uk-who")
        >>> w = ref.measurement_for_z("weight", np.array([10.0]), np.array(["M"]), np.zeros(1))
        >>> round(float(w[0]), 2)
        31.35
        """
        age = np.asarray(age_y, dtype=np.float64)
        sex = np.asarray(sex)
        z = np.asarray(z, dtype=np.float64)
        lo, hi = AGE_RANGE_Y
        if age.size and (np.any(~np.isfinite(age)) or age.min() < lo or age.max() > hi):
            raise InvalidInput("age_y", age, f"ages within {lo:g}–{hi:g} y (growth reference)")
        if np.any(~np.isin(sex, tuple(_SEX))):
            raise InvalidInput("sex", sex, "'F' or 'M'")
        check_choice("measurement", measurement, ("height", "weight"))
        out = np.empty_like(age)
        for code in _SEX:
            sel = sex == code
            if not np.any(sel):
                continue
            tab = self.tables[(measurement, code)]
            lam = np.interp(age[sel], tab[:, 0], tab[:, 1])
            mu = np.interp(age[sel], tab[:, 0], tab[:, 2])
            sig = np.interp(age[sel], tab[:, 0], tab[:, 3])
            zs = z[sel]
            small = np.abs(lam) < 1e-12
            safe = np.where(small, 1.0, lam)
            power = mu * np.power(np.maximum(1.0 + safe * sig * zs, 1e-12), 1.0 / safe)
            out[sel] = np.where(small, mu * np.exp(sig * zs), power)
        return out

    def draw_height_weight(
        self,
        age_y: np.ndarray,
        sex: np.ndarray,
        z_height: np.ndarray,
        z_weight_indep: np.ndarray,
        *,
        correlation: float = HEIGHT_WEIGHT_Z_CORRELATION,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Height (cm) and weight (kg) from two independent standard normals per child.

        The weight z-score is ``r·z_h + √(1 − r²)·z_w``; both are clipped to ±:data:`Z_CLIP`.
        """
        check_range("correlation", correlation, -1.0, 1.0)
        zh = np.clip(np.asarray(z_height, dtype=np.float64), -Z_CLIP, Z_CLIP)
        zw = correlation * zh + math.sqrt(1.0 - correlation**2) * np.asarray(
            z_weight_indep, dtype=np.float64
        )
        zw = np.clip(zw, -Z_CLIP, Z_CLIP)
        height = self.measurement_for_z("height", age_y, sex, zh)
        weight = self.measurement_for_z("weight", age_y, sex, zw)
        return height, weight


@lru_cache(maxsize=4)
def load_growth_reference(name: str) -> GrowthReference:
    """Read the height and weight LMS grids of reference ``name`` (see :data:`REFERENCES`)."""
    check_choice("reference", name, tuple(REFERENCES))
    tables = {(m, sex): lms_table(name, m, sex) for m in ("height", "weight") for sex in _SEX}
    return GrowthReference(name=name, tables=MappingProxyType(tables))
