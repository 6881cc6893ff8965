"""Column-wise reads of registry tables for the exports (no record object per stored row).

A 10,000-patient registry holds ≈ 4.4 million lab rows. Building a frozen record per row and
a row dict per SDTM record cost most of an export; here a table is read in one query per
table (only the columns needed) and kept as columns: decoding (ISO text → date on SQLite)
and formatting happen once per *distinct* value. Rows come out in the order the course
loader gives them (patients in the given order, then the collection's sort key, then row
id), so a column-wise export writes the same rows as the object path (tested).

Site scope is not decided here: the caller passes the study IDs of the courses it has
already loaded through :meth:`Registry.iter_courses` for the actor, and only rows of those
patients are kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["Columns", "read_columns"]


class Columns:
    """Rows of one table as columns: ``pidx`` (position of the patient in the given order)
    and one numpy array per requested field (decoded values, ``None`` for missing)."""

    def __init__(self, pidx: np.ndarray, cols: dict[str, np.ndarray]) -> None:
        self.pidx = pidx
        self.cols = cols

    def __len__(self) -> int:
        return len(self.pidx)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.cols[name]


def _decode(values: list[Any], decoder: Any) -> np.ndarray:
    """An object array of ``values`` decoded once per distinct value."""
    arr = np.empty(len(values), dtype=object)
    arr[:] = values
    if decoder is None or not len(values):
        return arr
    codes, uniques = pd.factorize(arr, use_na_sentinel=True)
    table = np.empty(len(uniques) + 1, dtype=object)
    table[: len(uniques)] = [decoder(u) for u in uniques]
    table[-1] = None
    out: np.ndarray = table[codes]
    return out


def _rank(arr: np.ndarray) -> np.ndarray:
    """Integer codes that sort as the values sort (None first)."""
    codes, _ = pd.factorize(arr, sort=True, use_na_sentinel=True)
    return np.asarray(codes)


def read_columns(
    registry: Any, entity: str, study_ids: Sequence[str], fields: Sequence[str]
) -> Columns:
    """The live rows of ``entity`` for the patients ``study_ids`` (in that order), ``fields``
    decoded, sorted as :class:`~immunoreset.course.Course` sorts the collection."""
    from sqlalchemy import select

    from immunoreset.course import _SORT_KEYS
    from immunoreset.registry import fast
    from immunoreset.registry import schema as s

    ent = s.ENTITIES[entity]
    specs = {sp.name: sp for sp in ent.specs}
    key_fields = _sort_fields(_SORT_KEYS[ent.course_attr])
    wanted = list(dict.fromkeys([*fields, *key_fields]))
    with registry.engine.connect() as conn:
        pos = {sid: i for i, sid in enumerate(study_ids)}
        ids = conn.execute(select(s.patients.c.id, s.patients.c.study_id)).all()
        order = {pid: pos[sid] for pid, sid in ids if sid in pos}
        t = ent.table
        rows = fast.select_raw(conn, t, ["patient_id", *wanted], t.c.deleted_at.is_(None))
        codec = fast.codec(conn)
    keep = [r for r in rows if r[0] in order]
    pidx = np.fromiter((order[r[0]] for r in keep), dtype=np.int64, count=len(keep))
    raw = list(zip(*keep, strict=True)) if keep else [()] * (len(wanted) + 1)
    cols = {
        name: _decode(list(raw[i + 1]), codec.decoder(specs[name].kind))
        for i, name in enumerate(wanted)
    }
    if len(pidx):
        # np.lexsort: last key primary; stable, so ties keep row-id order like sorted()
        perm = np.lexsort([_rank(cols[k]) for k in reversed(key_fields)] + [pidx])
        pidx = pidx[perm]
        cols = {k: v[perm] for k, v in cols.items()}
    return Columns(pidx, {k: cols[k] for k in fields})


def _sort_fields(getter: Any) -> tuple[str, ...]:
    """The attribute names of an ``operator.attrgetter`` (its repr lists them)."""
    import re

    return tuple(re.findall(r"'([a-z_0-9]+)'", repr(getter)))
