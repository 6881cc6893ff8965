"""Access commands: move a patient between sites, manage accounts and API tokens.

``patient transfer`` is the only way a patient changes site (every save and import refuses
it); it is admin-only, needs a reason and is audited.
"""

from __future__ import annotations

from typing import Annotated

import typer

from immunoreset.cli import DbOption, UserOption, app, console, open_registry, user_errors

patient_app = typer.Typer(help="Patients: site transfer.", no_args_is_help=True)
app.add_typer(patient_app, name="patient")


@patient_app.command("transfer")
def patient_transfer(
    study_id: Annotated[str, typer.Argument(help="Study ID of the patient, e.g. ER-001")],
    to: Annotated[str, typer.Option("--to", help="Code of the receiving site")],
    reason: Annotated[str, typer.Option(help="Why the patient moves (audit trail)")],
    db: DbOption = None,
    user: UserOption = None,
) -> None:
    """Move a patient and its whole course to another site (admin only; audited)."""
    with user_errors():
        registry, actor = open_registry(db, user)
        old = registry.transfer_patient(actor, study_id, to, reason=reason)
        console.print(f"patient {study_id} moved from {old} to {to}")
