"""Benchmark of the compiled immune-reset simulator (issue 6).

Run: ``.venv/bin/python benchmarks/simulate.py [--quick]``

(a) 1,000 patients: the compiled solver (numba, all cores; DOP853 default and DP5) vs a
    per-patient SciPy ``solve_ivp(method="LSODA")`` loop at the same tolerances and events
    (restart at each dose), with (1) the plain-Python/NumPy RHS (``rhs.py_func``, what a
    pharmacometrician would write) and (2) the same RHS compiled by numba. Compiled times are
    the median of 5 runs; the LSODA loops run once over all 1,000 patients.
(b) 1,000,000 patients × 2 years, endpoints + 20 sampling times, streamed chunk by chunk to a
    Parquet file in a temporary directory: wall time (including writing), peak RSS
    (``resource.getrusage(...).ru_maxrss``), patient-years/s, RHS evaluations/s/core.
(c) ``--peers DIR``: the strongest peers on the same 1,000 patients, tolerances, events and
    samples, run by ``benchmarks/peers.py`` in a subprocess with ``DIR`` on ``PYTHONPATH`` (they
    need their own numpy/numba; not project dependencies): numbalsoda LSODA from a numba
    ``njit`` loop (1 core) and diffrax Dopri8 / Tsit5 (JAX, ``vmap`` + ``jit``, CPU). Compared
    per core: the compiled DOP853 run with ``numba.set_num_threads(1)``. Accuracy: largest
    relative difference of CAR T and B cells from the DOP853 samples (values > 1e-6).
Numba compile (or cache load) time is measured separately as a warm-up.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table
from scipy.integrate import solve_ivp

from immunoreset.model.equations import FLAVOURS, N_STATES, ImmuneParams, rhs
from immunoreset.model.population import (
    DEFAULT_SAMPLE_DAYS,
    DIAGNOSIS_MIX,
    make_patient_batch,
    stream_population,
)
from immunoreset.model.solver import integrate_batch

RTOL, ATOL = 1e-8, 1e-10


def _batch(n: int, seed: int = 0):
    return make_patient_batch(
        start=0, n=n, seed=seed, dose_per_kg=1e6, typical=ImmuneParams(),
        age_range=(5.0, 18.0), diagnosis_mix=DIAGNOSIS_MIX, lymphodepletion=True,
    )  # fmt: skip


def _compiled(batch, sd, method="dop853"):
    _cov, p, y0, et, em, ea = batch
    return integrate_batch(
        flavour=FLAVOURS["immune"], params=p, y0=y0, t0=-6.0, t_end=730.0, event_times=et,
        event_mult=em, event_add=ea, sample_days=sd, rtol=RTOL, atol=ATOL, method=method,
    )  # fmt: skip


def _timed(fn, repeats=5):
    """Median wall time and median CPU time (all threads) over ``repeats`` runs."""
    times = []
    cpu = []
    for _ in range(repeats):
        t = time.perf_counter()
        c = time.process_time()
        res = fn()
        cpu.append(time.process_time() - c)
        times.append(time.perf_counter() - t)
    return float(np.median(times)), float(np.median(cpu)), res


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
    ap.add_argument("--peers", default=None, help="directory with numbalsoda/diffrax/jax")
    ap.add_argument("--peers-only", action="store_true", help="only part (c)")
    args = ap.parse_args()
    if args.peers:
        _peers(args.peers)
        if args.peers_only:
            return
    console = Console()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    sd = np.array(DEFAULT_SAMPLE_DAYS, dtype=float)

    t = time.perf_counter()
    _compiled(_batch(4), sd)
    _compiled(_batch(4), sd, "dp5")
    _compiled(_batch(4), sd, "auto")
    warm = time.perf_counter() - t

    load0 = os.getloadavg()[0]
    batch = _batch(1000, seed=1)
    t_d8, c_d8, (s, _e, st8) = _timed(lambda: _compiled(batch, sd))
    t_d5, _c5, (_s5, _e5, st5) = _timed(lambda: _compiled(batch, sd, "dp5"))
    t_au, _ca, (s_au, _ea, sta) = _timed(lambda: _compiled(batch, sd, "auto"))
    t_ls, c_ls, (ref, nfev_lsoda) = _timed(lambda: _lsoda_loop(batch, sd), repeats=1)
    t_py, c_py, _ = _timed(lambda: _lsoda_loop(batch, sd, rhs_fn=rhs.py_func), repeats=1)
    car730 = s[:, -1, 0]
    rel = np.abs(ref[:, -1] - car730) / np.maximum(np.abs(car730), 1e-300)

    n_big = 100_000 if args.quick else 1_000_000
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "cohort.parquet"
        t = time.perf_counter()
        summ = stream_population(n_big, seed=0, out=out, chunk_size=args.chunk_size)
        t_big = time.perf_counter() - t
        load1 = os.getloadavg()[0]
        size_mb = out.stat().st_size / 1e6
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9

    def work(stats):
        return (
            f"{stats[:, 0].mean():.0f} RHS, {stats[:, 1].mean():.1f} acc / "
            f"{stats[:, 2].mean():.1f} rej steps, {stats[:, 3].mean():.1f} dense"
        )

    tab = Table(title=f"immune-reset simulator benchmark ({cores} cores, rtol {RTOL}, atol {ATOL})")
    for col in ("measure", "value"):
        tab.add_column(col)
    rows = [
        ("load average (1 min) at start / end", f"{load0:.1f} / {load1:.1f}"),
        ("numba compile / cache load (warm-up)", f"{warm:.2f} s"),
        ("(a) compiled DOP853, 1,000 patients × 2 y", f"{t_d8 * 1e3:.1f} ms"),
        ("(a) compiled DP5, 1,000 patients × 2 y", f"{t_d5 * 1e3:.1f} ms"),
        ("(a) per patient, DOP853", work(st8)),
        ("(a) per patient, DP5", work(st5)),
        ("(a) compiled auto (DOP853/RODAS4), 1,000 patients × 2 y", f"{t_au * 1e3:.1f} ms"),
        (
            "(a) per patient, auto",
            f"{work(sta)}, {sta[:, 5].mean():.0f} Jacobians, {sta[:, 6].mean():.1f} switches",
        ),
        (
            "(a) auto vs DOP853 samples, max rel diff (values > 1e-6)",
            f"{_max_rel(s_au, s):.1e}",
        ),
        ("(a) per patient, LSODA", f"{nfev_lsoda / 1000:.0f} RHS"),
        ("(a) SciPy LSODA loop, plain-Python RHS", f"{t_py:.2f} s"),
        ("(a) SciPy LSODA loop, compiled RHS", f"{t_ls:.2f} s"),
        ("(a) speed-up DOP853 vs LSODA + plain-Python RHS", f"{t_py / t_d8:.0f}×  (target ≥ 200×)"),
        ("(a) speed-up DOP853 vs LSODA + compiled RHS", f"{t_ls / t_d8:.0f}×"),
        ("(a) speed-up DP5 vs LSODA + plain-Python RHS", f"{t_py / t_d5:.0f}×"),
        (
            "(a) CPU time DOP853 / LSODA plain / LSODA compiled",
            f"{c_d8:.3f} / {c_py:.1f} / {c_ls:.1f} s",
        ),
        (
            f"(a) CPU-time ratio × {cores} cores, vs plain / compiled RHS",
            f"{cores * c_py / c_d8:.0f}× / {cores * c_ls / c_d8:.0f}×  (wall if cores were free)",
        ),
        ("(a) RHS evaluations / s / core, DOP853", f"{st8[:, 0].sum() / t_d8 / cores:.3g}"),
        ("(a) LSODA vs DOP853 CAR T day 730, max rel diff", f"{np.nanmax(rel):.2e}"),
        (f"(b) {n_big:,} patients × 2 y → Parquet, wall", f"{t_big:.1f} s  (target ≤ 60 s)"),
        ("(b) Parquet file size", f"{size_mb:.0f} MB"),
        ("(b) peak RSS (ru_maxrss, whole run)", f"{peak_gb:.2f} GB  (target ≤ 2 GB)"),
        ("(b) patient-years / s", f"{2 * summ.n / t_big:,.0f}"),
        ("(b) RHS evaluations / s / core", f"{summ.rhs_evals / t_big / cores:.3g}"),
    ]
    for r in rows:
        tab.add_row(*r)
    console.print(tab)


def _max_rel(got: np.ndarray, ref: np.ndarray) -> float:
    big = np.abs(ref) > 1e-6
    return float(np.nanmax(np.abs(got - ref)[big] / np.abs(ref)[big]))


def _peers(path: str) -> None:
    """Part (c): numbalsoda and diffrax against the compiled DOP853 on the same patients."""
    import numba

    console = Console()
    sd = np.array(DEFAULT_SAMPLE_DAYS, dtype=float)
    batch = _batch(1000, seed=1)
    _compiled(_batch(4), sd)
    t_all, _c, (s_ref, _e, _st) = _timed(lambda: _compiled(batch, sd))
    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    t_one, c_one, _ = _timed(lambda: _compiled(batch, sd))
    _compiled(_batch(4), sd, "auto")
    t_au, c_au, (s_au, _ea, _sta) = _timed(lambda: _compiled(batch, sd, "auto"))
    numba.set_num_threads(threads)
    ref = np.stack([s_ref[:, :, 0], s_ref[:, :, 2]], axis=-1)
    _cov, p, y0, et, em, ea = batch
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "batch.npz", Path(tmp) / "peers.json"
        np.savez(src, params=p, y0=y0, ev_t=et, ev_m=em, ev_a=ea, sd=sd, t0=-6.0, t_end=730.0,
                 rtol=RTOL, atol=ATOL)  # fmt: skip
        here = Path(__file__).resolve().parent
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([path, str(here.parent / "src")])
        env["NUMBA_CACHE_DIR"] = str(Path(tmp) / "numba-cache")  # other numba version
        proc = subprocess.run([sys.executable, str(here / "peers.py"), str(src), str(dst)],
                              env=env, capture_output=True, text=True, check=False)  # fmt: skip
        if proc.returncode != 0:
            console.print(f"peers failed: {proc.stderr.strip().splitlines()[-1:]}")
            return
        res = json.loads(dst.read_text())
    tab = Table(title="(c) peers, 1,000 patients × 2 y, rtol 1e-8, atol 1e-10, 20 samples")
    for col in ("solver", "wall", "CPU", "compile", "CPU vs DOP853 1 thread", "max rel diff"):
        tab.add_column(col)
    tab.add_row(
        "immunoreset DOP853, 1 thread", f"{t_one:.3f} s", f"{c_one:.3f} s", "-", "1.0×", "-"
    )
    tab.add_row(
        "immunoreset auto (DOP853/RODAS4), 1 thread", f"{t_au:.3f} s", f"{c_au:.3f} s", "-",
        f"{c_au / c_one:.2f}×", f"{_max_rel(s_au[:, :, [0, 2]], ref):.1e}",
    )  # fmt: skip
    tab.add_row(f"immunoreset DOP853, {threads} threads", f"{t_all:.3f} s", "-", "-", "-", "-")
    for name in ("numbalsoda", "dopri8", "tsit5"):
        r = res.get(name, {})
        if "error" in r or not r:
            tab.add_row(name, "not run", r.get("error", "missing"), "", "", "")
            continue
        got = np.asarray(r["samples"])
        big = np.abs(ref) > 1e-6
        rel = np.nanmax(np.abs(got - ref)[big] / np.abs(ref)[big])
        label = "numbalsoda LSODA (njit loop)" if name == "numbalsoda" else f"diffrax {name}"
        tab.add_row(label, f"{r['wall_s']:.3f} s", f"{r['cpu_s']:.3f} s", f"{r['compile_s']:.1f} s",
                    f"{r['cpu_s'] / c_one:.1f}×", f"{rel:.1e}")  # fmt: skip
    console.print(tab)
    console.print(f"peer versions: {res.get('versions')}")


if __name__ == "__main__":
    sys.exit(main())
