"""Fixtures of the GMP store tests: a registry with two sites and two small courses (SQLite and
PostgreSQL) and its :class:`Gmp`.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from immunoreset.registry import Registry
from immunoreset.registry.gmp import Gmp
from tests.registry.gmp.factories import add_people, two_site_registry


@pytest.fixture(autouse=True)
def cheap_password_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Test users get cheap argon2 hashes (verification reads the cost from the hash)."""
    from argon2 import PasswordHasher

    from immunoreset.registry import users

    monkeypatch.setattr(users, "_hasher", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))


@pytest.fixture
def registry(db_url: str) -> Iterator[Registry]:
    for reg in two_site_registry(db_url):
        add_people(reg)
        yield reg


@pytest.fixture
def gmp(registry: Registry) -> Gmp:
    return Gmp(registry)
