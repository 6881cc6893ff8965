"""Kill a registry command after its k-th SQL statement, for every k (crash-atomicity probe).

The command runs in a forked child whose engine counts executed statements and SIGKILLs its
own process right after statement ``k`` — the statement has run, nothing after it has (not
the next statement, not the COMMIT). The parent then opens the registry and checks it is
usable: schema at the old or the new revision, exactly the tables of that revision, the rows
written before intact, and a write works after ``db upgrade``.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine, event

from immunoreset.registry.db import make_engine

#: ``command(engine)`` runs in the child.
Command = Callable[[Engine], None]


def _run_child(url: str, command: Command, kill_after: int | None, count_fd: int) -> None:
    engine = make_engine(url, migrate=False)
    n = 0

    @event.listens_for(engine, "after_cursor_execute")
    def _count(*_args):  # type: ignore[no-untyped-def]
        nonlocal n
        n += 1
        if kill_after is not None and n == kill_after:
            os.kill(os.getpid(), signal.SIGKILL)

    command(engine)
    os.write(count_fd, str(n).encode())


def run_forked(url: str, command: Command, kill_after: int | None = None) -> tuple[int, int]:
    """Run ``command`` in a forked child; return (exit signal or status, statements run)."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 0
        try:
            os.close(read_fd)
            _run_child(url, command, kill_after, write_fd)
        except BaseException:
            code = 3
        os._exit(code)
    os.close(write_fd)
    _, status = os.waitpid(pid, 0)
    data = b""
    while chunk := os.read(read_fd, 64):
        data += chunk
    os.close(read_fd)
    if os.WIFSIGNALED(status):
        return -os.WTERMSIG(status), -1
    return os.WEXITSTATUS(status), int(data or b"-1")


@dataclass(frozen=True)
class Sweep:
    """Kill points tried and how many left a usable registry."""

    name: str
    tried: int
    survived: int
    failures: tuple[str, ...]


def sweep(
    name: str,
    prepare: Callable[[], str],
    command: Command,
    check: Callable[[str], str | None],
) -> Sweep:
    """Kill ``command`` after each of its statements on a fresh ``prepare()`` registry.

    ``check(url)`` returns None when the registry is usable, else what is wrong.
    """
    url = prepare()
    status, total = run_forked(url, command)
    if status != 0 or total <= 0:
        raise AssertionError(f"{name}: the command itself failed (status {status})")
    failures = []
    for k in range(1, total + 1):
        url = prepare()
        status, _ = run_forked(url, command, kill_after=k)
        if status != -signal.SIGKILL:
            failures.append(f"k={k}: not killed (status {status})")
            continue
        problem = check(url)
        if problem is not None:
            failures.append(f"k={k}: {problem}")
    return Sweep(name, total, total - len(failures), tuple(failures))
