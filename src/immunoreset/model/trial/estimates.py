"""Population estimates and their uncertainty: what a virtual trial samples its "truth" from.

A virtual trial's replicate ``r`` draws its own typical values ``θ_r`` from the uncertainty of
the estimates (so the probability of success is averaged over what we do not know about the
population), then its patients from the inter-individual variability ``Ω`` around ``θ_r``.

The JSON shape read by :func:`read_estimates` (a fit writes it as ``fit.json``; every key but
``format`` is optional)::

    {
      "format": "immunoreset.population-estimates/1",
      "source": "SAEM fit to the registry cohort, 2026-12-01",
      "typical": {"k_kill": 0.081, "c50": 0.024},
      "omega": {"names": ["b0", "c50"], "matrix": [[0.09, 0.0], [0.0, 0.25]]},
      "covariance": {"names": ["k_kill", "c50"], "matrix": [[0.01, 0.002], [0.002, 0.04]]}
    }

* ``typical``: typical values on the natural scale, keyed by
  :class:`~immunoreset.model.equations.ImmuneParams` field; missing ones keep their default.
* ``omega``: variance–covariance of the log-normal random effects (``p_i = θ·exp(η_i)``,
  ``η ~ N(0, Ω)``); absent = ``population.OMEGA`` (diagonal, squared).
* ``covariance``: covariance of the estimates of ``log θ`` (from the fit's Fisher information
  or bootstrap); absent = no parameter uncertainty.

Without a fit, :func:`default_estimates` uses the default parameters and ``population.OMEGA``;
its uncertainty is none unless the design states relative standard errors (``rse``, taken as
log-scale SDs, uncorrelated). Uncertainty of Ω itself is not propagated.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from immunoreset.errors import InvalidInput
from immunoreset.model.equations import ImmuneParams
from immunoreset.model.population import OMEGA

__all__ = [
    "FORMAT",
    "PopulationEstimates",
    "cholesky_psd",
    "default_estimates",
    "read_estimates",
    "write_estimates",
]

FORMAT = "immunoreset.population-estimates/1"
#: Parameters that are fractions: a draw is capped just below 1.
FRACTIONS = ("f_a0", "phi", "f_ld", "f_dep", "w_b", "f_dist")
_CAP = 0.999


@dataclass(frozen=True, slots=True, eq=False)
class PopulationEstimates:
    """Typical values, IIV (Ω) and covariance of the log typical values (may be empty)."""

    typical: ImmuneParams
    omega_names: tuple[str, ...]
    omega: np.ndarray
    cov_names: tuple[str, ...]
    cov: np.ndarray
    source: str

    @property
    def has_uncertainty(self) -> bool:
        """True when the covariance of the estimates is not all zero."""
        return bool(self.cov.size and np.any(self.cov != 0.0))

    def draw_typical(self, rng: np.random.Generator, *, sample: bool = True) -> np.ndarray:
        """One draw of the typical-value vector (field order of ImmuneParams).

        Always consumes exactly ``len(cov_names)`` normals from ``rng`` (so streams do not
        depend on ``sample``); with ``sample=False`` the estimates themselves are returned.
        """
        base = self.typical.to_array()
        z = rng.standard_normal(len(self.cov_names))
        if not sample or not self.has_uncertainty:
            return base
        chol = cholesky_psd("covariance", self.cov)
        idx = _index()
        out = base.copy()
        shift = chol @ z
        for name, d in zip(self.cov_names, shift, strict=True):
            out[idx[name]] *= math.exp(float(d))
        for name in FRACTIONS:
            out[idx[name]] = min(out[idx[name]], _CAP)
        return out

    def omegacholesky_psd(self) -> np.ndarray:
        """Lower Cholesky factor of Ω (so ``η = L·z``)."""
        return cholesky_psd("omega", self.omega)

    def to_json(self) -> dict[str, Any]:
        """The JSON shape documented in the module docstring."""
        return {
            "format": FORMAT,
            "source": self.source,
            "typical": {
                n: float(v)
                for n, v in zip(ImmuneParams.names(), self.typical.to_array(), strict=True)
            },
            "omega": {"names": list(self.omega_names), "matrix": self.omega.tolist()},
            "covariance": {"names": list(self.cov_names), "matrix": self.cov.tolist()},
        }


def _index() -> dict[str, int]:
    return {n: i for i, n in enumerate(ImmuneParams.names())}


def cholesky_psd(field: str, m: np.ndarray) -> np.ndarray:
    """Lower Cholesky factor of a covariance matrix; rows/columns of zero variance stay zero."""
    if m.size == 0:
        return m.reshape(0, 0)
    # a zero variance is allowed (a fixed parameter): factor the non-zero block only
    keep = np.diag(m) > 0
    out = np.zeros_like(m)
    if np.any(keep):
        try:
            out[np.ix_(keep, keep)] = np.linalg.cholesky(m[np.ix_(keep, keep)])
        except np.linalg.LinAlgError:
            raise InvalidInput(field, "matrix", "a positive semi-definite matrix") from None
    return out


def _matrix(
    field: str, block: Any, allowed_names: tuple[str, ...]
) -> tuple[tuple[str, ...], np.ndarray]:
    if not isinstance(block, Mapping) or set(block) - {"names", "matrix"}:
        raise InvalidInput(field, block, "an object with keys names and matrix")
    names = block.get("names", [])
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise InvalidInput(f"{field}.names", names, "a list of parameter names")
    for n in names:
        if n not in allowed_names:
            raise InvalidInput(f"{field}.names", n, "one of: " + ", ".join(allowed_names))
    if len(set(names)) != len(names):
        raise InvalidInput(f"{field}.names", names, "distinct names")
    try:
        m = np.asarray(block.get("matrix", []), dtype=np.float64).reshape(len(names), len(names))
    except (TypeError, ValueError):
        raise InvalidInput(f"{field}.matrix", "…", f"a {len(names)}×{len(names)} matrix") from None
    if not np.all(np.isfinite(m)) or not np.allclose(m, m.T, rtol=1e-10, atol=1e-14):
        raise InvalidInput(f"{field}.matrix", "…", "a finite symmetric matrix")
    if np.any(np.diag(m) < 0):
        raise InvalidInput(f"{field}.matrix", "…", "non-negative variances on the diagonal")
    cholesky_psd(f"{field}.matrix", m)
    return tuple(names), m


def _default_omega() -> tuple[tuple[str, ...], np.ndarray]:
    names = tuple(OMEGA)
    return names, np.diag([OMEGA[n] ** 2 for n in names])


def default_estimates(rse: Mapping[str, float] | None = None) -> PopulationEstimates:
    """Default parameters and Ω; uncertainty from ``rse`` (log-scale SD per parameter) or none."""
    rse = dict(rse or {})
    names = _index()
    for k, v in rse.items():
        if k not in names:
            raise InvalidInput("rse", k, "one of: " + ", ".join(names))
        if not isinstance(v, int | float) or not 0 <= v <= 2:
            raise InvalidInput(f"rse.{k}", v, "within 0–2")
    on, om = _default_omega()
    cn = tuple(rse)
    note = "default parameters (ImmuneParams, population.OMEGA); " + (
        f"stated RSE on {', '.join(cn)}" if cn else "no parameter uncertainty"
    )
    return PopulationEstimates(
        typical=ImmuneParams(),
        omega_names=on,
        omega=om,
        cov_names=cn,
        cov=np.diag([float(rse[n]) ** 2 for n in cn]) if cn else np.zeros((0, 0)),
        source=note,
    )


def read_estimates(path: str | Path) -> PopulationEstimates:
    """Read population estimates from the JSON shape of the module docstring.

    Raises
    ------
    InvalidInput
        Unreadable file, wrong format tag, unknown parameter, bad matrix (field = JSON key).
    """
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise InvalidInput(
            "parameters.fit", str(p), "a readable JSON file", message=str(err)
        ) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise InvalidInput("format", data.get("format") if isinstance(data, dict) else data, FORMAT)
    extra = set(data) - {"format", "source", "typical", "omega", "covariance"}
    if extra:
        raise InvalidInput(
            sorted(extra)[0], "…", "one of format, source, typical, omega, covariance"
        )
    names = ImmuneParams.names()
    typical = data.get("typical", {})
    if not isinstance(typical, dict):
        raise InvalidInput("typical", typical, "an object parameter -> value")
    for k, v in typical.items():
        if k not in names:
            raise InvalidInput(f"typical.{k}", k, "one of: " + ", ".join(names))
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise InvalidInput(f"typical.{k}", v, "a number")
    params = replace(ImmuneParams(), **{k: float(v) for k, v in typical.items()})
    if "omega" in data:
        on, om = _matrix("omega", data["omega"], names)
    else:
        on, om = _default_omega()
    if "covariance" in data:
        cn, cm = _matrix("covariance", data["covariance"], names)
    else:
        cn, cm = (), np.zeros((0, 0))
    source = data.get("source", str(p))
    return PopulationEstimates(params, on, om, cn, cm, str(source))


def write_estimates(est: PopulationEstimates, path: str | Path) -> Path:
    """Write ``est`` in the documented JSON shape; return the path."""
    out = Path(path)
    out.write_text(json.dumps(est.to_json(), indent=2) + "\n", encoding="utf-8")
    return out
