"""Web benchmark: concurrent clinical users against 2 Uvicorn workers on PostgreSQL.

Targets (issue 7): p95 ≤ 150 ms, zero errors, zero lost writes (every accepted post is in the
database and in the audit trail afterwards).

    .venv/bin/python benchmarks/web.py [--patients 10000] [--clients 50] [--requests 6000]
                                       [--seconds 120] [--post-fraction 0.2]
                                       [--think-min 0.5] [--think-max 1.5] [--no-think]
                                       [--workers 2] [--db URL] [--reuse]

Without ``--db`` a throwaway PostgreSQL cluster is started (``initdb``/``pg_ctl``, as the
``postgres`` user under root) and removed afterwards. The synthetic cohort
(:func:`immunoreset.demo.synthetic_cohort`) is loaded with ``Registry.save_courses`` (timed and
reported), then ``ANALYZE`` gives the planner statistics of the freshly loaded tables.
``--reuse`` skips loading when the database already holds patients.

Each client models one user at a bedside tablet, on loopback: ``GET /patients/{id}`` (HTML
with plots), then with probability ``--post-fraction`` ``POST /api/v1/patients/{id}/assessments``
for a new day, then a think time drawn uniformly from ``--think-min``–``--think-max`` seconds
(default 0.5–1.5 s) before the next patient. ``--no-think`` removes the pause (closed-loop
stress: every client fires its next request as soon as the last one answered). The run stops
after ``--requests`` requests or ``--seconds`` seconds, whichever comes first. Clients
authenticate with an API token (the same single indexed lookup as a session cookie). Uvicorn
keeps idle connections 75 s (its 5 s default races with clients reusing a pooled connection);
a transport error counts as an error, and a post that got one never counts as accepted.

Reported: p50/p95/max client-side latency per request type, the server's own time
(``Server-Timing: app``) p50/p95, requests/s, errors, and lost writes: accepted posts missing
from ``daily_assessments`` or from the audit trail.
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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


def seed_registry(
    url: str, patients: int, seed: int, *, reuse: bool = False
) -> tuple[list[str], str, float | None, float]:
    """Load the synthetic cohort (unless ``reuse`` finds patients) and create a token.

    Returns (study IDs, bearer token, load seconds or None when reused, ANALYZE seconds).
    """
    from sqlalchemy import text

    from immunoreset import demo
    from immunoreset.registry import Registry, system_actor
    from immunoreset.web.security import issue_api_token

    actor = system_actor("benchmark")
    load_s: float | None = None
    with Registry(url, upgrade=True) as registry:
        if not (reuse and registry.count_rows()["patients"] > 0):
            t0 = time.perf_counter()
            for code, name in demo.SITE_NAMES.items():
                registry.add_site(actor, code, name)
            registry.save_courses(
                actor, demo.synthetic_cohort(patients, seed=seed), reason="web benchmark cohort"
            )
            load_s = time.perf_counter() - t0
            registry.add_user(
                actor,
                "bench",
                "investigator",
                list(demo.SITE_NAMES),
                password="benchmark-password",
            )
        t0 = time.perf_counter()
        if registry.engine.dialect.name == "postgresql":
            with registry.engine.connect() as conn:
                conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE"))
        analyze_s = time.perf_counter() - t0
        ids = [p.study_id for p in registry.list_patients(registry.actor_for("bench"))]
        token = issue_api_token(registry, "bench", "benchmark")
    return ids, token, load_s, analyze_s


def first_free_date(url: str) -> dt.date:
    """The day after the latest benchmark assessment already stored (2040-01-01 if none)."""
    from sqlalchemy import func, select

    from immunoreset.registry import Registry
    from immunoreset.registry import schema as s

    t = s.ENTITIES["daily_assessments"].table
    with Registry(url, upgrade=True) as registry, registry.engine.connect() as conn:
        last = conn.execute(select(func.max(t.c.date))).scalar_one()
    start = dt.date(2040, 1, 1)
    return max(start, last + dt.timedelta(days=1)) if last is not None else start


def cpu_seconds(root: int) -> float:
    """User + system CPU seconds of ``root`` and its descendants so far (Linux ``/proc``)."""
    tick = os.sysconf("SC_CLK_TCK")
    children: dict[int, list[int]] = {}
    times: dict[int, float] = {}
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            text = Path(stat).read_text()
        except OSError:
            continue
        pid = int(text.split(" ", 1)[0])
        fields = text.rpartition(")")[2].split()
        children.setdefault(int(fields[1]), []).append(pid)
        times[pid] = (int(fields[11]) + int(fields[12])) / tick
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        total += times.get(pid, 0.0)
        todo.extend(children.get(pid, []))
    return total


@contextmanager
def uvicorn_server(url: str, workers: int) -> Iterator[tuple[str, int]]:
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
        f"host='127.0.0.1', port={port}, workers={workers}, log_level='warning', "
        "timeout_keep_alive=75)"
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
        yield base, proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@dataclass
class Outcome:
    """What the clients saw: latencies (s) and server times (ms) per kind, errors, accepted."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: {"page": [], "post": []})
    server_ms: dict[str, list[float]] = field(default_factory=lambda: {"page": [], "post": []})
    errors: list[str] = field(default_factory=list)
    accepted: list[tuple[str, str]] = field(default_factory=list)


def _server_ms(headers: Any) -> float | None:
    for part in headers.get("server-timing", "").split(","):
        name, _, rest = part.strip().partition(";dur=")
        if name == "app" and rest:
            return float(rest)
    return None


async def load(
    base: str,
    token: str,
    ids: list[str],
    *,
    clients: int,
    requests: int,
    seconds: float,
    post_fraction: float,
    think: tuple[float, float],
    first_date: dt.date,
    reason: str,
    seed: int,
) -> Outcome:
    """Run the clients (page, sometimes a post, think time) until ``requests`` or ``seconds``."""
    import httpx

    rng = random.Random(seed)
    out = Outcome()
    budget = iter(range(requests))
    dates = iter(range(requests))
    stop = time.monotonic() + seconds
    headers = {"Authorization": f"Bearer {token}"}

    async def timed(http: httpx.AsyncClient, kind: str, method: str, path: str, **kw: Any) -> Any:
        t0 = time.perf_counter()
        try:
            r = await http.request(method, path, **kw)
        except httpx.TransportError as err:  # counted as an error, never as accepted
            out.latencies[kind].append(time.perf_counter() - t0)
            return httpx.Response(599, text=f"{type(err).__name__}: {err}")
        out.latencies[kind].append(time.perf_counter() - t0)
        if (ms := _server_ms(r.headers)) is not None:
            out.server_ms[kind].append(ms)
        return r

    async def client(http: httpx.AsyncClient, k: int) -> None:
        await asyncio.sleep(rng.uniform(0, think[1]))  # users do not all start at once
        while time.monotonic() < stop and next(budget, None) is not None:
            sid = rng.choice(ids)
            r = await timed(http, "page", "GET", f"/patients/{sid}")
            if r.status_code != 200:
                out.errors.append(f"GET {sid}: {r.status_code}")
            if rng.random() < post_fraction and next(budget, None) is not None:
                when = (first_date + dt.timedelta(days=next(dates))).isoformat()
                body = {
                    "date": when,
                    "temperature_max_c": 38.6,
                    "oxygen_device": "nasal_cannula",
                    "oxygen_flow_l_min": 2.0,
                    "reason": reason,
                }
                r = await timed(
                    http, "post", "POST", f"/api/v1/patients/{sid}/assessments", json=body
                )
                if r.status_code == 201:
                    out.accepted.append((sid, when))
                else:
                    out.errors.append(f"POST {sid}: {r.status_code} {r.text[:200]}")
            if think[1] > 0:
                await asyncio.sleep(rng.uniform(*think))

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60, limits=limits) as http:
        await asyncio.gather(*(client(http, k) for k in range(clients)))
    return out


def verify(url: str, accepted: list[tuple[str, str]], reason: str) -> tuple[int, int]:
    """Accepted posts missing from the table and from the audit trail."""
    from sqlalchemy import select

    from immunoreset.registry import Registry
    from immunoreset.registry import schema as s

    with Registry(url, upgrade=True) as registry, registry.engine.connect() as conn:
        t, p = s.ENTITIES["daily_assessments"].table, s.patients
        stored = {
            (sid, d.isoformat())
            for sid, d in conn.execute(
                select(p.c.study_id, t.c.date)
                .join(p, p.c.id == t.c.patient_id)
                .where(t.c.date >= dt.date(2040, 1, 1), t.c.deleted_at.is_(None))
            )
        }
        audited = {
            key
            for (key,) in conn.execute(
                select(s.audit_log.c.record_key).where(
                    s.audit_log.c.table_name == "daily_assessments",
                    s.audit_log.c.action == "insert",
                    s.audit_log.c.reason == reason,
                )
            )
        }
    missing_rows = sum((sid, d) not in stored for sid, d in accepted)
    missing_audit = sum(f"{sid}/{d}" not in audited for sid, d in accepted)
    return missing_rows, missing_audit


def _pct(values: list[float], q: float) -> str:
    return f"{np.percentile(values, q):.1f}" if values else "–"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--patients", type=int, default=10_000)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--requests", type=int, default=6000, help="total request budget")
    ap.add_argument("--seconds", type=float, default=120.0, help="time budget of the load, s")
    ap.add_argument("--post-fraction", type=float, default=0.2)
    ap.add_argument("--think-min", type=float, default=0.5, help="think time lower bound, s")
    ap.add_argument("--think-max", type=float, default=1.5, help="think time upper bound, s")
    ap.add_argument("--no-think", action="store_true", help="closed loop: no think time")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--db", default=None, help="PostgreSQL URL (default: a throwaway cluster)")
    ap.add_argument("--reuse", action="store_true", help="skip loading when patients exist")
    args = ap.parse_args()
    think = (0.0, 0.0) if args.no_think else (args.think_min, args.think_max)
    if not 0 <= think[0] <= think[1]:
        raise SystemExit("need 0 ≤ --think-min ≤ --think-max")
    console = Console()

    @contextmanager
    def database() -> Iterator[str]:
        if args.db:
            yield args.db
        else:
            with postgres_cluster() as url:
                yield url

    with database() as url:
        ids, token, load_s, analyze_s = seed_registry(
            url, args.patients, args.seed, reuse=args.reuse
        )
        loaded = f"loaded in {load_s:.1f} s" if load_s is not None else "reused"
        console.print(f"{len(ids)} patients ({loaded}); ANALYZE {analyze_s:.1f} s")
        first = first_free_date(url)
        reason = f"benchmark {first.isoformat()}"
        with uvicorn_server(url, args.workers) as (base, server_pid):
            cpu0 = cpu_seconds(server_pid)
            t0 = time.perf_counter()
            out = asyncio.run(
                load(
                    base,
                    token,
                    ids,
                    clients=args.clients,
                    requests=args.requests,
                    seconds=args.seconds,
                    post_fraction=args.post_fraction,
                    think=think,
                    first_date=first,
                    reason=reason,
                    seed=args.seed,
                )
            )
            wall = time.perf_counter() - t0
            server_cpu = cpu_seconds(server_pid) - cpu0
            load_avg = os.getloadavg()[0]
        missing_rows, missing_audit = verify(url, out.accepted, reason)

    pause = "no think time" if think[1] == 0 else f"think {think[0]:g}–{think[1]:g} s"
    table = Table(
        title=f"web: {len(ids)} patients, {args.workers} workers, "
        f"{args.clients} clients ({pause}), PostgreSQL"
    )
    for col in ("requests", "count", "p50 ms", "p95 ms", "max ms", "server p50", "server p95"):
        table.add_column(col, justify="right")
    lat, srv = out.latencies, out.server_ms
    for kind, values, server in [
        ("GET patient page", lat["page"], srv["page"]),
        ("POST assessment", lat["post"], srv["post"]),
        ("all", lat["page"] + lat["post"], srv["page"] + srv["post"]),
    ]:
        ms = [v * 1000 for v in values]
        table.add_row(
            kind,
            str(len(values)),
            _pct(ms, 50),
            _pct(ms, 95),
            f"{max(ms):.1f}" if ms else "–",
            _pct(server, 50),
            _pct(server, 95),
        )
    console.print(table)
    total = len(lat["page"]) + len(lat["post"])
    console.print(
        f"{total} requests in {wall:.1f} s ({total / wall:.0f}/s); errors: "
        f"{len(out.errors)}; accepted posts: {len(out.accepted)}; missing rows: "
        f"{missing_rows}; missing audit entries: {missing_audit}"
    )
    console.print(
        f"server CPU: {server_cpu:.1f} s ({1000 * server_cpu / max(total, 1):.1f} ms/request); "
        f"1-min load average at the end: {load_avg:.1f} on {os.cpu_count()} CPUs"
    )
    for e in out.errors[:5]:
        console.print(f"  {e}")


if __name__ == "__main__":
    main()
