"""``immunoreset simulate``: a virtual cohort of the immune-reset model from the command line.

Heavy imports (numba, the solver, matplotlib) happen inside the command so
``immunoreset --help`` stays instant.
"""

from __future__ import annotations

from pathlib import Path

import typer

from immunoreset.cli import app

__all__ = ["simulate", "simulate_command"]


def simulate_command(
    *,
    patients: int,
    dose: float,
    seed: int,
    out: Path | None,
    plot: Path | None,
    years: float,
    chunk_size: int,
) -> list[tuple[str, float, float, float]]:
    """Run the simulation, print a Rich summary table; return (endpoint, p5, median, p95) rows.

    Rows are streamed to ``out`` chunk by chunk (bounded memory); the summary and the plot come
    from :class:`~immunoreset.model.population.StreamedSummary`.
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
    from rich.table import Table

    from immunoreset.model.population import (
        DEFAULT_SAMPLE_DAYS,
        plot_prediction_intervals,
        prediction_intervals,
        stream_population,
    )
    from immunoreset.model.solver import ENDPOINTS

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
            dose,
            seed,
            out=out,
            chunk_size=chunk_size,
            sample_days=tuple(d for d in DEFAULT_SAMPLE_DAYS if d <= 365.0 * years),
            years=years,
            progress=lambda done, _total: bar.update(task, completed=done),
        )
    units = dict(ENDPOINTS)
    rows = []
    table = Table(title=f"{patients} virtual patients, {dose:g} CAR+ cells/kg, seed {seed}")
    for col in ("endpoint", "unit", "n", "median", "5%", "95%"):
        table.add_column(col, justify="right" if col not in ("endpoint", "unit") else "left")
    for name, n_fin, (p5, med, p95) in summary.endpoint_quantiles((5.0, 50.0, 95.0)):
        rows.append((name, p5, med, p95))
        table.add_row(name, units[name], str(n_fin), f"{med:.4g}", f"{p5:.4g}", f"{p95:.4g}")
    console.print(table)
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
    dose: float = typer.Option(1e6, "--dose", min=0.0, help="CAR+ T cells per kg."),
    seed: int = typer.Option(0, "--seed", min=0, help="Random seed."),
    out: Path | None = typer.Option(None, "--out", help="Per-patient Parquet file."),
    plot: Path | None = typer.Option(None, "--plot", help="Prediction-interval PNG."),
    years: float = typer.Option(2.0, "--years", min=0.01, max=20.0, help="Horizon, years."),
    chunk_size: int = typer.Option(50_000, "--chunk-size", min=1, help="Patients per chunk."),
) -> None:
    """Simulate a virtual cohort; print median and 5–95 % of each endpoint."""
    simulate_command(
        patients=patients,
        dose=dose,
        seed=seed,
        out=out,
        plot=plot,
        years=years,
        chunk_size=chunk_size,
    )
