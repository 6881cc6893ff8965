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
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

__all__ = ["Coded", "Columns", "read_coded", "read_columns"]


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


def _read(
    registry: Any, entity: str, study_ids: Sequence[str], wanted: Sequence[str]
) -> tuple[np.ndarray, list[list[Any]], Any]:
    """Driver values of the live rows of ``entity`` for the patients ``study_ids``: the
    rows' patient positions, one list of stored values per ``wanted`` field (row-id order)
    and the dialect's codec."""
    from sqlalchemy import select

    from immunoreset.registry import fast
    from immunoreset.registry import schema as s

    ent = s.ENTITIES[entity]
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
    return pidx, raw[1:], codec


def _specs(entity: str) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The entity's field specs by name, and the fields its course collection sorts by."""
    from immunoreset.course import _SORT_KEYS
    from immunoreset.registry import schema as s

    ent = s.ENTITIES[entity]
    return {sp.name: sp for sp in ent.specs}, _sort_fields(_SORT_KEYS[ent.course_attr])


def read_columns(
    registry: Any, entity: str, study_ids: Sequence[str], fields: Sequence[str]
) -> Columns:
    """The live rows of ``entity`` for the patients ``study_ids`` (in that order), ``fields``
    decoded, sorted as :class:`~immunoreset.course.Course` sorts the collection."""
    specs, key_fields = _specs(entity)
    wanted = list(dict.fromkeys([*fields, *key_fields]))
    pidx, raw, codec = _read(registry, entity, study_ids, wanted)
    cols = {name: _decode(raw[i], codec.decoder(specs[name].kind)) for i, name in enumerate(wanted)}
    del raw
    if len(pidx):
        # np.lexsort: last key primary; stable, so ties keep row-id order like sorted()
        perm = np.lexsort([_rank(cols[k]) for k in reversed(key_fields)] + [pidx])
        pidx = pidx[perm]
        cols = {k: v[perm] for k, v in cols.items()}
    return Columns(pidx, {k: cols[k] for k in fields})


class Coded(NamedTuple):
    """One field of a table as codes into its distinct values."""

    codes: np.ndarray  #: int64 per row: index into ``values``
    #: the distinct stored values decoded as the course loader decodes them; the last one is
    #: the decoded NULL (``None``, or ``()`` / ``{}`` for tuples and mappings), used or not
    values: list[Any]


def read_coded(
    registry: Any, entity: str, study_ids: Sequence[str], fields: Sequence[str]
) -> tuple[np.ndarray, dict[str, Coded]]:
    """Like :func:`read_columns`, each field factorised on its *stored* value instead (for a
    writer that formats each distinct value once): the rows' patient positions and
    ``{field: Coded}``, sorted as the course sorts the collection.

    Stored values are compared exactly (floats by their bits, so ``-0.0`` stays apart from
    ``0.0``)."""
    specs, key_fields = _specs(entity)
    wanted = list(dict.fromkeys([*fields, *key_fields]))
    pidx, raw, codec = _read(registry, entity, study_ids, wanted)
    coded = {}
    for i, name in enumerate(wanted):
        kind = specs[name].kind
        codes, uniques = _factorize(raw[i], kind)
        raw[i] = []
        decoder = codec.decoder(kind)
        values = [decoder(u) for u in uniques] if decoder is not None else uniques
        values.append(decoder(None) if decoder is not None else None)
        codes[codes < 0] = len(values) - 1
        coded[name] = Coded(codes, values)
    if len(pidx):
        ranks = []
        for k in reversed(key_fields):
            codes, values = coded[k]
            rank_of = np.empty(len(values), dtype=np.int64)
            stored = values[:-1]
            rank_of[sorted(range(len(stored)), key=stored.__getitem__)] = np.arange(len(stored))
            rank_of[-1] = -1  # NULL first
            ranks.append(rank_of[codes])
        if not _in_order(pidx, ranks):  # rows stored in course order need no sort
            perm = np.lexsort([*ranks, pidx])
            pidx = pidx[perm]
            coded = {k: Coded(v.codes[perm], v.values) for k, v in coded.items()}
    return pidx, {k: coded[k] for k in fields}


def _in_order(pidx: np.ndarray, ranks: Sequence[np.ndarray]) -> bool:
    """Whether the rows already are in ``np.lexsort([*ranks, pidx])`` order (then the stable
    sort would leave them as they are): one combined integer key, when it fits in 62 bits."""
    size = int(pidx.max()) + 1
    key = pidx.astype(np.int64)
    for r in reversed(ranks):  # the primary key last, as lexsort takes them
        span = int(r.max()) + 2  # ranks from -1 (NULL)
        size *= span
        if size >= 2**62:
            return False
        key = key * span + (r + 1)
    return bool((key[1:] >= key[:-1]).all())


def _factorize(values: list[Any], kind: str) -> tuple[np.ndarray, list[Any]]:
    """(codes, distinct stored values) of one column; NULL is −1."""
    arr = np.empty(len(values), dtype=object)
    arr[:] = values
    if kind == "float" and len(arr):
        floats = np.array(values, dtype=np.float64)  # NULL (None) -> NaN, in one C loop
        null = np.isnan(floats)
        if int(null.sum()) != values.count(None):  # a stored NaN (PostgreSQL): not NULL
            null = np.fromiter((v is None for v in values), dtype=bool, count=len(values))
            floats = np.where(null, 0.0, arr).astype(np.float64)
        bits = np.where(null, 0.0, floats).view(np.int64)
        codes, uniques = pd.factorize(bits)
        codes[null] = -1
        # a bit pattern used only by NULL rows stays in the list, unused
        return codes.astype(np.int64), uniques.view(np.float64).tolist()
    codes, uniques = pd.factorize(arr, use_na_sentinel=True)
    return codes.astype(np.int64), list(uniques)


def _sort_fields(getter: Any) -> tuple[str, ...]:
    """The attribute names of an ``operator.attrgetter`` (its repr lists them)."""
    import re

    return tuple(re.findall(r"'([a-z_0-9]+)'", repr(getter)))
