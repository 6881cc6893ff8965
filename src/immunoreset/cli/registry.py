"""Registry commands: sites, users, CSV import/export, patients, show, audit, db, demo."""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from immunoreset.cli import (
    DbOption,
    JsonOption,
    UserOption,
    app,
    choose,
    console,
    err_console,
    export_app,
    fail,
    import_app,
    open_registry,
    print_json,
    progress_bar,
    user_errors,
)

site_app = typer.Typer(rich_markup_mode=None, help="Treating sites.", no_args_is_help=True)
user_app = typer.Typer(
    rich_markup_mode=None, help="Registry users, roles and site memberships.", no_args_is_help=True
)
db_app = typer.Typer(rich_markup_mode=None, help="Database maintenance.", no_args_is_help=True)
app.add_typer(site_app, name="site")
app.add_typer(user_app, name="user")
app.add_typer(db_app, name="db")


# --------------------------------------------------------------------------- sites and users
@site_app.command("add")
def site_add(
    code: Annotated[str, typer.Argument(help="Site code, e.g. ROME")],
    name: Annotated[str, typer.Argument(help="Full name of the treating site")],
    db: DbOption = None,
    user: UserOption = None,
) -> None:
    """Add a treating site."""
    with user_errors():
        registry, actor = open_registry(db, user, create=True)
        registry.add_site(actor, code, name)
        console.print(f"site {code} added")


@site_app.command("list")
def site_list(db: DbOption = None) -> None:
    """List the treating sites."""
    with user_errors():
        registry, _ = open_registry(db, None, listing=True)
        table = Table("code", "name", title="Sites")
        for code, name in registry.list_sites():
            table.add_row(code, name)
        console.print(table)


@user_app.command("add")
def user_add(
    name: Annotated[str, typer.Argument(help="Username (lower case)")],
    role: Annotated[
        str, typer.Option(help="admin | investigator | data_manager | monitor")
    ] = "investigator",
    site: Annotated[
        list[str] | None, typer.Option("--site", help="Site membership (repeat for several)")
    ] = None,
    password: Annotated[
        str | None,
        typer.Option(
            envvar="IMMUNORESET_NEW_PASSWORD",
            help="Password (prompted when not given; at least 10 characters)",
            show_default=False,
        ),
    ] = None,
    db: DbOption = None,
    user: UserOption = None,
) -> None:
    """Add a registry user with a role and site memberships (admin only)."""
    with user_errors():
        registry, actor = open_registry(db, user, create=True)
        if password is None:
            password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
        registry.add_user(actor, name, role, site or (), password=password)
        console.print(f"user {name} ({role}) added" + (f" to {', '.join(site)}" if site else ""))


@user_app.command("list")
def user_list(db: DbOption = None) -> None:
    """List registry users, their roles and sites."""
    with user_errors():
        registry, _ = open_registry(db, None, listing=True)
        table = Table("username", "role", "sites", "active", title="Users")
        for u in registry.list_users():
            table.add_row(u["username"], u["role"], ", ".join(u["sites"]) or "—", str(u["active"]))
        console.print(table)


# --------------------------------------------------------------------------- data in and out
@import_app.command("csv")
def import_csv_cmd(
    folder: Annotated[Path, typer.Argument(help="Folder of CSV files (see docs/import.md)")],
    db: DbOption = None,
    user: UserOption = None,
    reason: Annotated[str, typer.Option(help="Reason recorded in the audit trail")] = "CSV import",
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help="Validate everything (every rule, against the registry) and write nothing",
        ),
    ] = False,
    date_format: Annotated[
        str,
        typer.Option(
            "--date-format",
            help="How the files write dates: iso, dd/mm/yyyy, dd.mm.yyyy or mm/dd/yyyy",
        ),
    ] = "iso",
    separator: Annotated[
        str | None,
        typer.Option(help="Cell separator: ',', ';' or 'tab' [default: detected per file]"),
    ] = None,
) -> None:
    """Import a folder of CSV files in one transaction: everything, or on any error nothing.

    Every problem is listed (file, row, column, value, what is allowed). Excel files in
    Windows-1252 with ``;`` and decimal commas are detected; dates are never guessed: declare
    ``--date-format`` for anything but ISO (yyyy-mm-dd).
    """
    from immunoreset.registry.csvdialect import DATE_FORMATS
    from immunoreset.registry.csvio import ImportErrors, ReadOptions, import_csv

    with user_errors():
        from immunoreset.errors import check_choice

        check_choice("--date-format", date_format, tuple(DATE_FORMATS))
        if separator is not None:
            check_choice("--separator", separator, (",", ";", "tab"))
        opts = ReadOptions(
            separator={"tab": "\t"}.get(separator or "", separator),
            date_format=None if date_format == "iso" else date_format,
        )
        registry, actor = open_registry(db, user, create=not check)
        total = _count_rows(folder)
        try:
            with progress_bar("checking rows" if check else "importing rows", total) as advance:
                stats = import_csv(
                    registry, actor, folder, reason=reason, progress=advance, check=check,
                    opts=opts,
                )  # fmt: skip
        except ImportErrors as err:
            for problem in err.errors:
                err_console.print(f"  {problem}", highlight=False, soft_wrap=True, markup=False)
            listed = "" if err.total == len(err.errors) else f" ({len(err.errors):,} listed)"
            fail(
                f"{err.total:,} problems in {folder}{listed}; nothing was written: fix them and "
                "import again (`--check` validates without writing)"
            )
        unchanged = stats.total_rows - stats.total_inserted - stats.total_updated
        n_patients = sum(
            d.get("patients", 0) for d in (stats.inserted, stats.updated, stats.unchanged)
        )
        verb = ("would be inserted", "would be updated") if check else ("inserted", "updated")
        console.print(
            f"{n_patients} patients, "
            f"{stats.total_rows} rows read: {stats.total_inserted} {verb[0]}, "
            f"{stats.total_updated} {verb[1]}, {unchanged} unchanged"
            + ("; check passed, nothing was written" if check else "")
        )


def _count_rows(folder: Path) -> int | None:
    """Data rows in the folder's CSV files (for the progress bar), or None if not a folder."""
    if not Path(folder).is_dir():
        return None
    total = 0
    for path in Path(folder).glob("*.csv"):
        if path.name == "sites.csv":
            continue
        with path.open("rb") as fh:
            total += max(sum(1 for _ in fh) - 1, 0)
    return total


@export_app.command("csv")
def export_csv_cmd(
    folder: Annotated[Path, typer.Argument(help="Folder to write the CSV files to")],
    db: DbOption = None,
    user: UserOption = None,
) -> None:
    """Export every visible course in the import format (export → import is lossless)."""
    from immunoreset.registry.csvio import export_csv

    with user_errors():
        registry, actor = open_registry(db, user)
        n = len(registry.list_patients(actor))
        with progress_bar("exporting", n) as advance:
            counts = export_csv(registry, actor, folder, progress=advance)
        console.print(
            f"wrote {sum(counts.values())} rows in {len(counts)} files to {folder}: "
            + ", ".join(f"{k} {v}" for k, v in counts.items() if v)
        )


# --------------------------------------------------------------------------- browsing
@app.command("patients")
def patients_cmd(
    db: DbOption = None,
    user: UserOption = None,
    site: Annotated[str | None, typer.Option(help="Only this site (any case)")] = None,
    diagnosis: Annotated[
        str | None, typer.Option(help="Only this diagnosis: SLE, JDM, DM, SSc, ASyS, other")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """List the patients you may see."""
    with user_errors():
        from immunoreset import vocab

        registry, actor = open_registry(db, user)
        site = choose("site", site, [code for code, _ in registry.list_sites()])
        diagnosis = choose("diagnosis", diagnosis, vocab.DIAGNOSES)
        rows = registry.list_patients(actor, site=site, diagnosis=diagnosis)
        if as_json:
            print_json(
                [
                    {
                        "study_id": p.study_id,
                        "site": p.site,
                        "sex": p.sex,
                        "birth_year": p.birth_year,
                        "diagnosis": p.diagnosis,
                        "icd10": p.icd10,
                        "synthetic": p.synthetic,
                    }
                    for p in rows
                ]
            )
            return
        table = Table("study ID", "site", "sex", "born", "diagnosis", "ICD-10", title="Patients")
        for p in rows:
            flag = " [dim](synthetic)[/]" if p.synthetic else ""
            table.add_row(
                p.study_id + flag,
                p.site,
                p.sex,
                f"{p.birth_year}",
                p.diagnosis,
                p.icd10,
            )
        console.print(table)


@app.command("show")
def show_cmd(
    study_id: Annotated[str, typer.Argument(help="Pseudonymous study ID, e.g. RM-003")],
    db: DbOption = None,
    user: UserOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show one patient's course: records per type, study days and key dates."""
    with user_errors():
        from immunoreset.course import COLLECTIONS

        registry, actor = open_registry(db, user)
        course = registry.load_course(actor, study_id)
        p = course.patient
        if as_json:
            print_json(
                {
                    "study_id": p.study_id,
                    "site": p.site,
                    "sex": p.sex,
                    "diagnosis": p.diagnosis,
                    "icd10": p.icd10,
                    "prior_therapy_lines": p.prior_therapy_lines,
                    "synthetic": p.synthetic,
                    "infusion_date": course.day0,
                    "dose_cells_per_kg": course.infusion.dose_cells_per_kg
                    if course.infusion
                    else None,
                    "records": {attr: len(getattr(course, attr)) for attr in COLLECTIONS},
                    "last_contact": course.last_contact,
                    "followup_status": course.followup.status if course.followup else None,
                }
            )
            return
        console.print(
            f"[bold]{p.study_id}[/] {'(SYNTHETIC) ' if p.synthetic else ''}site {p.site}, "
            f"{p.sex}, {p.diagnosis} ({p.icd10}), prior therapy lines {p.prior_therapy_lines}"
        )
        if course.day0:
            console.print(
                f"infusion {course.day0} (day 0), age {course.age_at_infusion:.1f} y, "
                f"dose {course.infusion.dose_cells_per_kg:.3g} CAR+ T cells/kg"  # type: ignore[union-attr]
            )
        table = Table("records", "n", "first", "last")
        for attr in COLLECTIONS:
            recs = getattr(course, attr)
            dates = [
                getattr(r, "date", None) or getattr(r, "start", None) or getattr(r, "onset", None)
                for r in recs
            ]
            dates = [d for d in dates if d is not None]
            fmt = (
                (lambda d: f"{d} (day {course.study_day(d):+d})")
                if course.day0
                else (lambda d: str(d))
            )
            table.add_row(
                attr,
                str(len(recs)),
                fmt(min(dates)) if dates else "—",
                fmt(max(dates)) if dates else "—",
            )
        console.print(table)
        if course.followup:
            console.print(f"last contact {course.followup.last_contact} ({course.followup.status})")


@app.command("audit")
def audit_cmd(
    study_id: Annotated[str | None, typer.Argument(help="Only this patient")] = None,
    db: DbOption = None,
    user: UserOption = None,
    limit: Annotated[int, typer.Option(help="How many entries, newest first")] = 50,
    as_json: JsonOption = False,
) -> None:
    """Show the audit trail: who changed what, when, from which value to which, and why.

    ``immunoreset audit verify`` instead checks the trail's hash chain from its first row and
    reports the first broken link (exit 1 when broken).
    """
    if study_id == "verify":  # not a study ID (those look like RM-003)
        audit_verify(db)
        return
    with user_errors():
        registry, actor = open_registry(db, user)
        if as_json:
            print_json(list(registry.audit_trail(actor, study_id=study_id, limit=limit)))
            return
        table = Table("time", "user", "action", "record", "field", "old", "new", "reason")
        for e in registry.audit_trail(actor, study_id=study_id, limit=limit):
            table.add_row(
                e["ts"].strftime("%Y-%m-%d %H:%M:%S"),
                e["username"],
                e["action"],
                f"{e['table_name']}:{e['record_key']}",
                e["field"] or "",
                _short(e["old_value"]),
                _short(e["new_value"]),
                e["reason"] or "",
            )
        console.print(table)


def audit_verify(db: str | None) -> None:
    """Verify the audit trail's hash chain; one line, exit 1 at the first broken link."""
    from immunoreset.registry.audit import verify

    with user_errors():
        registry, _ = open_registry(db, None)
        with registry, progress_bar("verifying the audit chain", None):
            report = verify(registry.engine)
        if not report.ok:
            fail(str(report))
        console.print(str(report))


@db_app.command("backup")
def db_backup(
    file: Annotated[Path, typer.Argument(help="Backup file to write (must not exist)")],
    db: DbOption = None,
) -> None:
    """Consistent snapshot of the registry while it runs (SQLite backup API / pg_dump -Fc)."""
    import time

    from immunoreset.registry.backup import backup

    with user_errors():
        open_registry(db, None)[0].close()  # a current registry, or one line saying why not
        t0 = time.perf_counter()
        with progress_bar("backing up", None):
            out = backup(db, file)
        size = out.stat().st_size / 1e6
        console.print(f"backup written: {out} ({size:,.1f} MB, {time.perf_counter() - t0:.1f} s)")


@db_app.command("restore")
def db_restore(
    file: Annotated[Path, typer.Argument(help="Backup file made by `db backup`")],
    db: Annotated[
        str, typer.Option("--db", help="NEW registry: a new SQLite file or an empty database")
    ],
) -> None:
    """Restore a backup into a new registry (never over an existing one)."""
    from immunoreset.registry.backup import restore
    from immunoreset.registry.db import display_url, resolve_url

    with user_errors():
        from immunoreset.cli import check_db

        check_db(db, create=True)  # the target first: a bad --db is named before the file
        with progress_bar("restoring", None):
            restore(file, db)
        console.print(f"restored {file} into {display_url(resolve_url(db))}")


@db_app.command("verify")
def db_verify(
    against: Annotated[Path, typer.Option("--against", help="Backup file to compare with")],
    db: DbOption = None,
) -> None:
    """Show that the registry and a backup hold the same rows, audit trail included."""
    from immunoreset.registry.backup import compare

    with user_errors():
        open_registry(db, None)[0].close()
        with progress_bar("comparing", None):
            result = compare(db, against)
        table = Table("table", "rows (registry)", "rows (backup)", "same")
        for name, ((na, da), (nb, db_)) in result.tables.items():
            table.add_row(name, f"{na:,}", f"{nb:,}", "yes" if da == db_ else "[red]NO[/]")
        console.print(table)
        console.print(f"registry: {result.chains[0]}")
        console.print(f"backup:   {result.chains[1]}")
        if not result.identical:
            fail(f"registry and backup differ: {', '.join(result.differing) or 'audit chain'}")
        console.print("identical: yes")


@db_app.command("roles")
def db_roles(
    role: Annotated[str, typer.Option(help="Application role to create")] = "immunoreset_app",
    password: Annotated[
        str | None,
        typer.Option(envvar="IMMUNORESET_APP_PASSWORD", help="Its password", show_default=False),
    ] = None,
    db: DbOption = None,
) -> None:
    """PostgreSQL: create a least-privilege application role (no DDL, audit INSERT-only)."""
    from immunoreset.registry.dbroles import create_app_role

    with user_errors():
        from immunoreset.cli import check_db

        if "://" in (db or ""):
            check_db(db)  # an unsupported scheme is named as such
        for statement in create_app_role(db, role, password):
            console.print(statement, highlight=False)
        console.print(f"role {role} ready: run the app with its URL in IMMUNORESET_DB_URL")


def _short(v: str | None, n: int = 40) -> str:
    if v is None:
        return ""
    return v if len(v) <= n else v[: n - 1] + "…"


@db_app.command("upgrade")
def db_upgrade(db: DbOption = None) -> None:
    """Create the registry or bring its schema to the newest migration."""
    with user_errors():
        from immunoreset.cli import check_db
        from immunoreset.registry.db import current_revision, display_url, make_engine, upgrade

        check_db(db, create=True)
        engine = make_engine(db, migrate=False)
        try:
            before = current_revision(engine)
            upgrade(engine)
            after = current_revision(engine)
        finally:
            engine.dispose()
        where = display_url(str(engine.url))
        if before == after:
            console.print(f"registry schema up to date ({after}): {where}")
        else:
            console.print(f"registry schema upgraded {before or 'empty'} → {after}: {where}")


@db_app.command("stats")
def db_stats(db: DbOption = None) -> None:
    """Rows per table."""
    with user_errors():
        registry, _ = open_registry(db, None, listing=True)
        table = Table("table", "rows")
        for k, v in registry.count_rows().items():
            table.add_row(k, f"{v:,}")
        console.print(table)


# --------------------------------------------------------------------------- demo
@app.command("demo")
def demo_cmd(
    db: Annotated[
        str, typer.Option("--db", help="Registry to create (replaced if it exists)")
    ] = "demo.db",
    patients: Annotated[
        int | None,
        typer.Option(help="Number of synthetic patients (default: the 8-patient published cohort)"),
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed")] = 2026,
    out: Annotated[Path | None, typer.Option(help="Folder for the report")] = Path("report"),
    keep: Annotated[
        bool, typer.Option(help="Add to an existing registry instead of replacing")
    ] = False,
) -> None:
    """Build a fresh registry with a SYNTHETIC cohort, print its summary and write a report."""
    import numpy as np

    from immunoreset import demo
    from immunoreset.demo.gmp import seed_demo_qc
    from immunoreset.registry import Registry, system_actor
    from immunoreset.registry.db import display_url, make_engine
    from immunoreset.registry.repository import real_data_in

    with user_errors():
        from immunoreset.cli import check_db

        url = check_db(db, create=True)  # never delete a file that is not a registry
        probe = make_engine(db, migrate=False)
        try:
            real = real_data_in(probe)
        finally:
            probe.dispose()
        if real is not None:
            fail(
                f"demo refuses to touch {display_url(url)}: it holds {real}, not only SYNTHETIC "
                "demo data; give a new file with --db"
            )
        if url.startswith("sqlite:///") and not keep:
            path = Path(url.removeprefix("sqlite:///"))
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(str(path) + suffix).unlink(missing_ok=True)
        registry = Registry(db, upgrade=True)
        actor = system_actor(f"local:{getpass.getuser()}")
        for code, name in demo.SITE_NAMES.items():
            registry.add_site(actor, code, name)
        if patients is None:
            pairs: Any = demo.published_cohort_with_qc(seed=seed)
            total = len(pairs)
        else:
            pairs = demo.synthetic_cohort_with_qc(patients, seed=seed)
            total = patients
        rows = 0
        rng = np.random.default_rng(seed)
        with progress_bar("building SYNTHETIC cohort", total) as advance:
            for chunk in _chunked(pairs, 500):
                courses = [course for course, _ in chunk]
                stats = registry.save_courses(actor, courses, reason="SYNTHETIC demo cohort")
                qc = {q.batch_id: q for _, qcs in chunk for q in qcs}
                seed_demo_qc(registry, actor, courses, rng, qc=qc)
                rows += stats.total_inserted
                advance(len(chunk))
        console.print(
            f"[bold]SYNTHETIC[/] demo registry {db}: {total} patients, {rows:,} rows written, "
            "QC results and release decisions recorded"
        )
        summarise(registry, actor, out=out)


def _chunked(items: Any, n: int) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == n:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def summarise(registry: Any, actor: Any, *, out: Path | None) -> None:
    """Print the cohort summary (case-series tables and program metrics); write the report.

    With ``out`` the courses are loaded and analysed once, by the report, and its analysis is
    printed; without it they are analysed here.
    """
    from immunoreset.registry.gmp import Gmp
    from immunoreset.report.case_series import build_report
    from immunoreset.report.tables import analyse_cohort, cohort_summary_rich

    paths = None
    if out is not None:
        paths = build_report(registry, out_dir=out, actor=actor)
        cohort = paths.analysis
    else:
        cohort = analyse_cohort(list(registry.iter_courses(actor)))
    for table in cohort_summary_rich(cohort):
        console.print(table)
    console.print(_metrics_line(Gmp(registry).program_metrics(actor)))
    if paths is not None:
        console.print(
            f"report: {paths.html}" + (f" and {paths.pdf}" if paths.pdf else ""), soft_wrap=True
        )


def _metrics_line(metrics: Any) -> str:
    return "Manufacturing: " + "; ".join(metrics.reasons)
