"""FOCE-I population estimation (first-order conditional estimation with interaction).

Model for individual ``i`` (``k`` random effects, ``η_i ~ N(0, Ω)``)::

    log φ_i = log θ + Σ_c β_c·x_ic + E·η_i        x = log(COV/ref) (power) or 1[COV = level]
    y_ij = f(φ_i, t_ij) + ε_ij,   Var ε_ij = R_ij = a² + (b·f_ij)²   (per compartment)

with the ``log`` error model applied to ``log y`` and ``log f``. Below-LLOQ observations
contribute ``P(y < LLOQ) = Φ((LLOQ − f)/√R)`` (Beal's M3; Beal SL. *J Pharmacokinet
Pharmacodyn* 2001;28:481–504).

Inner problem (per individual, all individuals at once): the conditional mode
``η̂_i = argmin O_i(η)`` with ``O_i = Σ_j ℓ_ij + ηᵀΩ⁻¹η``, ``ℓ = log(2πR) + (y − f)²/R`` or
``−2 log Φ(z)``, by damped Gauss–Newton (Levenberg–Marquardt) steps whose Jacobian
``J = ∂f/∂η`` comes from forward differences — every perturbation of every individual is
one row of a single batched model call.

Outer problem: the Laplacian −2 log-likelihood with the first-order (FOCE-I) Hessian
``H_i = JᵀWJ + Ω⁻¹`` evaluated at ``η̂_i`` with the residual variance there (interaction)::

    −2LL = Σ_i [ O_i(η̂_i) + log|Ω| + log|H_i| ]

(Beal SL, Sheiner LB. *NONMEM Users Guides*, Part VII; Wang Y. *J Pharmacokinet Pharmacodyn*
2007;34:575–593, eqs. 15–22), minimised over unconstrained parameters (log θ, β, log-Cholesky
of Ω, log residual SDs) by SciPy's L-BFGS-B with forward-difference gradients; the inner
modes are warm-started from the previous point. NONMEM's OFV is ``−2LL − N·log(2π)``.

Covariance step: ``Cov(x) = 2·R⁻¹`` with ``R`` the central-difference Hessian of −2LL in the
unconstrained parameters (NONMEM's ``MATRIX=R``); standard errors on the natural scale by the
delta method, 95 % confidence intervals on the estimation scale (asymmetric for θ, Ω, σ).
"""

from __future__ import annotations

import math
import time as _time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import optimize
from scipy.special import log_ndtr

from immunoreset.errors import InvalidInput, check_choice, check_range
from immunoreset.model.fit.data import FitData
from immunoreset.model.fit.models import StructuralModel, get_model

__all__ = [
    "ERROR_KINDS",
    "CovariateEffect",
    "ErrorSpec",
    "FitResult",
    "FitSpec",
    "ParameterSpec",
    "Problem",
    "default_spec",
    "fit_foce",
]

ERROR_KINDS: tuple[str, ...] = ("additive", "proportional", "combined", "log")
_LOG_FLOOR = 1e-8  # predictions below this are floored before the log (log error model)
_LN2PI = math.log(2.0 * math.pi)


# --------------------------------------------------------------------------- specification
@dataclass(frozen=True)
class ParameterSpec:
    """One estimated structural parameter: initial typical value, BSV (initial SD, 0 = none)."""

    name: str
    initial: float | None = None
    omega: float = 0.3

    def __post_init__(self) -> None:
        if self.initial is not None:
            check_range(f"{self.name} initial", self.initial, 0.0, None, lo_open=True)
        check_range(f"omega of {self.name}", self.omega, 0.0, 5.0)


@dataclass(frozen=True)
class CovariateEffect:
    """Covariate effect on a parameter: ``power`` ``(COV/ref)^β`` or ``categorical`` ``exp(β_l)``.

    ``reference`` is the centring value (power; median when None) or the reference level
    (categorical; the most frequent level when None).
    """

    parameter: str
    covariate: str
    kind: str = "power"
    reference: float | None = None
    #: categorical: the non-reference levels with a coefficient (from the data when None)
    levels: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        check_choice("covariate kind", self.kind, ("power", "categorical"))
        if self.levels is not None:
            object.__setattr__(self, "levels", tuple(float(v) for v in self.levels))


@dataclass(frozen=True)
class ErrorSpec:
    """Residual error of one observation compartment (SDs on the data scale, or log scale)."""

    cmt: int
    kind: str = "additive"
    add: float = 1.0
    prop: float = 0.1

    def __post_init__(self) -> None:
        check_choice("error model", self.kind, ERROR_KINDS)
        if self.kind in ("additive", "combined", "log"):
            check_range("add_sd", self.add, 0.0, None, lo_open=True)
        if self.kind in ("proportional", "combined"):
            check_range("prop_sd", self.prop, 0.0, None, lo_open=True)


@dataclass(frozen=True)
class FitSpec:
    """What to estimate: model, parameters, covariates, residual errors, Ω structure."""

    model: str
    parameters: tuple[ParameterSpec, ...]
    errors: tuple[ErrorSpec, ...]
    covariates: tuple[CovariateEffect, ...] = ()
    omega_block: bool = False
    fixed: Mapping[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "model": self.model,
            "parameters": [vars(p) | {} for p in self.parameters],
            "errors": [vars(e) | {} for e in self.errors],
            "covariates": [
                vars(c) | {"levels": None if c.levels is None else list(c.levels)}
                for c in self.covariates
            ],
            "omega_block": self.omega_block,
            "fixed": dict(self.fixed),
        }

    @classmethod
    def from_dict(cls, d: Mapping) -> FitSpec:
        return cls(
            model=d["model"],
            parameters=tuple(ParameterSpec(**p) for p in d["parameters"]),
            errors=tuple(ErrorSpec(**e) for e in d["errors"]),
            covariates=tuple(CovariateEffect(**c) for c in d.get("covariates", ())),
            omega_block=bool(d.get("omega_block", False)),
            fixed=dict(d.get("fixed", {})),
        )


def default_spec(
    model: str, data: FitData | None = None, *, estimate: Sequence[str] | None = None
) -> FitSpec:
    """The model's default fit, with error models for the compartments present in ``data``."""
    m = get_model(model)
    names = list(estimate) if estimate is not None else list(m.default_estimated)
    params = []
    for n in names:
        m.index(n)
        params.append(ParameterSpec(n, None, m.default_estimated.get(n, 0.3)))
    cmts = data.cmts() if data is not None else tuple(m.default_errors)
    errors = []
    seen_kinds = set()
    for c in cmts:
        if c not in m.outputs:
            raise InvalidInput(
                "CMT",
                c,
                f"an observation compartment of {model} ({', '.join(map(str, m.outputs))})",
            )
        e = m.default_errors[c]
        errors.append(ErrorSpec(c, e.kind, e.add or 1.0, e.prop or 0.1))
        seen_kinds.add(m.outputs[c])
    return FitSpec(model=model, parameters=tuple(params), errors=tuple(errors))


# --------------------------------------------------------------------------- the problem
class Problem:
    """A bound estimation problem: data, model predictor, parameter packing and likelihood."""

    def __init__(self, spec: FitSpec, data: FitData, *, rtol: float | None = None) -> None:
        self.spec = spec
        self.data = data
        self.model: StructuralModel = get_model(spec.model)
        m = self.model
        kw = {} if rtol is None else {"rtol": rtol}
        self.predictor = m.bind(data, **kw)
        self.base = m.default_vector()
        for name, value in spec.fixed.items():
            self.base[m.index(name)] = check_range(name, value, 0.0, None, lo_open=True)
        self.est_names = tuple(p.name for p in spec.parameters)
        if len(set(self.est_names)) != len(self.est_names):
            raise InvalidInput("parameters", self.est_names, "distinct parameter names")
        self.est_idx = np.array([m.index(n) for n in self.est_names], dtype=np.int64)
        self.upper = np.array([m.upper.get(n, np.inf) for n in self.est_names])
        self.bsv_names = tuple(p.name for p in spec.parameters if p.omega > 0)
        self.k = len(self.bsv_names)
        self.bsv_pos = np.array([self.est_names.index(n) for n in self.bsv_names], dtype=np.int64)
        # covariate design: one column per coefficient
        cols, labels, owners = [], [], []
        self.cov_info: list[dict] = []
        for ce in spec.covariates:
            if ce.parameter not in self.est_names:
                raise InvalidInput(
                    "covariate parameter",
                    ce.parameter,
                    "one of the estimated parameters: " + ", ".join(self.est_names),
                )
            x = data.covariate(ce.covariate)
            if np.any(~np.isfinite(x)):
                raise InvalidInput(ce.covariate, "missing", "a value for every individual")
            pos = self.est_names.index(ce.parameter)
            if ce.kind == "power":
                if np.any(x <= 0):
                    raise InvalidInput(ce.covariate, float(x.min()), "> 0 for a power effect")
                ref = float(np.median(x)) if ce.reference is None else float(ce.reference)
                cols.append(np.log(x / ref))
                labels.append(f"beta_{ce.parameter}_{ce.covariate}")
                owners.append(pos)
                self.cov_info.append(
                    {
                        "parameter": ce.parameter,
                        "covariate": ce.covariate,
                        "kind": "power",
                        "reference": ref,
                    }
                )
            else:
                levels, counts = np.unique(x, return_counts=True)
                ref = float(levels[np.argmax(counts)]) if ce.reference is None else ce.reference
                others = [float(v) for v in levels if v != ref]
                if ce.levels is not None:
                    others = list(ce.levels)
                for lv in others:
                    cols.append((x == lv).astype(float))
                    labels.append(f"beta_{ce.parameter}_{ce.covariate}_{lv:g}")
                    owners.append(pos)
                self.cov_info.append(
                    {
                        "parameter": ce.parameter,
                        "covariate": ce.covariate,
                        "kind": "categorical",
                        "reference": ref,
                        "levels": others,
                    }
                )
        self.cov_design = np.stack(cols, axis=1) if cols else np.zeros((data.n, 0))
        self.cov_labels = tuple(labels)
        self.cov_owner = np.array(owners, dtype=np.int64)
        # residual error per observation
        present = set(data.cmts())
        err_by_cmt = {e.cmt: e for e in spec.errors}
        missing = sorted(present - set(err_by_cmt))
        if missing:
            raise InvalidInput(
                "errors", missing[0], "a residual error model for every observed compartment"
            )
        self.errors = tuple(spec.errors)  # all of them: x keeps its layout on new data
        sig_labels, sig_init = [], []
        multi = len(self.errors) > 1
        out_names = m.outputs
        self.add_index = np.full(data.cmt.shape, -1, dtype=np.int64)
        self.prop_index = np.full(data.cmt.shape, -1, dtype=np.int64)
        self.is_log = np.zeros(data.cmt.shape, dtype=bool)
        for e in self.errors:
            sel = data.mask & (data.cmt == e.cmt)
            suffix = f"_{out_names[e.cmt]}" if multi else ""
            if multi and sum(out_names[x.cmt] == out_names[e.cmt] for x in self.errors) > 1:
                suffix = f"_{out_names[e.cmt]}_cmt{e.cmt}"
            if e.kind in ("additive", "combined", "log"):
                self.add_index[sel] = len(sig_init)
                sig_labels.append(("add_sd" if e.kind != "log" else "log_sd") + suffix)
                sig_init.append(e.add)
            if e.kind in ("proportional", "combined"):
                self.prop_index[sel] = len(sig_init)
                sig_labels.append("prop_sd" + suffix)
                sig_init.append(e.prop)
            if e.kind == "log":
                self.is_log[sel] = True
        self.sigma_labels = tuple(sig_labels)
        self.sigma_init = np.array(sig_init)
        # data on the working scale
        mask = data.mask
        self.mask = mask
        self.blq = data.blq & mask
        dv = data.dv.copy()
        lloq = data.lloq.copy()
        if np.any(self.blq & ~np.isfinite(lloq)):
            raise InvalidInput("LLOQ", ".", "a value on every BLQ observation")
        lg = self.is_log & mask
        nonpos = lg & ~self.blq & (dv <= 0)  # NaN DV (prediction grids) is not checked
        if nonpos.any():
            i, j = np.argwhere(nonpos)[0]
            if np.isfinite(lloq[i, j]):
                self.blq = self.blq | (nonpos & np.isfinite(lloq))
                nonpos = nonpos & ~np.isfinite(lloq)
            if nonpos.any():
                i, j = np.argwhere(nonpos)[0]
                raise InvalidInput(
                    "DV",
                    float(dv[i, j]),
                    "> 0 under the log error model "
                    f"(ID {data.ids[i]}, TIME {data.time[i, j]:g}); give the "
                    "assay's LLOQ to treat it as below LLOQ",
                )
        self.y = np.where(lg & ~self.blq, np.log(np.where(dv > 0, dv, 1.0)), dv)
        self.y = np.where(self.blq, np.nan, self.y)
        self.lloq_t = np.where(lg, np.log(np.where(lloq > 0, lloq, 1.0)), lloq)
        self.quant = mask & ~self.blq
        self.n_obs = int(mask.sum())
        # parameter vector layout
        n_th, n_b = len(self.est_names), len(self.cov_labels)
        n_om = self.k * (self.k + 1) // 2 if spec.omega_block else self.k
        self.sl_theta = slice(0, n_th)
        self.sl_beta = slice(n_th, n_th + n_b)
        self.sl_omega = slice(n_th + n_b, n_th + n_b + n_om)
        self.sl_sigma = slice(n_th + n_b + n_om, n_th + n_b + n_om + len(sig_init))
        self.n_x = self.sl_sigma.stop
        self.eta = np.zeros((data.n, self.k))
        self.fd = m.fd_step
        self.n_model_rows = 0
        self.n_model_calls = 0

    def resolved_spec(self) -> FitSpec:
        """The spec with covariate references and levels fixed (to apply to new patients)."""
        covs = []
        for info in self.cov_info:
            covs.append(
                CovariateEffect(
                    info["parameter"],
                    info["covariate"],
                    info["kind"],
                    info["reference"],
                    tuple(info["levels"]) if info["kind"] == "categorical" else None,
                )
            )
        return FitSpec(
            model=self.spec.model,
            parameters=self.spec.parameters,
            errors=self.errors,
            covariates=tuple(covs),
            omega_block=self.spec.omega_block,
            fixed=dict(self.spec.fixed),
        )

    # ---- packing
    def initial_x(self) -> np.ndarray:
        m = self.model
        th = [
            p.initial if p.initial is not None else m.defaults[p.name] for p in self.spec.parameters
        ]
        om = [p.omega for p in self.spec.parameters if p.omega > 0]
        x = np.zeros(self.n_x)
        x[self.sl_theta] = np.log(th)
        if self.spec.omega_block:
            L = np.diag(np.log(om))
            x[self.sl_omega] = L[np.tril_indices(self.k)]
        else:
            x[self.sl_omega] = np.log(om)
        x[self.sl_sigma] = np.log(self.sigma_init)
        return x

    def omega(self, x: np.ndarray) -> np.ndarray:
        v = x[self.sl_omega]
        if self.spec.omega_block:
            L = np.zeros((self.k, self.k))
            L[np.tril_indices(self.k)] = v
            d = np.diag_indices(self.k)
            L[d] = np.exp(L[d])
            return L @ L.T
        return np.diag(np.exp(2.0 * v))

    def sigmas(self, x: np.ndarray) -> np.ndarray:
        return np.exp(x[self.sl_sigma])

    def log_phi_pop(self, x: np.ndarray) -> np.ndarray:
        """Population log parameters (n, n_est) with covariate effects, η = 0."""
        n = self.data.n
        return self._log_phi_rows(x[None], np.arange(n), np.zeros(n, dtype=np.int64))

    def _log_phi_rows(self, xs: np.ndarray, ind: np.ndarray, xr: np.ndarray) -> np.ndarray:
        """Log parameters of rows (individual ``ind`` under parameter vector ``xs[xr]``)."""
        lp = xs[xr][:, self.sl_theta].copy()
        if self.cov_labels:
            beta = xs[xr][:, self.sl_beta]
            for c, owner in enumerate(self.cov_owner):
                lp[:, owner] += beta[:, c] * self.cov_design[ind, c]
        return lp

    def full_phi(self, log_est: np.ndarray) -> np.ndarray:
        phi = np.tile(self.base, (log_est.shape[0], 1))
        phi[:, self.est_idx] = np.minimum(np.exp(log_est), self.upper)
        return phi

    # ---- model calls
    def predict(
        self,
        x: np.ndarray,
        eta: np.ndarray,
        ind: np.ndarray | None = None,
        xr: np.ndarray | None = None,
    ) -> np.ndarray:
        """Predictions (m, n_max), data scale, for rows: individual ``ind``, random effects
        ``eta`` and parameter vector ``x`` (1-D) or ``x[xr]`` (2-D stack of vectors)."""
        if ind is None:
            ind = np.arange(self.data.n)
        xs = x[None] if x.ndim == 1 else x
        if xr is None:
            xr = np.zeros(len(ind), dtype=np.int64)
        lp = self._log_phi_rows(xs, ind, xr)
        if self.k:
            lp[:, self.bsv_pos] += eta
        self.n_model_rows += len(ind)
        self.n_model_calls += 1
        return self.predictor(self.full_phi(lp), ind)

    def _transform(self, f: np.ndarray, ind: np.ndarray) -> np.ndarray:
        lg = self.is_log[ind]
        return np.where(lg, np.log(np.maximum(f, _LOG_FLOOR)), f)

    def f_and_jac(
        self, x: np.ndarray, eta: np.ndarray, ind: np.ndarray, xr: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Working-scale predictions (m, n_max) and Jacobian (m, n_max, k), one model call."""
        m, k = len(ind), self.k
        if xr is None:
            xr = np.zeros(m, dtype=np.int64)
        rows_eta = np.repeat(eta[None], k + 1, axis=0)
        for j in range(k):
            rows_eta[j + 1, :, j] += self.fd
        rows_ind = np.tile(ind, k + 1)
        f_all = self.predict(x, rows_eta.reshape(-1, k), rows_ind, np.tile(xr, k + 1))
        f_all = self._transform(f_all.reshape(k + 1, m, -1), np.tile(ind, (k + 1, 1)))
        f0 = f_all[0]
        jac = np.moveaxis((f_all[1:] - f0[None]) / self.fd, 0, -1)
        return f0, np.nan_to_num(jac)

    # ---- residual variance and per-observation terms
    def variance(
        self, x: np.ndarray, f: np.ndarray, ind: np.ndarray, xr: np.ndarray | None = None
    ) -> tuple[np.ndarray, ...]:
        """Residual variance R and dR/df (working scale) for rows ``ind``."""
        xs = x[None] if x.ndim == 1 else x
        if xr is None:
            xr = np.zeros(len(ind), dtype=np.int64)
        if not len(self.sigma_labels):
            return np.full(f.shape, 1e-300), np.zeros(f.shape)
        sig = np.exp(xs[xr][:, self.sl_sigma])  # (m, n_sig)
        ai = self.add_index[ind]
        pi = self.prop_index[ind]
        a = np.where(ai >= 0, np.take_along_axis(sig, np.maximum(ai, 0), axis=1), 0.0)
        b = np.where(pi >= 0, np.take_along_axis(sig, np.maximum(pi, 0), axis=1), 0.0)
        r = np.maximum(a * a + (b * f) ** 2, 1e-300)
        return r, 2.0 * b * b * f

    def terms(
        self, x: np.ndarray, f: np.ndarray, ind: np.ndarray, xr: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per-observation −2 log-lik ℓ, dℓ/df and GN curvature c (masked to zero)."""
        r, dr = self.variance(x, f, ind, xr)
        y = self.y[ind]
        q = self.quant[ind]
        bl = self.blq[ind]
        res = np.where(q, y - f, 0.0)
        ell = np.where(q, _LN2PI + np.log(r) + res * res / r, 0.0)
        g = np.where(q, dr / r - 2.0 * res / r - (res * res / r) * (dr / r), 0.0)
        c = np.where(q, 2.0 / r, 0.0)
        if bl.any():
            s = np.sqrt(r)
            z = np.where(bl, (self.lloq_t[ind] - f) / s, 0.0)
            lphi = log_ndtr(z)
            lam = np.exp(-0.5 * z * z - 0.5 * _LN2PI - lphi)
            dz = -1.0 / s - z * (dr / (2.0 * s)) / s
            ell = np.where(bl, -2.0 * lphi, ell)
            g = np.where(bl, -2.0 * lam * dz, g)
            c = np.where(bl, 2.0 * lam * (z + lam) / r, c)
        return ell, g, c

    # ---- inner problem
    def conditional_modes(
        self,
        x: np.ndarray,
        eta0: np.ndarray | None = None,
        *,
        tol: float | None = None,
        max_iter: int = 60,
    ) -> dict[str, np.ndarray]:
        """η̂ for every individual; returns eta, O_i, log|H_i|, f, J at the mode.

        ``x`` may be a stack (q, n_x) of parameter vectors: then every individual is solved
        under each of them in the same batched model calls (rows ordered vector-major), as the
        finite-difference gradient and Hessian need.
        """
        n, k = self.data.n, self.k
        tol = self.model.inner_tol if tol is None else tol
        xs = x[None] if x.ndim == 1 else x
        q = xs.shape[0]
        ind = np.tile(np.arange(n), q)
        xr = np.repeat(np.arange(q), n)
        m = len(ind)
        if k == 0:
            f = self._transform(self.predict(xs, np.zeros((m, 0)), ind, xr), ind)
            ell, _g, _c = self.terms(xs, f, ind, xr)
            return {
                "eta": np.zeros((m, 0)),
                "obj": ell.sum(1),
                "logdet": np.zeros(m),
                "f": f,
                "jac": np.zeros((*f.shape, 0)),
                "hess": np.zeros((m, 0, 0)),
            }
        om_inv = np.linalg.inv(np.stack([self.omega(v) for v in xs]))[xr]  # (m, k, k)
        start = self.eta if eta0 is None else eta0
        eta = np.tile(start, (q, 1)) if start.shape[0] == n else start.copy()
        f, jac = self.f_and_jac(xs, eta, ind, xr)
        ell, g_f, c_f = self.terms(xs, f, ind, xr)
        obj = ell.sum(1) + np.einsum("ij,ijk,ik->i", eta, om_inv, eta)
        mu = np.full(m, 1e-3)
        active = np.ones(m, dtype=bool)
        eye = np.eye(k)[None]
        for _ in range(max_iter):
            grad = np.einsum("ijk,ij->ik", jac, g_f) + 2.0 * np.einsum("ij,ijk->ik", eta, om_inv)
            hess = np.einsum("ijk,ij,ijl->ikl", jac, c_f, jac) + 2.0 * om_inv
            active &= np.abs(grad).max(axis=1) > 1e-7
            if not active.any():
                break
            a_idx = np.flatnonzero(active)
            h = hess[a_idx]
            # converged where the Newton step is below ``tol`` (log|H| in the Laplace term is
            # first-order in η̂, so the mode is needed to much better than the OFV scale)
            newton = np.linalg.solve(h, grad[a_idx][..., None])[..., 0]
            nsize = np.abs(newton).max(axis=1)
            keep = nsize >= tol
            active[a_idx[~keep]] = False
            a_idx, h, nsize = a_idx[keep], h[keep], nsize[keep]
            if a_idx.size == 0:
                break
            damp = h + mu[a_idx, None, None] * eye * (
                np.diagonal(h, axis1=1, axis2=2)[:, :, None] + 1e-8
            )
            step = -np.linalg.solve(damp, grad[a_idx][..., None])[..., 0]
            step = np.clip(step, -2.0, 2.0)
            eta_try = eta[a_idx] + step
            f_try, jac_try = self.f_and_jac(xs, eta_try, ind[a_idx], xr[a_idx])
            ell_t, g_t, c_t = self.terms(xs, f_try, ind[a_idx], xr[a_idx])
            obj_t = ell_t.sum(1) + np.einsum("ij,ijk,ik->i", eta_try, om_inv[a_idx], eta_try)
            ok = np.isfinite(obj_t) & (obj_t <= obj[a_idx] + 1e-12)
            acc = a_idx[ok]
            eta[acc] = eta_try[ok]
            f[acc] = f_try[ok]
            jac[acc] = jac_try[ok]
            obj[acc] = obj_t[ok]
            g_f[acc] = g_t[ok]
            c_f[acc] = c_t[ok]
            mu[acc] = np.maximum(mu[acc] / 5.0, 1e-7)
            rej = a_idx[~ok]
            mu[rej] *= 8.0
            # no descent left: at the mode to the precision of the objective
            active[rej[(mu[rej] > 1e6) | (nsize[~ok] < 10.0 * tol)]] = False
        hess = np.einsum("ijk,ij,ijl->ikl", jac, c_f, jac) / 2.0 + om_inv
        sign, logdet_h = np.linalg.slogdet(hess)
        logdet_h = np.where(sign > 0, logdet_h, np.inf)
        return {"eta": eta, "obj": obj, "logdet": logdet_h, "f": f, "jac": jac, "hess": hess}

    def minus2ll_many(self, xs: np.ndarray, eta0: np.ndarray | None = None) -> np.ndarray:
        """FOCE-I −2LL at each row of ``xs`` (q, n_x), all inner problems in shared calls."""
        xs = np.atleast_2d(xs)
        q, n = xs.shape[0], self.data.n
        modes = self.conditional_modes(xs, eta0)
        if self.k:
            logdet_om = np.array([np.linalg.slogdet(self.omega(v))[1] for v in xs])
        else:
            logdet_om = np.zeros(q)
        per = (modes["obj"] + modes["logdet"]).reshape(q, n).sum(axis=1) + n * logdet_om
        return np.where(np.isfinite(per), per, 1e300)

    def minus2ll(
        self, x: np.ndarray, *, update: bool = True, eta0: np.ndarray | None = None
    ) -> float:
        """FOCE-I −2 log-likelihood at ``x`` (inner modes warm-started, stored when update)."""
        modes = self.conditional_modes(x, eta0)
        _s, logdet_om = np.linalg.slogdet(self.omega(x)) if self.k else (1.0, 0.0)
        total = float(np.sum(modes["obj"] + logdet_om + modes["logdet"]))
        if update and math.isfinite(total):
            self.eta = modes["eta"]
        return total if math.isfinite(total) else 1e300


# --------------------------------------------------------------------------- the fit
@dataclass
class FitResult:
    """Everything a fit produced (natural-scale tables are built by :mod:`.results`)."""

    problem: Problem
    x: np.ndarray
    minus2ll: float
    cov_x: np.ndarray | None
    eta: np.ndarray
    eta_cov: np.ndarray
    converged: bool
    message: str
    n_iterations: int
    n_evaluations: int
    seconds: float
    covariance_message: str

    @property
    def n_parameters(self) -> int:
        return self.problem.n_x

    @property
    def ofv(self) -> float:
        """NONMEM-style objective function value (−2LL without N·log 2π)."""
        return self.minus2ll - self.problem.n_obs * _LN2PI

    @property
    def aic(self) -> float:
        return self.minus2ll + 2.0 * self.n_parameters

    @property
    def bic(self) -> float:
        return self.minus2ll + self.n_parameters * math.log(self.problem.n_obs)


def _bounds(problem: Problem, x0: np.ndarray) -> list[tuple[float, float]]:
    b = []
    for i in range(problem.n_x):
        if problem.sl_theta.start <= i < problem.sl_theta.stop:
            b.append((x0[i] - math.log(20.0), x0[i] + math.log(20.0)))
        elif problem.sl_beta.start <= i < problem.sl_beta.stop:
            b.append((-10.0, 10.0))
        elif problem.sl_omega.start <= i < problem.sl_omega.stop:
            b.append(
                (math.log(1e-3), math.log(5.0)) if not problem.spec.omega_block else (-7.0, 5.0)
            )
        else:
            b.append((x0[i] - math.log(100.0), x0[i] + math.log(20.0)))
    if problem.spec.omega_block:  # off-diagonal Cholesky entries are free (within ±5)
        tri = np.tril_indices(problem.k)
        for j, (r, c) in enumerate(zip(*tri, strict=True)):
            if r != c:
                b[problem.sl_omega.start + j] = (-5.0, 5.0)
    return b


def hessian(problem: Problem, x: np.ndarray, h: float) -> np.ndarray:
    """Central-difference Hessian of −2LL (p² + p + 1 evaluations in one stacked inner run).

    Diagonal: ``(f(x+hᵢ) − 2f(x) + f(x−hᵢ))/h²``; off-diagonal from the points ``x ± (hᵢ + hⱼ)``
    and the diagonal ones (Abramowitz & Stegun 25.3.27, second order like the four-point
    formula, with 2 instead of 4 new points per pair).
    """
    p = len(x)
    e = np.eye(p) * h
    points = [x]
    for i in range(p):
        points += [x + e[i], x - e[i]]
    pairs = [(i, j) for i in range(p) for j in range(i)]
    for i, j in pairs:
        points += [x + e[i] + e[j], x - e[i] - e[j]]
    v = problem.minus2ll_many(np.array(points), problem.eta)
    f0 = v[0]
    fp = v[1 : 1 + 2 * p : 2]
    fm = v[2 : 2 + 2 * p : 2]
    hm = np.zeros((p, p))
    for i in range(p):
        hm[i, i] = (fp[i] - 2.0 * f0 + fm[i]) / (h * h)
    base = 1 + 2 * p
    for q, (i, j) in enumerate(pairs):
        a, b = v[base + 2 * q : base + 2 * q + 2]
        hm[i, j] = hm[j, i] = (a - fp[i] - fp[j] + 2.0 * f0 - fm[i] - fm[j] + b) / (2.0 * h * h)
    return hm


def fit_foce(
    spec: FitSpec,
    data: FitData,
    *,
    max_iter: int = 200,
    covariance: bool = True,
    progress: Callable[[int, float], None] | None = None,
    rtol: float | None = None,
    ftol: float = 1e-10,
) -> FitResult:
    """Estimate ``spec`` on ``data`` by FOCE-I; optionally run the covariance step.

    ``progress(iteration, minus2ll)`` is called after each outer iteration (the CLI draws a
    Rich progress bar from it).
    """
    t_start = _time.perf_counter()
    problem = Problem(spec, data, rtol=rtol)
    unused = [e.cmt for e in problem.errors if not (data.mask & (data.cmt == e.cmt)).any()]
    if unused:
        raise InvalidInput("errors", unused[0], "compartments with observations in the data")
    x0 = problem.initial_x()
    gstep = problem.model.grad_step
    n_eval = [0]

    f_init = problem.minus2ll(x0)
    if f_init >= 1e300:
        raise InvalidInput("initial estimates", "…", "values at which the model can be evaluated")
    # L-BFGS-B starts with a unit step along −g: scale the objective so that the first step
    # is a fraction of a log unit, and return a finite penalty where the model fails
    scale = max(abs(f_init), 1.0)

    def fun_grad(x: np.ndarray) -> tuple[float, np.ndarray]:
        f0 = problem.minus2ll(x)
        if f0 >= 1e300:
            return (f_init + 1e6) / scale, np.zeros(len(x))
        xs = np.tile(x, (len(x), 1)) + np.eye(len(x)) * gstep
        n_eval[0] += 1 + len(x)
        fp = problem.minus2ll_many(xs, problem.eta)
        g = np.where(fp < 1e300, (fp - f0) / gstep, 0.0)
        return f0 / scale, g / scale

    it = [0]

    def callback(xk: np.ndarray) -> None:
        it[0] += 1
        if progress is not None:
            progress(it[0], problem.minus2ll(xk, update=False))

    res = optimize.minimize(
        fun_grad,
        x0,
        jac=True,
        method="L-BFGS-B",
        bounds=_bounds(problem, x0),
        callback=callback,
        options={"maxiter": max_iter, "ftol": ftol, "gtol": 1e-4},
    )
    x = res.x
    m2ll = problem.minus2ll(x)
    cov_x = None
    cov_msg = "not run"
    if covariance:
        hm = hessian(problem, x, 5e-3)
        try:
            ev = np.linalg.eigvalsh(hm)
            if ev.min() <= 0:
                cov_msg = f"R matrix not positive definite (smallest eigenvalue {ev.min():.3g})"
            else:
                cov_x = 2.0 * np.linalg.inv(hm)
                cov_msg = f"ok (condition number {ev.max() / ev.min():.3g})"
        except np.linalg.LinAlgError as err:
            cov_msg = f"failed ({err})"
    modes = problem.conditional_modes(x)
    eta_cov = np.linalg.inv(modes["hess"]) if problem.k else np.zeros((data.n, 0, 0))
    return FitResult(
        problem=problem,
        x=x,
        minus2ll=m2ll,
        cov_x=cov_x,
        eta=modes["eta"],
        eta_cov=eta_cov,
        converged=bool(res.success),
        message=str(res.message),
        n_iterations=int(res.nit),
        n_evaluations=n_eval[0],
        seconds=_time.perf_counter() - t_start,
        covariance_message=cov_msg,
    )
