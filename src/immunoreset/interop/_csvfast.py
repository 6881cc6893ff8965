"""CSV text of factorized columns, written by a compiled loop (numba).

A column is given as (codes, texts): ``texts`` its distinct cell texts, ``codes`` the index of
each row's text. Each distinct text is escaped once by :mod:`csv` itself (the running
Python's quoting rules, so the bytes equal ``csv.writer`` with ``lineterminator="\\n"``), and
the rows are assembled by copying bytes — at 10,000 patients SDTM writes ≈ 10 million rows,
which ``csv.writer.writerows`` took ≈ 1 µs a field for.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from typing import IO

import numpy as np
from numba import njit

__all__ = ["write_rows"]

_CHUNK_ROWS = 250_000
#: Characters that make ``csv.writer`` quote a field (delimiter, quote, line breaks); a text
#: without them is written unchanged, one with them goes through ``csv.writer`` itself.
_SPECIAL = re.compile('[,"\r\n]')


def _escaped(texts: Sequence[str], alone: bool) -> list[bytes]:
    """Each text as ``csv.writer`` writes it in a row of several fields, or ``alone`` in a
    one-field row (where an empty text is written ``""``), in UTF-8."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    out = []
    for t in texts:
        if t and not _SPECIAL.search(t):  # written as is (csv quotes only these characters)
            out.append(t.encode("utf-8"))
            continue
        buf.seek(0)
        buf.truncate()
        w.writerow([t] if alone else [t, ""])
        out.append(buf.getvalue()[: -1 if alone else -2].encode("utf-8"))
    return out


@njit(cache=True)
def _fill(
    codes: np.ndarray,
    starts: np.ndarray,
    lens: np.ndarray,
    blob: np.ndarray,
    out: np.ndarray,
    separate: bool,
) -> int:  # pragma: no cover - compiled; tested through write_rows and Pieces.join
    """Copy the pieces ``codes`` names, row by row, into ``out``; with ``separate`` a "," goes
    between the fields and a "\\n" after the last."""
    n, m = codes.shape
    p = 0
    for r in range(n):
        for j in range(m):
            k = codes[r, j]
            s = starts[k]
            for i in range(lens[k]):
                out[p + i] = blob[s + i]
            p += lens[k]
            if separate:
                out[p] = 44 if j < m - 1 else 10
                p += 1
    return p


def write_rows(fh: IO[bytes], columns: Sequence[tuple[np.ndarray, Sequence[str]]], n: int) -> None:
    """Write ``n`` rows of ``columns`` ((codes, texts) each; code −1 = empty) to ``fh``."""
    if n == 0 or not columns:
        return
    pieces: list[bytes] = []
    base = []
    for _, texts in columns:
        base.append(len(pieces))
        pieces.extend(_escaped([*texts, ""], len(columns) == 1))  # the last: code −1
    table = Pieces(pieces)
    m = len(columns)
    for lo in range(0, n, _CHUNK_ROWS):
        hi = min(n, lo + _CHUNK_ROWS)
        codes = np.empty((hi - lo, m), dtype=np.int64)
        for j, (c, texts) in enumerate(columns):
            part = np.asarray(c[lo:hi], dtype=np.int64)
            codes[:, j] = np.where(part < 0, base[j] + len(texts), part + base[j])
        size = int(table.lens[codes].sum()) + codes.size
        out = np.empty(size, dtype=np.uint8)
        _fill(codes, table.starts, table.lens, table.blob, out, True)
        fh.write(out.data)  # the bytes as they are, not a copy


class Pieces:
    """A table of byte strings, concatenated row by row by a compiled loop.

    Rows are given as a matrix of codes into the table (one piece per column, no separator
    added: each piece carries its own commas and line ends)."""

    def __init__(self, pieces: Sequence[bytes]) -> None:
        self.lens = np.fromiter(map(len, pieces), dtype=np.int64, count=len(pieces))
        self.starts = np.zeros(len(pieces), dtype=np.int64)
        np.cumsum(self.lens[:-1], out=self.starts[1:])
        self.blob = np.frombuffer(b"".join(pieces) or b"\0", dtype=np.uint8)

    def join(self, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The rows' bytes (one uint8 array) and each row's end offset in it."""
        ends = np.cumsum(self.lens[codes].sum(axis=1)) if len(codes) else np.zeros(0, np.int64)
        out = np.empty(int(ends[-1]) if len(ends) else 0, dtype=np.uint8)
        if len(codes):
            _fill(codes, self.starts, self.lens, self.blob, out, False)
        return out, ends
