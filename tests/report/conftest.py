"""Shared fixtures of the report tests: the demo cohort, its analysis and a built report."""

from __future__ import annotations

from pathlib import Path

import pytest

from immunoreset import demo
from immunoreset.report.tables import CohortAnalysis, analyse_cohort


@pytest.fixture(scope="session")
def published() -> list:
    return demo.published_cohort(seed=2026)


@pytest.fixture(scope="session")
def analysis(published: list) -> CohortAnalysis:
    return analyse_cohort(published)


@pytest.fixture(scope="session")
def built_report(published: list, tmp_path_factory: pytest.TempPathFactory):
    from immunoreset.report.case_series import build_report

    out: Path = tmp_path_factory.mktemp("report")
    return build_report(published, out_dir=out)


@pytest.fixture
def demo_registry(tmp_path: Path, published: list):
    from immunoreset.registry import Registry, system_actor

    reg = Registry(str(tmp_path / "registry.db"), upgrade=True)
    actor = system_actor("test")
    for code, *_ in demo.SITES:
        reg.add_site(actor, code, code.title())
    reg.save_courses(actor, published, reason="test data")
    yield reg
    reg.close()
