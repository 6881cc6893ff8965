"""``immunoreset fit``, ``immunoreset forecast``, ``immunoreset export nonmem|model``.

Thin wrappers over :mod:`immunoreset.model.fit` (estimation, forecast) and
:mod:`immunoreset.interop.nonmem` / :mod:`immunoreset.interop.model_code`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from immunoreset.cli import (
    DbOption,
    UserOption,
    app,
    console,
    export_app,
    fail,
    open_registry,
    user_errors,
)


@app.command("fit")
def fit(
    out: Annotated[Path, typer.Option("--out", help="Output folder (created if missing)")],
    db: DbOption = None,
    user: UserOption = None,
    data: Annotated[
        Path | None, typer.Option("--data", help="NONMEM-style CSV instead of the registry")
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(help="immune_reset | stein2019 | pk_1cmt_oral [default: immune_reset]"),
    ] = None,
    estimate: Annotated[
        str | None,
        typer.Option(help="Comma-separated parameters to estimate [default: the model's set]"),
    ] = None,
    spec_file: Annotated[
        Path | None,
        typer.Option(
            "--spec",
            help="YAML fit spec: parameters (initial, omega), omega_block, covariates, "
            "errors per CMT, fixed (docs/fit.md)",
        ),
    ] = None,
    allow_predose: Annotated[
        bool, typer.Option("--allow-predose", help="Accept observations before the first dose")
    ] = False,
    lloq: Annotated[
        list[str] | None,
        typer.Option("--lloq", help="CMT=VALUE: LLOQ for observations that have none (repeatable)"),
    ] = None,
    vpc_reps: Annotated[int, typer.Option(help="VPC replicates (0 = no VPC)")] = 200,
    max_iter: Annotated[int, typer.Option(help="Outer iterations at most")] = 200,
    covariance: Annotated[
        bool,
        typer.Option(
            "--covariance/--no-covariance",
            help="Run the covariance step (SE, RSE %, 95 % CI); --no-covariance skips it",
        ),
    ] = True,
) -> None:
    """Population fit (FOCE-I) of the registry or a NONMEM-style file; tables, fit.json,
    fit.html and the spec used (spec.yaml, re-usable with --spec) in OUT."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from immunoreset.errors import check_range
    from immunoreset.interop.nonmem import (
        apply_default_lloq,
        dataset_from_courses,
        parse_lloq_options,
        read_nonmem,
        validate_nonmem,
    )
    from immunoreset.model.fit.data import prepare_data
    from immunoreset.model.fit.foce import default_spec
    from immunoreset.model.fit.models import get_model
    from immunoreset.model.fit.specfile import dump_spec, load_spec, resolve_spec
    from immunoreset.model.fit.workflow import run_fit

    with user_errors():
        check_range("vpc_reps", vpc_reps, 0, 5000, integer=True)
        check_range("max_iter", max_iter, 1, 10_000, integer=True)
        file_spec = None
        if spec_file is not None:
            if estimate is not None:
                fail("--estimate and --spec both choose the parameters: list them in the spec")
            file_spec = load_spec(spec_file)
            if model is not None and model != file_spec.model:
                fail(f"--model {model} differs from the spec's model {file_spec.model}")
            model = file_spec.model
        model = model or "immune_reset"
        m = get_model(model)
        if data is not None:
            frame = read_nonmem(data, allow_predose=allow_predose)
        else:
            if model == "pk_1cmt_oral":
                fail(
                    "pk_1cmt_oral describes drug concentrations, not registry data: use "
                    "--data FILE.csv, or --model immune_reset / stein2019"
                )
            registry, actor = open_registry(db, user)
            export = dataset_from_courses(registry.iter_courses(actor))
            if not len(export.frame):
                fail("the registry has no infused patients to fit")
            frame = validate_nonmem(export.frame, allow_predose=True)
        frame = apply_default_lloq(frame, parse_lloq_options(lloq))
        fit_data = prepare_data(frame, cmts=tuple(m.outputs))
        if file_spec is not None:
            spec = resolve_spec(file_spec, fit_data)
        else:
            names = [s.strip() for s in estimate.split(",") if s.strip()] if estimate else None
            spec = default_spec(model, fit_data, estimate=names)
        with Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=console,
            disable=not console.is_terminal,
        ) as prog:
            task = prog.add_task(f"FOCE-I {model}: {fit_data.n} individuals", total=None)

            def report(it: int, value: float) -> None:
                prog.update(task, description=f"FOCE-I {model}: iteration {it}, -2LL {value:.3f}")

            result = run_fit(
                spec,
                fit_data,
                out,
                vpc_reps=vpc_reps,
                progress=report,
                max_iter=max_iter,
                covariance=covariance,
            )
        (out / "spec.yaml").write_text(dump_spec(spec), encoding="utf-8")
        status = "converged" if result.converged else f"NOT converged ({result.message})"
        console.print(
            f"{model}: {fit_data.n} individuals, {result.problem.n_obs} observations; {status}; "
            f"-2LL {result.minus2ll:.3f}, OFV {result.ofv:.3f}; covariance "
            f"{result.covariance_message}; {result.seconds:.1f} s -> {out}"
        )


@app.command("forecast")
def forecast(
    study_id: Annotated[str, typer.Argument(help="Patient study ID, e.g. RM-003")],
    fit_dir: Annotated[Path, typer.Option("--fit", help="Folder of a population fit")] = Path(
        "fit"
    ),
    db: DbOption = None,
    user: UserOption = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Write the bands as CSV to this file")
    ] = None,
    level: Annotated[float, typer.Option(help="Central interval probability")] = 0.9,
    residual: Annotated[
        bool,
        typer.Option(
            "--residual/--no-residual",
            help="Prediction interval: parameter uncertainty + the fit's residual error "
            "(default); --no-residual: confidence band of parameter uncertainty only",
        ),
    ] = True,
    lloq: Annotated[
        list[str] | None,
        typer.Option("--lloq", help="CMT=VALUE: LLOQ for observations that have none (repeatable)"),
    ] = None,
) -> None:
    """Forecast a patient from the population fit: MAP from the data so far, 90 % prediction
    intervals (or --no-residual confidence bands)."""
    from rich.table import Table

    from immunoreset.interop.nonmem import apply_default_lloq, parse_lloq_options, patient_frame
    from immunoreset.model.fit.forecast import forecast_patient
    from immunoreset.model.fit.workflow import load_fit

    with user_errors():
        registry, actor = open_registry(db, user)  # the registry first: --db errors come first
        saved = load_fit(fit_dir)
        if saved.spec.model not in ("immune_reset", "stein2019"):
            fail(
                f"the fit in {fit_dir} is of model {saved.spec.model}, which does not describe "
                "registry patients; forecast from an immune_reset or stein2019 fit"
            )
        frame = apply_default_lloq(
            patient_frame(registry, actor, study_id), parse_lloq_options(lloq)
        )
        fc = forecast_patient(saved, frame, level=level, include_residual=residual)
        kind = (
            "prediction interval (parameters + residual error)"
            if residual
            else "confidence band (parameter uncertainty only)"
        )
        table = Table(title=f"{study_id}: forecast, {level:.0%} {kind}; {fc.n_observations} obs")
        table.add_column("output")
        table.add_column("day", justify="right")
        table.add_column("median", justify="right")
        table.add_column("interval", justify="right")
        for band in fc.bands.values():
            for day in (7, 28, 91, 182, 365):
                i = int(abs(band.days - day).argmin())
                table.add_row(
                    band.output,
                    f"{band.days[i]:.0f}",
                    f"{band.median[i]:.3g}",
                    f"{band.low[i]:.3g}–{band.high[i]:.3g}",
                )
        console.print(table)
        if out is not None:
            fc.table().to_csv(out, index=False, float_format="%.6g")
            console.print(f"bands written to {out}")


@export_app.command("nonmem")
def export_nonmem(
    out: Annotated[Path, typer.Argument(help="Output CSV (a .define.csv is written beside it)")],
    db: DbOption = None,
    user: UserOption = None,
    patient: Annotated[
        list[str] | None, typer.Option("--patient", help="Only this study ID (repeatable)")
    ] = None,
) -> None:
    """Write the registry as a NONMEM/Monolix/nlmixr2 data set with its data definition."""
    from immunoreset.interop.nonmem import export_nonmem as run

    with user_errors():
        registry, actor = open_registry(db, user)
        export = run(registry, actor, out, study_ids=patient or None)
        f = export.frame
        n_ind = f["ID"].nunique() if len(f) else 0
        skipped = f"; skipped (no infusion): {', '.join(export.skipped)}" if export.skipped else ""
        console.print(f"{n_ind} individuals, {len(f)} records written to {out}{skipped}")


@export_app.command("model")
def export_model(
    fmt: Annotated[str, typer.Option("--format", help="nlmixr2 | mrgsolve")] = "nlmixr2",
    model: Annotated[str, typer.Option(help="immune_reset | stein2019")] = "immune_reset",
    fit_dir: Annotated[
        Path | None, typer.Option("--fit", help="Use the estimates of this fit folder")
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Write to this file")] = None,
) -> None:
    """Write the model as nlmixr2/rxode2 or mrgsolve code (default or fitted parameters)."""
    from immunoreset.interop.model_code import model_code
    from immunoreset.model.fit.workflow import load_fit

    with user_errors():
        kw: dict = {}
        if fit_dir is not None:
            doc = load_fit(fit_dir).document
            if doc["model"] != model:
                fail(f"the fit in {fit_dir} is of model {doc['model']}, not {model}")
            names = doc["omega_names"]
            kw = {
                "theta": doc["theta"],
                "fixed": doc["fixed"],
                "sigma": doc["sigma"],
                "omega": {n: doc["omega"][i][i] for i, n in enumerate(names)},
            }
        code = model_code(model, fmt, **kw)
        if out is None:
            typer.echo(code)
        else:
            out.write_text(code, encoding="utf-8")
            console.print(f"{fmt} code of {model} written to {out}")
