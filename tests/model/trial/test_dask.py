"""Scale-out on Dask: a real local cluster of worker processes gives byte-identical outputs."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from immunoreset.errors import InvalidInput
from immunoreset.model.trial.design import parse_design
from immunoreset.model.trial.report import write_report
from immunoreset.model.trial.run import run_trial


def test_local_cluster_of_two_workers_matches_single_process_byte_for_byte(tmp_path, small):
    small["replicates"] = 8
    d = parse_design(small)
    one = tmp_path / "one"
    many = tmp_path / "many"
    write_report(run_trial(d, out=one, chunk_replicates=8), one)
    links = []
    res = run_trial(d, out=many, workers=2, chunk_replicates=1, on_cluster=links.append)
    write_report(res, many)
    assert len(links) == 1  # the client connected (dashboard link or None without bokeh)
    assert (one / "summary.csv").read_bytes() == (many / "summary.csv").read_bytes()
    # same rows in the same order (row groups differ with the chunk size)
    a = pq.read_table(one / "replicates.parquet")
    b = pq.read_table(many / "replicates.parquet")
    assert a.equals(b)


def test_unreachable_scheduler_is_a_clear_error(small):
    with pytest.raises(InvalidInput) as err:
        run_trial(parse_design(small), scheduler="tcp://127.0.0.1:9")
    assert err.value.field == "scheduler"
