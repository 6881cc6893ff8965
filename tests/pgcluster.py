"""A throwaway PostgreSQL cluster (``initdb`` into a temporary folder, ``pg_ctl`` on a free
loopback port), for the test run and the benchmarks.

The test run starts it with ``fsync=off`` (a crash of the test machine loses nothing anyone
needs, and the suite runs faster); the benchmarks start it *durable* — PostgreSQL's defaults,
``fsync=on``, ``synchronous_commit=on``, ``full_page_writes=on``, ``wal_sync_method`` of the
platform — so the figures are those of a registry that keeps every acknowledged commit.
PostgreSQL refuses to run as root, so under root the cluster runs as the ``postgres`` system
user (``runuser``).
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

__all__ = ["pg_bin", "throwaway_cluster"]


def pg_bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if found:
        return found[-1]
    return shutil.which(name)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def throwaway_cluster(*, durable: bool, settings: Sequence[str] = ()) -> Iterator[str]:
    """Start a cluster; yields a server URL without database name; removes it afterwards.

    ``durable=False`` adds ``fsync=off``; ``settings`` are more ``name=value`` server settings.
    Raises ``FileNotFoundError`` when the server binaries are not installed.
    """
    initdb, pg_ctl = pg_bin("initdb"), pg_bin("pg_ctl")
    if not initdb or not pg_ctl:
        raise FileNotFoundError("PostgreSQL server binaries (initdb, pg_ctl) not installed")
    as_root = os.geteuid() == 0
    base = Path(tempfile.mkdtemp(prefix="immunoreset-pg-"))
    data, sock = base / "data", base / "sock"
    data.mkdir()
    sock.mkdir()
    prefix: list[str] = []
    if as_root:
        shutil.chown(base, "postgres")
        shutil.chown(data, "postgres")
        shutil.chown(sock, "postgres")
        prefix = ["runuser", "-u", "postgres", "--"]
    port = _free_port()
    run = subprocess.run
    try:
        run(
            [*prefix, initdb, "-D", str(data), "-A", "trust", "-U", "postgres", "-E", "UTF8"],
            check=True,
            capture_output=True,
        )
        opts = f"-p {port} -k {sock} -c listen_addresses=127.0.0.1"
        for setting in ([] if durable else ["fsync=off"]) + list(settings):
            opts += f" -c {setting}"
        run(
            [*prefix, pg_ctl, "-D", str(data), "-o", opts, "-l", str(base / "log"), "-w", "start"],
            check=True,
            capture_output=True,
        )
        try:
            yield f"postgresql+psycopg://postgres@127.0.0.1:{port}"
        finally:
            run([*prefix, pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True)
    finally:
        shutil.rmtree(base, ignore_errors=True)
