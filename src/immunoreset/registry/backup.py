"""Backup, restore and comparison of whole registries (the backup; CSV export is not one).

* SQLite: :func:`backup` uses SQLite's online backup API (``sqlite3.Connection.backup``), a
  consistent snapshot while the web app keeps reading and writing; the backup is itself a
  registry file.
* PostgreSQL: ``pg_dump --format=custom`` (one consistent snapshot of the database), restored
  with ``pg_restore --no-owner`` into an empty database.

:func:`compare` shows that two registries hold the same rows in every table, the audit trail
included (per-table row counts and SHA-256 digests over every row in primary-key order,
streamed a chunk at a time, hashed by the server on PostgreSQL), and that both audit chains
verify to the same head (the second chain is walked only when its table's digest differs).
"""

from __future__ import annotations

import glob
import hashlib
import os
import shutil
import sqlite3
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine, create_engine, inspect, text
from sqlalchemy.engine import make_url

from immunoreset.errors import ImmunoresetError, InvalidInput
from immunoreset.registry.audit import ChainReport, _streaming_cursor, verify
from immunoreset.registry.db import display_url, make_engine, resolve_url

__all__ = ["BackupError", "Comparison", "backup", "compare", "restore"]


class BackupError(ImmunoresetError):
    """A backup or restore that cannot be made (tool missing, target not empty …)."""


def _sqlite_path(url: str) -> Path | None:
    return Path(url.removeprefix("sqlite:///")) if url.startswith("sqlite:///") else None


def _libpq(url: str) -> str:
    u = make_url(url).set(drivername="postgresql")
    return u.render_as_string(hide_password=False)


def _pg_tool(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    tool = found[-1] if found else shutil.which(name)
    if not tool:
        raise BackupError(f"{name} not found: install the PostgreSQL client tools")
    return tool


def _run(cmd: list[str]) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["failed"])[-1]
        raise BackupError(f"{Path(cmd[0]).name}: {last}")


def backup(db: str | None, file: str | os.PathLike[str]) -> Path:
    """Write a consistent snapshot of registry ``db`` to ``file`` (which must not exist)."""
    out = Path(file)
    if out.exists():
        raise InvalidInput("FILE", str(out), "a file that does not exist yet (never overwritten)")
    url = resolve_url(db)
    src = _sqlite_path(url)
    if src is not None:
        if not src.exists():
            raise InvalidInput("--db", str(src), "an existing registry file")
        tmp = out.with_name(out.name + ".partial")
        source = sqlite3.connect(f"file:{src}?mode=ro", uri=True)
        try:
            dest = sqlite3.connect(tmp)
            try:
                source.backup(dest)
                dest.execute("PRAGMA journal_mode=DELETE")
            finally:
                dest.close()
        finally:
            source.close()
        os.replace(tmp, out)
        return out
    _run([_pg_tool("pg_dump"), "--format=custom", "--no-owner", f"--file={out}", _libpq(url)])
    return out


def restore(file: str | os.PathLike[str], db: str) -> None:
    """Restore backup ``file`` into ``db``: a new SQLite file, or an empty PostgreSQL database."""
    src = Path(file)
    if not src.is_file():
        raise InvalidInput("FILE", str(src), "an existing backup file")
    url = resolve_url(db)
    dest = _sqlite_path(url)
    if dest is not None:
        if dest.exists():
            raise InvalidInput("--db", str(dest), "a new file (restore never overwrites)")
        if src.read_bytes()[:16] != b"SQLite format 3\x00":
            raise InvalidInput("FILE", str(src), "an SQLite registry backup (`db backup`)")
        source = sqlite3.connect(f"file:{src}?mode=ro", uri=True)
        try:
            target = sqlite3.connect(dest)
            try:
                source.backup(target)
            finally:
                target.close()
        finally:
            source.close()
        return
    engine = make_engine(url, migrate=False)
    try:
        if inspect(engine).get_table_names():
            raise InvalidInput("--db", display_url(url), "an empty database (restore never merges)")
    finally:
        engine.dispose()
    _run([_pg_tool("pg_restore"), "--no-owner", "--exit-on-error", f"--dbname={_libpq(url)}",
          str(src)])  # fmt: skip


@dataclass(frozen=True)
class Comparison:
    """Per-table ``(rows, digest)`` of two registries and their audit chains."""

    tables: dict[str, tuple[tuple[int, str], tuple[int, str]]]
    chains: tuple[ChainReport, ChainReport]
    differing: tuple[str, ...] = field(default=())

    @property
    def identical(self) -> bool:
        return (
            not self.differing
            and all(c.ok for c in self.chains)
            and self.chains[0].last_hash == self.chains[1].last_hash
        )


def digest(engine: Engine) -> dict[str, tuple[int, str]]:
    """``table -> (rows, sha256 over every row in primary-key order)``.

    Streamed: each table is read once in key order, a chunk at a time. On PostgreSQL the
    server hashes each row's text (``sha256(row::text)``, no values decoded into Python
    objects) and the digest is the SHA-256 of those row hashes; on SQLite the digest is the
    SHA-256 of the rows' ``repr`` lines (exact for floats), hashed a chunk at a time (letting
    SQLite render each row as SQL literals measured slower at 10,000 patients: 221 s CPU for
    both sides against 142 s for a ``repr`` per row). Two registries compared are
    of the same kind (:func:`compare`), so they are digested the same way.
    """
    insp = inspect(engine)
    postgres = engine.dialect.name == "postgresql"
    out = {}
    with engine.connect() as conn:
        for table in sorted(insp.get_table_names()):
            if table == "alembic_version":
                order = "version_num"
            else:
                pk = insp.get_pk_constraint(table)["constrained_columns"]
                order = ", ".join(pk) if pk else "1"
            h = hashlib.sha256()
            n = 0
            if postgres:  # one row text whatever the session's settings
                conn.exec_driver_sql(_PG_TEXT_SETTINGS)
            cur = _streaming_cursor(conn)
            try:
                if postgres:
                    cur.execute(
                        f"SELECT sha256(convert_to(t::text, 'UTF8')) FROM {table} t "
                        f"ORDER BY {order}"
                    )
                    while rows := cur.fetchmany(_CHUNK):
                        h.update(b"".join(r[0] for r in rows))
                        n += len(rows)
                else:
                    cols = ", ".join(f'"{c["name"]}"' for c in insp.get_columns(table))
                    cur.execute(f"SELECT {cols} FROM {table} ORDER BY {order}")
                    while rows := cur.fetchmany(_CHUNK):
                        h.update(("\n".join(map(repr, rows)) + "\n").encode())
                        n += len(rows)
            finally:
                cur.close()
            out[table] = (n, h.hexdigest())
    return out


_CHUNK = 50_000


_PG_TEXT_SETTINGS = (
    "SET LOCAL TimeZone = 'UTC'; SET LOCAL DateStyle = 'ISO, YMD'; "
    "SET LOCAL extra_float_digits = 3; SET LOCAL IntervalStyle = 'iso_8601'"
)


@contextmanager
def _opened_backup(file: Path, like_url: str) -> Iterator[Engine]:
    """An engine on the content of a backup file (a temporary restore for PostgreSQL)."""
    if file.read_bytes()[:16] == b"SQLite format 3\x00":
        engine = create_engine(f"sqlite:///file:{file.resolve()}?mode=ro&uri=true")
        try:
            yield engine
        finally:
            engine.dispose()
        return
    if not like_url.startswith("postgresql"):
        raise InvalidInput("--against", str(file), "a backup of the same kind of database")
    name = "verify_" + uuid.uuid4().hex[:12]
    admin = create_engine(like_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        tmp_url = make_url(like_url).set(database=name).render_as_string(hide_password=False)
        try:
            restore(file, tmp_url)
            engine = create_engine(tmp_url)
            try:
                yield engine
            finally:
                engine.dispose()
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
    finally:
        admin.dispose()


def compare(db: str | None, file: str | os.PathLike[str]) -> Comparison:
    """Compare registry ``db`` with backup ``file`` table by table, audit chain included."""
    path = Path(file)
    if not path.is_file():
        raise InvalidInput("--against", str(path), "an existing backup file")
    url = resolve_url(db)
    live = make_engine(url, migrate=False)
    try:
        a, chain_a = digest(live), verify(live)
    finally:
        live.dispose()
    with _opened_backup(path, url) as engine:
        b = digest(engine)
        # the chain is a function of the audit_log rows alone: equal digests (every column,
        # hashes and positions included) give the same report, so walk it again only if not
        chain_b = chain_a if b.get("audit_log") == a.get("audit_log") else verify(engine)
    names = sorted(set(a) | set(b))
    tables = {t: (a.get(t, (0, "")), b.get(t, (0, ""))) for t in names}
    differing = tuple(t for t in names if a.get(t) != b.get(t))
    return Comparison(tables, (chain_a, chain_b), differing)
