"""RODAS4: an L-stable, stiffly accurate Rosenbrock method of order 4(3) with dense output.

The immune model is mildly stiff where an explicit method wastes most of its steps: CD19⁺
killing ``k_kill·E`` (up to ≈ 24 d⁻¹) in the first weeks and, once B cells are back, the
relaxation of the proliferative programme ``A`` (≈ 2.4 d⁻¹) for the rest of the year; there the
DOP853 steps sit at its stability limit (``docs/model.md``, "What limits the steps"). A
Rosenbrock method solves one linear system with ``W = I/(γh) − J`` per stage instead, so its
step follows the accuracy of the slow components.

Method (Hairer E, Wanner G. *Solving Ordinary Differential Equations II*, 2nd ed., Springer
1996, Sec. IV.7, "RODAS", coefficients of Table 7.2's method and its dense output; the same
values as OrdinaryDiffEq.jl's ``Rodas4Tableau``): with ``k_i`` the stage increments,

    W·k_i = f(y + Σ_j a_ij·k_j) + Σ_j (c_ij/h)·k_j        (j < i, i = 1…6)

the embedded (3rd-order) solution is ``y + Σ_{j≤4} a_5j·k_j + k_5``, the 4th-order one adds
``k_6``, which is also the error estimate. 6 RHS evaluations per step (5 stages + ``f(y_new)``
for the next step), one exact Jacobian (:func:`immunoreset.model.equations.jac_fast`) and one
factorisation of ``W`` that uses the model's block-triangular sparsity (:data:`JAC_PATTERN`:
a scalar Schur complement instead of an 11 × 11 LU). Dense output (3rd order,
free): ``y(t + θh) = (1 − θ)·y_0 + θ·(y_1 + (1 − θ)·(d_2 + θ·d_3))`` with
``d_2 = Σ h_2j·k_j`` and ``d_3 = Σ h_3j·k_j``. The right-hand side is autonomous between events,
so the non-autonomous terms ``γ_i·h·∂f/∂t`` vanish.
"""

from __future__ import annotations

import math

from numba import njit

from immunoreset.model.equations import N_STATES, jac_fast, rhs_fast

__all__ = [
    "GAMMA",
    "JAC_PATTERN",
    "N_FACTORS",
    "factor",
    "jac_matvec",
    "rodas4_dense",
    "rodas4_step",
    "solve",
]

#: Diagonal coefficient γ of RODAS.
GAMMA = 0.25
_A21 = 1.544
_A31, _A32 = 0.9466785280815826, 0.2557011698983284
_A41, _A42, _A43 = 3.314825187068521, 2.896124015972201, 0.9986419139977817
_A51, _A52 = 1.221224509226641, 6.019134481288629
_A53, _A54 = 12.53708332932087, -0.6878860361058950
_C21 = -5.6688
_C31, _C32 = -2.430093356833875, -0.2063599157091915
_C41, _C42, _C43 = -0.1073529058151375, -9.594562251023355, -20.47028614809616
_C51, _C52 = 7.496443313967647, -10.24680431464352
_C53, _C54 = -33.99990352819905, 11.70890893206160
_C61, _C62, _C63, _C64, _C65 = (
    8.083246795921522,
    -7.981132988064893,
    -31.52159432874371,
    16.31930543123136,
    -6.058818238834054,
)
_H21, _H22, _H23, _H24, _H25 = (
    10.12623508344586,
    -7.487995877610167,
    -34.80091861555747,
    -7.992771707568823,
    1.025137723295662,
)
_H31, _H32, _H33, _H34, _H35 = (
    -0.6762803392801253,
    6.087714651680015,
    16.43084320892478,
    24.76722511418386,
    -6.594389125716872,
)

#: Rows of the solver's stage buffer ``k`` used by RODAS: 0 = f(y), 1 = scratch f, 2…7 = k_1…k_6,
#: 8 = f(y_new) (first stage of the next step).
ROW_F, ROW_K1, ROW_LAST = 1, 2, 8


#: Non-zero pattern of ∂f/∂y assumed by the structured solve (row: columns); both flavours'
#: Jacobians lie inside it (``tests/model/test_rosenbrock.py``). State order as in
#: :data:`immunoreset.model.equations.STATES`: E M B_N B_A P L Ab D I A AUC.
JAC_PATTERN: tuple[tuple[int, ...], ...] = (
    (0, 1, 8, 9),
    (0, 1),
    (0, 1, 2),
    (0, 1, 3),
    (0, 3, 4),
    (4, 5),
    (4, 5, 6),
    (3, 6, 7),
    (8,),
    (2, 3, 9),
    (0, 1, 10),
)
#: Length of the factor vector of :func:`factor`.
N_FACTORS = 15


@njit(cache=True, inline="always")
def factor(jac, fac, fct):
    """Factor ``W = fac·I − J`` for :func:`solve`, using :data:`JAC_PATTERN`; False if singular.

    The pattern is block triangular: ``I`` alone, then the coupled block (E, M, B_N, B_A, A), in
    which M, B_N, B_A and A are affine in E (eliminated row by row, leaving one scalar Schur
    complement), then P, L, Ab, D and AUC by forward substitution. ``fct`` receives the
    reciprocal pivots and the elimination multipliers (:data:`N_FACTORS` values).
    """
    d1 = fac - jac[1, 1]
    d2 = fac - jac[2, 2]
    d3 = fac - jac[3, 3]
    d9 = fac - jac[9, 9]
    d8 = fac - jac[8, 8]
    d4 = fac - jac[4, 4]
    d5 = fac - jac[5, 5]
    d6 = fac - jac[6, 6]
    d7 = fac - jac[7, 7]
    d10 = fac - jac[10, 10]
    if d1 == 0.0 or d2 == 0.0 or d3 == 0.0 or d9 == 0.0 or d8 == 0.0:
        return False
    if d4 == 0.0 or d5 == 0.0 or d6 == 0.0 or d7 == 0.0 or d10 == 0.0:
        return False
    i1 = 1.0 / d1
    i2 = 1.0 / d2
    i3 = 1.0 / d3
    i9 = 1.0 / d9
    mu1 = jac[1, 0] * i1
    be1 = (jac[2, 0] + jac[2, 1] * mu1) * i2
    ga1 = (jac[3, 0] + jac[3, 1] * mu1) * i3
    al1 = (jac[9, 2] * be1 + jac[9, 3] * ga1) * i9
    schur = fac - jac[0, 0] - jac[0, 1] * mu1 - jac[0, 9] * al1
    if schur == 0.0 or not math.isfinite(schur):
        return False
    fct[0] = i1
    fct[1] = i2
    fct[2] = i3
    fct[3] = i9
    fct[4] = 1.0 / d8
    fct[5] = 1.0 / d4
    fct[6] = 1.0 / d5
    fct[7] = 1.0 / d6
    fct[8] = 1.0 / d7
    fct[9] = 1.0 / d10
    fct[10] = mu1
    fct[11] = be1
    fct[12] = ga1
    fct[13] = al1
    fct[14] = 1.0 / schur
    return True


@njit(cache=True, inline="always")
def solve(jac, fct, k, row):
    """Solve ``(fac·I − J)·x = k[row]`` in place with the factors of :func:`factor`."""
    x8 = k[row, 8] * fct[4]
    mu0 = k[row, 1] * fct[0]
    be0 = (k[row, 2] + jac[2, 1] * mu0) * fct[1]
    ga0 = (k[row, 3] + jac[3, 1] * mu0) * fct[2]
    al0 = (k[row, 9] + jac[9, 2] * be0 + jac[9, 3] * ga0) * fct[3]
    e = (k[row, 0] + jac[0, 8] * x8 + jac[0, 1] * mu0 + jac[0, 9] * al0) * fct[14]
    m = mu0 + fct[10] * e
    ba = ga0 + fct[12] * e
    pb = (k[row, 4] + jac[4, 0] * e + jac[4, 3] * ba) * fct[5]
    ll = (k[row, 5] + jac[5, 4] * pb) * fct[6]
    ab = (k[row, 6] + jac[6, 4] * pb + jac[6, 5] * ll) * fct[7]
    k[row, 7] = (k[row, 7] + jac[7, 3] * ba + jac[7, 6] * ab) * fct[8]
    k[row, 10] = (k[row, 10] + jac[10, 0] * e + jac[10, 1] * m) * fct[9]
    k[row, 0] = e
    k[row, 1] = m
    k[row, 2] = be0 + fct[11] * e
    k[row, 3] = ba
    k[row, 4] = pb
    k[row, 5] = ll
    k[row, 6] = ab
    k[row, 8] = x8
    k[row, 9] = al0 + fct[13] * e


@njit(cache=True, inline="always")
def jac_matvec(jac, v, out):
    """``out = J·v`` over :data:`JAC_PATTERN` (the entries outside it are zero)."""
    out[0] = jac[0, 0] * v[0] + jac[0, 1] * v[1] + jac[0, 8] * v[8] + jac[0, 9] * v[9]
    out[1] = jac[1, 0] * v[0] + jac[1, 1] * v[1]
    out[2] = jac[2, 0] * v[0] + jac[2, 1] * v[1] + jac[2, 2] * v[2]
    out[3] = jac[3, 0] * v[0] + jac[3, 1] * v[1] + jac[3, 3] * v[3]
    out[4] = jac[4, 0] * v[0] + jac[4, 3] * v[3] + jac[4, 4] * v[4]
    out[5] = jac[5, 4] * v[4] + jac[5, 5] * v[5]
    out[6] = jac[6, 4] * v[4] + jac[6, 5] * v[5] + jac[6, 6] * v[6]
    out[7] = jac[7, 3] * v[3] + jac[7, 6] * v[6] + jac[7, 7] * v[7]
    out[8] = jac[8, 8] * v[8]
    out[9] = jac[9, 2] * v[2] + jac[9, 3] * v[3] + jac[9, 9] * v[9]
    out[10] = jac[10, 0] * v[0] + jac[10, 1] * v[1] + jac[10, 10] * v[10]


@njit(cache=True, inline="always")
def rodas4_step(flavour, p, c, n_done, h, y, k, ynew, ytmp, rtol, atol, w, fct):
    """One RODAS step from ``y`` (``k[0] = f(y)`` given); fill ``ynew``, ``k[2..8]``.

    ``w`` (N_STATES × N_STATES, receives the Jacobian) and ``fct`` (:data:`N_FACTORS`) are
    work arrays. Returns the RMS norm of the error
    estimate ``k_6`` scaled by ``atol + rtol·max(|y|, |y_new|)``; ``inf`` if ``W`` is singular.
    """
    ns = N_STATES
    jac_fast(flavour, y, p, c, n_done, w)
    if not factor(w, 1.0 / (h * GAMMA), fct):
        return math.inf
    k1, k2, k3, k4, k5, k6 = 2, 3, 4, 5, 6, 7
    hc21 = _C21 / h
    hc31 = _C31 / h
    hc32 = _C32 / h
    hc41 = _C41 / h
    hc42 = _C42 / h
    hc43 = _C43 / h
    hc51 = _C51 / h
    hc52 = _C52 / h
    hc53 = _C53 / h
    hc54 = _C54 / h
    hc61 = _C61 / h
    hc62 = _C62 / h
    hc63 = _C63 / h
    hc64 = _C64 / h
    hc65 = _C65 / h
    for s in range(ns):
        k[k1, s] = k[0, s]
    solve(w, fct, k, k1)
    for s in range(ns):
        ytmp[s] = y[s] + _A21 * k[k1, s]
    rhs_fast(flavour, ytmp, p, c, n_done, k, k2)
    for s in range(ns):
        k[k2, s] += hc21 * k[k1, s]
    solve(w, fct, k, k2)
    for s in range(ns):
        ytmp[s] = y[s] + _A31 * k[k1, s] + _A32 * k[k2, s]
    rhs_fast(flavour, ytmp, p, c, n_done, k, k3)
    for s in range(ns):
        k[k3, s] += hc31 * k[k1, s] + hc32 * k[k2, s]
    solve(w, fct, k, k3)
    for s in range(ns):
        ytmp[s] = y[s] + _A41 * k[k1, s] + _A42 * k[k2, s] + _A43 * k[k3, s]
    rhs_fast(flavour, ytmp, p, c, n_done, k, k4)
    for s in range(ns):
        k[k4, s] += hc41 * k[k1, s] + hc42 * k[k2, s] + hc43 * k[k3, s]
    solve(w, fct, k, k4)
    for s in range(ns):
        ytmp[s] = y[s] + _A51 * k[k1, s] + _A52 * k[k2, s] + _A53 * k[k3, s] + _A54 * k[k4, s]
    rhs_fast(flavour, ytmp, p, c, n_done, k, k5)
    for s in range(ns):
        k[k5, s] += hc51 * k[k1, s] + hc52 * k[k2, s] + hc53 * k[k3, s] + hc54 * k[k4, s]
    solve(w, fct, k, k5)
    # embedded solution (order 3), then the last stage gives the order-4 solution
    for s in range(ns):
        ytmp[s] = ytmp[s] + k[k5, s]
    rhs_fast(flavour, ytmp, p, c, n_done, k, k6)
    for s in range(ns):
        k[k6, s] += (
            hc61 * k[k1, s] + hc62 * k[k2, s] + hc63 * k[k3, s] + hc64 * k[k4, s] + hc65 * k[k5, s]
        )
    solve(w, fct, k, k6)
    err = 0.0
    for s in range(ns):
        ynew[s] = ytmp[s] + k[k6, s]
        sc = atol + rtol * max(abs(y[s]), abs(ynew[s]))
        err += (k[k6, s] / sc) ** 2
    err = math.sqrt(err / ns)
    if math.isfinite(err):
        rhs_fast(flavour, ynew, p, c, n_done, k, ROW_LAST)
    return err


@njit(cache=True, inline="always")
def rodas4_dense(y, ynew, k, f):
    """Dense output of the accepted step: ``f[0] = y_1``, ``f[1] = d_2``, ``f[2] = d_3``."""
    ns = y.shape[0]
    k1, k2, k3, k4, k5 = 2, 3, 4, 5, 6
    for s in range(ns):
        f[0, s] = ynew[s]
        f[1, s] = (
            _H21 * k[k1, s] + _H22 * k[k2, s] + _H23 * k[k3, s] + _H24 * k[k4, s] + _H25 * k[k5, s]
        )
        f[2, s] = (
            _H31 * k[k1, s] + _H32 * k[k2, s] + _H33 * k[k3, s] + _H34 * k[k4, s] + _H35 * k[k5, s]
        )
