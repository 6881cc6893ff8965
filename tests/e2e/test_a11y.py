"""axe-core in headless chromium: no serious or critical violation on any page, any size."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import PHONE, TABLET, assert_accessible, log_in

pytestmark = pytest.mark.browser

#: Every page kind of the app (as an investigator of ROME).
PAGES = (
    "/",
    "/?alerts_only=true",
    "/patients/RM-001",
    "/patients/RM-003",
    "/patients/RM-001/assessments/new",
    "/patients/RM-001/labs/new",
    "/patients/RM-001/disease/new",
    "/batches",
    "/batches/RM-001-B1",
    "/audit",
    "/audit?study_id=RM-001",
    "/reports",
    "/api/docs",
    "/patients/NOPE-404",
)


def _settle(page, path: str) -> None:  # type: ignore[no-untyped-def]
    if path.startswith("/patients/") and path.count("/") == 2 and "NOPE" not in path:
        page.wait_for_selector("#plot-b_cells .main-svg")  # the plots are drawn when checked


def test_login_page(page) -> None:  # type: ignore[no-untyped-def]
    page.goto("/login")
    assert_accessible(page)


@pytest.fixture(scope="module")
def rosa_page(browser, live_server: str):  # type: ignore[no-untyped-def]
    """One logged-in page for the whole module (a login per page would double its time)."""
    context = browser.new_context(viewport={"width": 1024, "height": 900}, base_url=live_server)
    pg = context.new_page()
    log_in(pg, "rosa")
    yield pg
    context.close()


@pytest.mark.parametrize("path", PAGES)
def test_every_page_desktop(rosa_page, path: str) -> None:  # type: ignore[no-untyped-def]
    page = rosa_page
    page.goto(path)
    _settle(page, path)
    assert_accessible(page)


@pytest.mark.parametrize("size", [TABLET, PHONE], ids=["tablet", "phone"])
def test_main_pages_small_screens(sized_page, size) -> None:  # type: ignore[no-untyped-def]
    page = sized_page(*size)
    page.goto("/login")
    assert_accessible(page)
    log_in(page, "rosa")
    for path in ("/", "/patients/RM-001", "/patients/RM-001/assessments/new",
                 "/batches/RM-001-B1", "/audit"):  # fmt: skip
        page.goto(path)
        _settle(page, path)
        assert_accessible(page)


def test_monitor_and_refused_pages(page) -> None:  # type: ignore[no-untyped-def]
    log_in(page, "mona")
    for path in ("/patients/RM-001", "/patients/RM-001/assessments/new", "/batches/RM-001-B1"):
        page.goto(path)
        _settle(page, path)
        assert_accessible(page)


def test_form_with_errors(page) -> None:  # type: ignore[no-untyped-def]
    log_in(page, "rosa")
    page.goto("/patients/RM-002/assessments/new")
    page.get_by_label("Highest temperature (°C)").fill("55")
    page.get_by_role("button", name="Save assessment").click()
    page.wait_for_selector("[data-error-for=temperature_max_c]:not(:empty)")
    assert_accessible(page)


def test_axe_finds_a_planted_violation(page) -> None:  # type: ignore[no-untyped-def]
    """The check can fail: a scroll box without focus and a control inside a link are caught."""
    log_in(page, "rosa")
    page.goto("/")
    page.evaluate(
        """() => {
          const a = document.createElement('a'); a.href = '#'; a.setAttribute('role', 'img');
          a.setAttribute('aria-label', 'x');
          const b = document.createElement('button'); b.textContent = 'inner';
          a.appendChild(b); document.querySelector('main').appendChild(a);
        }"""
    )
    with pytest.raises(AssertionError, match="nested-interactive"):
        assert_accessible(page)
