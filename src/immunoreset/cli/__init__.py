"""The ``immunoreset`` command line (Typer + Rich): the only code that knows about terminals.

Every command that touches the registry takes ``--db PATH_OR_URL`` (default ``immunoreset.db``
in the current folder, or ``IMMUNORESET_DB_URL``) and ``--user NAME`` (or ``IMMUNORESET_USER``)
to act as a registry user with that user's site and role rules, after authenticating
(:func:`open_registry`); without ``--user`` the command acts as the local administrator of a
SQLite file. User errors print one line and exit 1;
tracebacks never show local variables (they may hold patient data). Heavy libraries are
imported inside the commands so that ``immunoreset --help`` is instant.

Convention for new command groups: add a module ``cli/<group>.py`` that imports what it needs
from here (``app``, ``export_app``, ``import_app``, ``DbOption``, ``UserOption``, ``console``,
``open_registry``, ``user_errors``, ``progress_bar``) and registers its commands at import time
(``@app.command("fit")``, ``@export_app.command("nonmem")``, or ``app.add_typer(sub, name=…)``);
then append its name to ``COMMAND_GROUPS`` at the bottom of this file (order = --help order).
"""

from __future__ import annotations

import getpass
import importlib
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from rich.console import Console

from immunoreset.errors import ImmunoresetError

__all__ = [
    "DbOption",
    "UserOption",
    "app",
    "console",
    "err_console",
    "export_app",
    "fail",
    "import_app",
    "main",
    "open_registry",
    "progress_bar",
    "user_errors",
]

app = typer.Typer(
    name="immunoreset",
    help="Registry, grading, kinetics, manufacturing, modelling and reports for CD19 CAR T "
    "programs in autoimmune disease.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
)
import_app = typer.Typer(help="Import data into the registry.", no_args_is_help=True)
export_app = typer.Typer(help="Export the registry.", no_args_is_help=True)
app.add_typer(import_app, name="import")
app.add_typer(export_app, name="export")

console = Console()
err_console = Console(stderr=True)

DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="Registry: SQLite path or SQLAlchemy URL [default: $IMMUNORESET_DB_URL or "
        "immunoreset.db]",
        show_default=False,
    ),
]
UserOption = Annotated[
    str | None,
    typer.Option(
        "--user",
        envvar="IMMUNORESET_USER",
        help="Act as this registry user (password prompted, or $IMMUNORESET_PASSWORD / "
        "$IMMUNORESET_TOKEN; site and role rules apply) [default: local admin of a SQLite file]",
        show_default=False,
    ),
]


def fail(message: str) -> None:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(1)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn the project's errors into one clear line and exit code 1."""
    try:
        yield
    except ImmunoresetError as err:
        fail(str(err))
    except FileNotFoundError as err:
        fail(f"file not found: {err.filename}")


def open_registry(db: str | None, user: str | None, *, listing: bool = False) -> tuple[Any, Any]:
    """The registry at ``db`` and the authenticated actor to use.

    With ``--user NAME`` the user must prove who they are: an API token of theirs in
    ``IMMUNORESET_TOKEN``, else the password in ``IMMUNORESET_PASSWORD``, else a password prompt
    at a terminal (login attempts are throttled like the web's). Without ``--user`` the command
    acts as the local administrator ``local:<os user>`` — only on a SQLite file (whoever may
    write the file owns it anyway), and the audit trail names that account. ``listing`` allows
    the local account on any database for commands that only list sites or users.
    """
    from immunoreset.registry import Registry, system_actor

    registry = Registry(db)
    if user:
        return registry, _authenticated_actor(registry, user)
    if registry.engine.dialect.name != "sqlite" and not listing:
        registry.close()
        fail(
            "this registry is not a SQLite file: give --user NAME (a registry user; password "
            "prompted, or IMMUNORESET_PASSWORD / IMMUNORESET_TOKEN for scripts)"
        )
    return registry, system_actor(f"local:{getpass.getuser()}")


def _authenticated_actor(registry: Any, user: str) -> Any:
    import socket

    from immunoreset.registry.logins import authenticate, lookup_token

    token = os.environ.get("IMMUNORESET_TOKEN")
    if token:
        actor = lookup_token(registry, token, session=False)
        if actor is None or actor.username != user:
            fail(f"IMMUNORESET_TOKEN is not a live API token of {user} (see `token list`)")
        return actor
    password = os.environ.get("IMMUNORESET_PASSWORD")
    if password is None:
        if not sys.stdin.isatty():
            fail(
                f"--user {user} needs {user}'s password: run at a terminal to be asked, or set "
                "IMMUNORESET_PASSWORD (or IMMUNORESET_TOKEN) for scripts"
            )
        password = getpass.getpass(f"Password for {user}: ")
    client = f"cli:{getpass.getuser()}@{socket.gethostname()}"
    result = authenticate(registry, user, password, client=client)
    if not result.ok:
        fail(result.message.rstrip(".") + f" (--user {user})")
    return registry.actor_for(user)


@contextmanager
def progress_bar(description: str, total: int | None) -> Iterator[Callable[[int], None]]:
    """A Rich progress bar; yields ``advance(n)``. Quiet when output is not a terminal."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=False,
        disable=not err_console.is_terminal and not os.environ.get("IMMUNORESET_PROGRESS"),
    ) as prog:
        task = prog.add_task(description, total=total)
        yield lambda n: prog.advance(task, n)


def main() -> None:
    """Entry point of the ``immunoreset`` script."""
    app(prog_name="immunoreset")


# The command groups register themselves on import (light imports only); order = --help order.
COMMAND_GROUPS = (
    "registry",
    "access",
    "clinical",
    "model",
    "report",
    "web",
    "manufacturing",
)
for _group in COMMAND_GROUPS:
    importlib.import_module(f"immunoreset.cli.{_group}")

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
