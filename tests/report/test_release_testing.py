"""The report's manufacturing section carries the program's release testing (issue 4 item 5)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from immunoreset import demo
from immunoreset.demo.gmp import seed_demo_qc
from immunoreset.registry import Registry, system_actor
from immunoreset.report.case_series import build_report


def test_report_from_registry_shows_qc(tmp_path: Path) -> None:
    actor = system_actor("test")
    pairs = demo.published_cohort_with_qc(seed=2026)
    with Registry(str(tmp_path / "r.db"), upgrade=True) as reg:
        for code, name in demo.SITE_NAMES.items():
            reg.add_site(actor, code, name)
        courses = [course for course, _ in pairs]
        reg.save_courses(actor, courses, reason="test data")
        qc = {q.batch_id: q for _, qcs in pairs for q in qcs}
        seed_demo_qc(reg, actor, courses, np.random.default_rng(0), qc=qc)
        paths = build_report(reg, out_dir=tmp_path / "rep", actor=actor, pdf=False)
    assert paths.analysis is not None and paths.analysis.n == 8  # reusable by the CLI summary
    html = paths.html.read_text()
    assert "Release testing" in html
    for attribute in ("Viability (%)", "CAR transduction (%)", "Vector copy number", "Endotoxin"):
        assert attribute in html
    assert "released_with_deviation" not in html and "released with a deviation 0" in html
    assert "success 8/8" in html


def test_report_from_courses_says_where_qc_lives(tmp_path: Path) -> None:
    paths = build_report(demo.published_cohort(), out_dir=tmp_path, pdf=False)
    assert "Release-testing (QC) results are kept in the registry" in paths.html.read_text()
