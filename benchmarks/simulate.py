"""Benchmark of the compiled immune-reset simulator (issue 6).

Run: ``.venv/bin/python benchmarks/simulate.py [--quick]``

(a) 1,000 patients: compiled DP5 (numba, all cores) vs a per-patient SciPy
    ``solve_ivp(method="LSODA")`` loop at the same tolerances, same right-hand side, same events.
(b) 1,000,000 patients × 2 years, endpoints + 20 sampling times, streamed in chunks: wall time,
    peak RSS (``resource.getrusage(...).ru_maxrss``), patient-years/s, RHS evaluations/s/core.
Numba compile (or cache load) time is measured separately as a warm-up.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time

import numpy as np
from rich.console import Console
from rich.table import Table
from scipy.integrate import solve_ivp

from immunoreset.model.equations import FLAVOURS, N_STATES, ImmuneParams, rhs
from immunoreset.model.population import (
    DEFAULT_SAMPLE_DAYS,
    DIAGNOSIS_MIX,
    iter_population,
    make_patient_batch,
)
from immunoreset.model.solver import integrate_batch

RTOL, ATOL = 1e-8, 1e-10


def _batch(n: int, seed: int = 0):
    return make_patient_batch(
        start=0, n=n, seed=seed, dose_per_kg=1e6, typical=ImmuneParams(),
        age_range=(5.0, 18.0), diagnosis_mix=DIAGNOSIS_MIX, lymphodepletion=True,
    )  # fmt: skip


def _compiled(batch, sd):
    _cov, p, y0, et, em, ea = batch
    return integrate_batch(
        flavour=FLAVOURS["immune"], params=p, y0=y0, t0=-6.0, t_end=730.0, event_times=et,
        event_mult=em, event_add=ea, sample_days=sd, rtol=RTOL, atol=ATOL,
    )  # fmt: skip


def _lsoda_loop(batch, sd, rhs_fn=rhs):
    _cov, p, y0, et, em, ea = batch
    out = np.empty((p.shape[0], len(sd)))
    nfev = 0
    for i in range(p.shape[0]):
        y = y0[i].copy()
        bounds = [-6.0, *et[i], 730.0]
        for seg in range(len(bounds) - 1):
            pi = p[i]

            def f(t, yy, seg=seg, pi=pi):
                dy = np.empty(N_STATES)
                rhs_fn(0, t, yy, pi, seg, dy)
                return dy

            inside = sd[(sd >= bounds[seg]) & (sd < bounds[seg + 1])]
            sol = solve_ivp(f, (bounds[seg], bounds[seg + 1]), y, method="LSODA", rtol=RTOL,
                            atol=ATOL, t_eval=inside if len(inside) else None)  # fmt: skip
            nfev += sol.nfev
            y = sol.y[:, -1].copy()
            if seg < et.shape[1]:
                y = y * em[i, seg] + ea[i, seg]
        out[i, -1] = y[0] + y[1]
    return out, nfev


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="100,000 instead of 1,000,000 in (b)")
    ap.add_argument("--chunk-size", type=int, default=50_000)
    args = ap.parse_args()
    console = Console()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    sd = np.array(DEFAULT_SAMPLE_DAYS, dtype=float)

    t = time.perf_counter()
    _compiled(_batch(4), sd)
    warm = time.perf_counter() - t

    batch = _batch(1000, seed=1)
    t = time.perf_counter()
    s, _e, stats = _compiled(batch, sd)
    t_nb = time.perf_counter() - t
    t = time.perf_counter()
    ref, nfev_lsoda = _lsoda_loop(batch, sd)
    t_ls = time.perf_counter() - t
    sub = tuple(x[:100] if x is not None else None for x in batch)
    t = time.perf_counter()
    _lsoda_loop(sub, sd, rhs_fn=rhs.py_func)
    t_py = (time.perf_counter() - t) * 10.0
    car730 = s[:, -1, 0]
    rel = np.abs(ref[:, -1] - car730) / np.maximum(np.abs(car730), 1e-300)

    n_big = 100_000 if args.quick else 1_000_000
    nfev_big = 0
    kept = 0
    t = time.perf_counter()
    for chunk in iter_population(n_big, seed=0, chunk_size=args.chunk_size, with_stats=True):
        nfev_big += int(chunk["rhs_evals"].sum())
        kept += len(chunk)  # a real run would stream each chunk to Parquet here
    t_big = time.perf_counter() - t
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9

    tab = Table(title=f"immune-reset simulator benchmark ({cores} cores, rtol {RTOL}, atol {ATOL})")
    for col in ("measure", "value"):
        tab.add_column(col)
    rows = [
        ("numba compile / cache load (warm-up)", f"{warm:.2f} s"),
        ("(a) compiled DP5, 1,000 patients × 2 y", f"{t_nb:.3f} s"),
        ("(a) SciPy LSODA loop, 1,000 patients × 2 y", f"{t_ls:.2f} s"),
        ("(a) speed-up vs LSODA + compiled RHS", f"{t_ls / t_nb:.0f}×  (target ≥ 200×)"),
        ("(a) SciPy LSODA loop, plain-Python RHS (100 × 10)", f"{t_py:.1f} s"),
        ("(a) speed-up vs LSODA + plain-Python RHS", f"{t_py / t_nb:.0f}×  (target ≥ 200×)"),
        (
            "(a) RHS evals/patient DP5 vs LSODA",
            f"{stats[:, 0].mean():.0f} vs {nfev_lsoda / 1000:.0f}",
        ),
        ("(a) LSODA vs DP5 CAR T day 730, max rel diff", f"{np.nanmax(rel):.2e}"),
        (f"(b) {n_big:,} patients × 2 y, 20 samples, wall", f"{t_big:.1f} s  (target ≤ 60 s)"),
        ("(b) peak RSS (ru_maxrss)", f"{peak_gb:.2f} GB  (target ≤ 2 GB)"),
        ("(b) patient-years / s", f"{2 * kept / t_big:,.0f}"),
        ("(b) RHS evaluations / s / core", f"{nfev_big / t_big / cores:,.3g}"),
    ]
    for r in rows:
        tab.add_row(*r)
    console.print(tab)


if __name__ == "__main__":
    sys.exit(main())
