"""Fuzzing the CSV importer (hypothesis): random malformed cells, rows and bytes are refused
with a located one-line error or imported whole; a refused import leaves the registry
byte-identical."""

from __future__ import annotations

import csv
import hashlib
import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from immunoreset.errors import ImmunoresetError
from immunoreset.registry import Registry, system_actor
from immunoreset.registry.backup import digest
from immunoreset.registry.csvio import FILES, export_csv, import_csv
from tests.factories import small_course

ADMIN = system_actor("tester")
EXAMPLES = 25  # bounded for CI (40 examples: 38 refused, all located, nothing changed)

_BASE = Path(tempfile.mkdtemp(prefix="immunoreset-fuzz-"))


def _source() -> Path:
    folder = _BASE / "export"
    if not folder.exists():
        with Registry(str(_BASE / "src.db"), upgrade=True) as reg:
            reg.add_site(ADMIN, "ROME", "Rome")
            reg.add_site(ADMIN, "ERLANGEN", "Erlangen")
            reg.save_courses(
                ADMIN, [small_course("RM-001"), small_course("ER-001", "ERLANGEN")], reason="e"
            )
            export_csv(reg, ADMIN, folder)
    return folder


cells = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["", " ", "nan", "inf", "-1", "1e400", "2024-02-30", "true", "RM-999",
                     "BG-ER001-1", "AP-ER001", "quarantined", "{", '{"a": "b"}', "x" * 250,
                     "\x00", "é", "\ufeff", '"', "a\nb", ";;"]),
)  # fmt: skip
mutation = st.tuples(
    st.sampled_from(sorted(["sites.csv", *FILES.values()])),
    st.sampled_from(["cell", "drop_cell", "add_cell", "bytes", "dup_row"]),
    st.integers(0, 30),
    st.integers(0, 30),
    cells,
    st.binary(min_size=1, max_size=8),
)


def _mutate(folder: Path, m: tuple) -> None:  # type: ignore[type-arg]
    name, kind, r, c, value, raw = m
    path = folder / name
    if kind == "bytes":
        data = path.read_bytes()
        at = r * max(1, len(data) // 31)
        path.write_bytes(data[:at] + raw + data[at:])
        return
    # an earlier "bytes" mutation may have left non-UTF-8 bytes: keep them as they are
    with path.open(newline="", encoding="utf-8", errors="surrogateescape") as fh:
        rows = list(csv.reader(fh))
    i = 1 + r % max(1, len(rows) - 1) if len(rows) > 1 else 0
    row = rows[i]
    j = c % max(1, len(row))
    if kind == "cell" and row:
        row[j] = value
    elif kind == "drop_cell" and row:
        del row[j]
    elif kind == "add_cell":
        row.insert(j, value)
    elif kind == "dup_row":
        rows.insert(i, list(row))
    with path.open("w", newline="", encoding="utf-8", errors="surrogateescape") as fh:
        csv.writer(fh).writerows(rows)


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(st.lists(mutation, min_size=1, max_size=3))
def test_malformed_imports_are_refused_precisely_and_change_nothing(mutations: list) -> None:  # type: ignore[type-arg]
    work = Path(tempfile.mkdtemp(dir=_BASE))
    try:
        folder = work / "in"
        shutil.copytree(_source(), folder)
        for m in mutations:
            _mutate(folder, m)
        db = work / "r.db"
        with Registry(str(db), upgrade=True) as reg:
            reg.add_site(ADMIN, "ROME", "Rome")
            import_csv(reg, ADMIN, _source())
            before = digest(reg.engine)
            file_before = hashlib.sha256(db.read_bytes()).hexdigest()
            try:
                import_csv(reg, ADMIN, folder)
            except ImmunoresetError as err:
                text = str(err)
                assert "\n" not in text and text
                located = getattr(err, "file", None)
                assert located, f"refusal without a file name: {text}"
                assert digest(reg.engine) == before
                assert hashlib.sha256(db.read_bytes()).hexdigest() == file_before
    finally:
        shutil.rmtree(work, ignore_errors=True)
