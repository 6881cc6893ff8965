"""interop._workers: results in order; a killed worker is an error, not a hang."""

from __future__ import annotations

import os
import signal
import time

import pytest

from immunoreset.interop import _workers


def _square(x: int) -> int:
    return x * x


def _die_or_sleep(x: int) -> int:
    if x == 1:
        os.kill(os.getpid(), signal.SIGKILL)  # what the OOM killer does
    time.sleep(0.5)
    return x


def test_results_come_back_in_call_order() -> None:
    collect = _workers.start(_square, [(3,), (1,), (2,)], what="test")
    assert collect() == [9, 1, 4]


def test_a_killed_worker_fails_loudly_instead_of_hanging() -> None:
    t0 = time.perf_counter()
    collect = _workers.start(_die_or_sleep, [(0,), (1,)], what="SDTM export")
    with pytest.raises(_workers.WorkerDied, match=r"SDTM export.*--workers 1"):
        collect()
    assert time.perf_counter() - t0 < 60
