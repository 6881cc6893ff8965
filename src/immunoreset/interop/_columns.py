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
    raw: list[list[Any]] = [[] for _ in range(len(wanted) + 1)]
    with registry.engine.connect() as conn:
        pos = {sid: i for i, sid in enumerate(study_ids)}
        ids = conn.execute(select(s.patients.c.id, s.patients.c.study_id)).all()
        order = {pid: pos[sid] for pid, sid in ids if sid in pos}
        everyone = len(order) == len(ids)
        t = ent.table
        where = t.c.deleted_at.is_(None)
        if len(order) <= len(ids) // 2:  # a share of the patients: let the database pick
            where = where & t.c.patient_id.in_(sorted(order))
        for rows in fast.iter_raw(conn, t, ["patient_id", *wanted], where):
            if not everyone:
                rows = [r for r in rows if r[0] in order]
            for i, col in enumerate(zip(*rows, strict=True)):
                raw[i].extend(col)
        codec = fast.codec(conn)
    pidx = np.fromiter(map(order.__getitem__, raw[0]), dtype=np.int64, count=len(raw[0]))
    cols = {
        name: _decode(raw[i + 1], codec.decoder(specs[name].kind)) for i, name in enumerate(wanted)
    }
    del raw
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
