"""Virtual patients: covariates, log-normal inter-individual variability and chunked simulation.

Covariates
    * Weight: CDC 2000 growth charts, weight-for-age P50 (Kuczmarski RJ, Ogden CL, Guo SS, et al.
      *Vital Health Stat 11(246)*, 2002; ``wtage.csv`` rows 60.5/120.5/180.5/216.5 months),
      linearly interpolated in age, flat outside 5–18 y, times ``exp(0.15·η)`` (CV ≈ 15 %,
      UNCONFIRMED setting). Girls' 18-y P50 was not read (UNCONFIRMED): the 15-y value times the
      boys' 18/15 ratio is used, flagged by :data:`GIRLS_18Y_WEIGHT_RULE`.
    * Blood volume per kg: Linderkamp O, et al. (Table 1, p. 228, as reproduced by
      medicalalgorithms.com; journal citation UNCONFIRMED) mean ± SD by age band and sex for 2–14 y;
      65 (F) / 70 (M) mL/kg for adolescents ≥ 15 y and 70 mL/kg for adults (Nadler-based values,
      fpnotebook), SD 5 mL/kg there (UNCONFIRMED).
    * Baseline B cells by age (London Health Sciences Centre reference intervals; PMC1954659
      Table 1 for adult SLE); log-normal ω = 0.3.
    * Diagnosis: no effect on B0 retained (JDM: absolute B not lower, O'Gorman 1995; adult SLE
      206 vs 221 cells/µL, n.s.); see :data:`DIAGNOSIS_EFFECTS`.

Dose: ``E0 = dose_per_kg · f_dist / BV_per_kg`` cells/µL (the weight cancels for a per-kg dose).

Random numbers: a counter-based Philox stream keyed by ``seed``; patient ``i`` owns raw draws
``[32·i, 32·i + 32)``, so a patient's covariates and random effects are identical for any chunk
size. Uniforms become normals by the inverse normal CDF (exactly one draw each).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy.special import expit, ndtri

from immunoreset.errors import InvalidInput, check_choice, check_range
from immunoreset.model.equations import (
    FLAVOURS,
    IDX_A,
    IDX_I,
    N_STATES,
    OBSERVABLES,
    ImmuneParams,
    activation_baseline,
    immune_initial_state,
)
from immunoreset.model.solver import ENDPOINTS, METHODS, integrate_batch
from immunoreset.vocab import DIAGNOSES

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "B0_BY_AGE",
    "BLOOD_VOLUME_ML_PER_KG",
    "B_COURSES",
    "DEFAULT_SAMPLE_DAYS",
    "DIAGNOSIS_EFFECTS",
    "DIAGNOSIS_MIX",
    "GIRLS_18Y_WEIGHT_RULE",
    "LD_DAYS",
    "LOGIT_NORMAL",
    "LYMPHODEPLETION_REGIMENS",
    "OMEGA",
    "OUTPUT_SUFFIXES",
    "WEIGHT_P50_KG",
    "StreamedSummary",
    "b_cell_course",
    "blood_volume_per_kg",
    "iter_population",
    "make_patient_batch",
    "output_path",
    "plot_prediction_intervals",
    "prediction_intervals",
    "simulate_population",
    "simulate_typical",
    "stream_population",
    "typical_events",
    "weight_p50_kg",
    "write_parquet",
]

#: CDC 2000 wtage.csv P50 (kg) at 5, 10, 15, 18 y: sex -> values (girls 18 y derived, see below).
GIRLS_18Y_WEIGHT_RULE = "UNCONFIRMED: girls 18 y = girls 15 y × (boys 18 y / boys 15 y)"
_AGES_W = np.array([5.0, 10.0, 15.0, 18.0])
WEIGHT_P50_KG: MappingProxyType[str, tuple[float, ...]] = MappingProxyType(
    {
        "M": (18.49, 32.09, 56.49, 67.29),
        "F": (18.02, 33.06, 52.14, 52.14 * 67.29 / 56.49),
    }
)

#: Blood volume (mL/kg): (age_lo, age_hi, boys mean, boys SD, girls mean, girls SD).
BLOOD_VOLUME_ML_PER_KG: tuple[tuple[float, float, float, float, float, float], ...] = (
    (0.0, 4.0, 80.5, 8.7, 79.0, 7.3),  # Linderkamp 2–3 y (used below 4 y)
    (4.0, 7.0, 76.7, 6.3, 77.4, 4.3),  # Linderkamp 4–6 y
    (7.0, 11.0, 79.6, 7.1, 72.7, 6.2),  # Linderkamp 7–10 y
    (11.0, 15.0, 74.4, 5.2, 68.3, 3.5),  # Linderkamp 11–14 y
    (15.0, 18.0, 70.0, 5.0, 65.0, 5.0),  # Nadler-based adolescents (SD UNCONFIRMED)
    (18.0, 200.0, 70.0, 5.0, 70.0, 5.0),  # adults, fpnotebook (SD UNCONFIRMED)
)

#: Typical baseline CD19+ B cells (cells/µL) by age band: (age_lo, age_hi, value, source).
B0_BY_AGE: tuple[tuple[float, float, float, str], ...] = (
    (0.0, 6.0, 740.0, "LHSC 2–6 y 390–1400, geometric mid-point (derived)"),
    (6.0, 12.0, 500.0, "LHSC 6–12 y (spec §11)"),
    (12.0, 18.0, 300.0, "LHSC 12–18 y (spec §11)"),
    (18.0, 200.0, 200.0, "adult SLE median 206, PMC1954659 Table 1 (spec §11)"),
)

#: Diagnosis -> multiplicative effects on parameters (none retained; reasons in docstring).
DIAGNOSIS_EFFECTS: MappingProxyType[str, MappingProxyType[str, float]] = MappingProxyType(
    {dx: MappingProxyType({}) for dx in DIAGNOSES}
)
#: Default diagnosis mix of the virtual population (UNCONFIRMED setting).
DIAGNOSIS_MIX: MappingProxyType[str, float] = MappingProxyType(
    {"SLE": 0.6, "JDM": 0.2, "SSc": 0.1, "ASyS": 0.05, "DM": 0.05}
)

#: Inter-individual variability: parameter -> ω (SD of the random effect; log-normal, or
#: logit-normal for the parameters in :data:`LOGIT_NORMAL`). Draw slots follow this order:
#: entries added later go at the end so that earlier patients' draws keep their meaning.
OMEGA: MappingProxyType[str, float] = MappingProxyType(
    {
        "b0": 0.3,  # LHSC 6–12 y 270–860 ≈ ±2·0.3 on log scale
        "k_b": 0.2,  # Pan 2019 RSE 41 % (uncertainty, not IIV): UNCONFIRMED
        "k_kill": 0.2,  # UNCONFIRMED
        "rho": 0.2,  # UNCONFIRMED; Stein ω²(Tmax) = 0.38 (ω 0.62) in ALL is an upper bound.
        # No knife edge any more: ω = 0.3 leaves < 1 % never reconstituting (tested).
        "delta_e": 0.2,  # UNCONFIRMED (Stein ω²(α) = 0.91 in ALL is an upper bound)
        "mu": 0.3,  # UNCONFIRMED (Stein ω²(FB) = 0.8)
        "beta": 0.2,  # UNCONFIRMED (Stein ω²(β) = 0.86 is an upper bound)
        "c50": 0.2,  # calibrated: reconstitution spread ≈ 110 ± 32–47 d (Mackensen, Müller)
        "f_dist": 0.5,  # UNCONFIRMED (Stein ω²(Cmax) = 0.65)
        "i_ld": 0.3,  # UNCONFIRMED
        "phi": 1.0,  # UNCONFIRMED: relapse variability (Jo-1 relapse at 9 months, addendum §1.1)
        "k_ab": 0.1,  # IgG t½ 21–24 d (peer-data §3.4)
        "d0": 0.3,  # UNCONFIRMED
        "f_dep": 2.0,  # logit scale; UNCONFIRMED: CD19⁻ LLPC share differs (Feng 2025; Jo-1
        # titre only to ≈ 1/4 at 8 months, Pecher 2023: f_dep ≈ 0.75) → partial serology
        "r_net": 0.3,  # UNCONFIRMED (relapse clock after rituximab varies, addendum §1.5)
        "theta_a": 0.5,  # UNCONFIRMED (quorum of the autoreactive pool)
        "k_off": 0.2,  # UNCONFIRMED (spread of peak day, Tmax 7–14 d across series, §7)
    }
)
#: Parameters whose random effect acts on the logit of the fraction (they stay inside (0, 1)).
LOGIT_NORMAL: frozenset[str] = frozenset({"f_dep"})

#: Lymphodepletion regimens: name -> (kill scale, surge scale, description). The kill scale
#: multiplies ``−ln(1 − f_ld)`` (log-kill), the surge scale multiplies ``i_ld``; "flu-cy" is the
#: calibrated template (Flu 25–30 mg/m² days −5…−3 + Cy 1000 mg/m², Mackensen 2022 / Nicolai
#: 2024). The single-agent scales are UNCONFIRMED settings: Flu/Cy gave better CAR T expansion
#: than Cy alone (Turtle CJ, et al. *J Clin Invest* 2016;126:2123-2138); fludarabine alone is
#: lymphotoxic (PubMed 9733448, addendum §1.2).
LYMPHODEPLETION_REGIMENS: MappingProxyType[str, tuple[float, float, str]] = MappingProxyType(
    {
        "none": (0.0, 0.0, "no lymphodepletion"),
        "flu-cy": (1.0, 1.0, "fludarabine + cyclophosphamide, days −5…−3 (calibrated)"),
        "cy": (0.6, 0.4, "cyclophosphamide alone (UNCONFIRMED scales)"),
        "flu": (0.6, 0.6, "fludarabine alone (UNCONFIRMED scales)"),
    }
)

#: Lymphodepletion days (Flu days −5…−3; Cy on two of them), relative to infusion.
LD_DAYS: tuple[float, ...] = (-5.0, -4.0, -3.0)
#: Default sampling days (20 times) for observables.
DEFAULT_SAMPLE_DAYS: tuple[float, ...] = (
    0,
    3,
    5,
    7,
    10,
    14,
    21,
    28,
    42,
    56,
    91,
    120,
    150,
    182,
    240,
    300,
    365,
    455,
    548,
    730,
)

_T0 = -6.0
_DRAWS = 32  # raw uniforms reserved per patient (multiple of 4 for Philox blocks)
_PARAM_NAMES = ImmuneParams.names()
_IIV_ORDER = tuple(OMEGA)  # draw slots 5.. in this order
#: Output file suffixes of :func:`write_table` / :func:`stream_population` (others refused).
OUTPUT_SUFFIXES: tuple[str, ...] = (".parquet", ".csv")


def weight_p50_kg(age_y: np.ndarray, sex: np.ndarray) -> np.ndarray:
    """CDC 2000 P50 weight (kg) for ages (y) and sexes ('F', 'M', 'X' = mean of both).

    Examples
    --------
    >>> weight_p50_kg(np.array([10.0]), np.array(["M"]))
    array([32.09])
    """
    age = np.asarray(age_y, dtype=np.float64)
    sex = np.asarray(sex)
    wm = np.interp(age, _AGES_W, WEIGHT_P50_KG["M"])
    wf = np.interp(age, _AGES_W, WEIGHT_P50_KG["F"])
    return np.where(sex == "M", wm, np.where(sex == "F", wf, 0.5 * (wm + wf)))


def blood_volume_per_kg(age_y: np.ndarray, sex: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and SD of blood volume (mL/kg) by age band and sex ('X' = mean of both).

    Examples
    --------
    >>> blood_volume_per_kg(np.array([8.0]), np.array(["F"]))
    (array([72.7]), array([6.2]))
    """
    age = np.asarray(age_y, dtype=np.float64)
    sex = np.asarray(sex)
    mean = np.empty_like(age)
    sd = np.empty_like(age)
    for lo, hi, bm, bsd, gm, gsd in BLOOD_VOLUME_ML_PER_KG:
        sel = (age >= lo) & (age < hi)
        m = np.where(sex == "M", bm, np.where(sex == "F", gm, 0.5 * (bm + gm)))
        s = np.where(sex == "M", bsd, np.where(sex == "F", gsd, 0.5 * (bsd + gsd)))
        mean[sel] = m[sel]
        sd[sel] = s[sel]
    return mean, sd


def _b0_by_age(age: np.ndarray) -> np.ndarray:
    out = np.empty_like(age)
    for lo, hi, val, _src in B0_BY_AGE:
        out[(age >= lo) & (age < hi)] = val
    return out


def _uniforms(seed: int, start: int, n: int) -> np.ndarray:
    gen = np.random.Generator(np.random.Philox(key=seed, counter=start * _DRAWS // 4))
    u = gen.random(n * _DRAWS).reshape(n, _DRAWS)
    return (np.floor(u * 2.0**53) + 0.5) / 2.0**53  # strictly inside (0, 1)


def _regimen(lymphodepletion: bool | str) -> str:
    """Regimen name for ``lymphodepletion`` (True = "flu-cy", False = "none")."""
    if isinstance(lymphodepletion, bool):
        return "flu-cy" if lymphodepletion else "none"
    if isinstance(lymphodepletion, str) and lymphodepletion in LYMPHODEPLETION_REGIMENS:
        return lymphodepletion
    raise InvalidInput(
        "lymphodepletion",
        lymphodepletion,
        f"True, False or one of {tuple(LYMPHODEPLETION_REGIMENS)}",
    )


def _omega(omega: Mapping[str, float] | None) -> dict[str, float]:
    """The default :data:`OMEGA` with the overrides in ``omega`` (keys must be in OMEGA)."""
    out = dict(OMEGA)
    if omega is None:
        return out
    if not isinstance(omega, Mapping):
        raise InvalidInput("omega", omega, "a mapping parameter -> ω")
    for key, val in omega.items():
        check_choice("omega", key, _IIV_ORDER)
        out[key] = check_range(f"omega.{key}", val, 0.0, 3.0)
    return out


def make_patient_batch(
    *,
    start: int,
    n: int,
    seed: int,
    dose_per_kg: float,
    typical: ImmuneParams,
    age_range: tuple[float, float],
    diagnosis_mix: MappingProxyType[str, float] | dict[str, float],
    lymphodepletion: bool | str,
    omega: Mapping[str, float] | None = None,
    flat_dose: float | None = None,
    ld_intensity: float = 1.0,
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Draw patients ``start … start+n−1``: covariates, parameters, initial states, events.

    Returns ``(covariates, params (n, n_par), y0 (n, N_STATES), event_times (n, 4),
    event_mult (n, 4, N_STATES), event_add (n, 4, N_STATES))``; the events are the three
    lymphodepletion days (identity jumps for regimen "none") and the infusion.

    ``lymphodepletion`` is True ("flu-cy"), False ("none") or a key of
    :data:`LYMPHODEPLETION_REGIMENS`; ``ld_intensity`` scales its log-kill and surge (1 = the
    calibrated template). ``flat_dose`` (CAR+ cells per patient) replaces ``dose_per_kg`` by
    ``flat_dose / weight``. ``omega`` overrides entries of :data:`OMEGA`.
    """
    regimen = _regimen(lymphodepletion)
    om = _omega(omega)
    check_range("ld_intensity", ld_intensity, 0.0, 3.0)
    if flat_dose is not None:
        check_range("flat_dose", flat_dose, 0.0, 1e11, "CAR+ cells")
    u = _uniforms(seed, start, n)
    z = ndtri(u)
    lo, hi = age_range
    age = lo + u[:, 0] * (hi - lo)
    sex = np.where(u[:, 1] < 0.5, "F", "M")
    names = list(diagnosis_mix)
    cum = np.cumsum([diagnosis_mix[k] for k in names])
    cum /= cum[-1]
    dx = np.asarray(names, dtype=object)[np.minimum(np.searchsorted(cum, u[:, 2]), len(names) - 1)]
    weight = weight_p50_kg(age, sex) * np.exp(0.15 * z[:, 3])
    bv_mean, bv_sd = blood_volume_per_kg(age, sex)
    bv = bv_mean + bv_sd * np.clip(z[:, 4], -3.0, 3.0)
    base = typical.to_array()
    params = np.tile(base, (n, 1))
    idx = {name: i for i, name in enumerate(_PARAM_NAMES)}
    params[:, idx["b0"]] = _b0_by_age(age) * (typical.b0 / ImmuneParams().b0)
    for slot, name in enumerate(_IIV_ORDER, start=5):
        j = idx[name]
        if name in LOGIT_NORMAL:
            v = np.clip(params[:, j], 1e-12, 1.0 - 1e-12)
            params[:, j] = expit(np.log(v / (1.0 - v)) + om[name] * z[:, slot])
        else:
            params[:, j] *= np.exp(om[name] * z[:, slot])
    for dx_name, effects in DIAGNOSIS_EFFECTS.items():
        sel = dx == dx_name
        for pname, factor in effects.items():
            params[sel, idx[pname]] *= factor
    for name in ("phi", "f_dist"):  # fractions stay below 1
        params[:, idx[name]] = np.minimum(params[:, idx[name]], 0.999)
    # the autoreactive pool keeps a steady baseline: r_net > k_B·θ_A (clip the rare violators)
    floor = 1.5 * params[:, idx["k_b"]] * params[:, idx["theta_a"]]
    params[:, idx["r_net"]] = np.maximum(params[:, idx["r_net"]], floor)
    dose = np.full(n, float(dose_per_kg)) if flat_dose is None else float(flat_dose) / weight
    e0 = dose * params[:, idx["f_dist"]] / bv / 1000.0
    y0 = np.zeros((n, N_STATES))
    y0[:, 2] = (1.0 - params[:, idx["f_a0"]]) * params[:, idx["b0"]]
    y0[:, 3] = params[:, idx["f_a0"]] * params[:, idx["b0"]]
    y0[:, 4:7] = 1.0
    y0[:, 7] = params[:, idx["d0"]]
    y0[:, IDX_A] = activation_baseline(params)
    ev_t = np.tile(np.array([*LD_DAYS, 0.0]), (n, 1))
    mult = np.ones((n, 4, N_STATES))
    add = np.zeros((n, 4, N_STATES))
    kill_scale, surge_scale, _desc = LYMPHODEPLETION_REGIMENS[regimen]
    if kill_scale or surge_scale:
        log_kill = -np.log1p(-np.minimum(params[:, idx["f_ld"]], 1.0 - 1e-12))
        per_day = 1.0 - np.exp(-ld_intensity * kill_scale * log_kill / len(LD_DAYS))
        for j in range(len(LD_DAYS)):
            for st in (2, 3, 4):  # B_N, B_A, plasmablasts
                mult[:, j, st] = 1.0 - per_day
            add[:, j, IDX_I] = ld_intensity * surge_scale * params[:, idx["i_ld"]] / len(LD_DAYS)
    add[:, 3, 0] = e0
    cov = pd.DataFrame(
        {
            "patient": np.arange(start, start + n, dtype=np.int64),
            "age_y": age,
            "sex": sex,
            "diagnosis": dx.astype(str),
            "weight_kg": weight,
            "blood_volume_ml_per_kg": bv,
            "dose_per_kg": dose,
            "total_dose_cells": dose * weight,
            "b0_cells_per_ul": params[:, idx["b0"]],
            "e0_cells_per_ul": e0,
            "lymphodepletion": np.full(n, regimen),
        }
    )
    return cov, params, y0, ev_t, mult, add


def typical_events(
    params: np.ndarray,
    e0: float,
    *,
    lymphodepletion: bool | str = True,
    ld_intensity: float = 1.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Event days, multipliers and additions (each with a leading patient axis of 1)."""
    idx = {name: i for i, name in enumerate(_PARAM_NAMES)}
    kill_scale, surge_scale, _desc = LYMPHODEPLETION_REGIMENS[_regimen(lymphodepletion)]
    check_range("ld_intensity", ld_intensity, 0.0, 3.0)
    ev_t = np.array([[*LD_DAYS, 0.0]])
    mult = np.ones((1, 4, N_STATES))
    add = np.zeros((1, 4, N_STATES))
    if kill_scale or surge_scale:
        log_kill = -math.log1p(-min(float(params[idx["f_ld"]]), 1.0 - 1e-12))
        per_day = 1.0 - math.exp(-ld_intensity * kill_scale * log_kill / len(LD_DAYS))
        mult[0, :3, 2:5] = 1.0 - per_day
        add[0, :3, IDX_I] = ld_intensity * surge_scale * params[idx["i_ld"]] / len(LD_DAYS)
    add[0, 3, 0] = e0
    return ev_t, mult, add


def simulate_typical(
    params: ImmuneParams | None = None,
    *,
    dose_per_kg: float = 1e6,
    blood_volume_ml_per_kg: float = 75.0,
    sample_days: Sequence[float] = DEFAULT_SAMPLE_DAYS,
    years: float = 2.0,
    lymphodepletion: bool | str = True,
    rtol: float = 1e-8,
    atol: float = 1e-10,
    ld_intensity: float = 1.0,
    b_thresholds: Mapping[str, float] | None = None,
) -> tuple[pd.DataFrame, dict[str, float]]:
    """Simulate one patient with the given (default: typical) parameters, no variability.

    Returns the observables at ``sample_days`` (rows) and the endpoints as a dict.

    Examples
    --------
    >>> samples, ends = simulate_typical(sample_days=(7.0, 91.0))
    >>> bool(6 <= ends["tmax"] <= 11 and samples.loc[7.0, "b_cells"] < 1)
    True
    """
    params = params or ImmuneParams()
    if not isinstance(params, ImmuneParams):
        raise InvalidInput("params", params, "an ImmuneParams")
    check_range("blood_volume_ml_per_kg", blood_volume_ml_per_kg, 40.0, 120.0, "mL/kg")
    sd = _validate(1, dose_per_kg, 0, 1, sample_days, years, (5.0, 18.0), DIAGNOSIS_MIX, rtol, atol)
    p = params.to_array()
    e0 = dose_per_kg * params.f_dist / blood_volume_ml_per_kg / 1000.0
    ev_t, mult, add = typical_events(
        p, e0, lymphodepletion=lymphodepletion, ld_intensity=ld_intensity
    )
    samples, endpoints, _stats = integrate_batch(
        flavour=FLAVOURS["immune"],
        params=p[None, :],
        y0=immune_initial_state(params)[None, :],
        t0=_T0,
        t_end=365.0 * years,
        event_times=ev_t,
        event_mult=mult,
        event_add=add,
        sample_days=sd,
        rtol=rtol,
        atol=atol,
        b_thresholds=None if b_thresholds is None else dict(b_thresholds),
    )
    frame = pd.DataFrame(
        samples[0], index=pd.Index(sd, name="day"), columns=[o for o, _ in OBSERVABLES]
    )
    return frame, {name: float(endpoints[0, j]) for j, (name, _u) in enumerate(ENDPOINTS)}


def _validate(
    n: int,
    dose_per_kg: float,
    seed: int,
    chunk_size: int,
    sample_days: Sequence[float],
    years: float,
    age_range: tuple[float, float],
    diagnosis_mix: MappingProxyType[str, float] | dict[str, float],
    rtol: float,
    atol: float,
) -> np.ndarray:
    check_range("n", n, 1, 100_000_000, integer=True)
    check_range("dose_per_kg", dose_per_kg, 0.0, 1e9, "CAR+ cells/kg")
    check_range("seed", seed, 0, 2**63 - 1, integer=True)
    check_range("chunk_size", chunk_size, 1, 10_000_000, integer=True)
    check_range("years", years, 1.0 / 365.0, 20.0, "y")
    check_range("rtol", rtol, 1e-13, 1e-2)
    check_range("atol", atol, 0.0, 1.0, lo_open=True)
    if not isinstance(age_range, tuple | list) or len(age_range) != 2:
        raise InvalidInput("age_range", age_range, "a pair (lo, hi) of ages in years")
    check_range("age_range", age_range[0], 2.0, 80.0, "y")
    check_range("age_range", age_range[1], age_range[0], 80.0, "y")
    if not isinstance(diagnosis_mix, dict | MappingProxyType) or not diagnosis_mix:
        raise InvalidInput("diagnosis_mix", diagnosis_mix, "a mapping diagnosis -> weight")
    for k, w in diagnosis_mix.items():
        check_choice("diagnosis_mix", k, tuple(DIAGNOSES))
        check_range("diagnosis_mix", w, 0.0, None)
    if sum(diagnosis_mix.values()) <= 0:
        raise InvalidInput("diagnosis_mix", diagnosis_mix, "weights with a positive sum")
    try:
        sd = np.asarray(sample_days, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidInput("sample_days", sample_days, "a sequence of days") from None
    horizon = 365.0 * years
    if (
        sd.ndim != 1
        or np.any(~np.isfinite(sd))
        or np.any(sd < 0)
        or np.any(sd > horizon)
        or len(np.unique(sd)) != len(sd)
    ):
        raise InvalidInput("sample_days", sample_days, f"distinct days within 0–{horizon:g}")
    return sd


#: Values of the ``b_course`` column: B-cell course relative to the thresholds of the solver.
B_COURSES: tuple[str, ...] = ("not_cleared", "not_reconstituted", "reconstituted")


def b_cell_course(endpoints: np.ndarray) -> dict[str, np.ndarray]:
    """The ``b_course`` column from the solver's endpoint matrix (rows = patients).

    "not_cleared" (B never fell below the clearance threshold), "not_reconstituted" (cleared,
    not back to the reconstitution threshold within the horizon) or "reconstituted": "never
    cleared" is kept apart from "never reconstituted".
    """
    col = {name: j for j, (name, _u) in enumerate(ENDPOINTS)}
    cleared = np.isfinite(endpoints[:, col["day_b_clear"]])
    recon = np.isfinite(endpoints[:, col["day_b_recon"]])
    course = np.where(~cleared, B_COURSES[0], np.where(recon, B_COURSES[2], B_COURSES[1]))
    return {"b_course": course.astype(object)}


def iter_population(
    n: int,
    dose_per_kg: float = 1e6,
    seed: int = 0,
    *,
    chunk_size: int = 50_000,
    sample_days: Sequence[float] = DEFAULT_SAMPLE_DAYS,
    years: float = 2.0,
    progress: Callable[[int, int], Any] | None = None,
    typical: ImmuneParams | None = None,
    age_range: tuple[float, float] = (5.0, 18.0),
    diagnosis_mix: MappingProxyType[str, float] | dict[str, float] = DIAGNOSIS_MIX,
    lymphodepletion: bool | str = True,
    rtol: float = 1e-8,
    atol: float = 1e-10,
    method: str = "dop853",
    with_stats: bool = False,
    omega: Mapping[str, float] | None = None,
    flat_dose: float | None = None,
    ld_intensity: float = 1.0,
    b_thresholds: Mapping[str, float] | None = None,
) -> Iterator[pd.DataFrame]:
    """Yield one DataFrame per chunk of virtual patients (bounded memory).

    Parameters are those of :func:`simulate_population`. ``progress(done, total)`` is called
    after each chunk. With ``with_stats`` the columns ``rhs_evals`` and ``steps`` are added.
    """
    sd = _validate(
        n, dose_per_kg, seed, chunk_size, sample_days, years, age_range, diagnosis_mix, rtol, atol
    )
    typical = typical or ImmuneParams()
    if not isinstance(typical, ImmuneParams):
        raise InvalidInput("typical", typical, "an ImmuneParams")
    check_choice("method", method, tuple(METHODS))
    _regimen(lymphodepletion)
    _omega(omega)
    check_range("ld_intensity", ld_intensity, 0.0, 3.0)
    if flat_dose is not None:
        check_range("flat_dose", flat_dose, 0.0, 1e11, "CAR+ cells")
    done = 0
    while done < n:
        m = min(chunk_size, n - done)
        cov, params, y0, ev_t, mult, add = make_patient_batch(
            start=done,
            n=m,
            seed=seed,
            dose_per_kg=dose_per_kg,
            typical=typical,
            age_range=(float(age_range[0]), float(age_range[1])),
            diagnosis_mix=diagnosis_mix,
            lymphodepletion=lymphodepletion,
            omega=omega,
            flat_dose=flat_dose,
            ld_intensity=ld_intensity,
        )
        samples, endpoints, stats = integrate_batch(
            flavour=FLAVOURS["immune"],
            params=params,
            y0=y0,
            t0=_T0,
            t_end=365.0 * years,
            event_times=ev_t,
            event_mult=mult,
            event_add=add,
            sample_days=sd,
            rtol=rtol,
            atol=atol,
            method=method,
            b_thresholds=None if b_thresholds is None else dict(b_thresholds),
        )
        cols: dict[str, np.ndarray] = {}
        for j, (name, _unit) in enumerate(ENDPOINTS):
            cols[name] = endpoints[:, j]
        cols.update(b_cell_course(endpoints))
        for k, (oname, _unit) in enumerate(OBSERVABLES):
            for i, day in enumerate(sd):
                cols[f"{oname}_d{day:g}"] = samples[:, i, k]
        if with_stats:
            cols["rhs_evals"] = stats[:, 0]
            cols["steps"] = stats[:, 1] + stats[:, 2]
        chunk = pd.concat([cov, pd.DataFrame(cols)], axis=1)
        done += m
        if progress is not None:
            progress(done, n)
        yield chunk


def simulate_population(
    n: int,
    dose_per_kg: float = 1e6,
    seed: int = 0,
    *,
    chunk_size: int = 50_000,
    sample_days: Sequence[float] = DEFAULT_SAMPLE_DAYS,
    years: float = 2.0,
    progress: Callable[[int, int], Any] | None = None,
    typical: ImmuneParams | None = None,
    age_range: tuple[float, float] = (5.0, 18.0),
    diagnosis_mix: MappingProxyType[str, float] | dict[str, float] = DIAGNOSIS_MIX,
    lymphodepletion: bool | str = True,
    rtol: float = 1e-8,
    atol: float = 1e-10,
    method: str = "dop853",
    omega: Mapping[str, float] | None = None,
    flat_dose: float | None = None,
    ld_intensity: float = 1.0,
    b_thresholds: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """Simulate ``n`` virtual patients; one row per patient (covariates, endpoints, samples).

    Parameters
    ----------
    n : int
        Number of patients (1–1e8).
    dose_per_kg : float
        CAR+ T cells/kg (0–1e9).
    seed : int
        Key of the counter-based random stream (≥ 0); results do not depend on ``chunk_size``.
    chunk_size : int
        Patients integrated per compiled call (bounds memory).
    sample_days : sequence of float
        Distinct days (0 … 365·years) at which the observables are recorded; columns are named
        ``<observable>_d<day>`` (observables: car_t, transgene, b_cells, autoantibody, disease).
    years : float
        Horizon in years (1/365–20).
    progress : callable(done, total), optional
        Called after each chunk.
    typical : ImmuneParams, optional
        Typical-patient parameters (default :class:`ImmuneParams`); B0 is set by age.
    age_range : (float, float)
        Uniform age range, years (2–80).
    diagnosis_mix : mapping
        Diagnosis -> weight (keys from ``vocab.DIAGNOSES``).
    lymphodepletion : bool or str
        Regimen on days −5…−3: True = "flu-cy", False = "none", or a key of
        :data:`LYMPHODEPLETION_REGIMENS`.
    rtol, atol : float
        Solver tolerances.
    method : str
        Integration method of :func:`~immunoreset.model.solver.integrate_batch`: ``dop853``
        (default), ``auto`` (DOP853/RODAS4 stiffness switching), ``rodas4`` or ``dp5``.
    omega : mapping, optional
        Overrides of :data:`OMEGA` (ω per parameter, 0–3).
    flat_dose : float, optional
        CAR+ cells per patient; replaces ``dose_per_kg`` by ``flat_dose / weight``.
    ld_intensity : float
        Scale of the regimen's log-kill and cytokine surge (0–3; 1 = template).
    b_thresholds : mapping, optional
        Overrides of :data:`immunoreset.model.solver.B_THRESHOLDS` (cells/µL).

    Besides the endpoints of :data:`~immunoreset.model.solver.ENDPOINTS` the frame has
    ``b_course`` (see :func:`b_cell_course`).

    Returns
    -------
    pandas.DataFrame

    Examples
    --------
    >>> df = simulate_population(3, seed=1, sample_days=(7, 28))
    >>> len(df), "cmax" in df.columns, "b_cells_d28" in df.columns
    (3, True, True)
    """
    chunks = list(
        iter_population(
            n,
            dose_per_kg,
            seed,
            chunk_size=chunk_size,
            sample_days=sample_days,
            years=years,
            progress=progress,
            typical=typical,
            age_range=age_range,
            diagnosis_mix=diagnosis_mix,
            lymphodepletion=lymphodepletion,
            rtol=rtol,
            atol=atol,
            method=method,
            omega=omega,
            flat_dose=flat_dose,
            ld_intensity=ld_intensity,
            b_thresholds=b_thresholds,
        )
    )
    return pd.concat(chunks, ignore_index=True)


def write_parquet(data: pd.DataFrame | Iterator[pd.DataFrame], path: str | Path) -> Path:
    """Write a DataFrame, or an iterator of chunk DataFrames (streamed), to a Parquet file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = output_path(path, "path", suffixes=(".parquet",))
    if isinstance(data, pd.DataFrame):
        pq.write_table(pa.Table.from_pandas(data, preserve_index=False), out)
        return out
    writer = None
    try:
        for chunk in data:
            table = pa.Table.from_pandas(chunk, preserve_index=False)
            if writer is None:
                writer = pq.ParquetWriter(out, table.schema)
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()
    if writer is None:
        raise InvalidInput("data", data, "at least one chunk")
    return out


@dataclass(frozen=True, slots=True)
class StreamedSummary:
    """What :func:`stream_population` keeps in memory: compact per-patient endpoints and samples.

    Attributes
    ----------
    n : int
        Patients simulated.
    endpoints : mapping str -> ndarray (float32, length n)
        Every patient's value of each endpoint (exact quantiles at float32 precision).
    samples : pandas.DataFrame
        The ``<observable>_d<day>`` columns (float32) of a systematic subsample: patients whose
        index is a multiple of ``stride``; all patients when ``stride`` is 1.
    stride : int
        Subsampling step of ``samples`` (prediction intervals from it are approximate when > 1).
    out : Path or None
        The Parquet or CSV file written, if any.
    rhs_evals, steps : int
        Solver work summed over all patients (RHS evaluations; accepted + rejected steps).
    courses : mapping str -> int
        Number of patients per ``b_course`` value (:data:`B_COURSES`).
    """

    n: int
    endpoints: Mapping[str, np.ndarray]
    samples: pd.DataFrame
    stride: int
    out: Path | None
    rhs_evals: int
    steps: int
    courses: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))

    def endpoint_quantiles(
        self, q: Sequence[float] = (5.0, 50.0, 95.0)
    ) -> list[tuple[str, int, tuple[float, ...]]]:
        """``(endpoint, n finite, percentiles q)`` for each endpoint (NaN where none finite)."""
        rows = []
        for name, v in self.endpoints.items():
            fin = v[np.isfinite(v)]
            if fin.size:
                vals = tuple(float(x) for x in np.percentile(fin.astype(np.float64), q))
            else:
                vals = tuple(math.nan for _ in q)
            rows.append((name, int(fin.size), vals))
        return rows


def stream_population(
    n: int,
    dose_per_kg: float = 1e6,
    seed: int = 0,
    *,
    out: str | Path | None = None,
    max_sample_rows: int = 200_000,
    **kwargs: Any,
) -> StreamedSummary:
    """Simulate chunk by chunk, streaming rows to Parquet; keep only compact summaries.

    Memory stays bounded: each chunk is written with one ``pyarrow.parquet.ParquetWriter`` row
    group and dropped; kept are one float32 array per endpoint (4 bytes × n each) and the
    sample columns of at most ``max_sample_rows`` systematically subsampled patients.

    Parameters
    ----------
    n, dose_per_kg, seed
        As :func:`simulate_population`.
    out : str or Path, optional
        ``.parquet`` or ``.csv`` file to write (same rows and columns as
        :func:`simulate_population`); other suffixes are refused.
    max_sample_rows : int
        Largest number of patients whose samples are kept for prediction intervals (≥ 1).
    **kwargs
        Further keyword arguments of :func:`iter_population` (chunk_size, sample_days, …);
        ``with_stats=True`` also writes the per-patient solver work columns.

    Returns
    -------
    StreamedSummary

    Examples
    --------
    >>> s = stream_population(4, seed=1, sample_days=(7.0,), years=1)
    >>> s.n, s.endpoints["cmax"].dtype.name, s.stride
    (4, 'float32', 1)
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    check_range("max_sample_rows", max_sample_rows, 1, 100_000_000, integer=True)
    out_path = None if out is None else output_path(out, "out")
    check_range("n", n, 1, 100_000_000, integer=True)
    stride = max(1, math.ceil(n / max_sample_rows))
    ends = {name: np.empty(n, dtype=np.float32) for name, _u in ENDPOINTS}
    courses = dict.fromkeys(B_COURSES, 0)
    kept: list[pd.DataFrame] = []
    keep_stats = bool(kwargs.pop("with_stats", False))
    writer = None
    done = 0
    work = [0, 0]
    try:
        for chunk in iter_population(n, dose_per_kg, seed, with_stats=True, **kwargs):
            m = len(chunk)
            work[0] += int(chunk["rhs_evals"].sum())
            work[1] += int(chunk["steps"].sum())
            if not keep_stats:
                chunk = chunk.drop(columns=["rhs_evals", "steps"])
            for name in ends:
                ends[name][done : done + m] = chunk[name].to_numpy(dtype=np.float32)
            for course, count in chunk["b_course"].value_counts().items():
                courses[str(course)] += int(count)
            cols = [c for _o, _d, c in _sample_columns(chunk)]
            sel = (chunk["patient"].to_numpy() % stride) == 0
            kept.append(chunk.loc[sel, cols].astype(np.float32).reset_index(drop=True))
            if out_path is not None and out_path.suffix.lower() == ".csv":
                chunk.to_csv(
                    out_path, mode="w" if done == 0 else "a", header=done == 0, index=False
                )
            elif out_path is not None:
                table = pa.Table.from_pandas(chunk, preserve_index=False)
                if writer is None:
                    writer = pq.ParquetWriter(out_path, table.schema)
                writer.write_table(table)
            done += m
    finally:
        if writer is not None:
            writer.close()
    samples = pd.concat(kept, ignore_index=True)
    return StreamedSummary(
        n=n,
        endpoints=MappingProxyType(ends),
        samples=samples,
        stride=stride,
        out=out_path,
        rhs_evals=work[0],
        steps=work[1],
        courses=MappingProxyType(courses),
    )


def output_path(
    path: str | Path, field: str = "out", *, suffixes: Sequence[str] = OUTPUT_SUFFIXES
) -> Path:
    """``path`` as a Path if its suffix is one of ``suffixes`` (case-insensitive), else refuse.

    A ``.csv`` name never receives Parquet bytes: unknown suffixes raise :class:`InvalidInput`.
    """
    if not isinstance(path, str | Path) or not str(path):
        raise InvalidInput(field, path, "a file path")
    out = Path(path)
    if out.suffix.lower() not in suffixes:
        raise InvalidInput(field, str(path), f"a file name ending in {' or '.join(suffixes)}")
    return out


def _sample_columns(df: pd.DataFrame) -> list[tuple[str, float, str]]:
    out = []
    for oname, _u in OBSERVABLES:
        prefix = f"{oname}_d"
        for col in df.columns:
            if col.startswith(prefix):
                try:
                    out.append((oname, float(col[len(prefix) :]), col))
                except ValueError:
                    continue
    return out


def prediction_intervals(
    df: pd.DataFrame, *, lower: float = 5.0, upper: float = 95.0
) -> pd.DataFrame:
    """Median and ``lower``/``upper`` percentiles of each observable at each sampling day.

    Returns a long DataFrame with columns ``observable, day, p_lower, median, p_upper``.
    """
    if not isinstance(df, pd.DataFrame):
        raise InvalidInput("df", type(df).__name__, "a pandas DataFrame")
    check_range("lower", lower, 0.0, 50.0, "%")
    check_range("upper", upper, 50.0, 100.0, "%")
    rows = []
    for oname, day, col in _sample_columns(df):
        v = df[col].to_numpy(dtype=np.float64)
        v = v[np.isfinite(v)]
        if v.size == 0:
            continue
        lo, med, hi = np.percentile(v, [lower, 50.0, upper])
        rows.append((oname, day, lo, med, hi))
    res = pd.DataFrame(rows, columns=["observable", "day", "p_lower", "median", "p_upper"])
    return res.sort_values(["observable", "day"], ignore_index=True)


def plot_prediction_intervals(df: pd.DataFrame, *, title: str | None = None) -> Figure:
    """Draw median and 5–95 % bands of each observable (Matplotlib Agg); return the Figure.

    ``df`` is either a simulation result or the output of :func:`prediction_intervals`.
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    if not isinstance(df, pd.DataFrame):
        raise InvalidInput("df", type(df).__name__, "a pandas DataFrame")
    pi = df if {"observable", "median"} <= set(df.columns) else prediction_intervals(df)
    units = dict(OBSERVABLES)
    names = [o for o, _u in OBSERVABLES if (pi["observable"] == o).any()]
    fig = Figure(figsize=(4.0 * max(1, len(names)), 3.4), layout="constrained")
    axes = fig.subplots(1, max(1, len(names)), squeeze=False)[0]
    log_scale = {"car_t", "transgene", "b_cells"}
    for ax, name in zip(axes, names, strict=False):
        d = pi[pi["observable"] == name]
        ax.fill_between(d["day"], d["p_lower"], d["p_upper"], alpha=0.3, label="5–95 %")
        ax.plot(d["day"], d["median"], lw=2, label="median")
        ax.set_title(name)
        ax.set_xlabel("day after infusion")
        ax.set_ylabel(units[name])
        if name in log_scale and (d["p_upper"] > 0).any():
            ax.set_yscale("symlog", linthresh=0.1)
        ax.legend(fontsize=7)
    if title:
        fig.suptitle(title)
    return fig
