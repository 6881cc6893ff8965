"""Export work split over spawned processes, failing loudly when one of them dies.

``multiprocessing.Pool`` waits for ever for a task whose worker was killed (out of memory,
SIGKILL): an export with ``--workers 2`` then hung instead of failing. A
:class:`concurrent.futures.ProcessPoolExecutor` notices a dead worker and fails every pending
task, which becomes one :class:`~immunoreset.errors.ImmunoresetError` naming what to do.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from immunoreset.errors import ImmunoresetError

__all__ = ["WorkerDied", "start"]


class WorkerDied(ImmunoresetError):
    """A worker process of an export ended without finishing its share."""


def start(
    fn: Callable[..., Any], calls: Sequence[tuple[Any, ...]], *, what: str
) -> Callable[[], list[Any]]:
    """Start ``fn(*args)`` for each of ``calls``, one spawned process each (never forked: the
    parent holds database connections); return a function that waits and gives the results
    in call order. If a worker dies, that function raises :class:`WorkerDied` (``what`` names
    the work in the message) and the other workers are stopped."""
    pool = ProcessPoolExecutor(
        max_workers=max(1, len(calls)), mp_context=multiprocessing.get_context("spawn")
    )
    futures: list[Future[Any]] = [pool.submit(fn, *args) for args in calls]

    def collect() -> list[Any]:
        try:
            return [f.result() for f in futures]
        except BrokenProcessPool:
            raise WorkerDied(
                f"a worker process of the {what} ended unexpectedly (killed, or out of "
                "memory); nothing was recorded as exported — run it again, with --workers 1 "
                "if memory is short"
            ) from None
        finally:
            for f in futures:
                f.cancel()
            pool.shutdown(wait=True, cancel_futures=True)

    return collect
