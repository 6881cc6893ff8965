"""Tablet (820 × 1180) and phone (390 × 844): no horizontal page scroll, no clipped column,
wide tables scroll inside focusable labelled regions, the live grade stays in view."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import PHONE, TABLET, log_in, shot

pytestmark = pytest.mark.browser

SIZES = pytest.mark.parametrize("size", [TABLET, PHONE], ids=["tablet", "phone"])
PAGES = {
    "dashboard": "/",
    "patient": "/patients/RM-001",
    "batch": "/batches/RM-001-B1",
    "assessment": "/patients/RM-001/assessments/new",
    "audit": "/audit",
}

#: Per table: its width, the width of the box that shows it, and — when it is wider — whether
#: that box scrolls (overflow-x auto), is focusable and is a labelled region.
TABLES = """() => Array.from(document.querySelectorAll('main table')).map(t => {
  let box = t.parentElement;
  while (box && !['auto', 'scroll'].includes(getComputedStyle(box).overflowX)) {
    box = box.parentElement;
  }
  const shown = box || t.parentElement;
  return {
    id: t.id || t.className, width: t.scrollWidth, room: shown.clientWidth,
    scrolls: !!box, focusable: !!box && box.tabIndex >= 0,
    region: !!box && box.getAttribute('role') === 'region' &&
      !!(box.getAttribute('aria-label') || box.getAttribute('aria-labelledby')),
  };
})"""

#: Elements whose content is cut off by overflow: hidden (a clipped plot or column).
CLIPPED = """() => Array.from(document.querySelectorAll('main *')).filter(e => {
  const cs = getComputedStyle(e);
  return cs.overflowX === 'hidden' && e.scrollWidth > e.clientWidth + 1 &&
    !e.classList.contains('sr-only') && e.getClientRects().length > 0;
}).map(e => e.id || e.className)"""


def _open(page, name: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(PAGES[name])
    if name == "patient":
        page.wait_for_selector("#plot-b_cells .main-svg")
        # every plot is drawn and has been resized to its panel (one animation frame later)
        page.wait_for_function(PLOTS_FITTED, timeout=20_000)


PLOTS_FITTED = """() => Array.from(document.querySelectorAll('[data-figure]')).every(el => {
  const svg = el.querySelector('.main-svg');
  return svg !== null && svg.getBoundingClientRect().width <= el.clientWidth + 1;
})"""


@SIZES
@pytest.mark.parametrize("name", list(PAGES))
def test_no_horizontal_page_scroll(sized_page, size, name: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    width, height = size
    page = sized_page(width, height)
    log_in(page, "rosa")
    _open(page, name)
    scroll_width = page.evaluate("() => document.documentElement.scrollWidth")
    assert scroll_width <= width, f"{name} at {width}px scrolls sideways: {scroll_width}px"
    tables = page.evaluate(TABLES)
    assert tables or name == "assessment"
    for t in tables:
        if t["width"] > t["room"]:  # too wide to fit: it must scroll in a reachable region
            assert t["scrolls"] and t["focusable"] and t["region"], t
    assert page.evaluate(CLIPPED) == []
    png = shot(page, tmp_path, f"{name}-{width}x{height}.png")
    assert png.stat().st_size > 1000


@SIZES
def test_wide_dashboard_table_scrolls_by_keyboard(sized_page, size) -> None:  # type: ignore[no-untyped-def]
    page = sized_page(*size)
    log_in(page, "rosa")
    region = page.get_by_role("region", name="Patients with study day")
    region.focus()
    expect(region).to_be_focused()
    if page.evaluate("() => document.querySelector('#cohort').scrollWidth") > region.evaluate(
        "e => e.clientWidth"
    ):
        page.keyboard.press("ArrowRight")
        scrolled = "() => document.querySelector('#cohort').parentElement.scrollLeft > 0"
        page.wait_for_function(scrolled)


@SIZES
def test_live_grade_stays_in_view_while_typing(sized_page, size, tmp_path) -> None:  # type: ignore[no-untyped-def]
    width, height = size
    page = sized_page(width, height)
    log_in(page, "rosa")
    page.goto("/patients/RM-001/assessments/new")
    live = page.locator("#live-crs-grade")
    expect(live).to_have_text("not assessed")
    page.get_by_label("Highest temperature (°C)").fill("38.6")
    expect(live).to_have_text("grade 1")
    last = page.get_by_label("Note for the audit trail")
    last.scroll_into_view_if_needed()
    last.fill("checked at the bedside")
    for locator in (live, page.locator("#live-icans-grade")):
        box = locator.bounding_box()
        assert box is not None
        assert box["y"] >= 0 and box["y"] + box["height"] <= height, box
        assert box["x"] >= 0 and box["x"] + box["width"] <= width, box
    # still in view with the page scrolled to its very end
    page.evaluate("() => window.scrollTo(0, document.documentElement.scrollHeight)")
    box = live.bounding_box()
    assert box is not None and box["y"] + box["height"] <= height
    shot(page, tmp_path, f"assessment-{width}x{height}.png")


@SIZES
def test_blank_form_is_not_assessed_and_cannot_be_saved(sized_page, size) -> None:  # type: ignore[no-untyped-def]
    page = sized_page(*size)
    log_in(page, "rosa")
    page.goto("/patients/RM-002/assessments/new")
    expect(page.locator("#live-crs-grade")).to_have_text("not assessed")
    expect(page.locator("#live-icans-grade")).to_have_text("not assessed")
    save = page.get_by_role("button", name="Save assessment")
    expect(save).to_be_disabled()
    expect(page.locator("#save-hint")).to_be_visible()
    page.get_by_label("Highest temperature (°C)").fill("37.2")
    expect(save).to_be_enabled()
    expect(page.locator("#save-hint")).to_be_hidden()
    page.get_by_label("Highest temperature (°C)").fill("")
    expect(save).to_be_disabled()
