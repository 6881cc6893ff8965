"""Benchmark of virtual trials (issue 15): scale, Dask speed-up and Dask overhead.

Run: ``PYTHONPATH=src .venv/bin/python benchmarks/trial.py [--quick] [--skip-dask]``

Design: 4 arms (three doses with Flu/Cy, one without lymphodepletion) × 100 patients ×
1,000 replicates = 400,000 virtual children of 6–17 y, 1 year, 17 sampling days, parameter
uncertainty on 4 parameters, a two-condition success rule. ``--quick`` runs 100 replicates.

(a) In-process run (numba threads on every core), outputs streamed to Parquet: wall time
    (target ≤ 60 s), virtual patients/s, and the profile: share of the wall time spent inside
    the compiled solver (``integrate_batch``) versus drawing patients, endpoints, statistics,
    rules and Parquet.
(b) Per-core throughput of the single-process simulator (numba pinned to 1 thread).
(c) The same job on a local Dask cluster of 1 and of 2 single-threaded worker processes:
    wall time with and without cluster start-up, speed-up 1 → 2 workers, and per-core
    throughput against (b) — the overhead of Dask (serialisation, scheduling, the driver's
    aggregation). Identity of the outputs with (a) is checked.
CPU seconds (``getrusage`` of this process and its reaped children, i.e. the Dask worker
processes after the cluster is closed) are reported too: on a shared, loaded machine wall
times and the 1 → 2 worker speed-up depend on the other load, patients per CPU-second much
less. Numba compile/cache load is done first as a warm-up and not counted.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

import numba
from rich.console import Console
from rich.table import Table

import immunoreset.model.trial.cohort as cohort
from immunoreset.model.trial.design import parse_design
from immunoreset.model.trial.run import run_trial

DESIGN = {
    "name": "benchmark: 4 arms x 100 patients x 1000 replicates",
    "seed": 1,
    "replicates": 1000,
    "patients_per_arm": 100,
    "population": {"age_years": [6.0, 17.0], "diagnosis_mix": {"SLE": 0.6, "JDM": 0.4}},
    "sample_days": [0, 3, 5, 7, 10, 14, 21, 28, 42, 56, 91, 120, 150, 182, 240, 300, 365],
    "arms": [
        {"name": "A", "dose_per_kg": 5e5},
        {"name": "B", "dose_per_kg": 1e6},
        {"name": "C", "flat_dose": 5e7},
        {"name": "D", "dose_per_kg": 1e6, "lymphodepletion": {"regimen": "none"}},
    ],
    "parameters": {"rse": {"k_kill": 0.2, "f_dist": 0.2, "c50": 0.3, "i_ld": 0.2}},
    "success": {
        "conditions": [
            {"arm": "B", "endpoint": "disease_m6", "responder": {"le": 4}, "min_proportion": 0.8,
             "ci": {"level": 0.9, "lower_above": 0.6}},
            {"arm": "B", "endpoint": "b_clear_d7", "min_proportion": 0.5},
        ]
    },
}  # fmt: skip


class _SolverClock:
    """Wraps the solver used by the cohort module to sum its wall time."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._orig = cohort.integrate_batch

    def __enter__(self) -> _SolverClock:
        def timed(**kw):
            t = time.perf_counter()
            try:
                return self._orig(**kw)
            finally:
                self.seconds += time.perf_counter() - t

        cohort.integrate_batch = timed
        return self

    def __exit__(self, *exc) -> None:
        cohort.integrate_batch = self._orig


def _cpu() -> float:
    """CPU seconds of this process and of its reaped children (Dask worker processes)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _run(design, **kw):
    t = time.perf_counter()
    c = _cpu()
    res = run_trial(design, **kw)
    _run.cpu = _cpu() - c
    return time.perf_counter() - t, res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="100 replicates instead of 1,000")
    ap.add_argument("--skip-dask", action="store_true", help="only parts (a) and (b)")
    args = ap.parse_args()
    spec = dict(DESIGN)
    if args.quick:
        spec["replicates"] = 100
    design = parse_design(spec)
    n_pat = design.replicates * design.patients_per_arm * len(design.arms)
    cores = os.cpu_count() or 1
    console = Console()
    console.print(f"load average at start: {os.getloadavg()}; {cores} cores; {n_pat:,} patients")
    warm = parse_design({**spec, "replicates": 2})
    t = time.perf_counter()
    run_trial(warm)
    console.print(f"warm-up (numba cache load, growth tables): {time.perf_counter() - t:.1f} s")

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        with _SolverClock() as clock:
            wall, res_a = _run(design, out=Path(tmp) / "a")
        rows.append(("(a) in-process, all cores: wall", f"{wall:.1f} s (target ≤ 60 s)"))
        rows.append(("(a) virtual patients/s", f"{n_pat / wall:,.0f}"))
        cpu_a = _run.cpu
        rows.append(("(a) virtual patients per CPU-second", f"{n_pat / cpu_a:,.0f}"))
        rows.append(("(a) RHS evaluations per patient", f"{res_a.rhs_evals / n_pat:,.0f}"))
        rows.append(("(a) share of wall time in the compiled solver",
                     f"{100 * clock.seconds / wall:.0f} %"))  # fmt: skip
        # (b) single thread
        sub = parse_design({**spec, "replicates": max(10, design.replicates // 10)})
        n_sub = sub.replicates * sub.patients_per_arm * len(sub.arms)
        threads = numba.get_num_threads()
        numba.set_num_threads(1)
        try:
            wall_1, _ = _run(sub)
        finally:
            numba.set_num_threads(threads)
        per_core = n_sub / wall_1
        per_cpu = n_sub / _run.cpu
        rows.append(("(b) single process, 1 thread: patients/s/core", f"{per_core:,.0f}"))
        rows.append(("(b) single process, 1 thread: patients per CPU-second", f"{per_cpu:,.0f}"))
        if not args.skip_dask:
            walls = {}
            cpus = {}
            for w in (1, 2):
                t0 = time.perf_counter()
                started = []
                wall_w, res_w = _run(
                    design,
                    out=Path(tmp) / f"w{w}",
                    workers=w,
                    on_cluster=lambda _l, s=started: s.append(time.perf_counter()),
                )
                startup = started[0] - t0
                walls[w] = wall_w - startup
                same = res_w.replicates.equals(res_a.replicates)
                rows.append((f"(c) Dask {w} worker(s): wall incl. start-up / start-up",
                             f"{wall_w:.1f} s / {startup:.1f} s"))  # fmt: skip
                rows.append((f"(c) Dask {w} worker(s): patients/s/core (after start-up)",
                             f"{n_pat / walls[w] / w:,.0f}"))  # fmt: skip
                rows.append((f"(c) Dask {w} worker(s): patients per CPU-second (all processes)",
                             f"{n_pat / _run.cpu:,.0f}"))  # fmt: skip
                cpus[w] = _run.cpu
                rows.append((f"(c) Dask {w} worker(s): identical to (a)", str(same)))
            rows.append(("(c) speed-up 1 → 2 workers", f"{walls[1] / walls[2]:.2f}×"))
            overhead = 1.0 - (n_pat / walls[1]) / per_core
            rows.append(("(c) Dask overhead vs (b), 1 worker, wall", f"{100 * overhead:.0f} %"))
            for w in (1, 2):
                over = 1.0 - (n_pat / cpus[w]) / per_cpu
                rows.append((f"(c) Dask overhead vs (b), {w} worker(s), CPU time",
                             f"{100 * over:.0f} %"))  # fmt: skip
    table = Table(title=design.name)
    table.add_column("measure")
    table.add_column("value", justify="right")
    for k, v in rows:
        table.add_row(k, v)
    console.print(table)
    console.print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
