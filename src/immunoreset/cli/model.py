"""``immunoreset simulate``: a virtual cohort of the immune-reset model from the command line.

Heavy imports (numba, the solver, matplotlib) happen inside the command so
``immunoreset --help`` stays instant.
"""

from __future__ import annotations

import math
from pathlib import Path

import typer

from immunoreset.cli import app, err_console, fail, user_errors

__all__ = ["simulate", "simulate_command"]


def simulate_command(
    *,
    patients: int,
    dose: float | None,
    seed: int,
    out: Path | None,
    plot: Path | None,
    years: float,
    chunk_size: int,
    age_range: tuple[float, float] = (5.0, 18.0),
    diagnosis: list[str] | None = None,
    lymphodepletion: str = "flu-cy",
    ld_intensity: float = 1.0,
    flat_dose: float | None = None,
    rtol: float = 1e-8,
    atol: float = 1e-10,
    method: str = "dop853",
    b_thresholds: dict[str, float] | None = None,
) -> list[tuple[str, float, float, float]]:
    """Run the simulation, print a Rich summary table; return (endpoint, p5, median, p95) rows.

    Rows are streamed to ``out`` (``.parquet`` or ``.csv``; other suffixes are refused before
    anything runs) chunk by chunk; the summary and the plot come from
    :class:`~immunoreset.model.population.StreamedSummary`. ``diagnosis`` restricts the cohort
    to those diagnoses (equal weights); ``flat_dose`` (cells per patient) replaces ``dose``.
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
    from rich.table import Table

    from immunoreset.errors import InvalidInput
    from immunoreset.model.population import (
        DEFAULT_SAMPLE_DAYS,
        DIAGNOSIS_MIX,
        output_path,
        plot_prediction_intervals,
        prediction_intervals,
        stream_population,
    )
    from immunoreset.model.solver import ENDPOINTS

    if out is not None:
        output_path(out, "--out")
    if plot is not None and plot.suffix.lower() not in (".png", ".svg", ".pdf"):
        raise InvalidInput("--plot", str(plot), "a file name ending in .png, .svg or .pdf")
    if dose is not None and flat_dose is not None:
        raise InvalidInput("--flat-dose", flat_dose, "either --dose (per kg) or --flat-dose")
    mix = dict(DIAGNOSIS_MIX) if not diagnosis else dict.fromkeys(diagnosis, 1.0)
    per_kg = 1e6 if dose is None else dose
    console = Console()
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as bar:
        task = bar.add_task("simulating patients", total=patients)
        summary = stream_population(
            patients,
            per_kg,
            seed,
            out=out,
            chunk_size=chunk_size,
            sample_days=tuple(d for d in DEFAULT_SAMPLE_DAYS if d <= 365.0 * years),
            years=years,
            progress=lambda done, _total: bar.update(task, completed=done),
            age_range=age_range,
            diagnosis_mix=mix,
            lymphodepletion=lymphodepletion,
            ld_intensity=ld_intensity,
            flat_dose=flat_dose,
            rtol=rtol,
            atol=atol,
            method=method,
            b_thresholds=b_thresholds,
        )
    units = dict(ENDPOINTS)
    rows = []
    dose_text = (
        f"{flat_dose:g} CAR+ cells flat" if flat_dose is not None else f"{per_kg:g} CAR+ cells/kg"
    )
    table = Table(
        title=f"{patients} virtual patients, {dose_text}, LD {lymphodepletion}, seed {seed}"
    )
    for col in ("endpoint", "unit", "n", "median", "5%", "95%"):
        table.add_column(col, justify="right" if col not in ("endpoint", "unit") else "left")
    for name, n_fin, (p5, med, p95) in summary.endpoint_quantiles((5.0, 50.0, 95.0)):
        rows.append((name, p5, med, p95))
        table.add_row(name, units[name], str(n_fin), f"{med:.4g}", f"{p5:.4g}", f"{p95:.4g}")
    console.print(table)
    courses = ", ".join(f"{k} {v}" for k, v in summary.courses.items())
    console.print(f"B-cell course: {courses}")
    if out is not None:
        console.print(f"wrote {out}")
    if plot is not None:
        pi = prediction_intervals(summary.samples)
        note = "" if summary.stride == 1 else f" (bands from every {summary.stride}th patient)"
        fig = plot_prediction_intervals(pi, title=f"{patients} virtual patients{note}")
        fig.savefig(plot, dpi=120)
        console.print(f"wrote {plot}")
    return rows


@app.command("simulate")
def simulate(
    patients: int = typer.Option(1000, "--patients", min=1, help="Number of virtual patients."),
    dose: float | None = typer.Option(
        None, "--dose", min=0.0, help="CAR+ T cells per kg [default: 1e6]."
    ),
    flat_dose: float | None = typer.Option(
        None, "--flat-dose", min=0.0, help="CAR+ T cells per patient (instead of --dose)."
    ),
    seed: int = typer.Option(0, "--seed", min=0, help="Random seed."),
    out: Path | None = typer.Option(None, "--out", help="Per-patient .parquet or .csv file."),
    plot: Path | None = typer.Option(None, "--plot", help="Prediction-interval PNG."),
    years: float = typer.Option(2.0, "--years", min=0.01, max=20.0, help="Horizon, years."),
    chunk_size: int = typer.Option(50_000, "--chunk-size", min=1, help="Patients per chunk."),
    age_min: float = typer.Option(5.0, "--age-min", help="Youngest age, years (2-80)."),
    age_max: float = typer.Option(18.0, "--age-max", help="Oldest age, years (2-80)."),
    diagnosis: list[str] | None = typer.Option(
        None, "--diagnosis", help="Restrict to this diagnosis (repeatable): SLE, JDM, SSc, ..."
    ),
    lymphodepletion: str = typer.Option(
        "flu-cy", "--lymphodepletion", help="Regimen: none, flu-cy, cy or flu."
    ),
    ld_intensity: float = typer.Option(
        1.0, "--ld-intensity", help="Scale of the regimen's log-kill and cytokine surge (0-3)."
    ),
    rtol: float = typer.Option(1e-8, "--rtol", help="Solver relative tolerance (1e-13-1e-2)."),
    atol: float = typer.Option(1e-10, "--atol", help="Solver absolute tolerance (> 0)."),
    method: str = typer.Option(
        "dop853",
        "--method",
        help="Solver: dop853, auto (DOP853/RODAS4 stiffness switching, faster), rodas4 or dp5.",
    ),
    b_threshold: list[str] | None = typer.Option(
        None,
        "--b-threshold",
        help="B-cell endpoint threshold KEY=CELLS_PER_UL, repeatable; keys clear (1), "
        "detect (1), recon (10), aplasia (50).",
    ),
) -> None:
    """Simulate a virtual cohort; print median and 5–95 % of each endpoint."""
    with user_errors():
        from immunoreset.errors import check_range

        if dose is not None:
            check_range("dose", dose, 0.0, 1e9, "CAR+ T cells/kg")
        if out is not None:
            _check_writable("--out", out, (".parquet", ".csv"))
        if plot is not None:
            _check_writable("--plot", plot, (".png", ".svg", ".pdf"))
        if not _solver_compiled():
            err_console.print(
                "compiling the model solver (first run only; about a minute, then cached)…",
                highlight=False,
            )
        simulate_command(
            patients=patients,
            dose=dose,
            seed=seed,
            out=out,
            plot=plot,
            years=years,
            chunk_size=chunk_size,
            age_range=(age_min, age_max),
            diagnosis=diagnosis,
            lymphodepletion=lymphodepletion,
            ld_intensity=ld_intensity,
            flat_dose=flat_dose,
            rtol=rtol,
            atol=atol,
            method=method,
            b_thresholds=_thresholds(b_threshold),
        )


def _thresholds(items: list[str] | None) -> dict[str, float] | None:
    """``KEY=VALUE`` pairs of ``--b-threshold`` as a dict (ranges checked by the solver)."""
    from immunoreset.errors import InvalidInput
    from immunoreset.model.solver import B_THRESHOLDS, _levels

    if not items:
        return None
    out: dict[str, float] = {}
    for item in items:
        key, sep, value = item.partition("=")
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not sep or key not in B_THRESHOLDS or not math.isfinite(number):
            raise InvalidInput(
                "--b-threshold", item, f"KEY=cells/µL with KEY one of {', '.join(B_THRESHOLDS)}"
            )
        out[key] = number
    _levels(out)  # ranges (> 0 cells/µL) and order (clear ≤ detect, recon) before anything runs
    return out


def _check_writable(option: str, path: Path, suffixes: tuple[str, ...]) -> None:
    """Refuse an output path before a long run rather than after it."""
    if path.suffix.lower() not in suffixes:
        fail(f"{option} {path}: the file must end in {' or '.join(suffixes)}")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        fail(f"{option} {path}: the folder {folder} does not exist")
    if path.is_dir():
        fail(f"{option} {path} is a folder; give a file name")
    existed = path.exists()
    try:  # the only sure test (permissions, read-only or virtual file systems): open it
        with path.open("ab"):
            pass
    except OSError as err:
        fail(f"{option} {path}: cannot write there ({err.strerror or err})")
    if not existed:
        path.unlink(missing_ok=True)


def _solver_compiled() -> bool:
    """Whether numba's on-disk cache of the solver exists (``cache=True`` writes *.nbi)."""
    from importlib.util import find_spec

    spec = find_spec("immunoreset.model.solver")
    if spec is None or spec.origin is None:
        return False
    cache = Path(spec.origin).parent / "__pycache__"
    return any(cache.glob("solver.*.nbi"))
