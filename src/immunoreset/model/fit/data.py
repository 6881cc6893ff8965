"""Population data prepared for estimation: padded per-individual observation and dose arrays.

Input is a validated NONMEM-style table (``immunoreset.interop.nonmem.validate_nonmem`` makes
one; columns ID, TIME, DV, AMT, EVID, MDV, CMT, LLOQ, BLQ and covariates). Individuals keep
their order of first appearance; observations (``EVID 0, MDV 0``) are padded to the longest
individual so that likelihoods and Jacobians are array operations over all individuals.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from immunoreset.errors import InvalidInput

__all__ = ["FitData", "prepare_data"]

_STANDARD = ("ID", "TIME", "DV", "AMT", "EVID", "MDV", "CMT", "LLOQ", "BLQ", "LINE")


@dataclass(frozen=True)
class FitData:
    """Observations, doses and covariates of ``n`` individuals (arrays padded to ``n_max``).

    Attributes
    ----------
    ids : individual labels (n,)
    mask : bool (n, n_max), True where an observation exists
    time, dv, lloq : float (n, n_max); NaN where padded (lloq NaN when none)
    cmt : int (n, n_max); 0 where padded
    blq : bool (n, n_max), below-LLOQ observation (M3)
    row : int (n, n_max), index of the observation in ``frame`` (−1 where padded)
    dose_time, dose_amt : float (n, d_max), NaN-padded dose records (EVID 1)
    dose_cmt : int (n, d_max)
    covariates : DataFrame (n rows) of the numeric non-standard columns (first record)
    frame : the table the data came from
    """

    ids: tuple[str, ...]
    mask: np.ndarray
    time: np.ndarray
    dv: np.ndarray
    lloq: np.ndarray
    cmt: np.ndarray
    blq: np.ndarray
    row: np.ndarray
    dose_time: np.ndarray
    dose_amt: np.ndarray
    dose_cmt: np.ndarray
    covariates: pd.DataFrame
    frame: pd.DataFrame

    @property
    def n(self) -> int:
        return len(self.ids)

    @property
    def n_obs(self) -> int:
        return int(self.mask.sum())

    def cmts(self) -> tuple[int, ...]:
        """Observation compartments present, ascending."""
        return tuple(int(c) for c in np.unique(self.cmt[self.mask]))

    def subset(self, individuals: Sequence[int]) -> FitData:
        """The data of the given individuals (indices), in that order."""
        idx = np.asarray(individuals, dtype=np.int64)
        return replace(
            self,
            ids=tuple(self.ids[i] for i in idx),
            mask=self.mask[idx],
            time=self.time[idx],
            dv=self.dv[idx],
            lloq=self.lloq[idx],
            cmt=self.cmt[idx],
            blq=self.blq[idx],
            row=self.row[idx],
            dose_time=self.dose_time[idx],
            dose_amt=self.dose_amt[idx],
            dose_cmt=self.dose_cmt[idx],
            covariates=self.covariates.iloc[idx].reset_index(drop=True),
        )

    def with_times(self, times: np.ndarray, cmt: int) -> FitData:
        """The same individuals observed at ``times`` in compartment ``cmt`` (for curves).

        DV is NaN; the LLOQ of ``cmt`` per individual is kept (its first value), so models
        that read baselines from the data (:mod:`.models`) still find them in ``frame``.
        """
        t = np.asarray(times, dtype=np.float64)
        n, m = self.n, len(t)
        lloq = np.full((n, m), math.nan)
        for i in range(n):
            sel = self.mask[i] & (self.cmt[i] == cmt) & np.isfinite(self.lloq[i])
            if sel.any():
                lloq[i] = self.lloq[i][sel][0]
        return replace(
            self,
            mask=np.ones((n, m), dtype=bool),
            time=np.tile(t, (n, 1)),
            dv=np.full((n, m), math.nan),
            lloq=lloq,
            cmt=np.full((n, m), int(cmt), dtype=np.int64),
            blq=np.zeros((n, m), dtype=bool),
            row=np.full((n, m), -1, dtype=np.int64),
        )

    def covariate(self, name: str) -> np.ndarray:
        """Covariate values (n,) as floats; InvalidInput naming the column if absent."""
        if name not in self.covariates:
            allowed = ", ".join(self.covariates.columns) or "none in the data"
            raise InvalidInput("covariate", name, f"a numeric data column ({allowed})")
        return self.covariates[name].to_numpy(dtype=np.float64)


def prepare_data(frame: pd.DataFrame, *, cmts: Sequence[int] | None = None) -> FitData:
    """Pad a validated NONMEM-style table into :class:`FitData`.

    Parameters
    ----------
    frame : DataFrame
        Output of ``validate_nonmem``/``read_nonmem``.
    cmts : sequence of int, optional
        Keep only observations of these compartments (others are left out of the fit).

    Raises
    ------
    InvalidInput
        No observations left, or a table without the standard columns.
    """
    for col in ("ID", "TIME", "DV", "AMT", "EVID", "MDV", "CMT", "LLOQ", "BLQ"):
        if col not in frame:
            raise InvalidInput("data", col, "a validated NONMEM table (see read_nonmem)")
    ids_all = frame["ID"].astype(str).to_numpy()
    order = list(dict.fromkeys(ids_all))
    pos = {pid: i for i, pid in enumerate(order)}
    ind = np.array([pos[p] for p in ids_all], dtype=np.int64)
    evid = frame["EVID"].to_numpy()
    mdv = frame["MDV"].to_numpy()
    cmt_all = frame["CMT"].to_numpy(dtype=np.int64)
    obs = (evid == 0) & (mdv == 0)
    if cmts is not None:
        obs &= np.isin(cmt_all, np.asarray(list(cmts), dtype=np.int64))
    dose = evid == 1
    n = len(order)
    n_obs = np.bincount(ind[obs], minlength=n)
    keep = n_obs > 0
    if not keep.any():
        raise InvalidInput("data", 0, "at least one observation (EVID 0, MDV 0) to fit")
    n_max = int(n_obs.max())
    n_dose = np.bincount(ind[dose], minlength=n)
    d_max = max(1, int(n_dose.max()) if n_dose.size else 1)
    shape = (n, n_max)
    out = {
        "time": np.full(shape, math.nan),
        "dv": np.full(shape, math.nan),
        "lloq": np.full(shape, math.nan),
        "cmt": np.zeros(shape, dtype=np.int64),
        "blq": np.zeros(shape, dtype=bool),
        "row": np.full(shape, -1, dtype=np.int64),
        "mask": np.zeros(shape, dtype=bool),
    }
    fill = np.zeros(n, dtype=np.int64)
    time = frame["TIME"].to_numpy(dtype=np.float64)
    dv = frame["DV"].to_numpy(dtype=np.float64)
    lloq = frame["LLOQ"].to_numpy(dtype=np.float64)
    blq = frame["BLQ"].to_numpy() == 1
    for r in np.flatnonzero(obs):
        i = ind[r]
        j = fill[i]
        fill[i] += 1
        out["time"][i, j] = time[r]
        out["dv"][i, j] = dv[r]
        out["lloq"][i, j] = lloq[r]
        out["cmt"][i, j] = cmt_all[r]
        out["blq"][i, j] = blq[r]
        out["row"][i, j] = r
        out["mask"][i, j] = True
    dose_time = np.full((n, d_max), math.nan)
    dose_amt = np.full((n, d_max), math.nan)
    dose_cmt = np.zeros((n, d_max), dtype=np.int64)
    fill[:] = 0
    amt = frame["AMT"].to_numpy(dtype=np.float64)
    for r in np.flatnonzero(dose):
        i = ind[r]
        j = fill[i]
        fill[i] += 1
        dose_time[i, j] = time[r]
        dose_amt[i, j] = amt[r]
        dose_cmt[i, j] = cmt_all[r]
    first = frame.loc[~pd.Series(ind).duplicated().to_numpy()]  # individuals in order
    covs = {}
    for col in frame.columns:
        if col in _STANDARD or col == "USUBJID":
            continue
        if pd.api.types.is_numeric_dtype(frame[col]):
            covs[col] = first[col].to_numpy(dtype=np.float64)
    covariates = pd.DataFrame(covs)
    data = FitData(
        ids=tuple(order),
        dose_time=dose_time,
        dose_amt=dose_amt,
        dose_cmt=dose_cmt,
        covariates=covariates,
        frame=frame,
        **out,
    )
    if not keep.all():
        data = data.subset(np.flatnonzero(keep))
    return data
