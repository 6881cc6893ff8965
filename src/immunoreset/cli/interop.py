"""``immunoreset export fhir|sdtm|redcap`` and ``immunoreset import fhir|redcap``.

Thin wrappers over :mod:`immunoreset.interop`; every export is audited there, every import
goes through the registry's shared, all-or-nothing import path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from immunoreset.cli import (
    DbOption,
    UserOption,
    console,
    export_app,
    import_app,
    open_registry,
    progress_bar,
    user_errors,
)

OutArg = Annotated[Path, typer.Argument(help="Output folder (created if missing)")]


@export_app.command("fhir")
def export_fhir(
    out: OutArg,
    db: DbOption = None,
    user: UserOption = None,
    patient: Annotated[
        list[str] | None, typer.Option("--patient", help="Only this study ID (repeatable)")
    ] = None,
    validate: Annotated[
        bool, typer.Option("--validate", help="Validate every bundle with fhir.resources R4B")
    ] = False,
    workers: Annotated[
        int,
        typer.Option(
            help="Processes writing bundles (from 200 patients on; 1 = this process only)"
        ),
    ] = 2,
) -> None:
    """Write one FHIR R4 Bundle (JSON) per course: pseudonymous, audited."""
    from immunoreset.interop.fhir import export_fhir as run

    with user_errors():
        registry, actor = open_registry(db, user)
        with progress_bar("FHIR bundles", None) as advance:
            done = run(
                registry,
                actor,
                out,
                study_ids=patient or None,
                validate=validate,
                workers=workers,
                progress=advance,
            )
        console.print(f"{len(done)} bundles written to {out}")


@export_app.command("sdtm")
def export_sdtm(
    out: OutArg,
    db: DbOption = None,
    user: UserOption = None,
    study: Annotated[str, typer.Option(help="STUDYID of the datasets")] = "IMMUNORESET",
    qc: Annotated[bool, typer.Option(help="Include release-QC results in ZP")] = True,
    workers: Annotated[
        int, typer.Option(help="Processes building the lab/daily/score domains")
    ] = 1,
) -> None:
    """Write CDISC SDTM datasets (CSV + SAS XPT v5) and define.xml (Define-XML 2.1)."""
    from immunoreset.interop.sdtm import export_sdtm as run

    with user_errors():
        registry, actor = open_registry(db, user)
        with progress_bar("SDTM courses", None) as advance:
            counts = run(
                registry, actor, out, study=study, with_qc=qc, progress=advance, workers=workers
            )
        console.print(", ".join(f"{k} {v}" for k, v in counts.items()) + f" rows in {out}")


@export_app.command("redcap")
def export_redcap(
    out: OutArg,
    db: DbOption = None,
    user: UserOption = None,
    labels: Annotated[bool, typer.Option("--labels", help="Choice labels, not raw codes")] = False,
) -> None:
    """Write a REDCap data dictionary and the records in REDCap's flat CSV format."""
    from immunoreset.interop.redcap import export_redcap as run

    with user_errors():
        registry, actor = open_registry(db, user)
        with progress_bar("REDCap records", None) as advance:
            info = run(registry, actor, out, labels=labels, progress=advance)
        console.print(f"{info['records']} records, {info['fields']} fields written to {out}")


@import_app.command("fhir")
def import_fhir(
    paths: Annotated[list[Path], typer.Argument(help="Bundle files or folders of .json")],
    db: DbOption = None,
    user: UserOption = None,
    validate: Annotated[
        bool, typer.Option(help="Validate each bundle with fhir.resources R4B first")
    ] = True,
) -> None:
    """Import FHIR R4 bundles (collection or transaction): all of it or nothing."""
    from immunoreset.interop.fhir import import_fhir as run

    with user_errors():
        registry, actor = open_registry(db, user)
        stats = run(registry, actor, paths, validate=validate)
        console.print(f"imported: {stats.total_inserted} new, {stats.total_updated} updated")


@import_app.command("redcap")
def import_redcap(
    records: Annotated[Path, typer.Argument(help="REDCap records export (flat CSV)")],
    db: DbOption = None,
    user: UserOption = None,
    dictionary: Annotated[
        Path | None, typer.Option("--dictionary", help="The project's data dictionary CSV")
    ] = None,
    encoding: Annotated[
        str | None, typer.Option(help="File encoding [default: UTF-8, else cp1252]")
    ] = None,
) -> None:
    """Import a REDCap records export (raw or labels): all of it or nothing."""
    from immunoreset.interop.redcap import import_redcap as run

    with user_errors():
        registry, actor = open_registry(db, user)
        stats = run(registry, actor, records, dictionary=dictionary, encoding=encoding)
        console.print(f"imported: {stats.total_inserted} new, {stats.total_updated} updated")
