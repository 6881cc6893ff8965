"""The ``immunoreset`` command line (Typer + Rich): the only code that knows about terminals.

Every command that touches the registry takes ``--db PATH_OR_URL`` (default ``immunoreset.db``
in the current folder, or ``IMMUNORESET_DB_URL``) and ``--user NAME`` (or ``IMMUNORESET_USER``)
to act as a registry user with that user's site and role rules; without ``--user`` the command
acts as the local administrator of the database file. User errors print one line and exit 1;
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
        help="Act as this registry user (site and role rules apply) [default: local admin]",
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
    except Exception as err:
        from sqlalchemy.exc import InterfaceError, OperationalError

        if not isinstance(err, OperationalError | InterfaceError):
            raise
        orig = str(err.orig or err).strip().splitlines()
        fail(
            f"registry database unavailable ({orig[0] if orig else type(err).__name__}); "
            "nothing was written: try again when it is back"
        )


def open_registry(db: str | None, user: str | None) -> tuple[Any, Any]:
    """The registry at ``db`` and the actor to use (the named user, or the local admin)."""
    from immunoreset.registry import Registry, system_actor

    registry = Registry(db)
    if user:
        return registry, registry.actor_for(user)
    return registry, system_actor(f"local:{getpass.getuser()}")


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
COMMAND_GROUPS = ("registry", "clinical", "model", "report", "web", "manufacturing")
for _group in COMMAND_GROUPS:
    importlib.import_module(f"immunoreset.cli.{_group}")

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
