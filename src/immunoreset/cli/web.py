"""Commands of the web app: ``immunoreset serve``, ``immunoreset token …`` and
``immunoreset web screenshots`` (the README's pictures, from a temporary demo registry).

Uvicorn runs the app in factory mode
(:func:`immunoreset.web.app.create_app_from_env`), so every worker opens the registry named by
``IMMUNORESET_DB_URL`` itself; ``--workers 2`` therefore works on PostgreSQL.
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from immunoreset.cli import DbOption, UserOption, app, console, open_registry, user_errors

__all__ = [
    "NO_USERS_MESSAGE",
    "check_can_serve",
    "serve",
    "token_app",
    "token_create",
    "token_list",
    "token_revoke",
    "web_screenshots",
]

token_app = typer.Typer(
    rich_markup_mode=None, help="API tokens for site systems.", no_args_is_help=True
)
app.add_typer(token_app, name="token")
web_app = typer.Typer(rich_markup_mode=None, help="Web app tools.", no_args_is_help=True)
app.add_typer(web_app, name="web")

NO_USERS_MESSAGE = (
    "The registry has no users yet, so nobody could log in. Create the first administrator "
    "with:\n\n    immunoreset user add NAME --role admin\n\n(then add investigators, data "
    "managers and monitors with --role and --site)."
)


def check_can_serve(db: str | None) -> str:
    """The registry URL to serve; raises ``typer.Exit(1)`` (with a message) when unusable."""
    from immunoreset.cli import check_db, user_errors
    from immunoreset.registry import Registry
    from immunoreset.registry.db import resolve_url

    with user_errors():
        check_db(db, create=True)  # a new registry: serve asks for its first administrator
        url = resolve_url(db)
        with Registry(url) as registry:
            users = registry.user_count()
    with Registry(url) as registry:
        if users == 0:
            if not sys.stdin.isatty():
                typer.echo(NO_USERS_MESSAGE, err=True)
                raise typer.Exit(1)
            _ask_first_admin(registry)
    return url


def _ask_first_admin(registry: Any) -> None:
    """At a terminal, ask for the first administrator instead of refusing to start."""
    import getpass

    from immunoreset.errors import ImmunoresetError
    from immunoreset.registry import system_actor

    typer.echo("The registry has no users yet. Create the first administrator (role admin).")
    name = typer.prompt("Username")
    password = typer.prompt("Password (at least 10 characters)", hide_input=True,
                            confirmation_prompt=True)  # fmt: skip
    try:
        registry.add_user(
            system_actor(f"local:{getpass.getuser()}"), name, "admin", (), password=password
        )
    except ImmunoresetError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"user {name} (admin) added")


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    db: Annotated[
        str | None,
        typer.Option("--db", help="Registry: SQLite path or SQLAlchemy URL.", show_default=False),
    ] = None,
    workers: Annotated[int, typer.Option(help="Worker processes (PostgreSQL for > 1).")] = 1,
) -> None:
    """Start the web app (pages and JSON API) with Uvicorn.

    Needs ``IMMUNORESET_SECRET_KEY`` (≥ 32 characters) unless ``IMMUNORESET_ENVIRONMENT=
    development``; behind HTTPS keep ``IMMUNORESET_SECURE_COOKIES`` on (the default outside
    development).
    """
    import uvicorn
    from pydantic import ValidationError

    from immunoreset.web.settings import WebSettings

    url = check_can_serve(db)
    os.environ["IMMUNORESET_DB_URL"] = url
    try:
        settings = WebSettings()
    except ValidationError as err:
        messages = "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in err.errors())
        typer.echo(f"cannot start: {messages}", err=True)
        raise typer.Exit(1) from None
    if settings.environment == "development" and not os.environ.get("IMMUNORESET_SECRET_KEY"):
        # one throwaway key shared by every worker of this run, so sessions work across them
        os.environ["IMMUNORESET_SECRET_KEY"] = secrets.token_urlsafe(48)
    if workers > 1 and url.startswith("sqlite"):
        typer.echo("note: several workers on a SQLite file serialise their writes", err=True)
    uvicorn.run(
        "immunoreset.web.app:create_app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        proxy_headers=True,
        log_level="info",
    )


@token_app.command("create")
def token_create(
    username: Annotated[str, typer.Argument(help="The registry user the token acts as.")],
    label: Annotated[str, typer.Option(help="What the token is for.")] = "api",
    days: Annotated[int, typer.Option(help="Days until the token expires (1–3650).")] = 90,
    db: DbOption = None,
    user: UserOption = None,
) -> None:
    """Create an API token for USERNAME and print it once (only its hash is stored).

    For oneself (``--user`` = USERNAME, authenticated) or, as an admin, for anyone.
    """
    from immunoreset.web.security import issue_api_token

    with user_errors():
        registry, actor = open_registry(db, user)
        if actor.username != username:
            actor.require_admin(f"create an API token for {username}")
        with registry:
            token = issue_api_token(registry, username, label, days=days)
    typer.echo(token)


@token_app.command("list")
def token_list(
    username: Annotated[
        str | None, typer.Argument(help="Whose tokens (admin: anyone; default: yours / all)")
    ] = None,
    db: DbOption = None,
    user: UserOption = None,
) -> None:
    """List API tokens: id, user, label, created, expires, revoked (never the token)."""
    from rich.table import Table

    from immunoreset.registry.logins import list_tokens

    with user_errors():
        registry, actor = open_registry(db, user)
        table = Table("id", "user", "label", "created", "expires", "revoked", title="API tokens")
        for r in list_tokens(registry, actor, username=username):
            table.add_row(
                str(r["id"]),
                r["username"],
                r["label"] or "",
                _stamp(r["created_at"]),
                _stamp(r["expires_at"]) or "never",
                _stamp(r["revoked_at"]),
            )
        console.print(table)


@token_app.command("revoke")
def token_revoke(
    token_id: Annotated[int, typer.Argument(help="The token's id (see `token list`).")],
    reason: Annotated[str, typer.Option(help="Why (audit trail).")] = "token revoked",
    db: DbOption = None,
    user: UserOption = None,
) -> None:
    """Revoke an API token (its owner or an admin; audited)."""
    from immunoreset.registry.logins import revoke_token_id

    with user_errors():
        registry, actor = open_registry(db, user)
        revoke_token_id(registry, actor, token_id, reason=reason)
        console.print(f"token {token_id} revoked")


def _stamp(value: Any) -> str:
    return "" if value is None else value.strftime("%Y-%m-%d %H:%M")


@web_app.command("screenshots")
def web_screenshots(
    out: Annotated[Path, typer.Option("--out", help="Folder for the PNG files (created).")] = Path(
        "docs/screenshots"
    ),
    size: Annotated[
        list[str] | None,
        typer.Option("--size", help="desktop, tablet (820×1180), phone (390×844); repeatable."),
    ] = None,
    chromium: Annotated[
        str | None,
        typer.Option("--chromium", help="Chromium executable (default: Debian's chromium)."),
    ] = None,
) -> None:
    """Screenshots of the web app (SYNTHETIC demo cohort) at desktop, tablet and phone sizes.

    Builds a temporary registry, serves the app on a free loopback port and drives headless
    chromium (Playwright, from the test extras): login, dashboard, patient page, daily
    assessment with a live grade, batch page, audit trail — ``NAME.png`` for the desktop,
    ``NAME-tablet.png``, ``NAME-phone.png``. ``make screenshots`` runs it into
    docs/screenshots; the browser tests never write there.
    """
    from immunoreset.cli import progress_bar
    from immunoreset.web.screenshots import SCENES, SIZES, take_screenshots

    sizes = tuple(size) if size else tuple(SIZES)
    with user_errors(), progress_bar("screenshots", len(SCENES) * len(sizes)) as advance:
        files = take_screenshots(out, sizes=sizes, chromium=chromium, progress=advance)
    console.print(f"{len(files)} screenshots written to {out}")
