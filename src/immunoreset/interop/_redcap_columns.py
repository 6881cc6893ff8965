"""Column-wise REDCap records (the export's fast path): the same bytes as
:func:`immunoreset.interop.redcap.write_records` over whole courses (tested).

The courses are loaded without their repeating records (``iter_courses(skip=…)``), which gives
the non-repeating lines (enrolment, follow-up) and — because the loader is scoped to the
actor — the study IDs in scope. Each repeating instrument's table is then read column-wise
(:func:`immunoreset.interop._columns.read_coded`, rows only of those patients, sorted as the
course sorts them) and every *distinct* stored value is formatted once. A line of an instance
is a concatenation of pieces, each carrying its own commas: ``sid,instrument,`` |
``instance,<empty cells before>`` | ``cell,`` … | ``cell,complete<empty cells after>\\r\\n``,
assembled by a compiled loop (:class:`immunoreset.interop._csvfast.Pieces`). Lines are written
per patient (its record line, then each instrument's instances in instrument order), as the
object path writes them.
"""

from __future__ import annotations

import codecs
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from immunoreset import course as c
from immunoreset.interop import redcap
from immunoreset.interop._columns import read_coded
from immunoreset.interop._csvfast import Pieces

__all__ = ["REPEATING", "write_records_columns"]

#: Entities of the repeating instruments (read column-wise, skipped when loading the courses).
REPEATING: tuple[str, ...] = tuple(f.entity for f in redcap.FORMS if f.repeating)

_CHUNK = 1000  # patients per written block


class _Instrument:
    """One repeating instrument's rows for the courses: codes into a table of pieces."""

    def __init__(
        self,
        registry: Any,
        form: redcap.Form,
        cols: Sequence[str],
        quoted: Sequence[str],
        labels: bool,
        encode: Any,
    ) -> None:
        ffs = redcap._FORM_FIELDS[form.name]
        pidx, coded = read_coded(
            registry, form.entity, [q[1] for q in quoted], [f.column for f in ffs]
        )
        first = cols.index(ffs[0].columns()[0])
        done = cols.index(f"{form.name}_complete")
        before = "," * (first - 3)
        after = "," * (len(cols) - done - 1)
        tail = ("Complete" if labels else redcap._COMPLETE) + after + "\r\n"
        name = redcap._q(form.name)
        n = len(pidx)
        # row range of each patient (rows are sorted by patient position)
        self.bounds = np.searchsorted(pidx, np.arange(len(quoted) + 1))
        instance = np.arange(n) - self.bounds[pidx] if n else np.zeros(0, np.int64)
        most = int(instance.max()) + 1 if n else 0
        pieces = [encode(f"{q},{name},") for q, _ in quoted]
        offsets = [0, len(pieces)]
        pieces += [encode(f"{i},{before}") for i in range(1, most + 1)]
        matrix = np.empty((n, 2 + len(ffs)), dtype=np.int64)
        matrix[:, 0] = pidx
        matrix[:, 1] = instance + offsets[1]
        for j, f in enumerate(ffs):
            fmt = redcap._cell_writer(f, labels)
            end = "," + tail if j == len(ffs) - 1 else ","
            codes, values = coded[f.column]
            matrix[:, 2 + j] = codes + len(pieces)
            pieces += [encode(fmt(v) + end) for v in values]
        self.matrix = matrix
        self.pieces = Pieces(pieces)

    def block(self, lo: int, hi: int) -> tuple[memoryview, np.ndarray]:
        """The bytes of patients ``lo``–``hi − 1``'s instances and each patient's end offset
        in them (index 0: the start)."""
        a, b = int(self.bounds[lo]), int(self.bounds[hi])
        out, ends = self.pieces.join(self.matrix[a:b])
        offsets = np.r_[0, ends][self.bounds[lo : hi + 1] - a]
        return memoryview(out.data), offsets


def write_records_columns(
    registry: Any,
    courses: Sequence[c.Course],
    path: str | Path,
    *,
    sites: Mapping[str, str] | None = None,
    labels: bool = False,
    encoding: str = "utf-8",
) -> int:
    """Write the flat records CSV of ``courses`` (loaded for the actor without
    :data:`REPEATING`), reading the repeating instruments from ``registry``; returns the
    number of records."""
    cols = redcap.record_columns()
    encoder = codecs.getincrementalencoder(encoding)()  # a byte-order mark only once
    header = encoder.encode(",".join(redcap._q(col) for col in cols) + "\r\n")
    encode = encoder.encode
    single = redcap._single_writer(cols, labels, sites or {})
    quoted = [(redcap._q(co.study_id), co.study_id) for co in courses]
    instruments = [
        _Instrument(registry, form, cols, quoted, labels, encode)
        for form in redcap.FORMS
        if form.repeating
    ]
    with Path(path).open("wb") as fh:
        fh.write(header)
        for lo in range(0, len(courses), _CHUNK):
            hi = min(len(courses), lo + _CHUNK)
            blocks = [ins.block(lo, hi) for ins in instruments]
            parts: list[Any] = []
            for k in range(hi - lo):
                parts.append(encode(single(courses[lo + k])))
                for data, offsets in blocks:
                    parts.append(data[offsets[k] : offsets[k + 1]])
            fh.write(b"".join(parts))
    return len(courses)
