"""Web benchmark: 50 concurrent clients against 2 Uvicorn workers on PostgreSQL.

Targets (issue 7): p95 ≤ 150 ms, zero errors, zero lost writes (every accepted post is in the
database and in the audit trail afterwards).

    .venv/bin/python benchmarks/web.py [--patients 10000] [--clients 50] [--requests 3000]
                                       [--seconds 120] [--post-fraction 0.2] [--db URL]

Without ``--db`` a throwaway PostgreSQL cluster is started (``initdb``/``pg_ctl``, as the
``postgres`` user under root) and removed afterwards. The synthetic cohort
(:func:`immunoreset.demo.synthetic_cohort`) is loaded first (not timed). Clients authenticate
with API tokens and, on loopback, read patient pages (``GET /patients/{id}``, HTML with plots)
and post daily assessments (``POST /api/v1/patients/{id}/assessments``) with unique dates.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import glob
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    path = found[-1] if found else shutil.which(name)
    if not path:
        raise SystemExit(f"PostgreSQL's {name} is not installed; pass --db URL")
    return path


@contextmanager
def postgres_cluster() -> Iterator[str]:
    """A throwaway PostgreSQL cluster on a free loopback port; yields a database URL."""
    base = Path(tempfile.mkdtemp(prefix="immunoreset-webbench-"))
    data, sock = base / "data", base / "sock"
    data.mkdir()
    sock.mkdir()
    prefix: list[str] = []
    if os.geteuid() == 0:
        for p in (base, data, sock):
            shutil.chown(p, "postgres")
        prefix = ["runuser", "-u", "postgres", "--"]
    port = _free_port()
    subprocess.run(
        [
            *prefix,
            _pg_bin("initdb"),
            "-D",
            str(data),
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
        ],
        check=True,
        capture_output=True,
    )
    opts = f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c max_connections=200"
    subprocess.run(
        [
            *prefix,
            _pg_bin("pg_ctl"),
            "-D",
            str(data),
            "-o",
            opts,
            "-l",
            str(base / "log"),
            "-w",
            "start",
        ],
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*prefix, _pg_bin("pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            capture_output=True,
        )
        shutil.rmtree(base, ignore_errors=True)


def seed_registry(url: str, patients: int, seed: int) -> tuple[list[str], str]:
    """Load the synthetic cohort and create a token; returns (study IDs, bearer token)."""
    from immunoreset import demo
    from immunoreset.registry import Registry, system_actor
    from immunoreset.web.security import issue_api_token

    actor = system_actor("benchmark")
    with Registry(url) as registry:
        for code, name in demo.SITE_NAMES.items():
            registry.add_site(actor, code, name)
        registry.save_courses(
            actor, demo.synthetic_cohort(patients, seed=seed), reason="web benchmark cohort"
        )
        registry.add_user(
            actor, "bench", "investigator", list(demo.SITE_NAMES), password="benchmark-password"
        )
        ids = [p.study_id for p in registry.list_patients(registry.actor_for("bench"))]
        token = issue_api_token(registry, "bench", "benchmark")
    return ids, token


@contextmanager
def uvicorn_server(url: str, workers: int) -> Iterator[str]:
    port = _free_port()
    env = dict(
        os.environ,
        IMMUNORESET_DB_URL=url,
        IMMUNORESET_SECRET_KEY="b" * 48,
        IMMUNORESET_ENVIRONMENT="production",
        IMMUNORESET_SECURE_COOKIES="false",
    )
    code = (
        "import uvicorn; uvicorn.run('immunoreset.web.app:create_app_from_env', factory=True, "
        f"host='127.0.0.1', port={port}, workers={workers}, log_level='warning')"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        import httpx

        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(base + "/login", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise SystemExit("the server did not start")
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)


async def load(
    base: str,
    token: str,
    ids: list[str],
    *,
    clients: int,
    requests: int,
    seconds: float,
    post_fraction: float,
    seed: int,
) -> tuple[dict[str, list[float]], list[str], list[tuple[str, str]]]:
    """Run the clients; returns latencies (s) per kind, errors, accepted (study_id, date)."""
    import httpx

    rng = random.Random(seed)
    latencies: dict[str, list[float]] = {"page": [], "post": []}
    errors: list[str] = []
    accepted: list[tuple[str, str]] = []
    counter = iter(range(requests))
    stop = time.monotonic() + seconds
    first_date = dt.date(2040, 1, 1)
    headers = {"Authorization": f"Bearer {token}"}

    async def client(http: httpx.AsyncClient) -> None:
        for n in counter:
            if time.monotonic() > stop:
                return
            sid = rng.choice(ids)
            if rng.random() < post_fraction:
                when = (first_date + dt.timedelta(days=n)).isoformat()
                body = {
                    "date": when,
                    "temperature_max_c": 38.6,
                    "oxygen_device": "nasal_cannula",
                    "oxygen_flow_l_min": 2.0,
                    "reason": "benchmark",
                }
                t0 = time.perf_counter()
                r = await http.post(f"/api/v1/patients/{sid}/assessments", json=body)
                latencies["post"].append(time.perf_counter() - t0)
                if r.status_code == 201:
                    accepted.append((sid, when))
                else:
                    errors.append(f"POST {sid}: {r.status_code} {r.text[:200]}")
            else:
                t0 = time.perf_counter()
                r = await http.get(f"/patients/{sid}")
                latencies["page"].append(time.perf_counter() - t0)
                if r.status_code != 200:
                    errors.append(f"GET {sid}: {r.status_code}")

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60, limits=limits) as http:
        await asyncio.gather(*(client(http) for _ in range(clients)))
    return latencies, errors, accepted


def verify(url: str, accepted: list[tuple[str, str]]) -> tuple[int, int]:
    """Accepted posts missing from the table and from the audit trail."""
    from sqlalchemy import select

    from immunoreset.registry import Registry
    from immunoreset.registry import schema as s

    with Registry(url) as registry, registry.engine.connect() as conn:
        t, p = s.ENTITIES["daily_assessments"].table, s.patients
        stored = {
            (sid, d.isoformat())
            for sid, d in conn.execute(
                select(p.c.study_id, t.c.date)
                .join(p, p.c.id == t.c.patient_id)
                .where(t.c.date >= dt.date(2040, 1, 1))
            )
        }
        audited = {
            key
            for (key,) in conn.execute(
                select(s.audit_log.c.record_key).where(
                    s.audit_log.c.table_name == "daily_assessments",
                    s.audit_log.c.action == "insert",
                    s.audit_log.c.reason == "benchmark",
                )
            )
        }
    missing_rows = sum((sid, d) not in stored for sid, d in accepted)
    missing_audit = sum(f"{sid}/{d}" not in audited for sid, d in accepted)
    return missing_rows, missing_audit


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--patients", type=int, default=10_000)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--requests", type=int, default=3000)
    ap.add_argument("--seconds", type=float, default=120.0)
    ap.add_argument("--post-fraction", type=float, default=0.2)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--db", default=None, help="PostgreSQL URL (default: a throwaway cluster)")
    args = ap.parse_args()
    console = Console()

    @contextmanager
    def database() -> Iterator[str]:
        if args.db:
            yield args.db
        else:
            with postgres_cluster() as url:
                yield url

    with database() as url:
        t0 = time.perf_counter()
        ids, token = seed_registry(url, args.patients, args.seed)
        console.print(f"loaded {len(ids)} patients in {time.perf_counter() - t0:.1f} s")
        with uvicorn_server(url, args.workers) as base:
            t0 = time.perf_counter()
            latencies, errors, accepted = asyncio.run(
                load(
                    base,
                    token,
                    ids,
                    clients=args.clients,
                    requests=args.requests,
                    seconds=args.seconds,
                    post_fraction=args.post_fraction,
                    seed=args.seed,
                )
            )
            wall = time.perf_counter() - t0
        missing_rows, missing_audit = verify(url, accepted)

    table = Table(
        title=f"web: {len(ids)} patients, {args.workers} workers, "
        f"{args.clients} clients, PostgreSQL"
    )
    for col in ("requests", "count", "p50 ms", "p95 ms", "max ms"):
        table.add_column(col, justify="right")
    for kind, values in [
        ("GET patient page", latencies["page"]),
        ("POST assessment", latencies["post"]),
        ("all", latencies["page"] + latencies["post"]),
    ]:
        arr = np.array(values) * 1000 if values else np.zeros(1)
        table.add_row(
            kind,
            str(len(values)),
            f"{np.percentile(arr, 50):.1f}",
            f"{np.percentile(arr, 95):.1f}",
            f"{arr.max():.1f}",
        )
    console.print(table)
    total = len(latencies["page"]) + len(latencies["post"])
    console.print(
        f"{total} requests in {wall:.1f} s ({total / wall:.0f}/s); errors: "
        f"{len(errors)}; accepted posts: {len(accepted)}; missing rows: "
        f"{missing_rows}; missing audit entries: {missing_audit}"
    )
    for e in errors[:5]:
        console.print(f"  {e}")


if __name__ == "__main__":
    main()
