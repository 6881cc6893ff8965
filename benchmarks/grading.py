"""Benchmark: grade 400,000 synthetic patient-days (CRS, ICANS) and 10,000 ANC series (ICAHT).

Run: ``.venv/bin/python benchmarks/grading.py [--patients 10000] [--days 40]``.
The data are random but shaped like a 10,000-patient registry (40 assessed days per patient,
one ANC value per assessed day). Target (issue 3): ≤ 5 s on the 2-core machine. The ICAHT batch
is numba-compiled on first use; the first call's time includes compilation and is printed apart.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from immunoreset import vocab
from immunoreset.clinical import crs, icaht, icans


def synthetic(patients: int, days: int, seed: int = 1) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    n = patients * days
    device = rng.choice(len(vocab.OXYGEN_DEVICES), n, p=[0.85, 0.02, 0.06] + [0.01] * 7)
    age = np.repeat(rng.uniform(4, 75, patients), days)
    child = age < 12
    has_score = rng.random(n) < 0.8
    return {
        "patient": np.repeat(np.arange(patients), days),
        "day": np.tile(np.arange(days, dtype=float) - 5, patients),
        "temperature_c": np.where(
            rng.random(n) < 0.05, np.nan, rng.normal(37.4, 0.8, n).clip(34, 42)
        ),
        "hypotension": rng.random(n) < 0.05,
        "n_vasopressors": rng.choice(3, n, p=[0.97, 0.02, 0.01]),
        "vasopressin": rng.random(n) < 0.005,
        "oxygen_device": device,
        "oxygen_flow_l_min": np.where(
            device == crs.OXYGEN_DEVICE_CODES["nasal_cannula"], rng.uniform(0.5, 10, n), np.nan
        ),
        "age_years": age,
        "ice_score": np.where(
            ~child & has_score, rng.choice(11, n, p=[0.01] * 6 + [0.02] * 4 + [0.86]), np.nan
        ),
        "capd_score": np.where(child & has_score, rng.integers(0, 14, n), np.nan),
        "unable_to_assess": np.zeros(n, bool),
        "consciousness": rng.choice(5, n, p=[0.95, 0.03, 0.01, 0.007, 0.003]),
        "seizure": rng.choice(3, n, p=[0.995, 0.004, 0.001]),
        "motor_weakness": rng.random(n) < 0.001,
        "cerebral_edema": rng.choice(3, n, p=[0.998, 0.0015, 0.0005]),
        "anc_per_ul": rng.lognormal(6.8, 1.3, n).clip(0, 50_000),
    }


def timed(label: str, fn, rows: list[tuple[str, float, str]], note: str = "") -> object:
    start = time.perf_counter()
    out = fn()
    rows.append((label, time.perf_counter() - start, note))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--patients", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=40)
    args = parser.parse_args()
    data = synthetic(args.patients, args.days)
    n = data["patient"].shape[0]
    rows: list[tuple[str, float, str]] = []

    timed(
        "CRS, vectorised",
        lambda: crs.grade_crs_array(
            **{
                k: data[k]
                for k in (
                    "temperature_c",
                    "hypotension",
                    "n_vasopressors",
                    "vasopressin",
                    "oxygen_device",
                    "oxygen_flow_l_min",
                )
            }
        ),
        rows,
        f"{n:,} patient-days",
    )
    timed(
        "ICANS, vectorised",
        lambda: icans.grade_icans_array(
            **{
                k: data[k]
                for k in (
                    "age_years",
                    "ice_score",
                    "capd_score",
                    "unable_to_assess",
                    "consciousness",
                    "seizure",
                    "motor_weakness",
                    "cerebral_edema",
                )
            }
        ),
        rows,
        f"{n:,} patient-days",
    )
    many = (data["patient"], data["day"], data["anc_per_ul"])
    timed("ICAHT early+late, first call", lambda: icaht.grade_icaht_many(*many), rows,
          f"{args.patients:,} series, incl. numba compile")  # fmt: skip
    timed("ICAHT early+late", lambda: icaht.grade_icaht_many(*many), rows,
          f"{args.patients:,} series, compiled")  # fmt: skip
    sample = 2_000
    timed(
        "CRS scalar (reference)",
        lambda: [
            crs.grade_crs(temperature_c=38.5, hypotension=bool(i % 2), oxygen_device="face_mask")
            for i in range(sample)
        ],
        rows,
        f"{sample:,} calls",
    )
    width = max(len(r[0]) for r in rows)
    print(f"{'step':<{width}}  {'seconds':>8}  note")
    for label, seconds, note in rows:
        print(f"{label:<{width}}  {seconds:8.3f}  {note}")
    warm = sum(s for label, s, _ in rows if label in {"CRS, vectorised", "ICANS, vectorised",
                                                       "ICAHT early+late"})  # fmt: skip
    cold = warm - rows[3][1] + rows[2][1]
    print(
        f"total (compiled ICAHT): {warm:.3f} s; with first-call compile: {cold:.3f} s; target ≤ 5 s"
    )


if __name__ == "__main__":
    main()
