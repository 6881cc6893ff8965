"""Benchmark of the population fit (issue 11).

Run: ``.venv/bin/python benchmarks/fit.py [--quick] [--n 200]``

(a) Theophylline (R ``datasets::Theoph``, tests/fixtures/theoph.csv): FOCE-I fit of
    ``pk_1cmt_oral`` with BSV on ka, CL, V and additive error, covariance step included;
    target ≤ 10 s. Estimates printed next to nlmixr2 FOCEi (ka 1.59, CL 2.75, V 31.8,
    add.sd 0.694, OFV 116.81).
(b) Immune-model simulation–estimation: ``--n`` (200) virtual children, sparse CAR T (flow)
    and B-cell sampling with BLQ values (LLOQ 0.05 and 1 cells/µL), log-normal BSV on
    f_dist, c50, b0, log residual error; fixed effects must be within 20 %, BSV variances
    within 50 %. Target ≤ 5 min on 2 cores (aim 60 s). ``--quick``: 40 patients.
(c) Stein 2019 simulation–estimation with all six typical values estimated (ρ, Tmax, α, β,
    FB, R0), 40 patients, BSV on α, β, FB, R0.
(d) One forecast (MAP + 500 draws on a 121-day grid) of an immune-model patient from (b)'s
    fit; target ≤ 2 s.

Numbers measured on the shared 2-core machine (other jobs running; load average given) are
in docs/fit.md.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from immunoreset.interop.nonmem import read_nonmem, validate_nonmem
from immunoreset.model.equations import SteinParams
from immunoreset.model.fit.data import prepare_data
from immunoreset.model.fit.foce import ErrorSpec, FitSpec, ParameterSpec, fit_foce
from immunoreset.model.fit.forecast import forecast_patient
from immunoreset.model.fit.results import parameter_table
from immunoreset.model.fit.simulate import immune_simest_dataset, simulate_dataset
from immunoreset.model.fit.workflow import SavedFit

ROOT = Path(__file__).parents[1]
console = Console()


def _table(title: str, rows: list[tuple]) -> None:
    t = Table(title=title)
    for col in ("parameter", "estimate", "truth / reference", "relative error"):
        t.add_column(col, justify="right")
    for name, est, ref in rows:
        t.add_row(name, f"{est:.4g}", f"{ref:.4g}", f"{100 * (est / ref - 1):+.1f} %")
    console.print(t)


def bench_theoph() -> float:
    data = prepare_data(read_nonmem(ROOT / "tests" / "fixtures" / "theoph.csv"))
    spec = FitSpec(
        "pk_1cmt_oral",
        (ParameterSpec("ka", 1.0, 0.5), ParameterSpec("cl", 3.0, 0.3), ParameterSpec("v", 30, 0.3)),
        (ErrorSpec(2, "additive", 1.0),),
    )
    t0 = time.perf_counter()
    fit = fit_foce(spec, data)
    dt = time.perf_counter() - t0
    tab = parameter_table(fit).set_index("name")
    ref = {"ka": 1.59, "cl": 2.75, "v": 31.8, "add_sd": 0.694}
    _table(
        f"(a) theophylline FOCE-I: {dt:.2f} s (target ≤ 10 s), OFV {fit.ofv:.3f} (nlmixr2 116.81)",
        [(k, tab.loc[k, "estimate"], v) for k, v in ref.items()],
    )
    return dt


def immune_data(n: int, seed: int = 5) -> tuple[pd.DataFrame, dict, dict]:
    """The design shared with tests/model/fit/test_simest.py (``immune_simest_dataset``)."""
    return immune_simest_dataset(n, seed)


def bench_immune(n: int) -> tuple[float, object, pd.DataFrame]:
    df, truth, omega = immune_data(n)
    data = prepare_data(validate_nonmem(df, allow_predose=True))
    spec = FitSpec(
        "immune_reset",
        tuple(ParameterSpec(k, v * 1.25, 0.3) for k, v in truth.items()),
        (ErrorSpec(2, "log", 0.4), ErrorSpec(4, "log", 0.4)),
    )
    t0 = time.perf_counter()
    c0 = time.process_time()
    fit = fit_foce(spec, data, ftol=1e-9)
    dt = time.perf_counter() - t0
    cpu = time.process_time() - c0
    pr = fit.problem
    console.print(
        f"(b) CPU {cpu:.1f} s (all threads; load {os.getloadavg()[0]:.1f}); "
        f"{fit.n_iterations} iterations, {fit.n_evaluations} −2LL evaluations, "
        f"{pr.n_model_calls} solver calls, {pr.n_model_rows:,} integrated rows; "
        f"CPU per iteration {cpu / max(fit.n_iterations, 1):.2f} s"
    )
    tab = parameter_table(fit).set_index("name")
    rows = [(k, tab.loc[k, "estimate"], v) for k, v in truth.items()]
    rows += [(f"omega2_{k}", tab.loc[f"omega2_{k}", "estimate"], v**2) for k, v in omega.items()]
    rows += [(k, tab.loc[k, "estimate"], 0.25) for k in ("log_sd_car_t", "log_sd_b_cells")]
    _table(
        f"(b) immune model sim-est, {n} patients, {data.n_obs} obs ({int(df.BLQ.sum())} BLQ): "
        f"{dt:.1f} s (target ≤ 300 s), covariance {fit.covariance_message}",
        rows,
    )
    return dt, fit, df


def bench_stein(n: int = 40) -> float:
    sp = SteinParams()
    truth = {k: getattr(sp, k) for k in ("rho", "tmax", "alpha", "beta", "fb", "r0")}
    omega = {"alpha": 0.3, "beta": 0.3, "fb": 0.5, "r0": 0.5}
    df = simulate_dataset(
        "stein2019",
        n=n,
        times=[0.5, 1, 2, 4, 7, 9, 11, 14, 21, 28, 42, 56, 90, 180, 270, 365],
        cmts=[3],
        theta=truth,
        omega=omega,
        errors={3: ("log", 0.3, 0.0)},
        seed=1,
    )
    data = prepare_data(validate_nonmem(df))
    spec = FitSpec(
        "stein2019",
        tuple(ParameterSpec(k, v * 1.2, omega.get(k, 0.0)) for k, v in truth.items()),
        (ErrorSpec(3, "log", 0.4),),
    )
    t0 = time.perf_counter()
    fit = fit_foce(spec, data, ftol=1e-9)
    dt = time.perf_counter() - t0
    tab = parameter_table(fit).set_index("name")
    _table(
        f"(c) Stein 2019 sim-est, {n} patients, all six typical values: {dt:.1f} s",
        [(k, tab.loc[k, "estimate"], v) for k, v in truth.items()],
    )
    return dt


def bench_forecast(fit, df: pd.DataFrame) -> float:
    from immunoreset.model.fit.workflow import fit_document

    doc = fit_document(fit)
    saved = SavedFit(spec=fit.problem.resolved_spec(), x=fit.x, document=doc, path=Path("."))
    frame = validate_nonmem(df[df.ID.eq(df.ID.iloc[0])], allow_predose=True)
    forecast_patient(saved, frame)  # warm (solver already compiled by the fit)
    t0 = time.perf_counter()
    fc = forecast_patient(saved, frame)
    dt = time.perf_counter() - t0
    b = fc.bands[4]
    i = int(np.argmin(abs(b.days - 91)))
    console.print(
        f"(d) forecast of one patient: {dt:.2f} s (target ≤ 2 s); B cells day {b.days[i]:.0f}: "
        f"{b.median[i]:.3g} ({b.low[i]:.3g}–{b.high[i]:.3g}) cells/µL"
    )
    return dt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--n", type=int, default=200)
    args = parser.parse_args()
    n = 40 if args.quick else args.n
    console.print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    bench_theoph()
    _dt, fit, df = bench_immune(n)
    if not args.quick:
        bench_stein()
    bench_forecast(fit, df)
    console.print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
