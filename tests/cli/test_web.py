"""``immunoreset serve`` refuses an empty registry; ``token create`` prints a working token."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from immunoreset.cli import web as cli
from immunoreset.registry import Registry
from immunoreset.web.security import lookup_token


def test_serve_refuses_without_users(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "empty.db")
    with pytest.raises(typer.Exit) as info:  # no registry yet: one line naming the command
        cli.serve(db=db)
    assert info.value.exit_code == 1
    assert "immunoreset db upgrade" in capsys.readouterr().err
    Registry(db, upgrade=True).close()
    with pytest.raises(typer.Exit) as info:
        cli.serve(db=db)
    assert info.value.exit_code == 1
    assert "immunoreset user add NAME --role admin" in capsys.readouterr().err


def test_serve_refuses_without_secret(
    registry: Registry, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("IMMUNORESET_SECRET_KEY", raising=False)
    monkeypatch.delenv("IMMUNORESET_ENVIRONMENT", raising=False)
    monkeypatch.setenv("IMMUNORESET_DB_URL", "unused")
    url = str(registry.engine.url)
    with pytest.raises(typer.Exit):
        cli.serve(db=url)
    assert "IMMUNORESET_SECRET_KEY is not set" in capsys.readouterr().err


def test_token_create(registry: Registry) -> None:
    app = typer.Typer()
    app.command()(cli.token_create)
    url = str(registry.engine.url)
    result = CliRunner().invoke(app, ["rosa", "--label", "lims", "--db", url])
    assert result.exit_code == 0, result.output
    actor = lookup_token(registry, result.output.strip(), session=False)
    assert actor is not None and actor.username == "rosa"
    bad = CliRunner().invoke(app, ["ghost", "--db", url])
    assert bad.exit_code == 1 and "not found" in bad.output


def test_first_admin_is_asked_for_at_a_terminal(tmp_path, monkeypatch):
    """With no users, `serve` at a terminal asks for the first administrator."""
    import io

    from immunoreset.cli import web as web_cli
    from immunoreset.registry import Registry

    db = str(tmp_path / "empty.db")
    Registry(db, upgrade=True).close()
    answers = iter(["ada", "a long passphrase"])
    monkeypatch.setattr(web_cli.typer, "prompt", lambda *a, **k: next(answers))

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(web_cli.sys, "stdin", Tty())
    web_cli.check_can_serve(db)
    with Registry(db, upgrade=True) as reg:
        assert reg.actor_for("ada").role == "admin"
