"""Shared fixtures of the interop tests: registries holding the demo and a synthetic cohort."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest

from immunoreset import demo
from immunoreset.course import COLLECTIONS, Course
from immunoreset.interop import sdtm
from immunoreset.registry import Registry, system_actor

ADMIN = system_actor("tester")
SYNTHETIC_N = 200


def _registry(path: Path, courses: list[Course]) -> Registry:
    reg = Registry(str(path), upgrade=True)
    for code, name in demo.SITE_NAMES.items():
        reg.add_site(ADMIN, code, name)
    reg.save_courses(ADMIN, courses, reason="test cohort")
    return reg


@pytest.fixture(scope="session")
def demo_courses() -> list[Course]:
    return demo.published_cohort()


@pytest.fixture(scope="session")
def synthetic_courses() -> list[Course]:
    return list(demo.synthetic_cohort(SYNTHETIC_N, seed=3))


@pytest.fixture(scope="session")
def demo_registry(tmp_path_factory: pytest.TempPathFactory, demo_courses) -> Iterator[Registry]:
    reg = _registry(tmp_path_factory.mktemp("demo") / "demo.db", demo_courses)
    yield reg
    reg.close()


@pytest.fixture(scope="session")
def synthetic_registry(
    tmp_path_factory: pytest.TempPathFactory, synthetic_courses
) -> Iterator[Registry]:
    reg = _registry(tmp_path_factory.mktemp("synthetic") / "synthetic.db", synthetic_courses)
    yield reg
    reg.close()


def assert_same_registry(a: Registry, b: Registry, skip: tuple[str, ...] = ()) -> None:
    """Every course of ``a`` equals the one of ``b``, compared record by record, field by field."""
    left = {co.study_id: co for co in a.iter_courses(ADMIN)}
    right = {co.study_id: co for co in b.iter_courses(ADMIN)}
    assert sorted(left) == sorted(right)
    for sid, x in left.items():
        y = right[sid]
        assert_same_course(x, y, skip)
    used = {co.patient.site for co in left.values()}
    assert sorted(s for s in a.list_sites() if s[0] in used) == sorted(b.list_sites())


def assert_same_course(x: Course, y: Course, skip: tuple[str, ...] = ()) -> None:
    """``skip``: collections the format declares it does not carry."""
    sid = x.study_id
    for f in fields(x.patient):
        assert getattr(x.patient, f.name) == getattr(y.patient, f.name), (sid, "patient", f.name)
    for name in COLLECTIONS:
        if name in skip:
            continue
        xs, ys = getattr(x, name), getattr(y, name)
        assert len(xs) == len(ys), (sid, name, len(xs), len(ys))
        for i, (rx, ry) in enumerate(zip(xs, ys, strict=True)):
            for f in fields(rx):
                vx, vy = getattr(rx, f.name), getattr(ry, f.name)
                assert (vx == vy and type(vx) is type(vy)) or (
                    isinstance(vx, int | float) and isinstance(vy, int | float) and vx == vy
                ), (sid, name, i, f.name, vx, vy)
    assert x.followup == y.followup, (sid, "followup")


@pytest.fixture(scope="session")
def exported(demo_registry, tmp_path_factory) -> tuple[Path, dict[str, Any]]:
    """The demo registry exported with release QC (seeded as the demo seeds it)."""
    import numpy.random as npr
    import pandas as pd

    from immunoreset.demo.gmp import seed_demo_qc

    courses = list(demo_registry.iter_courses(ADMIN))
    if not sdtm.load_qc(demo_registry, ADMIN, courses):
        seed_demo_qc(demo_registry, ADMIN, courses, npr.default_rng(1))
    out = tmp_path_factory.mktemp("sdtm")
    sdtm.export_sdtm(demo_registry, ADMIN, out)
    data = {name: pd.read_csv(out / f"{name.lower()}.csv", dtype=str, keep_default_na=False)
            for name in sdtm.DOMAINS}  # fmt: skip
    return out, data
