"""Shared fixtures: registries on SQLite and on a real throwaway PostgreSQL cluster.

The PostgreSQL cluster is created by the test run itself (:mod:`tests.pgcluster`: ``initdb``
into a temporary folder, started with ``pg_ctl`` on a free loopback port) and removed at the
end. PostgreSQL refuses to run as root, so under root the cluster runs as the ``postgres``
system user (``runuser``).
Under ``CI=true`` a skipped test is reported as a failure: nothing may hide behind a missing
dependency.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):  # type: ignore[no-untyped-def]
    report = yield
    if CI and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.longrepr = f"skipped under CI=true (a skip is a failure in CI): {reason}"
    return report


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """Start a throwaway PostgreSQL cluster (``fsync=off``: :mod:`tests.pgcluster`); yields a
    server URL without database name."""
    from tests.pgcluster import throwaway_cluster

    try:
        cluster = throwaway_cluster(durable=False)
        url = cluster.__enter__()
    except FileNotFoundError:
        pytest.skip("PostgreSQL server binaries not installed (make test installs them)")
    try:
        yield url
    finally:
        cluster.__exit__(None, None, None)


@pytest.fixture
def postgres_url(postgres_server: str) -> str:
    """A fresh, empty database on the throwaway cluster."""
    import sqlalchemy as sa

    name = "t_" + uuid.uuid4().hex[:12]
    admin = sa.create_engine(f"{postgres_server}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return f"{postgres_server}/{name}"


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return str(tmp_path / "registry.db")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each registry test runs on SQLite and on the real PostgreSQL."""
    if request.param == "sqlite":
        return str(tmp_path / "registry.db")
    return request.getfixturevalue("postgres_url")
