"""Column-wise FHIR lab Observations (the export's fast path): the same bytes as
:func:`immunoreset.interop.fhir.bundle_json` over whole courses (tested).

Labs are four in five resources of a bundle (≈ 4.4 million at 10,000 patients). The courses
are loaded without them (``iter_courses(skip=("labs",))``); the loader is scoped to the
actor, so the study IDs it returns are the ones in scope. The lab table is then read
column-wise for those patients, 200 courses at a time (:func:`read_labs`: the rows and values of
:func:`~immunoreset.interop._columns.read_coded`, sorted as the course sorts them,
soft-deleted rows left out), and every *distinct* stored value is formatted once, as
:func:`immunoreset.interop.fhir._labs` formats it. An
entry is a concatenation of pieces::

    ,{"fullUrl":"urn:uuid: | id | ","resource":{<analyte's code…>,"subject": |
    <patient's reference>,"effectiveDateTime":" | <date>","valueQuantity":{"value": |
    <value> | <comparator, unit, LLOQ extension>,"id":" | id | "}}

The resource ids (UUID 5 of ``<study ID>|Observation|lab|<date>|<analyte>``) are computed
in bulk by a compiled SHA-1 (:func:`sha1_uuid5`, tested equal to :func:`uuid.uuid5`), and a
compiled loop copies the pieces (numba). The other resources (≈ 40 % of the bytes) come from
the per-resource writers of :mod:`~immunoreset.interop.fhir`, with the lab entries spliced in
where the object path writes them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
from numba import njit

from immunoreset import course as c
from immunoreset.interop import fhir
from immunoreset.interop._columns import Coded

__all__ = ["LAB_FIELDS", "patient_ids", "read_labs", "sha1_uuid5", "write_bundles_columns"]

#: The lab fields an Observation carries (read column-wise).
LAB_FIELDS: tuple[str, ...] = ("date", "analyte", "value", "lloq", "below_lloq")

#: Courses per lab read and assembled block: ≈ 90,000 lab rows, 60 MB of JSON (larger blocks
#: gave no fewer queries worth having and cost ≈ 15 % more CPU at 1,000 patients).
_CHUNK = 200


# --------------------------------------------------------------------------- compiled parts
@njit(cache=True)
def _rotl(x: int, n: int) -> int:  # pragma: no cover - compiled; tested through sha1_uuid5
    return ((x << n) | (x >> (32 - n))) & 0xFFFFFFFF


@njit(cache=True)
def _sha1_uuid5_rows(
    codes: np.ndarray, starts: np.ndarray, lens: np.ndarray, blob: np.ndarray, out: np.ndarray
) -> None:  # pragma: no cover - compiled; tested through sha1_uuid5
    """For each row of ``codes``: SHA-1 of the concatenated pieces, written into ``out`` (36
    bytes a row) as the text of the UUID 5 it gives (RFC 4122: version 5, variant 10)."""
    n, m = codes.shape
    most = 0
    for r in range(n):
        size = 0
        for j in range(m):
            size += lens[codes[r, j]]
        most = max(most, size)
    buf = np.zeros((most + 9 + 63) // 64 * 64, dtype=np.uint8)
    w = np.zeros(80, dtype=np.int64)
    hexd = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
    digest = np.zeros(20, dtype=np.int64)
    for r in range(n):
        size = 0
        for j in range(m):
            k = codes[r, j]
            s = starts[k]
            for i in range(lens[k]):
                buf[size + i] = blob[s + i]
            size += lens[k]
        blocks = (size + 9 + 63) // 64
        total = blocks * 64
        buf[size] = 0x80
        for i in range(size + 1, total - 8):
            buf[i] = 0
        bits = size * 8
        for i in range(8):
            buf[total - 1 - i] = (bits >> (8 * i)) & 0xFF
        h0, h1, h2, h3, h4 = 0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0
        for b in range(blocks):
            o = b * 64
            for t in range(16):
                w[t] = (
                    (np.int64(buf[o + 4 * t]) << 24)
                    | (np.int64(buf[o + 4 * t + 1]) << 16)
                    | (np.int64(buf[o + 4 * t + 2]) << 8)
                    | np.int64(buf[o + 4 * t + 3])
                )
            for t in range(16, 80):
                w[t] = _rotl(w[t - 3] ^ w[t - 8] ^ w[t - 14] ^ w[t - 16], 1)
            a, bb, cc, d, e = h0, h1, h2, h3, h4
            for t in range(20):  # the four rounds as separate loops: no branch per step
                f = (bb & cc) | ((~bb) & d)
                temp = (_rotl(a, 5) + (f & 0xFFFFFFFF) + e + 0x5A827999 + w[t]) & 0xFFFFFFFF
                a, bb, cc, d, e = temp, a, _rotl(bb, 30), cc, d
            for t in range(20, 40):
                f = bb ^ cc ^ d
                temp = (_rotl(a, 5) + f + e + 0x6ED9EBA1 + w[t]) & 0xFFFFFFFF
                a, bb, cc, d, e = temp, a, _rotl(bb, 30), cc, d
            for t in range(40, 60):
                f = (bb & cc) | (bb & d) | (cc & d)
                temp = (_rotl(a, 5) + f + e + 0x8F1BBCDC + w[t]) & 0xFFFFFFFF
                a, bb, cc, d, e = temp, a, _rotl(bb, 30), cc, d
            for t in range(60, 80):
                f = bb ^ cc ^ d
                temp = (_rotl(a, 5) + f + e + 0xCA62C1D6 + w[t]) & 0xFFFFFFFF
                a, bb, cc, d, e = temp, a, _rotl(bb, 30), cc, d
            h0 = (h0 + a) & 0xFFFFFFFF
            h1 = (h1 + bb) & 0xFFFFFFFF
            h2 = (h2 + cc) & 0xFFFFFFFF
            h3 = (h3 + d) & 0xFFFFFFFF
            h4 = (h4 + e) & 0xFFFFFFFF
        for i, hv in enumerate((h0, h1, h2, h3)):  # the UUID uses the first 128 bits
            for q in range(4):
                digest[4 * i + q] = (hv >> (24 - 8 * q)) & 0xFF
        digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
        digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
        p = 0
        for i in range(16):
            if i == 4 or i == 6 or i == 8 or i == 10:
                out[r, p] = 45  # "-"
                p += 1
            out[r, p] = hexd[digest[i] >> 4]
            out[r, p + 1] = hexd[digest[i] & 0x0F]
            p += 2


@njit(cache=True)
def _assemble(
    codes: np.ndarray,
    layout: np.ndarray,
    ids: np.ndarray,
    starts: np.ndarray,
    lens: np.ndarray,
    blob: np.ndarray,
    out: np.ndarray,
) -> int:  # pragma: no cover - compiled; tested through write_bundles_columns
    """Copy each row's parts into ``out``: ``layout[j]`` ≥ 0 is the piece of column
    ``codes[:, layout[j]]``, −1 the row's 36-byte id."""
    n = codes.shape[0]
    p = 0
    for r in range(n):
        for j in range(layout.shape[0]):
            col = layout[j]
            if col < 0:
                out[p : p + 36] = ids[r]
                p += 36
                continue
            k = codes[r, col]
            s = starts[k]
            size = lens[k]
            if size > 16:  # a slice copy (memcpy) pays off only for longer pieces
                out[p : p + size] = blob[s : s + size]
            else:
                for i in range(size):
                    out[p + i] = blob[s + i]
            p += size
    return p


class _Table:
    """A growing table of byte pieces (each added once), for the compiled loops."""

    def __init__(self) -> None:
        self.pieces: list[bytes] = []

    def add(self, items: Iterable[bytes]) -> int:
        """Append ``items``; return the code of the first."""
        base = len(self.pieces)
        self.pieces.extend(items)
        return base

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        lens = np.fromiter(map(len, self.pieces), dtype=np.int64, count=len(self.pieces))
        starts = np.zeros(len(lens), dtype=np.int64)
        np.cumsum(lens[:-1], out=starts[1:])
        blob = np.frombuffer(b"".join(self.pieces) or b"\0", dtype=np.uint8)
        return starts, lens, blob


def sha1_uuid5(namespace: bytes, names: Sequence[bytes]) -> list[str]:
    """``str(uuid.uuid5(UUID(bytes=namespace), name))`` of each name, computed in one
    compiled loop (for tests and small inputs; the export calls the loop on piece codes)."""
    t = _Table()
    t.add([namespace, *names])
    codes = np.zeros((len(names), 2), dtype=np.int64)
    codes[:, 1] = np.arange(1, len(names) + 1)
    out = np.zeros((len(names), 36), dtype=np.uint8)
    if len(names):
        _sha1_uuid5_rows(codes, *t.arrays(), out)
    return [bytes(row).decode("ascii") for row in out]


# --------------------------------------------------------------------------- lab table
def read_labs(
    registry: Any, study_ids: Sequence[str], patient_ids: Mapping[str, int] | None = None
) -> tuple[np.ndarray, dict[str, Coded]]:
    """The live lab rows of the patients ``study_ids``, as
    :func:`~immunoreset.interop._columns.read_coded` gives them for :data:`LAB_FIELDS`
    (tested equal), read with fewer Python objects a row.

    One plain select of the chunk's patients (an id range when their ids are contiguous),
    no ``ORDER BY``: the unique key (patient, date, analyte) of live rows makes the sort
    here (patient position, date, analyte) total. Columns are converted by numpy and
    factorised by pandas; each distinct stored value is decoded once. ``patient_ids``
    (study ID → registry id, from :func:`patient_ids`) saves reading them per call.
    """
    import pandas as pd
    from sqlalchemy import select

    from immunoreset.registry import fast
    from immunoreset.registry import schema as s

    t = s.ENTITIES["labs"].table
    kinds = {sp.name: sp.kind for sp in s.ENTITIES["labs"].specs}
    with registry.engine.connect() as conn:
        ids = patient_ids if patient_ids is not None else _patient_ids(conn)
        pids = sorted((ids[sid], i) for i, sid in enumerate(study_ids) if sid in ids)
        rows: list[Any] = []
        if pids:
            lo, hi = pids[0][0], pids[-1][0]
            where = t.c.deleted_at.is_(None) & (
                t.c.patient_id.between(lo, hi)
                if hi - lo + 1 == len(pids)
                else t.c.patient_id.in_([p for p, _ in pids])
            )
            stmt = select(t.c.patient_id, *(t.c[f] for f in LAB_FIELDS)).where(where)
            sql = str(stmt.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
            cursor = conn.connection.cursor()
            try:
                cursor.execute(sql)
                rows = cursor.fetchall()
            finally:
                cursor.close()
        codec = fast.codec(conn)
    arr = np.array(rows, dtype=object).reshape(len(rows), 1 + len(LAB_FIELDS))
    del rows
    if pids:
        lut = np.full(pids[-1][0] - pids[0][0] + 1, -1, dtype=np.int64)
        lut[[p - pids[0][0] for p, _ in pids]] = [i for _, i in pids]
        pidx = lut[arr[:, 0].astype(np.int64) - pids[0][0]]
    else:
        pidx = np.zeros(0, dtype=np.int64)
    coded: dict[str, Coded] = {}
    for j, name in enumerate(LAB_FIELDS, start=1):
        col = arr[:, j]
        if name in ("value", "lloq"):  # floats by their bits: -0.0 stays apart from 0.0
            null = np.equal(col, None)
            bits = np.where(null, 0.0, col).astype(np.float64).view(np.int64)
            codes, uniques = pd.factorize(bits)
            codes[null] = -1
            values: list[Any] = uniques.view(np.float64).tolist()
        else:
            codes, uniques = pd.factorize(col, use_na_sentinel=True)
            decoder = codec.decoder(kinds[name])
            values = list(uniques) if decoder is None else [decoder(u) for u in uniques]
        values.append(None)
        codes = np.asarray(codes, dtype=np.int64)
        codes[codes < 0] = len(values) - 1
        coded[name] = Coded(codes, values)
    if len(pidx):
        ranks = []
        for name in ("analyte", "date"):
            codes, values = coded[name]
            rank_of = np.empty(len(values), dtype=np.int64)
            stored = values[:-1]
            rank_of[sorted(range(len(stored)), key=stored.__getitem__)] = np.arange(len(stored))
            rank_of[-1] = -1
            ranks.append(rank_of[codes])
        perm = np.lexsort([*ranks, pidx])
        pidx = pidx[perm]
        coded = {k: Coded(v.codes[perm], v.values) for k, v in coded.items()}
    return pidx, coded


def _patient_ids(conn: Any) -> dict[str, int]:
    from sqlalchemy import select

    from immunoreset.registry import schema as s

    return {sid: pid for pid, sid in conn.execute(select(s.patients.c.id, s.patients.c.study_id))}


def patient_ids(registry: Any) -> dict[str, int]:
    """Study ID → registry id of every patient (site scope is the caller's: these only
    locate rows of the patients it has already loaded for the actor)."""
    with registry.engine.connect() as conn:
        return _patient_ids(conn)


# --------------------------------------------------------------------------- lab entries
def _lab_block(
    registry: Any, courses: Sequence[c.Course], ids: Mapping[str, int] | None = None
) -> tuple[memoryview, np.ndarray]:
    """The lab entries of ``courses`` (each entry preceded by ","), as UTF-8 bytes, and each
    course's end offset in them (index 0: the start)."""
    sids = [co.study_id for co in courses]
    pidx, coded = read_labs(registry, sids, ids)
    n = len(pidx)
    bounds = np.searchsorted(pidx, np.arange(len(sids) + 1))
    if n == 0:
        return memoryview(b""), bounds
    templates = fhir._LAB_TEMPLATES
    lloq_url = fhir._dumps(fhir.EXT + "lloq")
    t = _Table()
    # the id's SHA-1 message: namespace + "<sid>|Observation|lab|" | "<date>|" | "<analyte>"
    m_patient = t.add(fhir._NS_BYTES + f"{sid}|Observation|lab|".encode() for sid in sids)
    dates = coded["date"]
    days = [None if d is None else d.isoformat() for d in dates.values]
    m_date = t.add(f"{d}|".encode() for d in days)
    analytes = coded["analyte"]
    m_analyte = t.add(str(a).encode() for a in analytes.values)
    # the entry's pieces
    p_open = t.add([b',{"fullUrl":"urn:uuid:'])
    p_close = t.add([b'"}}'])
    p_code = t.add(  # (the last value is the NULL, never stored: analyte is required)
        b"" if a is None else f'","resource":{{{templates[a][0]},"subject":'.encode()
        for a in analytes.values
    )
    p_subject = t.add(
        f'{{"reference":"urn:uuid:{fhir._uid(sid, "Patient")}"}},"effectiveDateTime":"'.encode()
        for sid in sids
    )
    p_date = t.add(f'{d}","valueQuantity":{{"value":'.encode() for d in days)
    values = coded["value"]
    p_value = t.add(
        (b"" if v is None else float.__repr__(float(v)).encode()) for v in values.values
    )
    # comparator, unit and LLOQ extension: per distinct (analyte, below_lloq, lloq)
    below, lloq = coded["below_lloq"], coded["lloq"]
    combo = (analytes.codes * len(below.values) + below.codes) * len(lloq.values) + lloq.codes
    uniq, inverse = np.unique(combo, return_inverse=True)
    tails = []
    for key in uniq.tolist():
        rest, li = divmod(key, len(lloq.values))
        ai, bi = divmod(rest, len(below.values))
        a, low, q = analytes.values[ai], below.values[bi], lloq.values[li]
        unit = "" if a is None else templates[a][1]
        ext = (
            ""
            if q is None
            else f',"extension":[{{"url":{lloq_url},"valueQuantity":{{"value":'
            f"{float(q)!r},{unit}}}}}]"
        )
        comparator = ',"comparator":"<"' if low else ""
        tails.append(f'{comparator},{unit}}}{ext},"id":"'.encode())
    p_tail = t.add(tails)
    starts, lens, blob = t.arrays()
    message = np.empty((n, 3), dtype=np.int64)
    message[:, 0] = pidx + m_patient
    message[:, 1] = dates.codes + m_date
    message[:, 2] = analytes.codes + m_analyte
    ids = np.empty((n, 36), dtype=np.uint8)
    _sha1_uuid5_rows(message, starts, lens, blob, ids)
    del message
    codes = np.empty((n, 7), dtype=np.int64)
    codes[:, 0] = p_open
    codes[:, 1] = analytes.codes + p_code
    codes[:, 2] = pidx + p_subject
    codes[:, 3] = dates.codes + p_date
    codes[:, 4] = values.codes + p_value
    codes[:, 5] = inverse.reshape(-1) + p_tail
    codes[:, 6] = p_close
    layout = np.array([0, -1, 1, 2, 3, 4, 5, -1, 6], dtype=np.int64)
    sizes = lens[codes].sum(axis=1) + 72
    ends = np.cumsum(sizes)
    out = np.empty(int(ends[-1]), dtype=np.uint8)
    _assemble(codes, layout, ids, starts, lens, blob, out)
    offsets = np.r_[0, ends][bounds]
    return memoryview(out.data), offsets


# --------------------------------------------------------------------------- bundles
def _chunks(courses: Iterable[c.Course], size: int) -> Iterator[list[c.Course]]:
    it = iter(courses)
    while chunk := list(islice(it, size)):
        yield chunk


def write_bundles_columns(
    registry: Any,
    actor: Any,
    study_ids: Sequence[str] | None,
    out: str | Path,
    *,
    sites: Mapping[str, str] | None = None,
    validate: bool = False,
    progress: Callable[[int], None] | None = None,
) -> list[str]:
    """Write one ``<study_id>.json`` bundle per course visible to ``actor`` (of
    ``study_ids``, or all) into ``out``, the labs column-wise; return the study IDs."""
    from immunoreset.registry.repository import gc_paused

    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    names = sites or {}
    done: list[str] = []
    # the labs come column-wise
    courses = registry.iter_courses(actor, study_ids=study_ids, skip=("labs",))
    with gc_paused():
        ids = patient_ids(registry)
        for chunk in _chunks(courses, _CHUNK):
            data, offsets = _lab_block(registry, chunk, ids)
            for k, co in enumerate(chunk):
                head, before, after = fhir._bundle_parts(co, names.get(co.patient.site))
                parts = [
                    (head[:-1] + ',"entry":[' + ",".join(before)).encode(),
                    data[offsets[k] : offsets[k + 1]],
                    (("," + ",".join(after)) if after else "").encode() + b"]}",
                ]
                blob = b"".join(parts)
                if validate:
                    fhir.validate_bundle(json.loads(blob))
                (folder / f"{co.study_id}.json").write_bytes(blob)
                done.append(co.study_id)
                if progress:
                    progress(1)
    return done
