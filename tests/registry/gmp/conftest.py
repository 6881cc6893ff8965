"""Fixtures of the GMP store tests: a registry with two sites and two small courses (SQLite and
PostgreSQL) and its :class:`Gmp`.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from immunoreset.registry import Registry
from immunoreset.registry.gmp import Gmp
from tests.registry.gmp.factories import two_site_registry


@pytest.fixture
def registry(db_url: str) -> Iterator[Registry]:
    yield from two_site_registry(db_url)


@pytest.fixture
def gmp(registry: Registry) -> Gmp:
    return Gmp(registry)
