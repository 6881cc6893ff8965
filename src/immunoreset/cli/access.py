"""Access commands: move a patient between sites; unlock, re-password, deactivate users.

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


def _user_app() -> typer.Typer:
    from immunoreset.cli.registry import user_app

    return user_app


user_app = _user_app()


@user_app.command("unlock")
def user_unlock(
    name: Annotated[str, typer.Argument(help="Username whose login delays to clear")],
    reason: Annotated[str, typer.Option(help="Why (audit trail)")] = "login delays cleared",
    db: DbOption = None,
    user: UserOption = None,
) -> None:
    """Clear a user's login delays (admin only; audited)."""
    from immunoreset.registry.logins import unlock_user

    with user_errors():
        registry, actor = open_registry(db, user)
        n = unlock_user(registry, actor, name, reason=reason)
        console.print(f"user {name}: {n} login delay(s) cleared")


@user_app.command("passwd")
def user_passwd(
    name: Annotated[str, typer.Argument(help="Username (yourself, or anyone as an admin)")],
    password: Annotated[
        str | None,
        typer.Option(
            envvar="IMMUNORESET_NEW_PASSWORD",
            help="New password (prompted when not given; at least 10 characters)",
            show_default=False,
        ),
    ] = None,
    reason: Annotated[str, typer.Option(help="Why (audit trail)")] = "password changed",
    db: DbOption = None,
    user: UserOption = None,
) -> None:
    """Set a password; every session and API token of the user is revoked (audited)."""
    import os

    from immunoreset.registry.logins import set_password

    with user_errors():
        registry, actor = open_registry(db, user)
        if password is None:
            password = typer.prompt("New password", hide_input=True, confirmation_prompt=True)
        old = os.environ.get("IMMUNORESET_PASSWORD") if actor.username == name else None
        set_password(registry, actor, name, password, old_password=old, reason=reason)
        console.print(f"password of {name} set; its sessions and tokens are revoked")


@user_app.command("deactivate")
def user_deactivate(
    name: Annotated[str, typer.Argument(help="Username to deactivate")],
    reason: Annotated[str, typer.Option(help="Why (audit trail)")],
    db: DbOption = None,
    user: UserOption = None,
) -> None:
    """Deactivate a user: no more logins, every token revoked, history kept (admin only)."""
    from immunoreset.registry.logins import deactivate_user

    with user_errors():
        registry, actor = open_registry(db, user)
        deactivate_user(registry, actor, name, reason=reason)
        console.print(f"user {name} deactivated")
