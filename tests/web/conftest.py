"""Fixtures of the web tests: a registry with the demo cohort (ROME, ERLANGEN) and its users."""

from __future__ import annotations

import datetime as dt
import re
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

with warnings.catch_warnings():  # starlette asks for httpx2; the TestClient works with httpx
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from immunoreset import demo
from immunoreset.registry import Registry, system_actor
from immunoreset.web import WebSettings, create_app

PASSWORD = "correct horse battery"
USERS = {
    "admin": ("admin", ()),
    "rosa": ("investigator", ("ROME",)),
    "erik": ("investigator", ("ERLANGEN",)),
    "mona": ("monitor", ("ROME",)),
    "dana": ("data_manager", ("ROME",)),
    "quinn": ("qa", ("ROME",)),  # GMP quality assurance / qualified person
    "quentin": ("qa", ("ROME",)),
    "elke": ("qa", ("ERLANGEN",)),
}
TODAY = dt.date(2023, 12, 1)  # RM-001's day +31: the first day without an assessment


def build_registry(db: str) -> Registry:
    registry = Registry(db, upgrade=True)
    root = system_actor()
    registry.add_site(root, "ROME", "Ospedale Pediatrico Bambino Gesù, Rome")
    registry.add_site(root, "ERLANGEN", "Universitätsklinikum Erlangen")
    registry.save_courses(root, demo.published_cohort(), reason="demo cohort")
    for name, (role, sites) in USERS.items():
        registry.add_user(root, name, role, sites, password=PASSWORD)
    return registry


@pytest.fixture(scope="session")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("webdb") / "template.db"
    build_registry(str(path)).close()
    return path


@pytest.fixture
def registry(template_db: Path, tmp_path: Path) -> Iterator[Registry]:
    import shutil

    path = tmp_path / "registry.db"
    shutil.copy(template_db, path)
    reg = Registry(str(path), upgrade=True)
    yield reg
    reg.close()


@pytest.fixture
def settings() -> WebSettings:
    return WebSettings(
        environment="production",
        secret_key="k" * 40,
        secure_cookies=False,
        today=TODAY,
        login_free_failures=3,
    )


@pytest.fixture
def app(registry: Registry, settings: WebSettings):  # type: ignore[no-untyped-def]
    return create_app(registry, settings)


@pytest.fixture
def client(app) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    with TestClient(app, base_url="http://testserver") as c:
        yield c


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF field in the page"
    return found.group(1)


def login(client: TestClient, username: str, password: str = PASSWORD):  # type: ignore[no-untyped-def]
    page = client.get("/login")
    return client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": csrf_of(page.text)},
        follow_redirects=False,
    )


@pytest.fixture
def as_user(client: TestClient):  # type: ignore[no-untyped-def]
    """Log the test client in as a user; returns the session's CSRF token."""

    def _login(username: str) -> str:
        resp = login(client, username)
        assert resp.status_code == 303, resp.text
        return csrf_of(client.get("/").text)

    return _login
