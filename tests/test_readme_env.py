"""The README lists every environment variable the program reads (issue 17 item 12)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).parents[1]


def test_every_environment_variable_is_in_the_readme():
    read = set()
    for path in (ROOT / "src" / "immunoreset").rglob("*.py"):
        read |= set(re.findall(r"IMMUNORESET_[A-Z_]+[A-Z]", path.read_text(encoding="utf-8")))
    # pydantic-settings reads IMMUNORESET_<FIELD> for each WebSettings field
    from immunoreset.web.settings import WebSettings

    read |= {f"IMMUNORESET_{name.upper()}" for name in WebSettings.model_fields}
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme.split("## Environment variables", 1)[1].split("\n## ", 1)[0]
    assert read, "no variable found: the scan is broken"
    missing = sorted(v for v in read if f"`{v}`" not in table)
    assert not missing, f"not in the README's environment table: {missing}"
