"""Fuzzing the FHIR and REDCap importers (hypothesis, seeded and bounded): random malformed
values, missing keys, duplicated entries, broken cells and bytes are refused with a located
error (every problem on its own line) or imported whole; a refused import leaves the registry
byte-identical (every table's digest and the file)."""

from __future__ import annotations

import copy
import csv
import hashlib
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from immunoreset import demo
from immunoreset.errors import ImmunoresetError
from immunoreset.interop import fhir, redcap
from immunoreset.registry import Registry
from immunoreset.registry.backup import digest
from tests.interop.conftest import ADMIN

EXAMPLES = 25  # per importer, bounded for CI
_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
_BASE = Path(tempfile.mkdtemp(prefix="immunoreset-interop-fuzz-"))


def _template() -> Path:
    """An SQLite registry with the demo sites and one stored course (copied per example)."""
    path = _BASE / "template.db"
    if not path.exists():
        with Registry(str(path), upgrade=True) as reg:
            for code, name in demo.SITE_NAMES.items():
                reg.add_site(ADMIN, code, name)
            reg.save_courses(ADMIN, demo.published_cohort()[:1], reason="stored before")
    return path


def _attempt(run: Any) -> None:
    """Run an import on a copy of the template; a refusal must name where and change nothing."""
    work = Path(tempfile.mkdtemp(dir=_BASE))
    try:
        db = work / "r.db"
        shutil.copy(_template(), db)
        with Registry(str(db)) as reg:
            before = digest(reg.engine)
            file_before = hashlib.sha256(db.read_bytes()).hexdigest()
            try:
                run(reg, work)
            except ImmunoresetError as err:
                text = str(err)
                assert text.strip(), "an empty refusal"
                assert "Traceback" not in text
                for line in text.splitlines():
                    assert len(line) < 2_000, line[:200]
                assert digest(reg.engine) == before
                reg.engine.dispose()
                assert hashlib.sha256(db.read_bytes()).hexdigest() == file_before
    finally:
        shutil.rmtree(work, ignore_errors=True)


# --------------------------------------------------------------------------- FHIR
_ODD = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(["", "2024-02-30", "2024-13", "RM-999", "urn:uuid:x", "Patient/x", "é\x00"]),
    st.just([]),
    st.just({}),
)


def _leaves(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = []
    items = node.items() if isinstance(node, dict) else enumerate(node)
    for k, v in items:
        if isinstance(v, dict | list) and v:
            out.extend(_leaves(v, (*path, k)))
        else:
            out.append((*path, k))
    return out


def _mutate_bundle(bundle: dict[str, Any], muts: list[tuple[str, int, Any]]) -> dict[str, Any]:
    bundle = copy.deepcopy(bundle)
    for kind, where, value in muts:
        leaves = _leaves(bundle)
        path = leaves[where % len(leaves)]
        parent: Any = bundle
        for k in path[:-1]:
            parent = parent[k]
        if kind == "set":
            parent[path[-1]] = value
        elif kind == "drop" and isinstance(parent, dict):
            del parent[path[-1]]
        elif kind == "dup_entry" and bundle.get("entry"):
            entries = bundle["entry"]
            entries.append(copy.deepcopy(entries[where % len(entries)]))
    return bundle


_BUNDLE = fhir.course_bundle(demo.published_cohort()[2])


@_SETTINGS
@given(
    st.lists(
        st.tuples(st.sampled_from(["set", "drop", "dup_entry"]), st.integers(0, 10**6), _ODD),
        min_size=1,
        max_size=3,
    ),
    st.booleans(),
)
def test_fhir_importer_refuses_precisely_and_changes_nothing(
    muts: list[tuple[str, int, Any]], validate: bool
) -> None:
    bundle = _mutate_bundle(_BUNDLE, muts)

    def run(reg: Registry, work: Path) -> None:
        path = work / "bundle.json"
        path.write_text(json.dumps(bundle, allow_nan=True), encoding="utf-8")
        fhir.import_fhir(reg, ADMIN, [path], validate=validate)

    _attempt(run)


def test_fhir_unmutated_bundle_imports() -> None:
    """The fuzzer's base bundle imports (so refusals come from the mutations)."""
    work = Path(tempfile.mkdtemp(dir=_BASE))
    db = work / "r.db"
    shutil.copy(_template(), db)
    with Registry(str(db)) as reg:
        stats = fhir.import_fhir(reg, ADMIN, [_BUNDLE])
        assert stats.total_inserted > 0


# --------------------------------------------------------------------------- REDCap
def _redcap_export() -> Path:
    out = _BASE / "redcap"
    if not out.exists():
        with Registry(str(_BASE / "redcap-src.db"), upgrade=True) as reg:
            for code, name in demo.SITE_NAMES.items():
                reg.add_site(ADMIN, code, name)
            reg.save_courses(ADMIN, demo.published_cohort()[1:3], reason="source")
            redcap.export_redcap(reg, ADMIN, out)
    return out


_CELLS = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["", " ", "nan", "inf", "-1", "1e400", "2024-02-30", "99", "RM-999", "x" * 300,
                     "\x00", "\ufeff", '"', "a\nb", "0,5", "1;2", "{"]),
)  # fmt: skip


@_SETTINGS
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["records.csv", "dictionary.csv"]),
            st.sampled_from(["cell", "drop_cell", "add_cell", "bytes", "dup_row", "header"]),
            st.integers(0, 10**6),
            st.integers(0, 10**6),
            _CELLS,
            st.binary(min_size=1, max_size=8),
        ),
        min_size=1,
        max_size=3,
    )
)
def test_redcap_importer_refuses_precisely_and_changes_nothing(muts: list[tuple]) -> None:  # type: ignore[type-arg]
    def run(reg: Registry, work: Path) -> None:
        folder = work / "in"
        shutil.copytree(_redcap_export(), folder)
        for name, kind, r, c, value, raw in muts:
            path = folder / name
            if kind == "bytes":
                data = path.read_bytes()
                at = r % max(1, len(data))
                path.write_bytes(data[:at] + raw + data[at:])
                continue
            with path.open(newline="", encoding="utf-8", errors="surrogateescape") as fh:
                rows = list(csv.reader(fh))
            i = 0 if kind == "header" else 1 + r % max(1, len(rows) - 1)
            row = rows[min(i, len(rows) - 1)]
            j = c % max(1, len(row))
            if kind in ("cell", "header") and row:
                row[j] = value
            elif kind == "drop_cell" and row:
                del row[j]
            elif kind == "add_cell":
                row.insert(j, value)
            elif kind == "dup_row":
                rows.insert(i, list(row))
            with path.open("w", newline="", encoding="utf-8", errors="surrogateescape") as fh:
                csv.writer(fh).writerows(rows)
        redcap.import_redcap(
            reg, ADMIN, folder / "records.csv", dictionary=folder / "dictionary.csv"
        )

    _attempt(run)


@pytest.fixture(autouse=True, scope="module")
def _cleanup() -> Any:
    yield
    shutil.rmtree(_BASE, ignore_errors=True)
