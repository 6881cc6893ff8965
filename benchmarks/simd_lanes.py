"""SIMD lock-step lanes for the DOP853 step (issue 15 stretch): measured, not adopted.

Run: ``PYTHONPATH=src .venv/bin/python benchmarks/simd_lanes.py``

The lane kernel is generated at run time from the production scalar kernel
(:func:`immunoreset.model.rk_kernels.dop853_step`): the same stage expressions with an
innermost loop over lanes, arrays shaped ``[..., lane]`` (lane index last, contiguous), each
lane with its own step size. Per lane the floating-point operations are those of the scalar
kernel in the same order, so the results are checked **bit-identical**. Two things were
needed for LLVM to vectorise the lane loops at all (verified by counting ``vdivpd`` in the
assembly): numba's NumPy error model (the default Python model puts a zero-division branch
before every division) and right-hand-side loops of at most four outputs each (with more,
LLVM needs more runtime alias checks than it allows and keeps the loop scalar).

It times one step of ``L`` children (1) with the scalar kernel, child after child, and
(2) with the lane kernel, for L = 8 … 64, single thread, and prints ns per child-step.

Measured 2026-12-01 19:00–19:25 (2-core AVX-512 Xeon, numba emits AVX2; load 3–6 from
other jobs, so single runs vary by ±30 %; min of 4 repetitions), ns per child-step, scalar /
lanes: L = 8: 813 / 696 (1.17×), L = 16: 819 / 559 (1.46×), L = 32: 869 / 414 (2.10×),
L = 64: 1,125 / 553 (2.04×); an earlier run under more load gave 0.9–1.4×.

End to end it did not pay. A complete lane integrator (branch ``simd-lanes``: 32 lanes,
blocks of 256 children, each lane a state machine running the scalar solver's code between
steps, refilled when its child finishes) gave samples, endpoints and solver statistics
**bit-identical** to the scalar solver on 2,000 children, but took 1.48 CPU-s against 1.18
(scalar) for 2,000 children × 1 year, i.e. 0.8×: in the scalar solver the step kernel is
about two thirds of the per-step cost, and the per-lane bookkeeping (state in arrays, a call
per lane and step, gathering a lane for dense output) costs more than the kernel saves; numba
refused to inline the lane function ("Calling a closure with *args is unsupported"). Not
adopted; the step count (stiffness of the programme A, ``docs/model.md``) is the better lever.
"""

from __future__ import annotations

import argparse
import inspect
import re
import time

import numba
import numpy as np
from numba import njit
from rich.console import Console
from rich.table import Table

from immunoreset.model import equations as eq
from immunoreset.model import rk_kernels
from immunoreset.model.equations import N_DERIVED, N_STATES, ImmuneParams
from immunoreset.model.population import make_patient_batch

_KB, _KKILL, _RHO, _KS, _MU, _BETA = eq._KB, eq._KKILL, eq._RHO, eq._KS, eq._MU, eq._BETA
_KP, _KL, _KAB, _KD, _KI, _KON, _KOFF = eq._KP, eq._KL, eq._KAB, eq._KD, eq._KI, eq._KON, eq._KOFF


@njit(inline="always", error_model="numpy")
def rhs_lanes(y, p, c, out, row, nl):  # type: ignore[no-untyped-def]
    """``rhs_fast`` (immune flavour, Hill 2) for ``nl`` lanes into ``out[row]`` (lane last).

    Three loops of at most four outputs each: with more, LLVM needs more runtime alias checks
    than it allows and leaves the loop scalar. Per lane the operations of ``rhs_fast``.
    """
    for ln in range(nl):
        e = y[0, ln]
        ba = y[3, ln]
        cc = e + y[1, ln]
        x = cc * c[4, ln]
        g = 1.0 if x <= 0.0 else 1.0 / (1.0 + x * x)
        q = ba / (ba + c[12, ln]) if ba > 0.0 else 0.0
        kill = p[_KKILL, ln] * e
        kb = p[_KB, ln]
        out[row, 0, ln] = (
            (c[13, ln] + p[_RHO, ln] * y[8, ln]) * y[9, ln] / (1.0 + cc * c[14, ln]) - c[5, ln]
        ) * e
        out[row, 1, ln] = p[_MU, ln] * e - p[_BETA, ln] * y[1, ln]
        out[row, 2, ln] = c[0, ln] * g - (kb + kill) * y[2, ln]
        out[row, 3, ln] = c[1, ln] * g + (c[2, ln] * q * (1.0 - c[3, ln] * ba) - kb - kill) * ba
    for ln in range(nl):
        pb = y[4, ln]
        kill = p[_KKILL, ln] * y[0, ln]
        out[row, 4, ln] = c[6, ln] * y[3, ln] - (p[_KP, ln] + kill) * pb
        out[row, 5, ln] = p[_KL, ln] * (pb - y[5, ln])
        out[row, 6, ln] = c[7, ln] * pb + c[8, ln] * y[5, ln] - p[_KAB, ln] * y[6, ln]
        out[row, 7, ln] = c[9, ln] * y[3, ln] + c[10, ln] * y[6, ln] - p[_KD, ln] * y[7, ln]
    for ln in range(nl):
        act = y[9, ln]
        b = y[2, ln] + y[3, ln]
        sat = b / (b + p[_KS, ln]) if b > 0.0 else 0.0
        out[row, 8, ln] = -p[_KI, ln] * y[8, ln]
        out[row, 9, ln] = p[_KON, ln] * sat * (1.0 - act) - p[_KOFF, ln] * act
        out[row, 10, ln] = y[0, ln] + y[1, ln]


def _lanes(text: str) -> str:
    """Index a stage expression by lane: ``x[s]`` → ``x[s, ln]``, ``h *`` → ``h[ln] *``."""
    text = re.sub(r"(\w+)\[s\]", r"\1[s, ln]", text)
    text = re.sub(r"k\[(\d+), s\]", r"k[\1, s, ln]", text)
    return re.sub(r"\bh \*", "h[ln] *", text)


def lane_kernel_source() -> str:
    """Source of ``dop853_step_lanes``, generated from the scalar ``dop853_step``."""
    src = inspect.getsource(rk_kernels.dop853_step)
    body = src.split('"' * 3, 2)[2]
    stages, _sep, tail = body.partition("    e5 = 0.0")
    out = ["def dop853_step_lanes(p, c, h, y, k, ynew, ytmp, rtol, atol, err, e5, e3, nl):"]
    out.append("    ns = N_STATES")
    for block in re.split(r"(?m)^    (?=for s in range\(ns\):|rhs_fast)", stages):
        block = block.rstrip()
        if not block or block.strip() == "ns = N_STATES":
            continue
        if block.startswith("rhs_fast"):
            row = int(re.search(r"k, (\d+)\)", block).group(1))
            arr = "ynew" if row == 12 else "ytmp"
            out.append(f"    rhs_lanes({arr}, p, c, k, {row}, nl)")
            continue
        inner = "\n".join("    " + ln for ln in block.splitlines()[1:])
        out.append("    for s in range(ns):\n        for ln in range(nl):\n" + _lanes(inner))
    err = tail.split("        e5 += ", 1)[0].replace("    e3 = 0.0\n    for s in range(ns):\n", "")
    err = "\n".join("    " + ln for ln in err.splitlines() if ln.strip())
    out += [
        "    for ln in range(nl):",
        "        e5[ln] = 0.0",
        "        e3[ln] = 0.0",
        "    for s in range(ns):",
        "        for ln in range(nl):",
        _lanes(err),
        "            e5[ln] += (a5 / sc) ** 2",
        "            e3[ln] += (a3 / sc) ** 2",
        "    for ln in range(nl):",
        "        if e5[ln] == 0.0 and e3[ln] == 0.0:",
        "            err[ln] = 0.0",
        "        else:",
        "            err[ln] = abs(h[ln]) * e5[ln] / math.sqrt((e5[ln] + 0.01 * e3[ln]) * ns)",
    ]
    return "\n".join(out) + "\n"


def build_lane_kernel():  # type: ignore[no-untyped-def]
    """Compile the generated lane kernel (no cache: it has no source file)."""
    import math

    ns = {"math": math, "N_STATES": N_STATES, "rhs_lanes": rhs_lanes}
    exec(lane_kernel_source(), ns)  # our own generated code
    return njit(error_model="numpy")(ns["dop853_step_lanes"])


@njit
def _scalar(reps, params, consts, y, h, out):  # type: ignore[no-untyped-def]
    k = np.empty((16, N_STATES))
    ynew = np.empty(N_STATES)
    ytmp = np.empty(N_STATES)
    tot = 0.0
    for r in range(reps):
        for i in range(y.shape[0]):
            eq.rhs_fast(0, y[i], params[i], consts[i], 3, k, 0)
            e = rk_kernels.dop853_step(
                0, params[i], consts[i], 3, h[i], y[i], k, ynew, ytmp, 1e-8, 1e-10
            )
            tot += e
            if r == 0:
                out[i, :N_STATES] = ynew
                out[i, N_STATES] = e
    return tot


def _lane_driver(step):  # type: ignore[no-untyped-def]
    @njit(error_model="numpy")
    def run(reps, p, c, y, h, out):  # type: ignore[no-untyped-def]
        nl = y.shape[1]
        k = np.empty((16, N_STATES, nl))
        ynew = np.empty((N_STATES, nl))
        ytmp = np.empty((N_STATES, nl))
        err = np.empty(nl)
        e5 = np.empty(nl)
        e3 = np.empty(nl)
        tot = 0.0
        for r in range(reps):
            rhs_lanes(y, p, c, k, 0, nl)
            step(p, c, h, y, k, ynew, ytmp, 1e-8, 1e-10, err, e5, e3, nl)
            for ln in range(nl):
                tot += err[ln]
            if r == 0:
                for ln in range(nl):
                    out[ln, :N_STATES] = ynew[:, ln]
                    out[ln, N_STATES] = err[ln]
        return tot

    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=20_000, help="steps per lane and repetition")
    args = ap.parse_args()
    numba.set_num_threads(1)
    console = Console()
    lanes = _lane_driver(build_lane_kernel())
    table = Table(title="DOP853 step, scalar vs SIMD lanes (1 thread, ns per child-step)")
    for col in ("lanes L", "scalar", "lanes", "speed-up", "bit-identical"):
        table.add_column(col, justify="right")
    rng = np.random.default_rng(0)
    for nl in (8, 16, 32, 64):
        _cov, params, y0, *_ev = make_patient_batch(
            start=0,
            n=nl,
            seed=1,
            dose_per_kg=1e6,
            typical=ImmuneParams(),
            age_range=(6.0, 17.0),
            diagnosis_mix={"SLE": 1.0},
            lymphodepletion=True,
        )
        y = y0.copy()  # a state during expansion: CAR T present, B cells being killed
        y[:, 0] = rng.uniform(0.1, 30.0, nl)
        y[:, 1] = rng.uniform(0.0, 1.0, nl)
        y[:, 2] *= rng.uniform(0.001, 1.0, nl)
        consts = np.empty((nl, N_DERIVED))
        for i in range(nl):
            eq.derived_constants(0, params[i], consts[i])
        h = rng.uniform(0.01, 2.0, nl)
        o1 = np.empty((nl, N_STATES + 1))
        o2 = np.empty((nl, N_STATES + 1))
        pl, cl, yl = (np.ascontiguousarray(a.T) for a in (params, consts, y))
        _scalar(1, params, consts, y, h, o1)
        lanes(1, pl, cl, yl, h, o2)
        same = bool(np.array_equal(o1, o2))
        t_s = t_l = float("inf")
        for _rep in range(4):
            t = time.perf_counter()
            _scalar(args.steps, params, consts, y, h, o1)
            t_s = min(t_s, time.perf_counter() - t)
            t = time.perf_counter()
            lanes(args.steps, pl, cl, yl, h, o2)
            t_l = min(t_l, time.perf_counter() - t)
        per = 1e9 / (args.steps * nl)
        table.add_row(
            str(nl), f"{t_s * per:.0f}", f"{t_l * per:.0f}", f"{t_s / t_l:.2f}×", str(same)
        )
    console.print(table)


if __name__ == "__main__":
    main()
