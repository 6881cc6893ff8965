"""Run a virtual trial: replicates × arms × patients, in one process or on a Dask cluster.

Work is split into chunks of consecutive replicates. Random streams come from
``numpy.random.SeedSequence(seed).spawn(replicates)``: replicate ``r`` owns child ``r``, whose
own ``spawn(1 + n_arms)`` gives the stream of its typical values (parameter uncertainty) and
one stream per arm. A patient's numbers therefore depend only on (seed, replicate, arm,
patient index) — never on the chunk size or on which worker ran it — and every aggregate is
accumulated in replicate order, so the outputs are byte-identical for a seed whatever
``--workers`` or the chunk size.

Execution: in-process by default (numba threads on every core); ``workers=N`` starts a local
``dask.distributed`` cluster of N single-threaded worker processes; ``scheduler="tcp://…"``
sends the chunks to an existing cluster (its workers must have immunoreset installed). At most
a few chunks per worker are in flight, and finished chunks are written to
``replicates.parquet`` in replicate order as they arrive (a reorder buffer of the in-flight
chunks): memory stays bounded whatever the number of replicates. Kept in memory for the
summary are one row of statistics per (replicate, arm) and, for the endpoint distributions
and prediction intervals, the patients of the first replicates only (at most
``max_patient_rows`` / ``max_sample_rows`` per arm; the summary says how many).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from immunoreset.errors import InvalidInput, check_range
from immunoreset.model.equations import OBSERVABLES, ImmuneParams
from immunoreset.model.trial.cohort import arm_endpoints, draw_arm, simulate_arms
from immunoreset.model.trial.design import ENDPOINTS, TrialDesign
from immunoreset.model.trial.estimates import (
    PopulationEstimates,
    default_estimates,
    read_estimates,
)
from immunoreset.model.trial.growth import GrowthReference, load_growth_reference
from immunoreset.model.trial.rules import evaluate_rule

__all__ = ["ChunkResult", "TrialJob", "TrialResult", "make_job", "run_chunk", "run_trial"]


@dataclass(frozen=True, slots=True, eq=False)
class TrialJob:
    """Everything a worker needs (picklable; the growth grids travel with it)."""

    design: TrialDesign
    estimates: PopulationEstimates
    growth: GrowthReference
    seed: int
    keep_patient_reps: int
    keep_sample_reps: int


@dataclass(frozen=True, slots=True, eq=False)
class ChunkResult:
    """What one chunk of replicates returns to the driver."""

    first: int
    rows: pd.DataFrame  # one row per (replicate, arm): statistics at patients_per_arm
    success: np.ndarray  # bool (n_rep, n_sizes)
    cond_pass: np.ndarray  # bool (n_rep, n_sizes, n_conditions)
    patients: dict[str, dict[str, np.ndarray]]  # arm -> endpoint -> values (kept replicates)
    samples: dict[str, np.ndarray]  # arm -> (patients, n_days, n_observables), float32
    rhs_evals: int
    patients_simulated: int


@dataclass(frozen=True, slots=True, eq=False)
class TrialResult:
    """The aggregated trial: inputs for :mod:`.report`."""

    design: TrialDesign
    seed: int
    estimates_source: str
    replicates: pd.DataFrame  # per (replicate, arm) statistics, in replicate order
    sizes: tuple[int, ...]
    success: np.ndarray  # bool (n_rep, n_sizes)
    cond_pass: np.ndarray
    patients: dict[str, dict[str, np.ndarray]]
    samples: dict[str, np.ndarray]
    patient_reps: int
    sample_reps: int
    rhs_evals: int
    patients_simulated: int
    parquet: Path | None


def make_job(
    design: TrialDesign,
    *,
    seed: int | None = None,
    design_dir: Path | None = None,
    max_patient_rows: int = 100_000,
    max_sample_rows: int = 20_000,
) -> TrialJob:
    """Resolve the parameter source and growth reference; fix the seed (design's by default)."""
    p = design.parameters
    if p.fit is not None:
        est = read_estimates((design_dir or Path(".")) / p.fit)
    else:
        est = default_estimates(p.rse)
    s = design.seed if seed is None else check_range("seed", seed, 0, 2**63 - 1, integer=True)
    check_range("max_patient_rows", max_patient_rows, 1, 10**8, integer=True)
    check_range("max_sample_rows", max_sample_rows, 1, 10**8, integer=True)
    n = design.patients_per_arm
    return TrialJob(
        design=design,
        estimates=est,
        growth=load_growth_reference(design.population.growth_reference),
        seed=int(s),
        keep_patient_reps=min(design.replicates, max(1, max_patient_rows // n)),
        keep_sample_reps=min(design.replicates, max(1, max_sample_rows // n)),
    )


def _stat_columns(design: TrialDesign) -> list[str]:
    cols = []
    for name, (kind, _u, _d) in ENDPOINTS.items():
        if kind == "binary":
            cols += [f"{name}_count", f"{name}_prop"]
        else:
            cols += [f"{name}_median", f"{name}_mean", f"{name}_n"]
    return cols


def _arm_stats(values: dict[str, np.ndarray]) -> list[np.ndarray]:
    """Per-trial statistics of one arm; ``values[endpoint]`` is (trials, patients)."""
    out: list[np.ndarray] = []
    for name, (kind, _u, _d) in ENDPOINTS.items():
        v = values[name]
        if kind == "binary":
            c = v.sum(axis=1)
            out += [c, c / v.shape[1]]
        else:
            fin = np.isfinite(v)
            cnt = fin.sum(axis=1)
            med = np.full(v.shape[0], np.nan)
            has = cnt > 0
            if has.any():
                med[has] = np.nanmedian(v[has], axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                mean = np.where(has, np.where(fin, v, 0.0).sum(axis=1) / cnt, np.nan)
            out += [med, mean, cnt.astype(np.float64)]
    return out


def run_chunk(job: TrialJob, first: int, seqs: list[np.random.SeedSequence], threads: int = 0):
    """Simulate replicates ``first … first + len(seqs) − 1`` (all arms); return a ChunkResult.

    ``threads`` > 0 limits numba's threads for this call (Dask workers: their thread count).
    """
    if threads > 0:
        import numba

        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    d = job.design
    arms = d.arms
    n_sim = d.simulated_per_arm
    n_head = d.patients_per_arm
    sizes = d.sizes
    n_rep = len(seqs)
    kids = [s.spawn(1 + len(arms)) for s in seqs]
    sample_theta = d.parameters.uncertainty == "sample"
    thetas = np.stack(
        [
            job.estimates.draw_typical(
                np.random.Generator(np.random.PCG64(k[0])), sample=sample_theta
            )
            for k in kids
        ]
    )
    per_arm: dict[str, dict[str, np.ndarray]] = {}
    samples_kept: dict[str, np.ndarray] = {}
    work = 0
    for a, arm in enumerate(arms):
        draw = draw_arm(d, arm, thetas, job.estimates, job.growth, [k[1 + a] for k in kids], n_sim)
        samples, ends, redosed, rhs = simulate_arms(d, arm, draw)
        work += int(rhs.sum())
        per_arm[arm.name] = {
            k: v.reshape(n_rep, n_sim) for k, v in arm_endpoints(d, draw, ends, redosed).items()
        }
        keep = max(0, min(n_rep, job.keep_sample_reps - first))
        if keep:
            s = samples.reshape(n_rep, n_sim, *samples.shape[1:])[:keep, :n_head]
            samples_kept[arm.name] = s.reshape(-1, *samples.shape[1:]).astype(np.float32)
    success = np.zeros((n_rep, len(sizes)), dtype=bool)
    cond_pass = np.zeros((n_rep, len(sizes), len(d.success.conditions)), dtype=bool)
    for si, m in enumerate(sizes):
        vals = {a: {k: v[:, :m] for k, v in e.items()} for a, e in per_arm.items()}
        ok, flags, _v = evaluate_rule(d.success, vals)
        success[:, si] = ok
        cond_pass[:, si] = flags
    head = sizes.index(n_head)
    uncertain = job.estimates.cov_names
    pidx = {n: i for i, n in enumerate(ImmuneParams.names())}
    cols = (
        ["replicate", "arm", "patients"]
        + [f"theta_{n}" for n in uncertain]
        + _stat_columns(d)
        + ["trial_success"]
        + [f"condition_{j}" for j in range(len(d.success.conditions))]
    )
    parts = []
    for arm in arms:
        vals = {k: v[:, :n_head] for k, v in per_arm[arm.name].items()}
        data: dict[str, Any] = {
            "replicate": np.arange(first, first + n_rep, dtype=np.int64),
            "arm": np.full(n_rep, arm.name, dtype=object),
            "patients": np.full(n_rep, n_head, dtype=np.int64),
        }
        for n in uncertain:
            data[f"theta_{n}"] = thetas[:, pidx[n]]
        for c, v in zip(_stat_columns(d), _arm_stats(vals), strict=True):
            data[c] = np.asarray(v, dtype=np.float64)
        data["trial_success"] = success[:, head]
        for j in range(len(d.success.conditions)):
            data[f"condition_{j}"] = cond_pass[:, head, j]
        parts.append(pd.DataFrame(data, columns=cols))
    # rows ordered by replicate, then arm (the design's order)
    frame = pd.concat(parts, ignore_index=True)
    order = np.lexsort((np.tile(np.arange(len(arms)).repeat(n_rep), 1), frame["replicate"]))
    frame = frame.iloc[order].reset_index(drop=True)
    keep_p = max(0, min(n_rep, job.keep_patient_reps - first))
    patients: dict[str, dict[str, np.ndarray]] = {}
    if keep_p:
        patients = {
            a: {k: v[:keep_p, :n_head].ravel() for k, v in e.items()} for a, e in per_arm.items()
        }
    return ChunkResult(
        first=first,
        rows=frame,
        success=success,
        cond_pass=cond_pass,
        patients=patients,
        samples=samples_kept,
        rhs_evals=work,
        patients_simulated=n_rep * n_sim * len(arms),
    )


def _chunks(replicates: int, chunk: int) -> Iterator[tuple[int, int]]:
    start = 0
    while start < replicates:
        yield start, min(replicates, start + chunk)
        start += chunk


def default_chunk_replicates(design: TrialDesign, workers: int = 1) -> int:
    """Replicates per chunk: ≈ 4,000 patients per compiled call, ≥ 4 chunks per worker."""
    per = max(1, 4000 // design.simulated_per_arm)
    return max(1, min(per, math.ceil(design.replicates / (4 * max(1, workers)))))


def run_trial(
    design: TrialDesign,
    *,
    out: str | Path | None = None,
    seed: int | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    chunk_replicates: int | None = None,
    design_dir: Path | None = None,
    progress: Callable[[int, int], Any] | None = None,
    on_cluster: Callable[[str | None], Any] | None = None,
    max_patient_rows: int = 100_000,
    max_sample_rows: int = 20_000,
) -> TrialResult:
    """Simulate every replicate of ``design``; stream rows to ``out/replicates.parquet``.

    Parameters
    ----------
    design : TrialDesign
    out : path, optional
        Directory for ``replicates.parquet`` (created); None keeps nothing on disk.
    seed : int, optional
        Overrides ``design.seed``.
    workers : int, optional
        Start a local Dask cluster of this many single-threaded worker processes (1–256).
    scheduler : str, optional
        Address ``tcp://host:port`` of an existing Dask scheduler (not with ``workers``).
    chunk_replicates : int, optional
        Replicates per task (default :func:`default_chunk_replicates`); does not change results.
    progress : callable(done_replicates, total), optional
    on_cluster : callable(dashboard_link or None), optional
        Called once a Dask client is connected.

    Raises
    ------
    InvalidInput
        Bad options, or a scheduler that cannot be reached.
    """
    if workers is not None and scheduler is not None:
        raise InvalidInput("workers", workers, "absent when --scheduler is given")
    if workers is not None:
        check_range("workers", workers, 1, 256, integer=True)
    if scheduler is not None and (
        not isinstance(scheduler, str) or not scheduler.startswith(("tcp://", "tls://"))
    ):
        raise InvalidInput("scheduler", scheduler, "an address tcp://HOST:PORT")
    job = make_job(
        design,
        seed=seed,
        design_dir=design_dir,
        max_patient_rows=max_patient_rows,
        max_sample_rows=max_sample_rows,
    )
    n_workers = workers or 1
    chunk = (
        default_chunk_replicates(design, n_workers)
        if chunk_replicates is None
        else chunk_replicates
    )
    check_range("chunk_replicates", chunk, 1, 10**6, integer=True)
    root = np.random.SeedSequence(job.seed)
    seqs = root.spawn(design.replicates)
    spans = list(_chunks(design.replicates, chunk))
    writer = None
    parquet = None
    if out is not None:
        out_dir = Path(out)
        out_dir.mkdir(parents=True, exist_ok=True)
        parquet = out_dir / "replicates.parquet"
    rows: list[pd.DataFrame] = []
    success: list[np.ndarray] = []
    cond: list[np.ndarray] = []
    patients: dict[str, dict[str, list[np.ndarray]]] = {}
    samples: dict[str, list[np.ndarray]] = {}
    work = [0, 0]
    done = 0
    try:
        for res in _execute(job, spans, seqs, workers, scheduler, on_cluster):
            if parquet is not None:
                writer = _write(writer, parquet, res.rows)
            rows.append(res.rows)
            success.append(res.success)
            cond.append(res.cond_pass)
            for a, e in res.patients.items():
                for k, v in e.items():
                    patients.setdefault(a, {}).setdefault(k, []).append(v)
            for a, s in res.samples.items():
                samples.setdefault(a, []).append(s)
            work[0] += res.rhs_evals
            work[1] += res.patients_simulated
            done += res.success.shape[0]
            if progress is not None:
                progress(done, design.replicates)
    finally:
        if writer is not None:
            writer.close()
    return TrialResult(
        design=design,
        seed=job.seed,
        estimates_source=job.estimates.source,
        replicates=pd.concat(rows, ignore_index=True),
        sizes=design.sizes,
        success=np.concatenate(success),
        cond_pass=np.concatenate(cond),
        patients={a: {k: np.concatenate(v) for k, v in e.items()} for a, e in patients.items()},
        samples={a: np.concatenate(v) for a, v in samples.items()},
        patient_reps=job.keep_patient_reps,
        sample_reps=job.keep_sample_reps,
        rhs_evals=work[0],
        patients_simulated=work[1],
        parquet=parquet,
    )


def _write(writer, path: Path, frame: pd.DataFrame):
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(frame, preserve_index=False)
    if writer is None:
        writer = pq.ParquetWriter(path, table.schema)
    writer.write_table(table)
    return writer


def _execute(
    job: TrialJob,
    spans: list[tuple[int, int]],
    seqs: list[np.random.SeedSequence],
    workers: int | None,
    scheduler: str | None,
    on_cluster: Callable[[str | None], Any] | None,
) -> Iterator[ChunkResult]:
    """Yield chunk results in replicate order (in-process, local cluster or remote)."""
    if workers is None and scheduler is None:
        for a, b in spans:
            yield run_chunk(job, a, seqs[a:b])
        return
    yield from _execute_dask(job, spans, seqs, workers, scheduler, on_cluster)


def _execute_dask(job, spans, seqs, workers, scheduler, on_cluster) -> Iterator[ChunkResult]:
    import logging

    from dask.distributed import Client, LocalCluster, as_completed

    cluster = None
    try:
        if scheduler is not None:
            try:
                client = Client(scheduler, timeout="5s")
            except (OSError, TimeoutError) as err:
                raise InvalidInput(
                    "scheduler", scheduler, "a reachable Dask scheduler", message=str(err)
                ) from None
        else:
            cluster = LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=":0" if _has_bokeh() else None,
                silence_logs=logging.ERROR,
            )
            client = Client(cluster)
    except InvalidInput:
        raise
    try:
        # every worker imports the package and loads the compiled solver once, up front
        client.run(_warm_worker)
        if on_cluster is not None:
            on_cluster(client.dashboard_link if _has_bokeh() else None)
        threads = client.nthreads()
        per_worker = min(threads.values()) if threads else 1
        n_slots = max(1, sum(threads.values()))
        [job_f] = client.scatter([job], broadcast=True)
        window = 2 * n_slots + 1
        pending: dict[int, ChunkResult] = {}
        nxt = 0  # next span to submit
        want = 0  # next span to yield
        ac = as_completed()
        futures = {}
        while want < len(spans):
            while nxt < len(spans) and len(futures) + len(pending) < window:
                a, b = spans[nxt]
                f = client.submit(run_chunk, job_f, a, seqs[a:b], per_worker, pure=False)
                futures[f.key] = nxt
                ac.add(f)
                nxt += 1
            f = next(ac)
            i = futures.pop(f.key)
            pending[i] = f.result()
            f.release()
            while want in pending:
                yield pending.pop(want)
                want += 1
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _warm_worker() -> None:
    """Load the compiled solver in a worker process (numba cache) with a one-patient run."""
    from immunoreset.model.equations import FLAVOURS, N_STATES, immune_initial_state
    from immunoreset.model.solver import integrate_batch

    p = ImmuneParams()
    integrate_batch(
        flavour=FLAVOURS["immune"],
        params=p.to_array()[None, :],
        y0=immune_initial_state(p)[None, :],
        t0=0.0,
        t_end=1.0,
        event_times=np.empty((1, 0)),
        event_mult=np.empty((1, 0, N_STATES)),
        event_add=np.empty((1, 0, N_STATES)),
        sample_days=np.array([1.0]),
    )


def _has_bokeh() -> bool:
    try:
        import bokeh  # noqa: F401
    except ImportError:
        return False
    return True


#: Observable names in sample order (for the report).
OBSERVABLE_NAMES = tuple(o for o, _u in OBSERVABLES)
