"""Settings refuse insecure defaults outside development."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from immunoreset.web import WebSettings


def test_production_without_secret_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("IMMUNORESET_SECRET_KEY", raising=False)
    monkeypatch.delenv("IMMUNORESET_ENVIRONMENT", raising=False)
    with pytest.raises(ValidationError, match="IMMUNORESET_SECRET_KEY is not set"):
        WebSettings()


def test_short_secret_is_refused_in_production() -> None:
    with pytest.raises(ValidationError, match="at least 32 characters"):
        WebSettings(environment="production", secret_key="short")


def test_development_gets_a_random_key_per_process() -> None:
    a = WebSettings(environment="development")
    b = WebSettings(environment="development")
    assert a.secret_key and b.secret_key and a.secret_key != b.secret_key
    assert a.secure_cookies is False


@pytest.mark.parametrize(
    ("environment", "explicit", "expected"),
    [("production", None, True), ("development", None, False), ("production", False, False)],
)
def test_secure_cookie_default(environment: str, explicit: bool | None, expected: bool) -> None:
    s = WebSettings(environment=environment, secret_key="s" * 32, secure_cookies=explicit)
    assert s.secure_cookies is expected


def test_environment_variables_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMMUNORESET_SECRET_KEY", "e" * 40)
    monkeypatch.setenv("IMMUNORESET_LOGIN_FREE_FAILURES", "7")
    monkeypatch.setenv("IMMUNORESET_TODAY", "2024-01-02")
    s = WebSettings()
    assert s.login_free_failures == 7 and str(s.today) == "2024-01-02"
