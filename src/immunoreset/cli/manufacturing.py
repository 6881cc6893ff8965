"""Commands of point-of-care manufacturing: trace, QC and release, specifications, dose,
infusion, hospital-exemption reports and program metrics (over
:class:`~immunoreset.registry.gmp.Gmp`).

Every command takes ``--db`` and ``--user`` like the rest of the ``immunoreset`` CLI; refusals
(a chain-of-identity violation, a release refused on QC) print one line, exit 1 and are in the
audit trail. On the main app: ``trace``, ``dose``, ``infuse`` and the groups ``batch`` (qc |
release | spec load | spec show | deviation raise | deviation approve | deviation list), ``he``
(add | report | overdue) and ``gmp`` (metrics). Release and deviation approval are electronic
signatures: the qa user re-enters their password (prompt, or ``IMMUNORESET_PASSWORD``).
"""

from __future__ import annotations

import datetime as dt
import getpass
import math
import os
import sys
from typing import Annotated, Any

import typer
from rich.table import Table

from immunoreset.cli import (
    DbOption,
    UserOption,
    app,
    console,
    fail,
    open_registry,
    user_errors,
)
from immunoreset.errors import InvalidInput

__all__ = [
    "batch_app",
    "deviation_app",
    "dose_cmd",
    "gmp_app",
    "he_app",
    "infuse_cmd",
    "parse_result",
    "spec_app",
    "trace_cmd",
]

batch_app = typer.Typer(
    rich_markup_mode=None,
    help="Manufacturing batches: QC results and release.",
    no_args_is_help=True,
)
spec_app = typer.Typer(rich_markup_mode=None, help="Release specifications.", no_args_is_help=True)
he_app = typer.Typer(
    rich_markup_mode=None,
    help="Hospital-exemption authorisations and required reports.",
    no_args_is_help=True,
)
gmp_app = typer.Typer(rich_markup_mode=None, help="Manufacturing program.", no_args_is_help=True)
deviation_app = typer.Typer(
    rich_markup_mode=None,
    help="Deviations: raised by one user, approved (signed) by another with the qa role.",
    no_args_is_help=True,
)
batch_app.add_typer(spec_app, name="spec")
batch_app.add_typer(deviation_app, name="deviation")
app.add_typer(batch_app, name="batch")
app.add_typer(he_app, name="he")
app.add_typer(gmp_app, name="gmp")

DateOption = Annotated[str, typer.Option("--date", help="Date, YYYY-MM-DD")]


def _date(field: str, text: str | None) -> dt.date | None:
    if text is None:
        return None
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput(field, text, "a date YYYY-MM-DD") from None


def parse_result(text: str) -> tuple[str, float | str]:
    """Split ``attr=value`` into the attribute and a number (if it reads as one) or a word.

    Examples
    --------
    >>> parse_result("cd3_viability=92.5"), parse_result("sterility_interim=negative")
    (('cd3_viability', 92.5), ('sterility_interim', 'negative'))
    """
    name, sep, value = text.partition("=")
    if not sep or not name.strip() or not value.strip():
        raise InvalidInput("--result", text, "attribute=value, e.g. cd3_viability=92.5")
    value = value.strip()
    try:
        number = float(value.replace(",", "."))
    except ValueError:
        return name.strip(), value
    if not math.isfinite(number):
        raise InvalidInput(name.strip(), value, "a finite number")
    return name.strip(), number


def _gmp(db: str | None, user: str | None) -> tuple[Any, Any]:
    from immunoreset.registry.gmp import Gmp

    registry, actor = open_registry(db, user)
    return Gmp(registry), actor


def _qc_table(qc: Any) -> Table:
    table = Table(
        "attribute", "result", "limit", "status", title=f"{qc.batch_id} against {qc.spec_key}"
    )
    colour = {"pass": "green", "fail": "bold red", "pending": "yellow"}
    for r in qc.attributes:
        if r.value is None:
            value = "—"
        elif isinstance(r.value, float):
            value = f"{r.value:g} {r.unit}".strip()
        else:
            value = r.value
        stage = "" if r.blocking else " (post-release)"
        table.add_row(r.attribute, value, r.limit + stage, f"[{colour[r.status]}]{r.status}[/]")
    return table


# --------------------------------------------------------------------------- trace
@app.command("trace")
def trace_cmd(
    key: Annotated[str, typer.Argument(help="A bag ID, batch ID, apheresis ID or study ID")],
    db: DbOption = None,
    user: UserOption = None,
) -> None:
    """Print the whole chain of identity: patient → apheresis → batch → bags → infusions."""
    from immunoreset.manufacturing.chain import format_trace

    with user_errors():
        gmp, actor = _gmp(db, user)
        console.print(format_trace(gmp.trace(actor, key)))


# --------------------------------------------------------------------------- batches
@batch_app.command("qc")
def qc_cmd(
    batch_id: Annotated[str, typer.Argument(help="Batch ID")],
    result: Annotated[
        list[str] | None,
        typer.Option("--result", "-r", help="attribute=value (repeat), e.g. endotoxin=0.5"),
    ] = None,
    reason: Annotated[str, typer.Option(help="Reason in the audit trail")] = "QC results entered",
    post_release: Annotated[
        bool,
        typer.Option(
            "--post-release",
            help="Add results to a released batch (opens a deviation for QA review; an "
            "out-of-specification result quarantines the bags not yet infused)",
        ),
    ] = False,
    db: DbOption = None,
    user: UserOption = None,
) -> None:
    """Enter QC results of a batch (or, without --result, show its QC) against its spec.

    A released batch's results are read-only: add results with --post-release instead.
    """
    with user_errors():
        gmp, actor = _gmp(db, user)
        if post_release:
            if not result:
                fail("--post-release needs at least one --result attribute=value")
            added = gmp.add_post_release_result(
                actor, batch_id, dict(parse_result(r) for r in result), reason
            )
            oos = ", ".join(added["out_of_spec"]) or "none"
            bags = ", ".join(added["flagged_bags"]) or "none"
            console.print(
                f"{batch_id}: post-release result(s) added; deviation {added['deviation_id']} "
                f"opened for QA review; out of specification: {oos}; bags quarantined: {bags} "
                f"(QA clears it: `immunoreset batch deviation approve {added['deviation_id']}`)"
            )
            return
        if result:
            results = dict(parse_result(r) for r in result)
            qc = gmp.record_qc(actor, batch_id, results, reason)
        else:
            qc = gmp.evaluate(actor, batch_id)
        console.print(_qc_table(qc))
        verdict = "releasable" if qc.releasable else "not releasable"
        console.print(f"{batch_id}: QC {qc.status}, {verdict}")


def _signing_password(user: str | None, what: str) -> str:
    """The signer's password, re-entered for an electronic signature: IMMUNORESET_PASSWORD
    for scripts (as ``--user`` reads it), else a prompt at a terminal. Never an API token:
    a signature is made of the user and their password (21 CFR Part 11 §11.200(a))."""
    if not user:
        fail(f"{what} is signed by a qa user: give --user NAME (your password is asked)")
    password = os.environ.get("IMMUNORESET_PASSWORD")
    if password is None:
        if not sys.stdin.isatty():
            fail(
                f"{what} needs {user}'s password as an electronic signature: run at a terminal "
                "to be asked, or set IMMUNORESET_PASSWORD for scripts (an API token cannot sign)"
            )
        password = getpass.getpass(f"Password of {user} to sign ({what}): ")
    return password


def _print_signature(sig: Any) -> None:
    if sig is not None:
        console.print(
            f"electronic signature {sig.id}: {sig.manifestation} "
            f"(SHA-256 {sig.content_sha256[:16]}…)"
        )


@batch_app.command("release")
def release_cmd(
    batch_id: Annotated[str, typer.Argument(help="Batch ID")],
    date: Annotated[
        str | None, typer.Option("--date", help="Release date YYYY-MM-DD [default: today]")
    ] = None,
    db: DbOption = None,
    user: UserOption = None,
) -> None:
    """Release a batch against its site's specification, signed with your password (qa role).

    Failed attributes need an approved deviation (`batch deviation raise`, then
    `batch deviation approve` by another qa user).
    """
    with user_errors():
        gmp, actor = _gmp(db, user)
        when = _date("--date", date)
        password = _signing_password(user, f"release of {batch_id}")
        decision = gmp.release(actor, batch_id, password=password, when=when)
        for line in decision.reasons:
            console.print(line)
        _print_signature(gmp.decisions(actor, batch_id)[-1]["signature"])
        console.print(f"[bold green]{batch_id} {decision.grade.replace('_', ' ')}[/]")


@deviation_app.command("raise")
def deviation_raise_cmd(
    batch_id: Annotated[str, typer.Argument(help="Batch ID")],
    reason: Annotated[str, typer.Option(help="Why release is justified (risk assessment)")],
    attribute: Annotated[
        list[str] | None,
        typer.Option(help="Failed attribute it covers (repeat) [default: every failed one]"),
    ] = None,
    reference: Annotated[str | None, typer.Option(help="Deviation report number")] = None,
    db: DbOption = None,
    user: UserOption = None,
) -> None:
    """Raise a release deviation for failed attributes (you are recorded as raising it)."""
    with user_errors():
        gmp, actor = _gmp(db, user)
        dev = gmp.raise_deviation(
            actor, batch_id, reason, attributes=attribute or None, reference=reference
        )
        console.print(
            f"deviation {dev} raised for {batch_id} by {actor.username}: open until another "
            "qa user approves it (`immunoreset batch deviation approve`)"
        )


@deviation_app.command("approve")
def deviation_approve_cmd(
    deviation_id: Annotated[int, typer.Argument(help="Deviation number")],
    reason: Annotated[str | None, typer.Option(help="Reason in the audit trail")] = None,
    db: DbOption = None,
    user: UserOption = None,
) -> None:
    """Approve a deviation, signed with your password (qa role, not the raiser).

    Approving a post-release deviation clears its quarantine: its bags return to the status
    they had before.
    """
    with user_errors():
        gmp, actor = _gmp(db, user)
        password = _signing_password(user, f"approval of deviation {deviation_id}")
        done = gmp.approve_deviation(actor, deviation_id, password, reason=reason)
        _print_signature(gmp.signature(actor, done["signature_id"]))
        cleared = ", ".join(done["cleared_bags"]) or "none"
        console.print(f"deviation {deviation_id} approved; quarantine cleared for bags: {cleared}")


@deviation_app.command("list")
def deviation_list_cmd(
    batch_id: Annotated[str, typer.Argument(help="Batch ID")],
    db: DbOption = None,
    user: UserOption = None,
) -> None:
    """List a batch's deviations with who raised and who approved (signed) them."""
    with user_errors():
        gmp, actor = _gmp(db, user)
        table = Table(
            "no.", "kind", "attributes", "raised by", "status", "signature", title=batch_id
        )
        for d in gmp.deviations(actor, batch_id):
            sig = d["signature"]
            table.add_row(
                str(d["id"]),
                d["kind"],
                ", ".join(d["attributes"]),
                d["raised_by"],
                d["status"],
                "—" if sig is None else sig.manifestation,
            )
        console.print(table)


@spec_app.command("load")
def spec_load_cmd(
    file: Annotated[str, typer.Argument(help="Specification file (.yaml, .yml or .json)")],
    site: Annotated[
        str | None,
        typer.Option(help="Site it belongs to (qa role) [default: your site, if only one]"),
    ] = None,
    program_wide: Annotated[
        bool,
        typer.Option(
            "--program-wide", help="For every site without its own specification (admin only)"
        ),
    ] = False,
    db: DbOption = None,
    user: UserOption = None,
) -> None:
    """Load a site's release specification (qa role); it becomes the site's current one."""
    with user_errors():
        gmp, actor = _gmp(db, user)
        if site is not None:
            site = _site(gmp, site)
        spec = gmp.load_spec_file(actor, file, site=site, program_wide=program_wide)
        scope = "program-wide" if program_wide else f"site {site or sorted(actor.sites)[0]}"
        console.print(
            f"specification {spec.key} loaded ({scope}): {len(spec.attributes)} attributes"
        )


@spec_app.command("show")
def spec_show_cmd(
    key: Annotated[
        str | None, typer.Argument(help="Specification key, e.g. default-v1 [default: current]")
    ] = None,
    site: Annotated[
        str | None, typer.Option(help="The site whose specification applies [default: program]")
    ] = None,
    db: DbOption = None,
    user: UserOption = None,
) -> None:
    """Show a release specification (default: the one applying at --site, or program-wide)."""
    with user_errors():
        gmp, actor = _gmp(db, user)
        if site is not None:
            site = _site(gmp, site)
        spec = gmp.current_spec(actor, site) if key is None else gmp.spec(actor, key, site)
        table = Table("attribute", "limit", "stage", "method", title=f"{spec.key}: {spec.title}")
        for a in spec.attributes:
            table.add_row(a.name, a.limit_text, a.stage, a.method)
        console.print(table)
        loaded = gmp.list_specs(actor)
        if loaded:
            console.print(
                "loaded: "
                + ", ".join(
                    f"{s['key']} ({s['site'] or 'program-wide'}"
                    + (", current)" if s["current"] else ")")
                    for s in loaded
                )
            )


def _site(gmp: Any, site: str) -> str:
    """A site code as the registry spells it (case-insensitive match)."""
    codes = {code.upper(): code for code, _ in gmp.registry.list_sites()}
    if site.upper() not in codes:
        raise InvalidInput("--site", site, "one of " + ", ".join(sorted(codes.values())))
    return codes[site.upper()]


# --------------------------------------------------------------------------- dose and infusion
@app.command("dose")
def dose_cmd(
    study_id: Annotated[str, typer.Argument(help="Study ID, e.g. RM-003")],
    weight: Annotated[float, typer.Option("--weight", help="Weight on the day, kg")],
    date: DateOption,
    target: Annotated[float, typer.Option(help="Target CAR+ T cells/kg")] = 1e6,
    max_total: Annotated[
        float | None, typer.Option(help="Cap on the total dose, CAR+ T cells")
    ] = None,
    deviation: Annotated[float, typer.Option(help="Permitted deviation, fraction")] = 0.2,
    db: DbOption = None,
    user: UserOption = None,
) -> None:
    """Plan the dose: which bag(s) and what volume to draw (nothing is written)."""
    with user_errors():
        gmp, actor = _gmp(db, user)
        plan = gmp.plan_dose(
            actor,
            study_id,
            weight_kg=weight,
            on_date=_date("--date", date),
            target_cells_per_kg=target,
            max_total_cells=max_total,
            permitted_deviation=deviation,
        )
        table = Table("bag", "draw", "volume (mL)", "CAR+ T cells", title=f"Dose for {study_id}")
        for d in plan.draws:
            table.add_row(
                d.bag_id,
                "whole bag" if d.whole else "partial",
                f"{d.volume_ml:.2f}",
                f"{d.cells:.3g}",
            )
        console.print(table)
        for line in plan.reasons:
            console.print(line)
        if plan.remaining:
            console.print("kept for re-dosing: " + ", ".join(r.bag_id for r in plan.remaining))


@app.command("infuse")
def infuse_cmd(
    study_id: Annotated[str, typer.Argument(help="Study ID of the patient being infused")],
    bag: Annotated[list[str], typer.Option("--bag", help="Bag ID scanned (repeat for several)")],
    date: DateOption,
    weight: Annotated[
        float | None, typer.Option("--weight", help="Weight, kg [default: latest recorded]")
    ] = None,
    dose: Annotated[
        float | None,
        typer.Option("--dose", help="Infused CAR+ T cells/kg [default: whole bags / weight]"),
    ] = None,
    db: DbOption = None,
    user: UserOption = None,
) -> None:
    """Record an infusion after checking every bag's chain of identity."""
    with user_errors():
        gmp, actor = _gmp(db, user)
        inf = gmp.infuse(
            actor,
            study_id,
            bag,
            on_date=_date("--date", date),
            weight_kg=weight,
            dose_cells_per_kg=dose,
        )
        console.print(
            f"{study_id} infused on {inf.date}: bags {', '.join(inf.bag_ids)}, "
            f"{inf.dose_cells_per_kg:.3g} CAR+ T cells/kg"
        )


# --------------------------------------------------------------------------- hospital exemption
@he_app.command("add")
def he_add_cmd(
    study_id: Annotated[str, typer.Argument(help="Study ID")],
    authority: Annotated[str, typer.Option(help="Competent authority, e.g. AIFA")],
    reference: Annotated[str, typer.Option(help="File reference")],
    requested: Annotated[str, typer.Option(help="Request date YYYY-MM-DD")],
    decision: Annotated[str, typer.Option(help="pending | approved | rejected")] = "pending",
    decided: Annotated[str | None, typer.Option(help="Decision date YYYY-MM-DD")] = None,
    condition: Annotated[
        list[str] | None, typer.Option(help="Condition of the authorisation (repeat)")
    ] = None,
    db: DbOption = None,
    user: UserOption = None,
) -> None:
    """Record a hospital-exemption request, or its decision (same reference)."""
    from immunoreset.manufacturing.authorisation import HospitalExemption

    with user_errors():
        gmp, actor = _gmp(db, user)
        he = HospitalExemption(
            study_id=study_id,
            authority=authority,
            reference=reference,
            request_date=_date("--requested", requested),  # type: ignore[arg-type]
            decision=decision,
            decision_date=_date("--decided", decided),
            conditions=tuple(condition or ()),
        )
        gmp.add_authorisation(actor, he)
        console.print(f"{study_id}: hospital exemption {reference} ({decision}) recorded")


@he_app.command("report")
def he_report_cmd(
    study_id: Annotated[str, typer.Argument(help="Study ID")],
    kind: Annotated[str, typer.Option(help="sae_notification | annual_report | … ")],
    subject: Annotated[str, typer.Option(help="What the report is about")],
    due: Annotated[str, typer.Option(help="Due date YYYY-MM-DD")],
    submitted: Annotated[str | None, typer.Option(help="Submission date YYYY-MM-DD")] = None,
    reference: Annotated[str | None, typer.Option(help="Authorisation reference")] = None,
    db: DbOption = None,
    user: UserOption = None,
) -> None:
    """Record a required report, or its submission."""
    from immunoreset.manufacturing.authorisation import RequiredReport

    with user_errors():
        gmp, actor = _gmp(db, user)
        report = RequiredReport(
            study_id=study_id,
            kind=kind,
            subject=subject,
            due=_date("--due", due),  # type: ignore[arg-type]
            submitted=_date("--submitted", submitted),
            authorisation_reference=reference,
        )
        gmp.add_report(actor, report)
        console.print(f"{study_id}: {report.label} due {report.due} recorded")


@he_app.command("overdue")
def he_overdue_cmd(
    today: Annotated[
        str | None, typer.Option(help="Reference date YYYY-MM-DD [default: today]")
    ] = None,
    db: DbOption = None,
    user: UserOption = None,
) -> None:
    """List required reports that are overdue."""
    with user_errors():
        gmp, actor = _gmp(db, user)
        day = _date("--today", today) or dt.date.today()
        late = gmp.overdue_reports(actor, day)
        table = Table("study ID", "report", "due", "days late", title=f"Overdue on {day}")
        for r in late:
            table.add_row(r.study_id, r.label, str(r.due), str((day - r.due).days))
        console.print(table)
        console.print(f"{len(late)} overdue")


# --------------------------------------------------------------------------- metrics
@gmp_app.command("metrics")
def metrics_cmd(db: DbOption = None, user: UserOption = None) -> None:
    """Manufacturing success, vein-to-vein time, bags per batch and QC distributions."""
    with user_errors():
        gmp, actor = _gmp(db, user)
        m = gmp.program_metrics(actor)
        for line in m.reasons:
            console.print(line)
        b = m.bags_per_batch
        if b.median is not None:
            console.print(f"bags per released batch: median {b.median:g} (range {b.min}–{b.max})")
        table = Table("attribute", "n", "pass", "fail", "pending", "median", "range")
        for row in m.qc.itertuples(index=False):
            rng = "—" if math.isnan(row.min) else f"{row.min:g}–{row.max:g}"
            med = "—" if math.isnan(row.median) else f"{row.median:g} {row.unit}".strip()
            table.add_row(
                row.attribute,
                str(row.n_results),
                str(row.n_pass),
                str(row.n_fail),
                str(row.n_pending),
                med,
                rng,
            )
        console.print(table)
