"""Benchmark: grade every daily assessment (CRS, ICANS) and ANC series (ICAHT) of a registry.

Run: ``.venv/bin/python benchmarks/grading.py [--patients 10000] [--random [--days 40]]``.
By default the data are the 10,000-patient synthetic registry's courses (``demo.
synthetic_cohort``: ≈ 377,000 assessed patient-days and their ANC series); ``--random`` grades
random arrays of the same shape instead. Target (issue 3): ≤ 5 s on the 2-core machine. The
ICAHT batch is numba-compiled on first use; the first call's time (with compilation) is printed
apart.
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


def from_cohort(patients: int, seed: int = 1) -> tuple[dict[str, np.ndarray], float]:
    """Arrays of every daily assessment and ANC value of the synthetic registry's courses.

    Returns the arrays and the seconds spent extracting them from the courses (the time a
    grading run over a loaded registry spends before the vectorised graders).
    """
    from immunoreset import demo

    courses = list(demo.synthetic_cohort(patients, seed=seed))
    start = time.perf_counter()
    cols: dict[str, list] = {k: [] for k in (
        "patient", "day", "temperature_c", "hypotension", "n_vasopressors", "vasopressin",
        "oxygen_device", "oxygen_flow_l_min", "age_years", "ice_score", "capd_score",
        "unable_to_assess", "consciousness", "seizure", "motor_weakness", "cerebral_edema",
    )}  # fmt: skip
    anc_patient: list[int] = []
    anc_day: list[float] = []
    anc_value: list[float] = []
    dev = crs.OXYGEN_DEVICE_CODES
    nan = float("nan")
    for k, course in enumerate(courses):
        if course.day0 is None:
            continue
        for a in course.daily_assessments:
            cols["patient"].append(k)
            cols["day"].append(float(course.study_day(a.date)))
            cols["temperature_c"].append(
                nan if a.temperature_max_c is None else a.temperature_max_c
            )
            cols["hypotension"].append(a.hypotension)
            cols["n_vasopressors"].append(len({v for v in a.vasopressors if v != "vasopressin"}))
            cols["vasopressin"].append("vasopressin" in a.vasopressors)
            cols["oxygen_device"].append(dev[a.oxygen_device])
            flow = a.oxygen_flow_l_min
            cols["oxygen_flow_l_min"].append(nan if flow is None else flow)
            cols["age_years"].append(course.age_on(a.date))
            cols["ice_score"].append(nan if a.ice_score is None else a.ice_score)
            cols["capd_score"].append(nan if a.capd_score is None else a.capd_score)
            cols["unable_to_assess"].append(a.unable_to_assess)
            cols["consciousness"].append(icans.CONSCIOUSNESS_CODES[a.consciousness])
            cols["seizure"].append(icans.SEIZURE_CODES[a.seizure])
            cols["motor_weakness"].append(a.motor_weakness)
            cols["cerebral_edema"].append(icans.CEREBRAL_EDEMA_CODES[a.cerebral_edema])
        days, values = course.lab_series("anc")
        anc_patient.extend([k] * len(days))
        anc_day.extend(days.tolist())
        anc_value.extend(values.tolist())
    data = {k: np.asarray(v) for k, v in cols.items()}
    data["anc_patient"] = np.asarray(anc_patient)
    data["anc_day"] = np.asarray(anc_day)
    data["anc_per_ul"] = np.asarray(anc_value)
    return data, time.perf_counter() - start


def timed(label: str, fn, rows: list[tuple[str, float, str]], note: str = "") -> object:
    start = time.perf_counter()
    out = fn()
    rows.append((label, time.perf_counter() - start, note))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--patients", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=40)
    parser.add_argument(
        "--random",
        action="store_true",
        help="grade random arrays instead of the synthetic registry's courses",
    )
    args = parser.parse_args()
    rows: list[tuple[str, float, str]] = []
    if args.random:
        data = synthetic(args.patients, args.days)
        data["anc_patient"], data["anc_day"] = data["patient"], data["day"]
    else:
        data, seconds = from_cohort(args.patients)
        rows.append(("extract arrays from courses", seconds, "not graded; shown for context"))
    n = data["patient"].shape[0]

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
    many = (data["anc_patient"], data["anc_day"], data["anc_per_ul"])
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
    by_label = {label: secs for label, secs, _ in rows}
    cold = warm - by_label["ICAHT early+late"] + by_label["ICAHT early+late, first call"]
    print(
        f"total (compiled ICAHT): {warm:.3f} s; with first-call compile: {cold:.3f} s; target ≤ 5 s"
    )


if __name__ == "__main__":
    main()
