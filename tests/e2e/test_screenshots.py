"""``immunoreset web screenshots``: PNGs into the given folder; the tests never touch docs/."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from typer.testing import CliRunner

from immunoreset.cli import app
from immunoreset.web.screenshots import SCENES
from tests.e2e.conftest import CHROMIUM

pytestmark = pytest.mark.browser
runner = CliRunner()
DOCS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", head[16:24])


def _docs_state() -> dict[str, tuple[int, int]]:
    return {p.name: (p.stat().st_mtime_ns, p.stat().st_size) for p in DOCS.glob("*.png")}


def test_command_writes_phone_screenshots_to_out_only(tmp_path: Path) -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium not installed (make test installs it)")
    before = _docs_state()
    out = tmp_path / "shots"
    result = runner.invoke(
        app, ["web", "screenshots", "--out", str(out), "--size", "phone"], env={}
    )
    assert result.exit_code == 0, result.output
    files = sorted(out.glob("*.png"))
    assert [f.name for f in files] == sorted(f"{s.name}-phone.png" for s in SCENES)
    for f in files:
        width, height = _png_size(f)
        assert width == 390 and height >= 844  # full page at the phone's width: no overflow
    assert _docs_state() == before  # the source tree's pictures are untouched


def test_command_errors_are_one_line(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["web", "screenshots", "--out", str(tmp_path), "--size", "watch"], env={}
    )
    assert result.exit_code == 1 and "desktop, tablet, phone" in result.output
    result = runner.invoke(
        app,
        ["web", "screenshots", "--out", str(tmp_path), "--chromium", str(tmp_path / "nope")],
        env={},
    )
    assert result.exit_code == 1 and "chromium" in result.output
    assert "Traceback" not in result.output
    assert not list(tmp_path.glob("*.png"))
