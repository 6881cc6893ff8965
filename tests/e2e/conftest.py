"""A live server (uvicorn in a thread, free loopback port), headless Debian chromium, axe-core.

Screenshots of the tests go to each test's ``tmp_path`` only; the README's pictures come from
``immunoreset web screenshots`` (``make screenshots``), never from a test run.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from immunoreset.web import WebSettings, create_app
from immunoreset.web.screenshots import CHROMIUM_ARGS, SIZES, running_server
from tests.web.conftest import PASSWORD, TODAY, build_registry

CHROMIUM = "/usr/bin/chromium"
ARGS = list(CHROMIUM_ARGS)
TABLET = SIZES["tablet"]
PHONE = SIZES["phone"]
#: axe-core impacts that fail a test (moderate and minor ones are reported, not failed).
BLOCKING_IMPACTS = ("serious", "critical")


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    registry = build_registry(str(tmp_path_factory.mktemp("e2e") / "registry.db"))
    settings = WebSettings(
        environment="production", secret_key="e" * 40, secure_cookies=False, today=TODAY
    )
    with running_server(create_app(registry, settings)) as url:
        yield url
    registry.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        pytest.skip("Debian chromium not installed (make test installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, live_server: str):  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": 1024, "height": 900}, base_url=live_server)
    pg = context.new_page()
    yield pg
    context.close()


@pytest.fixture
def sized_page(browser, live_server: str):  # type: ignore[no-untyped-def]
    """A factory: ``sized_page(width, height)`` → a new page with that viewport."""
    contexts = []

    def _make(width: int, height: int):  # type: ignore[no-untyped-def]
        context = browser.new_context(
            viewport={"width": width, "height": height}, base_url=live_server
        )
        contexts.append(context)
        return context.new_page()

    yield _make
    for context in contexts:
        context.close()


def log_in(page, username: str) -> None:  # type: ignore[no-untyped-def]
    page.goto("/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/")


def shot(page, out: Path, name: str) -> Path:  # type: ignore[no-untyped-def]
    """A full-page screenshot into ``out`` (a test's ``tmp_path``); returns the file."""
    out.mkdir(parents=True, exist_ok=True)
    target = out / name
    page.screenshot(path=str(target), full_page=True)
    return target


def axe_violations(page) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    """axe-core's violations of the page (the axe.min.js packaged by axe-playwright-python)."""
    from axe_playwright_python.sync_playwright import Axe

    return list(Axe().run(page).response["violations"])


def assert_accessible(page) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    """No serious or critical axe-core violation; returns all violations found."""
    found = axe_violations(page)
    bad = [
        f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']][:5]} — {v['help']}"
        for v in found
        if v["impact"] in BLOCKING_IMPACTS
    ]
    assert not bad, f"{page.url}: " + "; ".join(bad)
    return found
