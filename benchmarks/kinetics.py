"""Micro benchmark of the kinetics cohort functions (issue 5).

Run: ``.venv/bin/python benchmarks/kinetics.py [--patients 10000] [--samples 60]``.
Prints the time of the first call (numba compile or cache load included) and the best of
three warm calls for each cohort function, and the per-patient cost of the scalar functions.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd


def synthetic(n_patients: int, n_samples: int, seed: int = 0):
    """Long-format rows: ids ("RM-00001"), days (−7 … 730, distinct per patient), values."""
    rng = np.random.default_rng(seed)
    names = np.array([f"RM-{i:05d}" for i in range(n_patients)], dtype=object)
    ids = np.repeat(names, n_samples)
    base = np.sort(rng.choice(np.arange(-7, 730), size=(n_patients, n_samples)), axis=1)
    days = (base + np.arange(n_samples) * 1e-3).ravel()  # keep days distinct
    t = np.clip(days, 0, None)
    peak = rng.lognormal(3, 1, n_patients).repeat(n_samples)
    car = peak * (t / 7) * np.exp(1 - t / 7) + rng.lognormal(-1, 1, ids.size) * (t > 30)
    bcell = np.where(t < 5, 150.0, np.where(t < 110, 0.2, 3 + (t - 110) * 0.4))
    bcell *= rng.lognormal(0, 0.4, ids.size)
    order = rng.permutation(ids.size)  # the cohort functions must sort
    return ids[order], days[order], car[order], bcell[order]


def timed(fn, repeats: int = 3) -> tuple[float, float]:
    t0 = time.perf_counter()
    fn()
    first = time.perf_counter() - t0
    warm = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        warm.append(time.perf_counter() - t0)
    return first, min(warm)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--patients", type=int, default=10_000)
    ap.add_argument("--samples", type=int, default=60)
    args = ap.parse_args()

    from immunoreset.kinetics import (
        aplasia_cohort,
        aplasia_duration,
        compute_nca,
        compute_nca_cohort,
        km_reconstitution,
        percent_change_cohort,
    )

    ids, days, car, bcell = synthetic(args.patients, args.samples)
    rows = ids.size
    apl = aplasia_cohort(ids, days, bcell)
    cleared = apl[apl["cleared"]]
    durations = np.where(cleared["censored"], cleared["last_day"], cleared["reconstitution_day"])
    cases = {
        "compute_nca_cohort (AUC0-28)": lambda: compute_nca_cohort(ids, days, car, 0.5),
        "compute_nca_cohort (AUC0-84, drop)": lambda: compute_nca_cohort(
            ids, days, car, 0.5, end=84, blq_rule="drop"
        ),
        "aplasia_cohort": lambda: aplasia_cohort(ids, days, bcell),
        "percent_change_cohort": lambda: percent_change_cohort(ids, days, bcell + 1),
        "km_reconstitution": lambda: km_reconstitution(durations, ~cleared["censored"].to_numpy()),
    }
    print(f"{args.patients} patients × {args.samples} samples = {rows} rows")
    print(f"{'function':40s} {'first call s':>12s} {'warm s':>8s} {'µs/patient':>11s}")
    for name, fn in cases.items():
        first, warm = timed(fn)
        print(f"{name:40s} {first:12.3f} {warm:8.3f} {1e6 * warm / args.patients:11.2f}")

    n_loop = min(1000, args.patients)
    codes = pd.factorize(ids, sort=True)[0]
    sorted_idx = np.lexsort((days, codes))
    groups = np.split(sorted_idx, np.flatnonzero(np.diff(codes[sorted_idx])) + 1)[:n_loop]
    for name, fn in {
        "compute_nca per patient (Python loop)": lambda: [
            compute_nca(days[g], car[g], lloq=0.5) for g in groups
        ],
        "aplasia_duration per patient (loop)": lambda: [
            aplasia_duration(days[g], bcell[g]) for g in groups
        ],
    }.items():
        first, warm = timed(fn)
        print(f"{name:40s} {first:12.3f} {warm:8.3f} {1e6 * warm / n_loop:11.2f}")


if __name__ == "__main__":
    main()
