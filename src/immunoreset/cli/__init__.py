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
    "JsonOption",
    "UserOption",
    "app",
    "check_db",
    "choose",
    "console",
    "err_console",
    "export_app",
    "fail",
    "import_app",
    "main",
    "open_registry",
    "print_json",
    "progress_bar",
    "user_errors",
]

app = typer.Typer(
    rich_markup_mode=None,
    name="immunoreset",
    help="Registry, grading, kinetics, manufacturing, modelling and reports for CD19 CAR T "
    "programs in autoimmune disease.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=True,
)


def _show_version(value: bool) -> None:
    if value:
        from immunoreset import __version__

        console.print(f"immunoreset {__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", is_eager=True, callback=_show_version, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Registry, grading, kinetics, manufacturing, modelling and reports for CD19 CAR T
    programs in autoimmune disease."""


JsonOption = Annotated[
    bool, typer.Option("--json", help="Print JSON (for scripts) instead of a table.")
]


def print_json(data: Any) -> None:
    """Machine-readable output: plain JSON on stdout (dates as ISO text)."""
    import json

    sys.stdout.write(json.dumps(data, indent=2, default=str, ensure_ascii=False) + "\n")


def choose(field: str, value: str | None, allowed: Any) -> str | None:
    """``value`` matched case-insensitively to one of ``allowed``; a miss fails with
    "did you mean" (``--site rome`` → ``ROME``)."""
    import difflib

    if value is None:
        return None
    options = list(allowed)
    for option in options:
        if option.casefold() == value.casefold():
            return option
    close = difflib.get_close_matches(
        value.casefold(), [o.casefold() for o in options], n=1, cutoff=0.5
    )
    hint = ""
    if close:
        hint = f"; did you mean {next(o for o in options if o.casefold() == close[0])}?"
    fail(f"unknown {field} '{value}'{hint} (one of: {', '.join(options) or 'none defined'})")
    return None


import_app = typer.Typer(
    rich_markup_mode=None, help="Import data into the registry.", no_args_is_help=True
)
export_app = typer.Typer(rich_markup_mode=None, help="Export the registry.", no_args_is_help=True)
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
    except PermissionError as err:
        fail(f"permission denied: {err.filename or err}")
    except IsADirectoryError as err:
        fail(f"{err.filename} is a folder, not a file")
    except Exception as err:  # the database driver's errors: one line, never a traceback
        from sqlalchemy.exc import InterfaceError, OperationalError

        if isinstance(err, OperationalError | InterfaceError):
            orig = str(err.orig or err).strip().splitlines()
            fail(
                f"cannot use the registry database: registry database unavailable "
                f"({orig[0] if orig else type(err).__name__}); "
                "nothing was written: try again when it is back"
            )
        if type(err).__module__.split(".")[0] in ("sqlalchemy", "psycopg", "sqlite3"):
            first = str(getattr(err, "orig", None) or err).strip().splitlines()[0]
            fail(f"cannot use the registry database: {first}")
        raise


_SCHEMES = ("sqlite", "postgresql", "postgresql+psycopg")
_SQLITE_MAGIC = b"SQLite format 3\x00"


def check_db(db: str | None, *, create: bool = False) -> str:
    """Refuse, in one line, a ``--db`` that cannot be a registry — before anything is written.

    An unsupported URL scheme, a missing folder, a folder or a non-SQLite file (a CSV passed
    as ``--db``), and — unless ``create`` — a registry file that does not exist yet (instead
    of silently creating an empty one). Returns the resolved URL.
    """
    from pathlib import Path

    from immunoreset.registry.db import resolve_url

    url = resolve_url(db)
    scheme = url.split("://", 1)[0]
    if scheme not in _SCHEMES:
        fail(
            f"unsupported database URL scheme '{scheme}': use a SQLite file path or "
            "postgresql://user@host/name"
        )
    if scheme != "sqlite":
        return url
    path = Path(url.removeprefix("sqlite:///"))
    shown = db if db is not None else os.environ.get("IMMUNORESET_DB_URL") or path.name
    if path.is_dir():
        fail(f"--db {shown} is a folder; give the registry file, e.g. --db {shown}/demo.db")
    if not path.parent.is_dir():
        fail(f"--db {shown}: the folder {path.parent} does not exist")
    if path.exists():
        with path.open("rb") as fh:
            head = fh.read(16)
        if head and head != _SQLITE_MAGIC:
            fail(f"--db {shown} is not a registry (not an SQLite database file)")
    elif not create:
        fail(
            f"no registry at {path} — pass --db demo.db (build it with `immunoreset demo`) "
            "or create one with `immunoreset db upgrade --db FILE`"
        )
    return url


def open_registry(
    db: str | None, user: str | None, *, create: bool = False, listing: bool = False
) -> tuple[Any, Any]:
    """The registry at ``db`` and the authenticated actor to use.

    ``create`` allows a new SQLite file (commands that set a registry up); otherwise a missing
    file is refused with a hint instead of being created empty.
    With ``--user NAME`` the user must prove who they are: an API token of theirs in
    ``IMMUNORESET_TOKEN``, else the password in ``IMMUNORESET_PASSWORD``, else a password prompt
    at a terminal (login attempts are throttled like the web's). Without ``--user`` the command
    acts as the local administrator ``local:<os user>`` — only on a SQLite file (whoever may
    write the file owns it anyway), and the audit trail names that account. ``listing`` allows
    the local account on any database for commands that only list sites or users.
    """
    from immunoreset.registry import Registry, system_actor

    check_db(db, create=create)
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
    "trial",
    "report",
    "web",
    "manufacturing",
    "interop",
    "fit",
)
for _group in COMMAND_GROUPS:
    importlib.import_module(f"immunoreset.cli.{_group}")

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
