"""Screenshots of the web app for the README (``immunoreset web screenshots --out DIR``).

The browser tests never write into the source tree; the README's pictures come from this
explicit command instead. It builds the SYNTHETIC published-shaped demo cohort in a temporary
registry, serves the app on a free loopback port (:func:`running_server`, also used by the
browser tests), drives headless chromium through Playwright and writes one PNG per page and
size: ``dashboard.png`` (desktop 1280 × 900), ``dashboard-tablet.png`` (820 × 1180),
``dashboard-phone.png`` (390 × 844), and so on for the login form, a patient page, the daily
assessment form with a live grade, a batch page and the audit trail.

Playwright and chromium are test tools (``pip install -e '.[test]'``,
``scripts/test-deps.sh``); without them :func:`take_screenshots` raises :class:`InvalidInput`
naming what to install.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import secrets
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from immunoreset.errors import InvalidInput

__all__ = [
    "CHROMIUM_ARGS",
    "SCENES",
    "SIZES",
    "Scene",
    "find_chromium",
    "running_server",
    "screenshot_registry",
    "take_screenshots",
]

#: Viewport name -> (width, height) in CSS pixels: a desktop, an iPad Air (820 × 1180) held
#: upright, an iPhone 12–14 (390 × 844).
SIZES: Mapping[str, tuple[int, int]] = {
    "desktop": (1280, 900),
    "tablet": (820, 1180),
    "phone": (390, 844),
}
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)
#: Longest wait for one browser action, ms (generous: a loaded machine is slow to log in).
TIMEOUT_MS = 120_000
#: "Today" of the screenshots: RM-001's day +31 in the demo cohort (as in the browser tests).
TODAY = dt.date(2023, 12, 1)


def find_chromium(path: str | None = None) -> str:
    """The chromium executable (``path``, else Debian's ``/usr/bin/chromium`` or on PATH)."""
    for candidate in (path,) if path else ("/usr/bin/chromium", shutil.which("chromium")):
        if candidate and Path(candidate).is_file():
            return str(candidate)
    raise InvalidInput(
        "chromium",
        path or "chromium",
        "an installed chromium (Debian: `bash scripts/test-deps.sh` or `apt-get install "
        "chromium`), or --chromium PATH",
    )


@contextlib.contextmanager
def running_server(app: Any, *, timeout_s: float = 20.0) -> Iterator[str]:
    """Serve ``app`` with uvicorn in a thread on a free loopback port; yields its base URL."""
    import uvicorn

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout_s
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the web server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def screenshot_registry(path: Path, password: str) -> Any:
    """A registry at ``path`` with the SYNTHETIC demo cohort, its two sites and user ``rosa``
    (investigator, ROME) with ``password``."""
    from immunoreset import demo
    from immunoreset.registry import Registry, system_actor

    registry = Registry(str(path), upgrade=True)
    root = system_actor()
    registry.add_site(root, "ROME", "Ospedale Pediatrico Bambino Gesù, Rome")
    registry.add_site(root, "ERLANGEN", "Universitätsklinikum Erlangen")
    registry.save_courses(root, demo.published_cohort(), reason="demo cohort")
    registry.add_user(root, "rosa", "investigator", ("ROME",), password=password)
    return registry


@dataclass(frozen=True)
class Scene:
    """One picture: file stem, address, whether to log in, and what to do before the shot."""

    name: str
    path: str
    logged_in: bool = True
    prepare: Callable[[Any], None] | None = None


def _plots_drawn(page: Any) -> None:
    page.wait_for_selector("#plot-b_cells .main-svg")


def _live_grade(page: Any) -> None:
    from playwright.sync_api import expect

    page.get_by_label("Highest temperature (°C)").fill("38.6")
    page.get_by_label("Oxygen support (most intensive of the day)").select_option("nasal_cannula")
    page.get_by_label("Oxygen flow (L/min)").fill("2")
    page.get_by_label("ICE score (0–10)").fill("10")
    expect(page.locator("#live-crs-grade")).to_have_text("grade 2")


SCENES: tuple[Scene, ...] = (
    Scene("login", "/login", logged_in=False),
    Scene("dashboard", "/"),
    Scene("patient", "/patients/RM-001", prepare=_plots_drawn),
    Scene("assessment-live-grade", "/patients/RM-001/assessments/new", prepare=_live_grade),
    Scene("batch", "/batches/RM-001-B1"),
    Scene("audit", "/audit"),
)


def log_in(page: Any, username: str, password: str) -> None:
    """Log ``page`` in through the login form."""
    page.goto("/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/")


def take_screenshots(
    out: Path,
    *,
    sizes: Sequence[str] = tuple(SIZES),
    scenes: Sequence[Scene] = SCENES,
    chromium: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[Path]:
    """Write a full-page PNG of every scene at every size into ``out``; returns the files.

    The desktop pictures are ``NAME.png``, the others ``NAME-SIZE.png``.

    Raises
    ------
    InvalidInput
        An unknown size, no Playwright, no chromium, or ``out`` not a writable folder.
    """
    unknown = [s for s in sizes if s not in SIZES]
    if unknown or not sizes:
        raise InvalidInput("size", ",".join(unknown), f"one or more of {', '.join(SIZES)}")
    try:
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise InvalidInput(
            "playwright", "not installed", "Playwright: pip install -e '.[test]'"
        ) from None
    executable = find_chromium(chromium)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise InvalidInput("out", str(out), f"a writable folder ({err.strerror})") from None

    from immunoreset.web import WebSettings, create_app

    password = secrets.token_urlsafe(18)
    written: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="immunoreset-shots-") as tmp:
        registry = screenshot_registry(Path(tmp) / "registry.db", password)
        settings = WebSettings(
            environment="production",
            secret_key=secrets.token_urlsafe(48),
            secure_cookies=False,
            today=TODAY,
        )
        try:
            with running_server(create_app(registry, settings)) as base, sync_playwright() as p:
                browser = p.chromium.launch(executable_path=executable, args=list(CHROMIUM_ARGS))
                try:
                    for size in sizes:
                        width, height = SIZES[size]
                        for logged_in in (False, True):
                            context = browser.new_context(
                                viewport={"width": width, "height": height}, base_url=base
                            )
                            context.set_default_timeout(TIMEOUT_MS)
                            page = context.new_page()
                            if logged_in:
                                log_in(page, "rosa", password)
                            for scene in (s for s in scenes if s.logged_in == logged_in):
                                page.goto(scene.path)
                                if scene.prepare is not None:
                                    scene.prepare(page)
                                stem = scene.name if size == "desktop" else f"{scene.name}-{size}"
                                target = out / f"{stem}.png"
                                page.screenshot(path=str(target), full_page=True)
                                written.append(target)
                                if progress is not None:
                                    progress(1)
                            context.close()
                finally:
                    browser.close()
        except PlaywrightError as err:  # a page that did not load or draw in time: one line
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise InvalidInput(
                "screenshots", first, f"pages that load within {TIMEOUT_MS // 1000} s"
            ) from None
        finally:
            registry.close()
    return written
