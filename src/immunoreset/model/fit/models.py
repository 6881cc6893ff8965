"""Structural models available to the estimator, by name (:data:`MODELS`).

A model declares its parameters (natural scale, positive), their defaults and upper limits,
the observation compartments it predicts, and a default fit (which parameters are estimated,
with which between-subject variability and residual errors). :meth:`StructuralModel.bind`
returns a predictor ``f(phi, ind) -> (m, n_max)``: the predictions at every observation of
individuals ``ind`` with full parameter rows ``phi`` — one call for many rows, so the
estimator evaluates all individuals and all finite-difference perturbations at once.

* ``pk_1cmt_oral``: one compartment, first-order absorption and elimination, bolus doses into
  the depot (CMT 1), concentration observed in CMT 2 (or 1):
  ``C(t) = Σ_d AMT_d·ka/(V·(ka − ke))·(exp(−ke·τ) − exp(−ka·τ))``, ``ke = CL/V``, ``τ = t − t_d``
  (Gibaldi M, Perrier D. *Pharmacokinetics*, 2nd ed., 1982, ch. 1). Closed form, vectorised.
* ``stein2019``: Stein AM et al. *CPT Pharmacometrics Syst Pharmacol* 2019;8:285–295 phase
  model (transgene copies/µg, CMT 3; flow cells/µL = copies/q_copies, CMT 2), integrated by
  the project's compiled solver (``integrate_batch``, flavour ``stein``) for all rows at once.
* ``immune_reset``: the CAR T / B cell / autoantibody model of
  :mod:`immunoreset.model.equations` (flavour ``immune``), compiled and batched likewise. Its
  adapter is thin: estimated subset → :class:`ImmuneParams` vector → lymphodepletion and
  infusion events (as :func:`immunoreset.model.population.typical_events`, vectorised) →
  ``integrate_batch`` at the union of observation days, from the model's pre-treatment
  steady state. The infusion ``E0 = dose·f_dist/BV`` uses the dose record (AMT, 10⁶ CAR+ T
  cells/kg), blood volume per kg from AGE and SEX
  (:func:`~immunoreset.model.population.blood_volume_per_kg`; 70 mL/kg without them) and LD
  (lymphodepletion given; default 1) on each individual's recorded days LDSTART…LDEND
  (:func:`_ld_days`; protocol days −5…−3 without them). Autoantibody predictions are the
  model's ratio to baseline times the individual's own baseline titre (last value on or
  before day 0, else the first), disease activity is the model's SLEDAI-2K-like score
  (CMT 10).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

from immunoreset.errors import InvalidInput, check_choice

__all__ = ["MODELS", "ErrorDefault", "StructuralModel", "get_model"]

Predictor = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class ErrorDefault:
    """Default residual error of one observation compartment."""

    kind: str  # additive | proportional | combined | log
    add: float = 0.0
    prop: float = 0.0


@dataclass(frozen=True)
class StructuralModel:
    """A named structural model (see module docstring)."""

    name: str
    description: str
    parameters: tuple[str, ...]
    defaults: Mapping[str, float]
    units: Mapping[str, str]
    #: observation compartment -> output label
    outputs: Mapping[int, str]
    #: default estimated parameters -> initial BSV SD (0 = no BSV)
    default_estimated: Mapping[str, float]
    default_errors: Mapping[int, ErrorDefault]
    bind: Callable[..., Predictor] = field(repr=False)
    upper: Mapping[str, float] = field(default_factory=dict)
    #: finite-difference step on log parameters for the Jacobian
    fd_step: float = 1e-5
    #: finite-difference step of the outer gradient (unconstrained parameters)
    grad_step: float = 1e-4
    #: convergence of the conditional modes (largest Newton step in η), above solver noise
    inner_tol: float = 1e-6
    #: time unit of the data
    time_unit: str = "h"

    def index(self, name: str) -> int:
        check_choice("parameter", name, self.parameters)
        return self.parameters.index(name)

    def default_vector(self) -> np.ndarray:
        return np.array([self.defaults[p] for p in self.parameters], dtype=np.float64)


# --------------------------------------------------------------------------- pk_1cmt_oral
def _bind_pk(data, **_: object) -> Predictor:
    time = np.nan_to_num(data.time, nan=0.0)
    oral = data.dose_cmt == 1
    dt_all = np.nan_to_num(data.dose_time, nan=0.0)
    da_all = np.where(oral, np.nan_to_num(data.dose_amt, nan=0.0), 0.0)

    def predict(phi: np.ndarray, ind: np.ndarray) -> np.ndarray:
        ka = phi[:, 0][:, None, None]
        cl = phi[:, 1][:, None, None]
        v = phi[:, 2][:, None, None]
        ke = cl / v
        tau = time[ind][:, :, None] - dt_all[ind][:, None, :]
        amt = da_all[ind][:, None, :]
        pos = tau >= 0
        tau = np.where(pos, tau, 0.0)
        diff = ka - ke
        close = np.abs(diff) < 1e-9 * ka
        safe = np.where(close, 1.0, diff)
        c = np.where(
            close,
            amt * ka / v * tau * np.exp(-ke * tau),
            amt * ka / (v * safe) * (np.exp(-ke * tau) - np.exp(-ka * tau)),
        )
        return np.where(pos, c, 0.0).sum(axis=2)

    return predict


PK_1CMT_ORAL = StructuralModel(
    name="pk_1cmt_oral",
    description="one-compartment model, first-order absorption (validation on classic data)",
    parameters=("ka", "cl", "v"),
    defaults=MappingProxyType({"ka": 1.0, "cl": 3.0, "v": 30.0}),
    units=MappingProxyType({"ka": "1/time", "cl": "volume/time", "v": "volume"}),
    outputs=MappingProxyType({1: "cp", 2: "cp"}),
    default_estimated=MappingProxyType({"ka": 0.5, "cl": 0.3, "v": 0.3}),
    default_errors=MappingProxyType(
        {1: ErrorDefault("additive", add=1.0), 2: ErrorDefault("additive", add=1.0)}
    ),
    bind=_bind_pk,
    fd_step=1e-6,
)


# --------------------------------------------------------------------------- ODE helpers
def _union_days(data, t0: float) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct observation days and each observation's column in them."""
    t = np.where(data.mask, data.time, np.nan)
    days = np.unique(t[data.mask])
    if days.size == 0:
        raise InvalidInput("data", 0, "at least one observation time")
    if days[0] < t0:
        raise InvalidInput("TIME", float(days[0]), f"≥ {t0:g} d for this model")
    col = np.searchsorted(days, np.nan_to_num(t, nan=days[0]))
    return days, col


# --------------------------------------------------------------------------- stein2019
def _bind_stein(data, rtol: float = 1e-7, **_: object) -> Predictor:
    from immunoreset.model.equations import FLAVOURS, N_STATES
    from immunoreset.model.solver import integrate_batch

    t0 = -1.0
    days, col = _union_days(data, 0.0)
    t_end = float(max(days[-1], 1e-3))
    out_col = np.where(data.cmt == 2, 0, 1)  # car_t cells/µL or transgene copies/µg
    n_states = N_STATES

    def predict(phi: np.ndarray, ind: np.ndarray) -> np.ndarray:
        m = phi.shape[0]
        p = phi.copy()
        p[:, 4] = np.minimum(p[:, 4], 0.999)  # fb < 1
        p[:, 3] = np.minimum(p[:, 3], 0.999 * p[:, 2])  # beta < alpha
        tmax = np.maximum(p[:, 1], 1e-3)
        ev_t = np.stack([np.zeros(m), tmax], axis=1)
        add = np.zeros((m, 2, n_states))
        add[:, 0, 0] = p[:, 5]
        samples, _, _ = integrate_batch(
            flavour=FLAVOURS["stein"],
            params=p,
            y0=np.zeros((m, n_states)),
            t0=t0,
            t_end=max(t_end, float(tmax.max()) + 1e-3),
            event_times=ev_t,
            event_mult=np.ones((m, 2, n_states)),
            event_add=add,
            sample_days=days,
            rtol=rtol,
            atol=1e-12,
        )
        rows = np.arange(m)[:, None]
        return samples[rows, col[ind], out_col[ind]]

    return predict


def _stein_defaults() -> dict[str, float]:
    from immunoreset.model.equations import SteinParams

    sp = SteinParams()
    return {
        "rho": sp.rho,
        "tmax": sp.tmax,
        "alpha": sp.alpha,
        "beta": sp.beta,
        "fb": sp.fb,
        "r0": sp.r0,
        "q_copies": sp.q_copies,
    }


# --------------------------------------------------------------------------- immune_reset
#: Observation compartment (registry export codes) -> immune-model output column.
IMMUNE_OUTPUTS: MappingProxyType[int, str] = MappingProxyType(
    {
        2: "car_t",
        3: "transgene",
        4: "b_cells",
        5: "autoantibody",
        6: "autoantibody",
        7: "autoantibody",
        8: "autoantibody",
        9: "autoantibody",
        10: "disease",
    }
)


def _ld_days(data, ld: np.ndarray) -> np.ndarray:
    """Per-individual lymphodepletion event days (n, 3), relative to infusion.

    The model splits lymphodepletion into three equal fractions (log-kill and cytokine surge,
    :func:`immunoreset.model.population.typical_events`). They are placed evenly over each
    individual's recorded first (``LDSTART``) and last (``LDEND``) lymphodepletion day when
    the data carry those covariates (as ``immunoreset export nonmem`` writes them), else on the
    model's protocol days :data:`~immunoreset.model.population.LD_DAYS` (−5, −4, −3). A
    single-day regimen puts the three fractions 10⁻⁶ d apart (the solver needs increasing
    event times; the effect equals one combined event to within solver tolerance).
    """
    from immunoreset.model.population import LD_DAYS

    n = data.n
    cov = data.covariates
    start = np.full(n, float(LD_DAYS[0]))
    end = np.full(n, float(LD_DAYS[-1]))
    for name, arr in (("LDSTART", start), ("LDEND", end)):
        if name in cov:
            v = cov[name].to_numpy(float)
            ok = np.isfinite(v)
            arr[ok] = v[ok]
    bad = ld & ((start > end) | (end >= 0.0) | (start < -60.0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InvalidInput(
            "LDSTART/LDEND",
            f"{start[i]:g}/{end[i]:g} (ID {data.ids[i]})",
            "−60 ≤ LDSTART ≤ LDEND < 0 d (days before the infusion)",
        )
    span = end - start
    frac = np.array([0.0, 0.5, 1.0])
    days = start[:, None] + span[:, None] * frac[None, :]
    tiny = span < 2e-6
    days[tiny] = start[tiny, None] + np.array([0.0, 1e-6, 2e-6])[None, :]
    return days


def _bind_immune(data, rtol: float = 1e-7, **_: object) -> Predictor:
    from immunoreset.model.equations import IDX_A, IDX_I, N_STATES, OBSERVABLES, ImmuneParams
    from immunoreset.model.population import (
        LYMPHODEPLETION_REGIMENS,
        activation_baseline,
        blood_volume_per_kg,
    )
    from immunoreset.model.solver import integrate_batch

    names = ImmuneParams.names()
    i_fdist = names.index("f_dist")
    i_fld = names.index("f_ld")
    i_ild = names.index("i_ld")
    obs_names = [o for o, _u in OBSERVABLES]
    cov = data.covariates
    ld = cov["LD"].to_numpy(float) if "LD" in cov else np.ones(data.n)
    ld = np.nan_to_num(ld, nan=1.0) > 0
    ld_days = _ld_days(data, ld)
    t_first = float(np.nanmin(np.where(data.mask, data.time, np.nan)))
    t0 = min(float(ld_days.min()) - 1.0, t_first - 1.0)
    days, col = _union_days(data, t0)
    t_end = float(max(days[-1], 1.0))
    unknown = sorted(set(np.unique(data.cmt[data.mask]).tolist()) - set(IMMUNE_OUTPUTS))
    if unknown:
        raise InvalidInput(
            "CMT",
            unknown[0],
            "an observation compartment of the immune model "
            f"({', '.join(f'{k}={v}' for k, v in IMMUNE_OUTPUTS.items())})",
        )
    out_col = np.zeros(data.cmt.shape, dtype=np.int64)
    for k, v in IMMUNE_OUTPUTS.items():
        out_col[data.cmt == k] = obs_names.index(v)
    # individual baseline titres scale the autoantibody ratio: read from every record of the
    # table (also MDV 1 ones), so curves on a grid (FitData.with_times) keep the baseline
    frame = data.frame
    baseline: dict[tuple[str, int], float] = {}
    rec = frame[(frame["EVID"] == 0) & np.isfinite(frame["DV"].to_numpy(float))]
    rec = rec[rec["CMT"].between(5, 9)]
    for (pid, k), g in rec.groupby([rec["ID"].astype(str), "CMT"], sort=False):
        g = g.sort_values("TIME", kind="stable")
        pre = g[g["TIME"] <= 0]
        baseline[(pid, int(k))] = float((pre if len(pre) else g)["DV"].iloc[-1 if len(pre) else 0])
    scale = np.ones(data.cmt.shape)
    for i, pid in enumerate(data.ids):
        for k in range(5, 10):
            sel = data.mask[i] & (data.cmt[i] == k)
            if sel.any():
                b = baseline.get((pid, k), math.nan)
                scale[i, sel] = b if b > 0 else math.nan
    dose = np.where(data.dose_cmt == 1, np.nan_to_num(data.dose_amt, nan=0.0), 0.0).sum(axis=1)
    if "AGE" in cov and "SEX" in cov:
        sex = np.where(cov["SEX"].to_numpy() == 1, "F", np.where(cov["SEX"] == 0, "M", "X"))
        bv, _sd = blood_volume_per_kg(np.nan_to_num(cov["AGE"].to_numpy(float), nan=30.0), sex)
    else:
        bv = np.full(data.n, 70.0)
    e0_per_fdist = dose * 1e6 / bv / 1000.0  # cells/µL per unit f_dist
    kill_scale, surge_scale, _desc = LYMPHODEPLETION_REGIMENS["flu-cy"]
    n_ld = ld_days.shape[1]
    del frame

    def predict(phi: np.ndarray, ind: np.ndarray) -> np.ndarray:
        m = phi.shape[0]
        p = phi.copy()
        for name in ("phi", "f_dist", "f_a0", "f_ld", "f_dep", "w_b"):
            j = names.index(name)
            p[:, j] = np.minimum(p[:, j], 0.999)
        y0 = np.zeros((m, N_STATES))
        fa0 = p[:, names.index("f_a0")]
        b0 = p[:, names.index("b0")]
        y0[:, 2] = (1.0 - fa0) * b0
        y0[:, 3] = fa0 * b0
        y0[:, 4:7] = 1.0
        y0[:, 7] = p[:, names.index("d0")]
        y0[:, IDX_A] = activation_baseline(p)  # the pre-treatment steady state
        # events as in population.typical_events ("flu-cy" when LD, none otherwise), vectorised
        ev_t = np.concatenate([ld_days[ind], np.zeros((m, 1))], axis=1)
        mult = np.ones((m, n_ld + 1, N_STATES))
        add = np.zeros((m, n_ld + 1, N_STATES))
        with_ld = ld[ind]
        log_kill = -np.log1p(-np.minimum(p[:, i_fld], 1.0 - 1e-12))
        per_day = np.where(with_ld, 1.0 - np.exp(-kill_scale * log_kill / n_ld), 0.0)
        mult[:, :n_ld, 2:5] = (1.0 - per_day)[:, None, None]
        add[:, :n_ld, IDX_I] = np.where(with_ld, surge_scale * p[:, i_ild] / n_ld, 0.0)[:, None]
        add[:, n_ld, 0] = e0_per_fdist[ind] * p[:, i_fdist]
        samples, _, _ = integrate_batch(
            flavour=0,
            params=p,
            y0=y0,
            t0=t0,
            t_end=t_end,
            event_times=ev_t,
            event_mult=mult,
            event_add=add,
            sample_days=days,
            rtol=rtol,
            atol=1e-10,
        )
        rows = np.arange(m)[:, None]
        return samples[rows, col[ind], out_col[ind]] * scale[ind]

    return predict


def _immune_defaults() -> dict[str, float]:
    from immunoreset.model.equations import ImmuneParams

    p = ImmuneParams()
    return {n: float(getattr(p, n)) for n in ImmuneParams.names()}


def _immune_units() -> dict[str, str]:
    return {n: "see docs/model.md" for n in _immune_defaults()}


def _lazy_models() -> dict[str, StructuralModel]:
    stein = StructuralModel(
        name="stein2019",
        description="Stein 2019 tisagenlecleucel phase model (transgene copies/µg)",
        parameters=("rho", "tmax", "alpha", "beta", "fb", "r0", "q_copies"),
        defaults=MappingProxyType(_stein_defaults()),
        units=MappingProxyType(
            {
                "rho": "1/d",
                "tmax": "d",
                "alpha": "1/d",
                "beta": "1/d",
                "fb": "fraction",
                "r0": "copies/ug",
                "q_copies": "copies/ug per cell/uL",
            }
        ),
        outputs=MappingProxyType({2: "car_t", 3: "transgene"}),
        default_estimated=MappingProxyType(
            {"rho": 0.0, "tmax": 0.0, "alpha": 0.3, "beta": 0.3, "fb": 0.5, "r0": 0.5}
        ),
        default_errors=MappingProxyType(
            {2: ErrorDefault("log", add=0.3), 3: ErrorDefault("log", add=0.3)}
        ),
        bind=_bind_stein,
        upper=MappingProxyType({"fb": 0.999}),
        fd_step=1e-3,
        grad_step=1e-3,
        inner_tol=1e-4,
        time_unit="d",
    )
    immune = StructuralModel(
        name="immune_reset",
        description="CAR T / B cell / autoantibody immune-reset model (declared subset)",
        parameters=tuple(_immune_defaults()),
        defaults=MappingProxyType(_immune_defaults()),
        units=MappingProxyType(_immune_units()),
        outputs=IMMUNE_OUTPUTS,
        default_estimated=MappingProxyType(
            {"f_dist": 0.5, "c50": 0.5, "beta": 0.3, "b0": 0.3, "k_ab": 0.1}
        ),
        default_errors=MappingProxyType(
            {
                2: ErrorDefault("log", add=0.4),
                3: ErrorDefault("log", add=0.4),
                4: ErrorDefault("log", add=0.4),
                **{k: ErrorDefault("log", add=0.2) for k in range(5, 10)},
                10: ErrorDefault("additive", add=2.0),
            }
        ),
        bind=_bind_immune,
        upper=MappingProxyType(
            {n: 0.999 for n in ("phi", "f_dist", "f_a0", "f_ld", "f_dep", "w_b")}
        ),
        fd_step=1e-3,
        grad_step=1e-3,
        inner_tol=1e-4,
        time_unit="d",
    )
    return {"pk_1cmt_oral": PK_1CMT_ORAL, "stein2019": stein, "immune_reset": immune}


#: Model names (the default for registry data is ``immune_reset``).
MODELS: tuple[str, ...] = ("immune_reset", "stein2019", "pk_1cmt_oral")


def get_model(name: str) -> StructuralModel:
    """The structural model called ``name`` (one of :data:`MODELS`)."""
    check_choice("model", name, MODELS)
    return _lazy_models()[name]
