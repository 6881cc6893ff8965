"""``immunoreset trial``: a virtual trial from a design YAML, in-process or on Dask.

Heavy imports (numba, dask, matplotlib) happen inside the command so ``immunoreset --help``
stays instant. The design is validated completely before anything runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from immunoreset.cli import app, console, fail, progress_bar, user_errors

__all__ = ["trial"]


@app.command("trial")
def trial(
    design: Annotated[Path, typer.Argument(help="Design YAML (see examples/README.md).")],
    out: Annotated[Path, typer.Option("--out", help="Output directory (created).")] = Path(
        "trial-out"
    ),
    workers: Annotated[
        int | None,
        typer.Option("--workers", min=1, max=256, help="Start a local Dask cluster of N workers."),
    ] = None,
    scheduler: Annotated[
        str | None,
        typer.Option("--scheduler", help="Use an existing Dask scheduler tcp://HOST:PORT."),
    ] = None,
    seed: Annotated[
        int | None, typer.Option("--seed", min=0, help="Override the design's seed.")
    ] = None,
    chunk_replicates: Annotated[
        int | None,
        typer.Option(
            "--chunk-replicates", min=1, help="Replicates per task (no effect on results)."
        ),
    ] = None,
) -> None:
    """Simulate a virtual trial: endpoint distributions and probability of success."""
    if workers is not None and scheduler is not None:
        fail("--workers and --scheduler exclude each other: give one of them")
    with user_errors():
        from rich.table import Table

        from immunoreset.model.trial.design import load_design
        from immunoreset.model.trial.report import summary_table, write_report
        from immunoreset.model.trial.run import run_trial

        d = load_design(design)
        n = d.replicates * d.simulated_per_arm * len(d.arms)
        where = (
            f"Dask scheduler {scheduler}"
            if scheduler
            else f"local Dask cluster, {workers} workers"
            if workers
            else "this process"
        )
        console.print(
            f"{d.name}: {d.replicates} replicates × {len(d.arms)} arms × "
            f"{d.simulated_per_arm} patients = {n:,} virtual patients on {where}"
        )

        def cluster(link: str | None) -> None:
            if link:
                console.print(f"Dask dashboard: {link}")

        with progress_bar("replicate trials", d.replicates) as advance:
            done = [0]

            def step(k: int, _total: int) -> None:
                advance(k - done[0])
                done[0] = k

            res = run_trial(
                d,
                out=out,
                seed=seed,
                workers=workers,
                scheduler=scheduler,
                chunk_replicates=chunk_replicates,
                design_dir=design.parent,
                progress=step,
                on_cluster=cluster,
            )
        paths = write_report(res, out)
        s = summary_table(res)
        pos = s[(s["section"] == "probability_of_success") & (s["endpoint"] == "rule")]
        table = Table(title=f"Probability of success (seed {res.seed}, {d.replicates} replicates)")
        for col in ("patients per arm", "probability", "95 % CI"):
            table.add_column(col, justify="right")
        for _i, row in pos.iterrows():
            table.add_row(
                row["statistic"].split("=")[1],
                f"{100 * row['value']:.1f} %",
                f"{100 * row['ci_low']:.1f}–{100 * row['ci_high']:.1f} %",
            )
        console.print(table)
        for key in ("summary", "replicates", "html"):
            if key in paths:
                console.print(f"wrote {paths[key]}")
